//! Each metric's proposal, case by case. Numbers marked "upstream" are those the HPA
//! controller's own tests (replica_calculator_test.go) assert for the same inputs.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use common::*;
use ferroscale_api::MetricTargetType;
use ferroscale_autoscaler::MetricValues;
use ferroscale_autoscaler::pods::{ConditionStatus, ContainerRequests, PodPhase, ReadyCondition};
use ferroscale_autoscaler::samples::{ContainerUsage, PodUsage, resource_samples};

/// A table row: one metric over some pods, and what it must propose.
struct Row {
    name: &'static str,
    case: Case,
    replicas: Option<i32>,
    /// Expected `averageUtilization` and current (average) value in milli-units.
    utilization: Option<i32>,
    value: Option<i64>,
    error: Option<&'static str>,
}

fn row(name: &'static str, case: Case, replicas: i32, utilization: Option<i32>, value: Option<i64>) -> Row {
    Row {
        name,
        case,
        replicas: Some(replicas),
        utilization,
        value,
        error: None,
    }
}

fn fails(name: &'static str, case: Case, error: &'static str) -> Row {
    Row {
        name,
        case,
        replicas: None,
        utilization: None,
        value: None,
        error: Some(error),
    }
}

fn one(
    metric: ferroscale_api::MetricSpec,
    replicas: i32,
    pods: Vec<ferroscale_autoscaler::PodInfo>,
    gathered: ferroscale_autoscaler::Gathered,
) -> Case {
    Case::new(spec(Some(1), 1000, vec![metric]), replicas, pods, vec![gathered])
}

fn check(rows: Vec<Row>) {
    for r in rows {
        let d = r.case.decide();
        let m = &d.metrics[0];
        match r.error {
            Some(fragment) => {
                let error = m
                    .error
                    .as_deref()
                    .unwrap_or_else(|| panic!("{}: expected an error, got {:?}", r.name, m.replicas));
                assert!(
                    error.contains(fragment),
                    "{}: error {error:?} lacks {fragment:?}",
                    r.name
                );
            }
            None => {
                assert_eq!(m.error, None, "{}", r.name);
                assert_eq!(m.replicas, r.replicas, "{}: replicas", r.name);
                let p = m.proposal.as_ref().unwrap();
                if r.utilization.is_some() {
                    assert_eq!(p.utilization, r.utilization, "{}: utilization", r.name);
                }
                if let Some(v) = r.value {
                    assert_eq!(p.value, v, "{}: current value", r.name);
                }
            }
        }
    }
}

#[test]
fn resource_metrics() {
    let mut recent = pods(3, 1000);
    // Started 30s ago, within the 2m CPU initialization period; Ready 20s ago, so a 1m sample
    // taken now still overlaps the time it was not ready.
    recent[0].start_time = Some(ago(30));
    recent[0].ready = Some(ReadyCondition {
        status: ConditionStatus::True,
        last_transition: Some(ago(20)),
    });
    let mut settled = pods(3, 1000);
    settled[0].start_time = Some(ago(30));
    settled[0].ready = Some(ReadyCondition {
        status: ConditionStatus::True,
        last_transition: Some(ago(90)),
    });
    let mut was_ready = pods(3, 1000);
    // Long started, not ready now, but it was ready once (transition well after start + delay).
    was_ready[0].ready = Some(ReadyCondition {
        status: ConditionStatus::False,
        last_transition: Some(ago(600)),
    });
    let mut no_condition = pods(3, 1000);
    no_condition[0].ready = None;

    check(vec![
        row(
            "upstream: scale up",
            one(cpu(30), 3, pods(3, 2000), per_pod(&[600, 1000, 1400])),
            5,
            Some(50),
            Some(1000),
        ),
        row(
            "upstream: scale down",
            one(cpu(50), 5, pods(5, 1000), per_pod(&[100, 300, 500, 250, 250])),
            3,
            Some(28),
            Some(280),
        ),
        row(
            "upstream: tolerance keeps the count",
            one(
                cpu(100),
                3,
                vec![pod("pod-0", 900), pod("pod-1", 1000), pod("pod-2", 1100)],
                per_pod(&[1010, 1030, 1020]),
            ),
            3,
            Some(102),
            Some(1020),
        ),
        row(
            "upstream: unready pod scales less",
            one(
                cpu(30),
                3,
                vec![unready(pod("pod-0", 2000)), pod("pod-1", 2000), pod("pod-2", 2000)],
                per_pod(&[600, 1000, 1400]),
            ),
            4,
            Some(60),
            Some(1200),
        ),
        row(
            "upstream: scale down ignores unready pods",
            one(
                cpu(50),
                5,
                vec![
                    pod("pod-0", 1000),
                    pod("pod-1", 1000),
                    pod("pod-2", 1000),
                    unready(pod("pod-3", 1000)),
                    unready(pod("pod-4", 1000)),
                ],
                per_pod(&[100, 300, 500, 250, 250]),
            ),
            2,
            Some(30),
            Some(300),
        ),
        row(
            "upstream: scale down ignores terminating and failed pods",
            one(
                cpu(50),
                5,
                vec![
                    pod("pod-0", 1000),
                    pod("pod-1", 1000),
                    pod("pod-2", 1000),
                    terminating(pod("pod-3", 1000)),
                    phase(pod("pod-4", 1000), PodPhase::Failed),
                ],
                per_pod(&[100, 300, 500, 250, 250]),
            ),
            2,
            Some(30),
            Some(300),
        ),
        row(
            "pending pods count as unready",
            one(
                cpu(30),
                3,
                vec![
                    phase(pod("pod-0", 2000), PodPhase::Pending),
                    pod("pod-1", 2000),
                    pod("pod-2", 2000),
                ],
                per_named_pod(&[("pod-1", 1000), ("pod-2", 1400)]),
            ),
            4,
            Some(60),
            Some(1200),
        ),
        row(
            "cpu sample overlapping a recent readiness change is distrusted",
            one(cpu(30), 3, recent, per_pod(&[600, 1000, 1400])),
            8,
            Some(120),
            Some(1200),
        ),
        row(
            "cpu sample one window after readiness is trusted",
            one(cpu(30), 3, settled, per_pod(&[600, 1000, 1400])),
            10,
            Some(100),
            Some(1000),
        ),
        row(
            "a pod that was ready once still counts",
            one(cpu(50), 3, was_ready, per_pod(&[500, 1000, 1500])),
            6,
            Some(100),
            Some(1000),
        ),
        row(
            "no ready condition means unready",
            one(cpu(30), 3, no_condition, per_pod(&[600, 1000, 1400])),
            8,
            Some(120),
            Some(1200),
        ),
        row(
            "readiness does not matter for memory",
            one(
                resource_utilization("memory", 50),
                3,
                vec![unready(mem_pod("pod-0")), mem_pod("pod-1"), mem_pod("pod-2")],
                per_pod(&[2000, 2000, 2000]),
            ),
            6,
            Some(100),
            Some(2000),
        ),
        row(
            "missing pod on scale down uses its whole request",
            one(cpu(50), 4, pods(4, 1000), per_pod(&[100, 100, 100])),
            3,
            Some(10),
            Some(100),
        ),
        row(
            "missing pod on scale down uses a target above 100%",
            one(cpu(150), 4, pods(4, 1000), per_pod(&[100, 100, 100])),
            2,
            Some(10),
            Some(100),
        ),
        row(
            "missing pod on scale up uses nothing",
            one(cpu(50), 4, pods(4, 1000), per_pod(&[900, 900, 900])),
            6,
            Some(90),
            Some(900),
        ),
        row(
            "rebalancing never reverses the direction",
            one(cpu(50), 4, pods(4, 1000), per_pod(&[450, 450])),
            4,
            Some(45),
            Some(450),
        ),
        row(
            "rebalanced ratio inside the tolerance keeps the count",
            one(cpu(100), 4, pods(4, 1000), per_pod(&[850, 900, 950])),
            4,
            Some(90),
            Some(900),
        ),
        row(
            "average value target",
            one(
                resource_average("cpu", "400m"),
                3,
                pods(3, 1000),
                per_pod(&[300, 500, 700]),
            ),
            4,
            None,
            Some(500),
        ),
        row(
            "pod-level requests take precedence",
            one(
                cpu(50),
                2,
                vec![pod_level("pod-0"), pod_level("pod-1")],
                per_pod(&[1000, 1000]),
            ),
            4,
            Some(50 * 2),
            Some(1000),
        ),
        row(
            "container resource counts one container",
            one(
                container_cpu("app", 50),
                2,
                vec![two_containers("pod-0"), two_containers("pod-1")],
                per_pod(&[1000, 1000]),
            ),
            4,
            Some(100),
            Some(1000),
        ),
        fails(
            "no pods",
            one(cpu(50), 3, vec![], per_pod(&[100])),
            "no pods returned by selector",
        ),
        fails(
            "samples only for unknown pods",
            one(cpu(100), 1, pods(1, 2000), per_named_pod(&[("an-older-pod-name", 200)])),
            "no metrics returned matched known pods",
        ),
        fails(
            "every pod unready",
            one(
                cpu(50),
                2,
                vec![unready(pod("pod-0", 1000)), unready(pod("pod-1", 1000))],
                per_pod(&[100, 100]),
            ),
            "did not receive metrics for targeted pods",
        ),
        fails(
            "missing request",
            one(cpu(50), 1, vec![mem_pod("pod-0")], per_pod(&[100])),
            "missing request for cpu in container app of Pod pod-0",
        ),
        fails(
            "container absent from the pod",
            one(container_cpu("sidecar", 50), 1, pods(1, 1000), per_pod(&[100])),
            "container sidecar not found in Pod pod-0",
        ),
        fails(
            "metrics API failure",
            one(
                cpu(50),
                1,
                pods(1, 1000),
                Err("no metrics returned from resource metrics API".into()),
            ),
            "unable to get metrics for resource cpu: no metrics returned",
        ),
    ]);
}

fn mem_pod(name: &str) -> ferroscale_autoscaler::PodInfo {
    let mut p = pod(name, 0);
    p.containers = [ContainerRequests {
        name: "app".into(),
        requests: vec![("memory".into(), 2000)],
    }]
    .into();
    p
}

fn pod_level(name: &str) -> ferroscale_autoscaler::PodInfo {
    let mut p = pod(name, 250);
    p.pod_requests = vec![("cpu".into(), 1000)];
    p
}

fn two_containers(name: &str) -> ferroscale_autoscaler::PodInfo {
    let mut p = pod(name, 1000);
    let sidecar = ContainerRequests {
        name: "sidecar".into(),
        requests: vec![("cpu".into(), 3000)],
    };
    p.containers = p.containers.iter().cloned().chain([sidecar]).collect();
    p
}

#[test]
fn pods_metrics() {
    check(vec![
        row(
            "upstream: scale up",
            one(pods_metric("qps", "15"), 3, pods(3, 0), per_pod(&[20000, 10000, 30000])),
            4,
            None,
            Some(20000),
        ),
        row(
            "upstream: scale down",
            one(
                pods_metric("qps", "20"),
                5,
                pods(5, 0),
                per_pod(&[12000, 12000, 12000, 12000, 12000]),
            ),
            3,
            None,
            Some(12000),
        ),
        row(
            "unready pods count as idle on scale up",
            one(
                pods_metric("qps", "15"),
                3,
                vec![
                    pod("pod-0", 0),
                    pod("pod-1", 0),
                    phase(pod("pod-2", 0), PodPhase::Pending),
                ],
                per_named_pod(&[("pod-0", 20000), ("pod-1", 20000)]),
            ),
            3,
            None,
            Some(20000),
        ),
        row(
            "missing pods count at target on scale down",
            one(pods_metric("qps", "10"), 4, pods(4, 0), per_pod(&[5000, 5000, 5000])),
            3,
            None,
            Some(5000),
        ),
        row(
            "cpu readiness rules do not apply",
            one(
                pods_metric("qps", "10"),
                2,
                vec![unready(pod("pod-0", 0)), pod("pod-1", 0)],
                per_pod(&[20000, 20000]),
            ),
            4,
            None,
            Some(20000),
        ),
        fails(
            "custom metrics API failure",
            one(
                pods_metric("qps", "10"),
                2,
                pods(2, 0),
                Err("no metrics returned from custom metrics API".into()),
            ),
            "unable to get metric qps",
        ),
    ]);
}

#[test]
fn object_external_and_prometheus_metrics() {
    let ext = |values: Vec<i64>| Ok(MetricValues::External(values));
    check(vec![
        row(
            "upstream: object value",
            one(object_value("15"), 3, pods(3, 0), Ok(MetricValues::Object(20000))),
            4,
            None,
            Some(20000),
        ),
        row(
            "upstream: object average value",
            one(object_average("5"), 3, pods(3, 0), Ok(MetricValues::Object(20000))),
            4,
            None,
            Some(6667),
        ),
        row(
            "object value within tolerance",
            one(object_value("20"), 3, pods(3, 0), Ok(MetricValues::Object(21000))),
            3,
            None,
            Some(21000),
        ),
        row(
            "object value counts only running ready pods",
            one(
                object_value("10"),
                3,
                vec![pod("pod-0", 0), unready(pod("pod-1", 0)), pod("pod-2", 0)],
                Ok(MetricValues::Object(20000)),
            ),
            4,
            None,
            Some(20000),
        ),
        row(
            "object value scales from zero",
            Case::new(
                spec(Some(0), 10, vec![object_value("10")]),
                0,
                vec![],
                vec![Ok(MetricValues::Object(25000))],
            ),
            3,
            None,
            Some(25000),
        ),
        row(
            "upstream: external value",
            one(external_value("4400m"), 3, pods(3, 0), ext(vec![8600])),
            6,
            None,
            Some(8600),
        ),
        row(
            "external value sums series",
            one(external_value("1"), 2, pods(2, 0), ext(vec![3000, 5000])),
            16,
            None,
            Some(8000),
        ),
        row(
            "upstream: external average value",
            one(external_average("2150m"), 3, pods(3, 0), ext(vec![8600])),
            4,
            None,
            Some(2867),
        ),
        row(
            "external average value scales down",
            one(external_average("10"), 4, pods(4, 0), ext(vec![10000])),
            1,
            None,
            Some(2500),
        ),
        row(
            "prometheus value",
            one(
                prometheus(MetricTargetType::Value, "100"),
                2,
                pods(2, 0),
                Ok(MetricValues::Prometheus(300_000)),
            ),
            6,
            None,
            Some(300_000),
        ),
        row(
            "prometheus average value",
            one(
                prometheus(MetricTargetType::AverageValue, "50"),
                3,
                pods(3, 0),
                Ok(MetricValues::Prometheus(260_000)),
            ),
            6,
            None,
            Some(86_667),
        ),
        fails(
            "object value needs pods to scale",
            one(object_value("10"), 3, vec![], Ok(MetricValues::Object(20000))),
            "unable to calculate ready pods",
        ),
        fails(
            "external metrics API failure",
            one(
                external_value("10"),
                3,
                pods(3, 0),
                Err("no metrics returned from external metrics API".into()),
            ),
            "unable to get external metric queue",
        ),
        fails(
            "empty external series",
            one(external_value("10"), 3, pods(3, 0), ext(vec![])),
            "no metrics returned from external metrics API",
        ),
        fails(
            "prometheus failure",
            one(
                prometheus(MetricTargetType::Value, "1"),
                3,
                pods(3, 0),
                Err("query returned 2 series".into()),
            ),
            "query returned 2 series",
        ),
        fails(
            "unknown metric type",
            one(
                unknown_metric(),
                3,
                pods(3, 0),
                Err("unknown metric source type".into()),
            ),
            "unknown metric source type",
        ),
    ]);
}

#[test]
fn metric_statuses_use_canonical_quantities() {
    let d = one(cpu(30), 3, pods(3, 2000), per_pod(&[600, 1000, 1400])).decide();
    let current = &d.metrics[0].status.as_ref().unwrap().resource.as_ref().unwrap().current;
    assert_eq!(current.average_utilization, Some(50));
    assert_eq!(current.average_value.as_ref().unwrap().0, "1");
    let d = one(object_average("5"), 3, pods(3, 0), Ok(MetricValues::Object(20000))).decide();
    let current = &d.metrics[0].status.as_ref().unwrap().object.as_ref().unwrap().current;
    assert_eq!(current.average_value.as_ref().unwrap().0, "6667m");
}

/// Pods with containers `container1` and `container2`, each requesting 1 CPU, and their
/// PodMetrics as metrics-server reports them: `usage[i]` lists pod i's containers in order.
fn two_container_pods(phases: &[PodPhase], usage: &[&[i64]]) -> (Vec<ferroscale_autoscaler::PodInfo>, Vec<PodUsage>) {
    let pods = phases
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut pod = pod(&format!("pod-{i}"), 1000);
            pod.containers = ["container1", "container2"]
                .map(|name| ContainerRequests {
                    name: name.into(),
                    requests: vec![("cpu".into(), 1000)],
                })
                .into();
            if *p == PodPhase::Failed {
                pod = phase(unready(pod), PodPhase::Failed);
            }
            pod
        })
        .collect();
    let raw = usage
        .iter()
        .enumerate()
        .map(|(i, containers)| PodUsage {
            pod: format!("pod-{i}"),
            timestamp: ago(30),
            window: std::time::Duration::from_secs(60),
            containers: containers
                .iter()
                .enumerate()
                .map(|(c, v)| ContainerUsage {
                    name: format!("container{}", c + 1),
                    usage: vec![("cpu".into(), *v)],
                })
                .collect(),
        })
        .collect();
    (pods, raw)
}

#[test]
fn container_metrics_of_failed_pods() {
    use PodPhase::{Failed, Running};
    let (pods, raw) = two_container_pods(
        &[Running, Running, Failed, Failed],
        &[&[1000, 500], &[9000, 700], &[1000], &[9000]],
    );
    let failed_missing = resource_samples(&raw, "cpu", Some("container2")).map(MetricValues::PerPod);
    let (running_pods, running_raw) =
        two_container_pods(&[Running, Running, Running], &[&[1000, 500], &[9000, 700], &[1000]]);
    let running_missing = resource_samples(&running_raw, "cpu", Some("container2")).map(MetricValues::PerPod);
    check(vec![
        // upstream: "scale up: failed pods ignored with missing container metric"
        row(
            "upstream: failed pods ignored with missing container metric",
            one(container_cpu("container2", 30), 2, pods, failed_missing),
            4,
            Some(60),
            Some(600),
        ),
        // A running pod without the container's metric is a missing pod, as with Resource
        // metrics: on a scale-up it counts at 0%, so (500 + 700 + 0) / 3 = 40% of 30%.
        row(
            "a running pod missing the container's metric counts as missing",
            one(container_cpu("container2", 30), 3, running_pods, running_missing),
            4,
            Some(60),
            Some(600),
        ),
    ]);
}
