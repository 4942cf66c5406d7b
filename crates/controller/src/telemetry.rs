//! The operator's own metrics (prometheus-client, served as OpenMetrics on /metrics). Labels
//! are bounded: controller names, error categories, directions and metric source types, plus
//! the namespace and name of each Autoscaler for its state gauges (as kube-state-metrics labels
//! HPAs), which [`AutoscalerGauges`] keeps.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ferroscale_api::{Autoscaler, MetricSourceType, MetricSpec};
use ferroscale_autoscaler::Decision;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::autoscaler_gauges::{AutoscalerGauges, MetricReading, Reading};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    pub controller: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub controller: &'static str,
    pub category: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
pub enum Direction {
    Up,
    Down,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DirectionLabels {
    pub direction: Direction,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabels {
    pub source: &'static str,
}

/// Every metric the operator exports.
#[derive(Debug)]
pub struct Telemetry {
    pub reconciles: Family<ControllerLabels, Counter>,
    pub reconcile_errors: Family<ErrorLabels, Counter>,
    pub reconcile_duration: Family<ControllerLabels, Histogram, fn() -> Histogram>,
    pub scale_actions: Family<DirectionLabels, Counter>,
    pub metric_fetch_duration: Family<SourceLabels, Histogram, fn() -> Histogram>,
    pub metric_fetch_errors: Family<SourceLabels, Counter>,
    /// Each Autoscaler's state: replicas, bounds, last evaluation, metrics' values and targets.
    pub autoscalers: Arc<AutoscalerGauges>,
    /// 1 while this replica's controllers act (always, without leader election).
    pub acting: Gauge,
    /// The shard count of this replica's configuration, and its shard index.
    pub shards: Gauge,
    pub shard_index: Gauge,
    /// Autoscalers this replica evaluates: its shard's, while it acts.
    pub owned: Gauge,
    /// PodMetrics lists sent, per Autoscaler (with a selector) and per namespace (shared).
    pub pod_metrics_lists: ferroscale_metrics::shared::ListCounters,
}

fn seconds_histogram() -> Histogram {
    Histogram::new([0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])
}

impl Telemetry {
    /// Creates the metrics and registers them under `ferroscale_`.
    pub fn new(registry: &mut Registry) -> Self {
        let t = Self::empty();
        let r = registry.sub_registry_with_prefix("ferroscale");
        r.register("reconciles", "Reconciles run, by controller", t.reconciles.clone());
        r.register(
            "reconcile_errors",
            "Reconciles that failed, by controller and error category",
            t.reconcile_errors.clone(),
        );
        r.register(
            "reconcile_duration_seconds",
            "Time spent in one reconcile, by controller",
            t.reconcile_duration.clone(),
        );
        r.register(
            "scale_actions",
            "Targets rescaled, by direction",
            t.scale_actions.clone(),
        );
        r.register(
            "metric_fetch_duration_seconds",
            "Time spent reading one metric, by source type",
            t.metric_fetch_duration.clone(),
        );
        r.register(
            "metric_fetch_errors",
            "Metric reads that failed, by source type",
            t.metric_fetch_errors.clone(),
        );
        r.register_collector(Box::new(t.autoscalers.clone()));
        r.register(
            "acting",
            "1 while this replica's controllers act: it leads, or runs without leader election",
            t.acting.clone(),
        );
        r.register(
            "shards",
            "How many shards share the Autoscalers (--shards)",
            t.shards.clone(),
        );
        r.register(
            "shard_index",
            "The shard this replica runs (--shard-index)",
            t.shard_index.clone(),
        );
        r.register(
            "shard_owned_autoscalers",
            "Autoscalers this replica evaluates: those of its shard, while it acts",
            t.owned.clone(),
        );
        r.register(
            "pod_metrics_selector_lists",
            "PodMetrics lists sent for one Autoscaler, with its target's selector",
            t.pod_metrics_lists.selector.clone(),
        );
        r.register(
            "pod_metrics_namespace_lists",
            "PodMetrics lists sent for a whole namespace, shared by its Autoscalers",
            t.pod_metrics_lists.namespace.clone(),
        );
        t
    }

    /// Metrics registered nowhere, for tests.
    pub fn empty() -> Self {
        Self {
            reconciles: Family::default(),
            reconcile_errors: Family::default(),
            reconcile_duration: Family::new_with_constructor(seconds_histogram as fn() -> Histogram),
            scale_actions: Family::default(),
            metric_fetch_duration: Family::new_with_constructor(seconds_histogram as fn() -> Histogram),
            metric_fetch_errors: Family::default(),
            autoscalers: Arc::default(),
            acting: Gauge::default(),
            shards: Gauge::default(),
            shard_index: Gauge::default(),
            owned: Gauge::default(),
            pod_metrics_lists: Default::default(),
        }
    }

    /// Starts timing a reconcile; the duration is recorded when the timer drops.
    pub fn reconcile_timer(&self, controller: &'static str) -> ReconcileTimer<'_> {
        self.reconciles.get_or_create(&ControllerLabels { controller }).inc();
        ReconcileTimer {
            telemetry: self,
            controller,
            start: Instant::now(),
        }
    }

    pub fn reconcile_failed(&self, controller: &'static str, category: &'static str) {
        self.reconcile_errors
            .get_or_create(&ErrorLabels { controller, category })
            .inc();
    }

    pub fn metric_fetched(&self, source: MetricSourceType, elapsed: Duration, ok: bool) {
        let labels = SourceLabels {
            source: source_label(source),
        };
        self.metric_fetch_duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
        if !ok {
            self.metric_fetch_errors.get_or_create(&labels).inc();
        }
    }

    /// Records a decision made at `now`: scale actions and the Autoscaler's state gauges.
    pub fn decided(&self, autoscaler: &Autoscaler, metrics: &[MetricSpec], decision: &Decision, now: jiff::Timestamp) {
        if decision.rescale {
            let direction = if decision.desired_replicas > decision.current_replicas {
                Direction::Up
            } else {
                Direction::Down
            };
            self.scale_actions.get_or_create(&DirectionLabels { direction }).inc();
        }
        let reading = Reading {
            integers: [
                i64::from(decision.current_replicas),
                i64::from(decision.desired_replicas),
                i64::from(autoscaler.spec.min_replicas_or_default()),
                i64::from(autoscaler.spec.max_replicas),
                now.as_second(),
            ],
            metrics: metrics
                .iter()
                .zip(&decision.metrics)
                .filter_map(|(spec, outcome)| {
                    let (name, target_type, target) = target_of(spec)?;
                    let value = outcome.proposal.as_ref().map(|p| match (target_type, p.utilization) {
                        ("utilization", Some(u)) => f64::from(u),
                        _ => p.value as f64 / 1000.0,
                    });
                    Some(MetricReading {
                        name,
                        target_type,
                        target,
                        value,
                    })
                })
                .collect(),
        };
        let (namespace, name) = names(autoscaler);
        self.autoscalers.record(namespace, name, &reading);
    }

    /// Drops every Autoscaler's gauges, when this replica stops acting: they would go stale.
    pub fn forget_all(&self) {
        self.autoscalers.clear();
        self.owned.set(0);
    }

    /// Drops the gauges of a deleted Autoscaler.
    pub fn forget(&self, autoscaler: &Autoscaler) {
        let (namespace, name) = names(autoscaler);
        self.autoscalers.remove(namespace, name);
    }
}

/// Records the reconcile's duration when dropped.
#[derive(Debug)]
pub struct ReconcileTimer<'a> {
    telemetry: &'a Telemetry,
    controller: &'static str,
    start: Instant,
}

impl Drop for ReconcileTimer<'_> {
    fn drop(&mut self) {
        self.telemetry
            .reconcile_duration
            .get_or_create(&ControllerLabels {
                controller: self.controller,
            })
            .observe(self.start.elapsed().as_secs_f64());
    }
}

fn names(a: &Autoscaler) -> (&str, &str) {
    (
        a.metadata.namespace.as_deref().unwrap_or_default(),
        a.metadata.name.as_deref().unwrap_or_default(),
    )
}

pub fn source_label(source: MetricSourceType) -> &'static str {
    match source {
        MetricSourceType::Resource => "resource",
        MetricSourceType::ContainerResource => "container_resource",
        MetricSourceType::Pods => "pods",
        MetricSourceType::Object => "object",
        MetricSourceType::External => "external",
        MetricSourceType::Prometheus => "prometheus",
        MetricSourceType::Unknown => "unknown",
    }
}

/// The metric's name, its target type label, and the target as a number.
fn target_of(spec: &MetricSpec) -> Option<(String, &'static str, Option<f64>)> {
    let (name, target) = match spec.type_ {
        MetricSourceType::Resource => spec.resource.as_ref().map(|r| (r.name.clone(), &r.target))?,
        MetricSourceType::ContainerResource => spec
            .container_resource
            .as_ref()
            .map(|c| (format!("{}/{}", c.container, c.name), &c.target))?,
        MetricSourceType::Pods => spec.pods.as_ref().map(|p| (p.metric.name.clone(), &p.target))?,
        MetricSourceType::Object => spec.object.as_ref().map(|o| (o.metric.name.clone(), &o.target))?,
        MetricSourceType::External => spec.external.as_ref().map(|e| (e.metric.name.clone(), &e.target))?,
        MetricSourceType::Prometheus => spec.prometheus.as_ref().map(|p| (p.query.clone(), &p.target))?,
        MetricSourceType::Unknown => return None,
    };
    let number = |q: &Option<k8s_openapi::apimachinery::pkg::api::resource::Quantity>| {
        q.as_ref()
            .and_then(|q| ferroscale_api::quantity::ParsedQuantity::parse(&q.0).ok())
            .map(|q| q.as_f64())
    };
    let name = escape_label_value(&name);
    Some(match (target.average_value.as_ref(), target.average_utilization) {
        (Some(_), _) => (name, "average_value", number(&target.average_value)),
        (None, Some(u)) => (name, "utilization", Some(f64::from(u))),
        _ => (name, "value", number(&target.value)),
    })
}

/// A label value as the text exposition format needs it: prometheus-client writes label values
/// as they are, and a Prometheus query's quotes would end the value early and make Prometheus
/// refuse the whole scrape ("expected comma").
fn escape_label_value(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;

    #[test]
    fn a_prometheus_query_as_a_label_value_is_escaped() {
        let spec: MetricSpec = serde_json::from_value(serde_json::json!({
            "type": "Prometheus",
            "prometheus": {"query": "sum(x{job=\"a\\b\"})\n", "target": {"type": "Value", "value": "1"}}
        }))
        .unwrap();
        let (name, target_type, target) = target_of(&spec).unwrap();
        assert_eq!(name, r#"sum(x{job=\"a\\b\"})\n"#);
        assert_eq!((target_type, target), ("value", Some(1.0)));

        let mut registry = Registry::default();
        let t = Telemetry::new(&mut registry);
        let reading = Reading {
            integers: [1, 1, 1, 1, 0],
            metrics: vec![MetricReading {
                name,
                target_type,
                target,
                value: None,
            }],
        };
        t.autoscalers.record("ns", "web", &reading);
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        assert!(text.contains(r#"metric_name="sum(x{job=\"a\\b\"})\n","#), "{text}");
    }

    #[test]
    fn exposes_openmetrics_with_bounded_labels() {
        let mut registry = Registry::default();
        let t = Telemetry::new(&mut registry);
        {
            let _timer = t.reconcile_timer("autoscaler");
        }
        t.reconcile_failed("podset", "create");
        t.metric_fetched(MetricSourceType::Prometheus, Duration::from_millis(20), false);
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        for line in [
            "ferroscale_reconciles_total{controller=\"autoscaler\"} 1",
            "ferroscale_reconcile_errors_total{controller=\"podset\",category=\"create\"} 1",
            "ferroscale_metric_fetch_errors_total{source=\"prometheus\"} 1",
            "ferroscale_reconcile_duration_seconds_count{controller=\"autoscaler\"} 1",
        ] {
            assert!(text.contains(line), "missing {line} in:\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }
}
