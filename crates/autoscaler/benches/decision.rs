//! One decision over 10, 1,000 and 10,000 pods, on the costliest path: CPU utilization with
//! some unready and some missing pods, so both passes of the calculation run, plus behavior
//! with a full recommendation history. Goal: under 2 ms at 10,000 pods.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use ferroscale_api::*;
use ferroscale_autoscaler::pods::{ConditionStatus, ContainerRequests, ReadyCondition};
use ferroscale_autoscaler::{Input, MetricValues, PodInfo, PodSample, Scale, Settings, decide};
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

fn inputs(
    n: usize,
) -> (
    AutoscalerSpec,
    AutoscalerStatus,
    Scale,
    Vec<PodInfo>,
    Vec<ferroscale_autoscaler::Gathered>,
    Timestamp,
) {
    let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap_or(Timestamp::UNIX_EPOCH);
    let start = now - SignedDuration::from_secs(3600);
    let mut pods = Vec::with_capacity(n);
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let mut pod = PodInfo::running(
            format!("web-{i:05}"),
            start,
            vec![ContainerRequests {
                name: "app".into(),
                requests: vec![("cpu".into(), 500), ("memory".into(), 1 << 30)],
            }],
        );
        if i % 50 == 0 {
            pod.ready = Some(ReadyCondition {
                status: ConditionStatus::False,
                last_transition: Some(start),
            });
        }
        if i % 40 != 0 {
            samples.push(PodSample {
                pod: pod.name.to_string(),
                value: 300 + (i as i64 % 400),
                timestamp: now,
                window: Duration::from_secs(30),
            });
        }
        pods.push(pod);
    }
    let spec: AutoscalerSpec = serde_json::from_value(serde_json::json!({
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        "minReplicas": 1, "maxReplicas": 100000,
        "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}}],
        "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300}}
    }))
    .unwrap_or_else(|e| panic!("bench spec: {e}"));
    let status = AutoscalerStatus {
        recommendations: Some(
            (0..20)
                .map(|i| Recommendation {
                    timestamp: Time(now - SignedDuration::from_secs(15 * i)),
                    replicas: n as i32 + i as i32,
                    current: false,
                })
                .collect(),
        ),
        ..AutoscalerStatus::default()
    };
    let scale = Scale {
        spec_replicas: n as i32,
        status_replicas: n as i32,
        selector: Some("app=web".into()),
    };
    (spec, status, scale, pods, vec![Ok(MetricValues::PerPod(samples))], now)
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("decision");
    let settings = Settings::default();
    for n in [10, 1_000, 10_000] {
        let (spec, status, scale, pods, metrics, now) = inputs(n);
        group.bench_with_input(BenchmarkId::new("cpu_utilization_pods", n), &n, |b, _| {
            b.iter(|| {
                let input = Input {
                    spec: &spec,
                    status: Some(&status),
                    generation: Some(1),
                    scale: &scale,
                    pods: &pods,
                    metrics: &metrics,
                    now,
                    settings: &settings,
                    last_recommended: None,
                    annotations: None,
                    conflict: None,
                    pods_left_out: 0,
                    compiled: None,
                    series: &[],
                };
                black_box(decide(black_box(&input)))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
