//! Builders for decision tests: each case reads in a few lines, like upstream's `resourceCase`.

#![allow(dead_code)] // each test file uses a different subset

use std::time::Duration;

use ferroscale_api::*;
use ferroscale_autoscaler::pods::{ConditionStatus, ContainerRequests, PodPhase, ReadyCondition};
use ferroscale_autoscaler::samples::GatheredSeries;
use ferroscale_autoscaler::{Decision, Gathered, Input, MetricValues, PodInfo, PodSample, Scale, Settings, decide};
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

pub fn now() -> Timestamp {
    "2026-01-01T00:00:00Z".parse().unwrap()
}

pub fn ago(seconds: i64) -> Timestamp {
    now() - SignedDuration::from_secs(seconds)
}

pub fn q(text: &str) -> Option<Quantity> {
    Some(Quantity(text.into()))
}

fn target(type_: MetricTargetType) -> MetricTarget {
    MetricTarget {
        type_,
        value: None,
        average_value: None,
        average_utilization: None,
    }
}

fn metric(type_: MetricSourceType) -> MetricSpec {
    MetricSpec {
        name: None,
        type_,
        resource: None,
        container_resource: None,
        pods: None,
        object: None,
        external: None,
        prometheus: None,
    }
}

pub fn resource_utilization(name: &str, percent: i32) -> MetricSpec {
    let target = MetricTarget {
        average_utilization: Some(percent),
        ..target(MetricTargetType::Utilization)
    };
    MetricSpec {
        resource: Some(Box::new(ResourceMetricSource {
            fallback: None,
            name: name.into(),
            target,
        })),
        ..metric(MetricSourceType::Resource)
    }
}

pub fn cpu(percent: i32) -> MetricSpec {
    resource_utilization("cpu", percent)
}

pub fn resource_average(name: &str, value: &str) -> MetricSpec {
    let target = MetricTarget {
        average_value: q(value),
        ..target(MetricTargetType::AverageValue)
    };
    MetricSpec {
        resource: Some(Box::new(ResourceMetricSource {
            fallback: None,
            name: name.into(),
            target,
        })),
        ..metric(MetricSourceType::Resource)
    }
}

pub fn container_cpu(container: &str, percent: i32) -> MetricSpec {
    let target = MetricTarget {
        average_utilization: Some(percent),
        ..target(MetricTargetType::Utilization)
    };
    let source = ContainerResourceMetricSource {
        fallback: None,
        name: "cpu".into(),
        container: container.into(),
        target,
    };
    MetricSpec {
        container_resource: Some(Box::new(source)),
        ..metric(MetricSourceType::ContainerResource)
    }
}

fn id(name: &str) -> MetricIdentifier {
    MetricIdentifier {
        name: name.into(),
        selector: None,
    }
}

pub fn pods_metric(name: &str, average: &str) -> MetricSpec {
    let target = MetricTarget {
        average_value: q(average),
        ..target(MetricTargetType::AverageValue)
    };
    MetricSpec {
        pods: Some(Box::new(PodsMetricSource {
            fallback: None,
            metric: id(name),
            target,
        })),
        ..metric(MetricSourceType::Pods)
    }
}

fn described() -> CrossVersionObjectReference {
    CrossVersionObjectReference {
        api_version: Some("apps/v1".into()),
        kind: "Deployment".into(),
        name: "other".into(),
    }
}

pub fn object_value(value: &str) -> MetricSpec {
    let target = MetricTarget {
        value: q(value),
        ..target(MetricTargetType::Value)
    };
    MetricSpec {
        object: Some(Box::new(ObjectMetricSource {
            fallback: None,
            activation_threshold: None,
            described_object: described(),
            metric: id("qps"),
            target,
        })),
        ..metric(MetricSourceType::Object)
    }
}

pub fn object_average(value: &str) -> MetricSpec {
    let target = MetricTarget {
        average_value: q(value),
        ..target(MetricTargetType::AverageValue)
    };
    MetricSpec {
        object: Some(Box::new(ObjectMetricSource {
            fallback: None,
            activation_threshold: None,
            described_object: described(),
            metric: id("qps"),
            target,
        })),
        ..metric(MetricSourceType::Object)
    }
}

pub fn external_value(value: &str) -> MetricSpec {
    let target = MetricTarget {
        value: q(value),
        ..target(MetricTargetType::Value)
    };
    MetricSpec {
        external: Some(Box::new(ExternalMetricSource {
            fallback: None,
            activation_threshold: None,
            metric: id("queue"),
            target,
        })),
        ..metric(MetricSourceType::External)
    }
}

pub fn external_average(value: &str) -> MetricSpec {
    let target = MetricTarget {
        average_value: q(value),
        ..target(MetricTargetType::AverageValue)
    };
    MetricSpec {
        external: Some(Box::new(ExternalMetricSource {
            fallback: None,
            activation_threshold: None,
            metric: id("queue"),
            target,
        })),
        ..metric(MetricSourceType::External)
    }
}

pub fn prometheus(type_: MetricTargetType, value: &str) -> MetricSpec {
    let mut t = target(type_);
    if type_ == MetricTargetType::Value {
        t.value = q(value)
    } else {
        t.average_value = q(value)
    }
    let source = PrometheusMetricSource {
        predictive: None,
        fallback: None,
        activation_threshold: None,
        server_address: None,
        query: "sum(up)".into(),
        auth_secret_ref: None,
        target: t,
    };
    MetricSpec {
        prometheus: Some(Box::new(source)),
        ..metric(MetricSourceType::Prometheus)
    }
}

pub fn unknown_metric() -> MetricSpec {
    metric(MetricSourceType::Unknown)
}

pub fn spec(min: Option<i32>, max: i32, metrics: Vec<MetricSpec>) -> AutoscalerSpec {
    AutoscalerSpec {
        formula: None,
        schedules: None,
        scale_target_ref: CrossVersionObjectReference {
            api_version: Some("apps/v1".into()),
            kind: "Deployment".into(),
            name: "web".into(),
        },
        min_replicas: min,
        max_replicas: max,
        metrics: Some(metrics),
        behavior: None,
        sync_period_seconds: None,
        selection_strategy: None,
    }
}

pub fn rules(
    window: Option<i32>,
    select: Option<SelectPolicy>,
    policies: &[(ScalingPolicyType, i32, i32)],
) -> ScalingRules {
    ScalingRules {
        stabilization_window_seconds: window,
        select_policy: select,
        policies: if policies.is_empty() {
            None
        } else {
            Some(
                policies
                    .iter()
                    .map(|(type_, value, period_seconds)| ScalingPolicy {
                        type_: *type_,
                        value: *value,
                        period_seconds: *period_seconds,
                    })
                    .collect(),
            )
        },
        tolerance: None,
    }
}

/// A pod started an hour ago, Ready since then, requesting `cpu_milli` in one container.
pub fn pod(name: &str, cpu_milli: i64) -> PodInfo {
    PodInfo::running(
        name,
        ago(3600),
        vec![ContainerRequests {
            name: "app".into(),
            requests: vec![("cpu".into(), cpu_milli)],
        }],
    )
}

pub fn pods(n: usize, cpu_milli: i64) -> Vec<PodInfo> {
    (0..n).map(|i| pod(&format!("pod-{i}"), cpu_milli)).collect()
}

pub fn unready(mut p: PodInfo) -> PodInfo {
    p.ready = Some(ReadyCondition {
        status: ConditionStatus::False,
        last_transition: p.start_time,
    });
    p
}

pub fn phase(mut p: PodInfo, phase: PodPhase) -> PodInfo {
    p.phase = phase;
    p
}

pub fn terminating(mut p: PodInfo) -> PodInfo {
    p.terminating = true;
    p
}

/// Per-pod samples `pod-0..` with the given milli values, taken now over a minute.
pub fn per_pod(values: &[i64]) -> Gathered {
    Ok(MetricValues::PerPod(
        values
            .iter()
            .enumerate()
            .map(|(i, v)| PodSample {
                pod: format!("pod-{i}"),
                value: *v,
                timestamp: now(),
                window: Duration::from_secs(60),
            })
            .collect(),
    ))
}

/// Per-pod samples for the named pods.
pub fn per_named_pod(values: &[(&str, i64)]) -> Gathered {
    Ok(MetricValues::PerPod(
        values
            .iter()
            .map(|(p, v)| PodSample {
                pod: p.to_string(),
                value: *v,
                timestamp: now(),
                window: Duration::from_secs(60),
            })
            .collect(),
    ))
}

pub fn history(entries: &[(i64, i32)]) -> Vec<Recommendation> {
    entries
        .iter()
        .map(|(seconds_ago, replicas)| Recommendation {
            timestamp: Time(ago(*seconds_ago)),
            replicas: *replicas,
            current: false,
        })
        .collect()
}

pub fn events(entries: &[(i64, i32)]) -> Vec<ScaleEvent> {
    entries
        .iter()
        .map(|(seconds_ago, change)| ScaleEvent {
            timestamp: Time(ago(*seconds_ago)),
            change: *change,
        })
        .collect()
}

/// One evaluation to run.
pub struct Case {
    pub spec: AutoscalerSpec,
    pub status: Option<AutoscalerStatus>,
    pub scale: Scale,
    pub pods: Vec<PodInfo>,
    pub metrics: Vec<Gathered>,
    pub settings: Settings,
    /// One entry per metric: the history of a predictive one.
    pub series: Vec<GatheredSeries>,
    pub now: Timestamp,
}

impl Case {
    pub fn new(spec: AutoscalerSpec, replicas: i32, pods: Vec<PodInfo>, metrics: Vec<Gathered>) -> Self {
        Self {
            spec,
            // An evaluated autoscaler with no recent history, so the first-evaluation seed does
            // not hold scale-downs unless a case asks for it.
            status: Some(AutoscalerStatus {
                recommendations: Some(Vec::new()),
                ..AutoscalerStatus::default()
            }),
            scale: Scale {
                spec_replicas: replicas,
                status_replicas: replicas,
                selector: Some("app=web".into()),
            },
            pods,
            metrics,
            settings: Settings {
                cpu_initialization_period: Duration::from_secs(120),
                initial_readiness_delay: Duration::from_secs(10),
                ..Settings::default()
            },
            series: Vec::new(),
            now: now(),
        }
    }

    pub fn with_status(mut self, f: impl FnOnce(&mut AutoscalerStatus)) -> Self {
        f(self.status.get_or_insert_with(AutoscalerStatus::default));
        self
    }

    pub fn with_behavior(mut self, behavior: Behavior) -> Self {
        self.spec.behavior = Some(behavior);
        self
    }

    pub fn decide(&self) -> Decision {
        decide(&Input {
            spec: &self.spec,
            status: self.status.as_ref(),
            generation: Some(1),
            scale: &self.scale,
            pods: &self.pods,
            metrics: &self.metrics,
            now: self.now,
            settings: &self.settings,
            last_recommended: None,
            annotations: None,
            conflict: None,
            pods_left_out: 0,
            compiled: None,
            series: &self.series,
        })
    }
}

/// `(type, status, reason)` of every condition, for exact comparison.
pub fn conditions(d: &Decision) -> Vec<(String, String, String)> {
    let mut list: Vec<_> = d
        .status
        .conditions
        .iter()
        .flatten()
        .map(|c| (c.type_.clone(), c.status.clone(), c.reason.clone().unwrap_or_default()))
        .collect();
    list.sort();
    list
}

pub fn cond(type_: &str, status: &str, reason: &str) -> (String, String, String) {
    (type_.into(), status.into(), reason.into())
}

pub fn metric_replicas(d: &Decision) -> Vec<Option<i32>> {
    d.metrics.iter().map(|m| m.replicas).collect()
}
