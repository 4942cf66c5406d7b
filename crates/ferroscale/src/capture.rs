//! What live `explain` read, as an offline snapshot: the objects and metric values the
//! cluster returned, in the documents `ferroscale explain FILE` reads, so that replaying the
//! file decides from the same input.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result};
use ferroscale_api::metrics_apis::*;
use ferroscale_api::quantity::format_milli;
use ferroscale_api::{Autoscaler, MetricSourceType, MetricSpec};
use ferroscale_autoscaler::MetricValues;
use ferroscale_autoscaler::pods::{ConditionStatus, PodPhase};
use ferroscale_autoscaler::samples::PodUsage;
use ferroscale_controller::autoscaler::observe::Observation;
use ferroscale_controller::pod_cache::CachedPod;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Container, Pod, PodCondition, PodSpec, PodStatus, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use serde_json::{Value, json};

use crate::snapshot::{Complete, Snapshot};

fn quantities(values: &[(String, i64)]) -> BTreeMap<String, Quantity> {
    values
        .iter()
        .map(|(name, milli)| (name.clone(), Quantity(format_milli(*milli))))
        .collect()
}

fn requests(values: &[(String, i64)]) -> Option<ResourceRequirements> {
    (!values.is_empty()).then(|| ResourceRequirements {
        requests: Some(quantities(values)),
        ..Default::default()
    })
}

/// The pod as the API would have returned it, with what the decision reads.
fn pod(cached: &CachedPod, namespace: &str, now: Timestamp) -> Pod {
    let info = &cached.info;
    let phase = match info.phase {
        PodPhase::Pending => "Pending",
        PodPhase::Running => "Running",
        PodPhase::Succeeded => "Succeeded",
        PodPhase::Failed => "Failed",
        PodPhase::Unknown => "Unknown",
    };
    let ready = info.ready.map(|r| PodCondition {
        type_: "Ready".into(),
        status: match r.status {
            ConditionStatus::True => "True",
            ConditionStatus::False => "False",
            ConditionStatus::Unknown => "Unknown",
        }
        .into(),
        last_transition_time: r.last_transition.map(Time),
        ..Default::default()
    });
    Pod {
        metadata: ObjectMeta {
            name: Some(info.name.to_string()),
            namespace: Some(namespace.to_string()),
            labels: (!cached.labels.is_empty()).then(|| cached.labels.to_map()),
            creation_timestamp: cached.created.map(Time),
            // Only that it is set matters to the decision.
            deletion_timestamp: info.terminating.then_some(Time(now)),
            ..Default::default()
        },
        spec: Some(PodSpec {
            // Restartable init containers (sidecars) count as containers do.
            containers: info
                .containers
                .iter()
                .map(|c| Container {
                    name: c.name.clone(),
                    resources: requests(&c.requests),
                    ..Default::default()
                })
                .collect(),
            resources: requests(&info.pod_requests),
            ..Default::default()
        }),
        status: Some(PodStatus {
            phase: Some(phase.into()),
            start_time: info.start_time.map(Time),
            conditions: ready.map(|c| vec![c]),
            ..Default::default()
        }),
    }
}

fn pod_metrics(usage: &PodUsage, namespace: &str) -> PodMetrics {
    PodMetrics {
        metadata: ObjectMeta {
            name: Some(usage.pod.clone()),
            namespace: Some(namespace.to_string()),
            ..Default::default()
        },
        timestamp: Time(usage.timestamp),
        // Nanoseconds keep the window exact; Go's duration syntax takes them.
        window: Some(format!("{}ns", usage.window.as_nanos())),
        containers: usage
            .containers
            .iter()
            .map(|c| ContainerMetrics {
                name: c.name.clone(),
                usage: quantities(&c.usage),
            })
            .collect(),
    }
}

fn described(kind: &str, name: &str, namespace: &str, api_version: Option<String>) -> DescribedObject {
    DescribedObject {
        kind: kind.into(),
        namespace: Some(namespace.into()),
        name: name.into(),
        api_version,
    }
}

fn metric_value(
    object: DescribedObject,
    metric: &str,
    value: i64,
    at: Timestamp,
    window: Option<Duration>,
) -> MetricValue {
    MetricValue {
        described_object: object,
        metric_name: None,
        metric: Some(MetricRef {
            name: metric.into(),
            selector: None,
        }),
        timestamp: Time(at),
        window_seconds: window.map(|w| w.as_secs() as i64),
        value: Quantity(format_milli(value)),
    }
}

/// The documents of one metric's values, added to `rest`.
fn add_metric(rest: &mut Snapshot, spec: &MetricSpec, values: &MetricValues, namespace: &str, now: Timestamp) {
    match (spec.type_, values) {
        (MetricSourceType::Pods, MetricValues::PerPod(samples)) => {
            let name = spec.pods.as_ref().map_or("", |p| p.metric.name.as_str());
            rest.custom_metrics.extend(samples.iter().map(|s| {
                metric_value(
                    described("Pod", &s.pod, namespace, Some("v1".into())),
                    name,
                    s.value,
                    s.timestamp,
                    Some(s.window),
                )
            }));
        }
        (MetricSourceType::Object, MetricValues::Object(value)) => {
            if let Some(o) = &spec.object {
                let r = &o.described_object;
                let object = described(&r.kind, &r.name, namespace, r.api_version.clone());
                rest.custom_metrics
                    .push(metric_value(object, &o.metric.name, *value, now, None));
            }
        }
        (MetricSourceType::External, MetricValues::External(values)) => {
            if let Some(e) = &spec.external {
                // Without labels, a value matches the metric's selector whatever it is.
                rest.external_metrics.extend(values.iter().map(|v| ExternalMetricValue {
                    metric_name: e.metric.name.clone(),
                    metric_labels: BTreeMap::new(),
                    timestamp: Time(now),
                    window: None,
                    value: Quantity(format_milli(*v)),
                }));
            }
        }
        (MetricSourceType::Prometheus, MetricValues::Prometheus(value)) => {
            if let Some(p) = &spec.prometheus {
                rest.prometheus.push(PrometheusSample {
                    query: p.query.clone(),
                    value: Quantity(format_milli(*value)),
                    history: None,
                });
            }
        }
        // Resource metrics are written from their PodMetrics, once for all of them.
        _ => {}
    }
}

/// The snapshot of one live evaluation of `autoscaler`, taken at `now`.
pub fn snapshot(autoscaler: &Autoscaler, observation: &Observation, now: Timestamp) -> Complete {
    let namespace = autoscaler.metadata.namespace.clone().unwrap_or_default();
    let mut autoscaler = autoscaler.clone();
    autoscaler.metadata.managed_fields = None;
    let mut rest = Snapshot {
        pods: observation.counted.iter().map(|p| pod(p, &namespace, now)).collect(),
        ..Snapshot::default()
    };
    if let Some(usage) = observation.reads.iter().find_map(|r| r.pod_usage.as_ref()) {
        rest.pod_metrics = usage.iter().map(|u| pod_metrics(u, &namespace)).collect();
    }
    for (i, (spec, read)) in observation.metrics.iter().zip(&observation.reads).enumerate() {
        if let Ok(values) = &read.value {
            add_metric(&mut rest, spec, values, &namespace, now);
        }
        // A predictive metric's history goes with its sample, so the replay forecasts alike.
        if let (Some(Some(Ok(series))), Some(sample)) = (observation.series.get(i), rest.prometheus.last_mut())
            && spec.prometheus.as_ref().is_some_and(|p| p.query == sample.query)
        {
            sample.history = Some(PrometheusHistory {
                step: format!("{}s", series.step.as_secs()),
                values: series
                    .points
                    .iter()
                    .map(|(t, v)| (t.as_second(), v.to_string()))
                    .collect(),
            });
        }
    }
    let mut scale = observation.scale_object.clone();
    scale.metadata.managed_fields = None;
    Complete {
        autoscaler,
        scale,
        rest,
    }
}

fn list(api_version: &str, kind: &str, items: Value) -> Value {
    json!({"apiVersion": api_version, "kind": kind, "items": items})
}

/// The snapshot as the multi-document YAML `explain FILE` reads.
pub fn to_yaml(snapshot: &Complete, captured: Timestamp) -> Result<String> {
    let rest = &snapshot.rest;
    let mut documents = vec![
        serde_json::to_value(&snapshot.autoscaler)?,
        serde_json::to_value(&snapshot.scale)?,
        list("v1", "PodList", serde_json::to_value(&rest.pods)?),
    ];
    if !rest.pod_metrics.is_empty() {
        documents.push(list(
            "metrics.k8s.io/v1beta1",
            "PodMetricsList",
            serde_json::to_value(&rest.pod_metrics)?,
        ));
    }
    if !rest.custom_metrics.is_empty() {
        documents.push(list(
            "custom.metrics.k8s.io/v1beta2",
            "MetricValueList",
            serde_json::to_value(&rest.custom_metrics)?,
        ));
    }
    if !rest.external_metrics.is_empty() {
        documents.push(list(
            "external.metrics.k8s.io/v1beta1",
            "ExternalMetricValueList",
            serde_json::to_value(&rest.external_metrics)?,
        ));
    }
    for sample in &rest.prometheus {
        let mut document = json!({"apiVersion": "ferroscale.dev/v1alpha1", "kind": "PrometheusSample"});
        if let (Some(d), Value::Object(fields)) = (document.as_object_mut(), serde_json::to_value(sample)?) {
            d.extend(fields);
        }
        documents.push(document);
    }
    let mut out = format!(
        "# ferroscale explain snapshot of Autoscaler {}/{}, captured at {captured}.\n# Replay it with: ferroscale explain FILE --now {captured}\n",
        snapshot.autoscaler.metadata.namespace.as_deref().unwrap_or_default(),
        snapshot.autoscaler.metadata.name.as_deref().unwrap_or_default(),
    );
    for document in documents {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&document).context("cannot write the snapshot as YAML")?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ferroscale_autoscaler::pods::{ContainerRequests, ReadyCondition};
    use ferroscale_autoscaler::samples::ContainerUsage;
    use ferroscale_autoscaler::{Gathered, PodInfo, PodSample, Scale, effective_metrics};
    use ferroscale_controller::autoscaler::observe::MetricRead;
    use ferroscale_controller::labels::Labels;
    use k8s_openapi::api::autoscaling::v1::{ScaleSpec, ScaleStatus};

    use super::*;

    const AUTOSCALER: &str = r#"
apiVersion: ferroscale.dev/v1alpha1
kind: Autoscaler
metadata: {name: web, namespace: shop}
spec:
  scaleTargetRef: {apiVersion: ferroscale.dev/v1alpha1, kind: PodSet, name: web}
  maxReplicas: 10
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}
  - type: ContainerResource
    containerResource: {name: memory, container: app, target: {type: AverageValue, averageValue: 100Mi}}
  - type: Pods
    pods: {metric: {name: qps}, target: {type: AverageValue, averageValue: "10"}}
  - type: Object
    object:
      describedObject: {apiVersion: networking.k8s.io/v1, kind: Ingress, name: main}
      metric: {name: rps}
      target: {type: Value, value: "100"}
  - type: External
    external:
      metric: {name: queue, selector: {matchLabels: {queue: orders}}}
      target: {type: AverageValue, averageValue: "30"}
  - type: Prometheus
    prometheus: {query: 'sum(rate(http_requests_total[1m]))', target: {type: Value, value: "5"}}
"#;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).unwrap()
    }

    fn cached(name: &str, phase: PodPhase, terminating: bool) -> Arc<CachedPod> {
        Arc::new(CachedPod {
            info: PodInfo {
                name: name.into(),
                phase,
                terminating,
                start_time: Some(at(-600)),
                ready: Some(ReadyCondition {
                    status: ConditionStatus::True,
                    last_transition: Some(at(-590)),
                }),
                containers: vec![
                    ContainerRequests {
                        name: "app".into(),
                        requests: vec![("cpu".into(), 250), ("memory".into(), 134_217_728_000)],
                    },
                    ContainerRequests {
                        name: "proxy".into(),
                        requests: vec![("cpu".into(), 1500)],
                    },
                ]
                .into(),
                pod_requests: Vec::new(),
            },
            labels: Labels::from(&BTreeMap::from([("app".to_string(), "web".to_string())])),
            owners: Box::default(),
            created: Some(at(-700)),
            scheduled: true,
        })
    }

    fn usage(pod: &str, app_cpu: i64, proxy_cpu: i64) -> PodUsage {
        PodUsage {
            pod: pod.into(),
            timestamp: at(-20),
            window: Duration::from_millis(10_393),
            containers: vec![
                ContainerUsage {
                    name: "app".into(),
                    usage: vec![("cpu".into(), app_cpu), ("memory".into(), 104_857_600_000)],
                },
                ContainerUsage {
                    name: "proxy".into(),
                    usage: vec![("cpu".into(), proxy_cpu)],
                },
            ],
        }
    }

    /// What live explain writes, replayed through the offline gather, is what it decided from.
    #[test]
    fn a_saved_snapshot_gives_back_the_input_it_was_taken_from() {
        let autoscaler: Autoscaler = serde_yaml::from_str(AUTOSCALER).unwrap();
        let counted = vec![
            cached("web-1", PodPhase::Running, false),
            cached("web-2", PodPhase::Pending, true),
            cached("web-3", PodPhase::Failed, false),
        ];
        let raw = Arc::new(vec![usage("web-1", 120, 30), usage("web-2", 7, 1)]);
        let resource = |values: Gathered| MetricRead {
            value: values,
            elapsed: Some(Duration::ZERO),
            pod_usage: Some(raw.clone()),
        };
        let plain = |values: Gathered| MetricRead {
            value: values,
            elapsed: Some(Duration::ZERO),
            pod_usage: None,
        };
        let samples = |metric: Option<&str>| {
            ferroscale_autoscaler::samples::resource_samples(
                &raw,
                if metric.is_some() { "memory" } else { "cpu" },
                metric,
            )
            .map(MetricValues::PerPod)
        };
        let reads = vec![
            resource(samples(None)),
            resource(samples(Some("app"))),
            plain(Ok(MetricValues::PerPod(vec![PodSample {
                pod: "web-1".into(),
                value: 12_500,
                timestamp: at(-30),
                window: Duration::from_secs(60),
            }]))),
            plain(Ok(MetricValues::Object(150_000))),
            plain(Ok(MetricValues::External(vec![40_000, 2_000]))),
            plain(Ok(MetricValues::Prometheus(6_250))),
        ];
        let metrics = effective_metrics(&autoscaler.spec).into_owned();
        let observation = Observation {
            scale_object: k8s_openapi::api::autoscaling::v1::Scale {
                metadata: ObjectMeta {
                    name: Some("web".into()),
                    namespace: Some("shop".into()),
                    ..Default::default()
                },
                spec: Some(ScaleSpec { replicas: Some(3) }),
                status: Some(ScaleStatus {
                    replicas: 3,
                    selector: Some("app=web".into()),
                }),
            },
            scale: Scale {
                spec_replicas: 3,
                status_replicas: 3,
                selector: Some("app=web".into()),
            },
            pods: counted.iter().map(|p| p.info.clone()).collect(),
            counted,
            gathered: reads.iter().map(|r| r.value.clone()).collect(),
            series: Vec::new(),
            reads,
            metrics: metrics.clone(),
            conflict: None,
            pods_left_out: 0,
        };
        let now = at(0);
        let yaml = to_yaml(&snapshot(&autoscaler, &observation, now), now).unwrap();
        let replayed = Snapshot::parse(&yaml).unwrap();
        assert!(replayed.rest.ignored.is_empty(), "{:?}", replayed.rest.ignored);
        let selector = kube::core::Selector::from_iter([("app", "web")]);
        let pods = crate::gather::pods(&replayed.rest, Some("shop"), Some(&selector));
        assert_eq!(pods, observation.pods);
        let gathered = crate::gather::metrics(&replayed.rest, &metrics, Some("shop"), Some(&selector));
        assert_eq!(gathered, observation.gathered);
        assert_eq!(replayed.autoscaler.spec, autoscaler.spec);
        assert_eq!(replayed.scale, observation.scale_object);
    }
}
