//! The state gauges of every Autoscaler (replica counts, bounds, last evaluation, each metric's
//! value and target): one entry per Autoscaler, written out as seven gauge families at each
//! scrape. As prometheus-client families they cost seven label sets, seven atomics and
//! fourteen strings per Autoscaler, about a kilobyte each at 10,000.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;

/// The families labelled by Autoscaler alone, in the order of [`Reading::integers`].
const INTEGER_GAUGES: [(&str, &str); 5] = [
    (
        "autoscaler_current_replicas",
        "The target's replica count when last evaluated",
    ),
    (
        "autoscaler_desired_replicas",
        "The replica count the Autoscaler decided on",
    ),
    ("autoscaler_min_replicas", "spec.minReplicas"),
    ("autoscaler_max_replicas", "spec.maxReplicas"),
    (
        "autoscaler_last_evaluation_timestamp_seconds",
        "When the Autoscaler was last evaluated (Unix time); status changes only when the decision does",
    ),
];
/// How a per-metric family reads a metric: no sample where it says None.
type ReadMetric = fn(&StoredMetric) -> Option<f64>;

/// The families labelled by Autoscaler and metric.
const METRIC_GAUGES: [(&str, &str, ReadMetric); 2] = [
    (
        "autoscaler_metric_value",
        "Each metric's current value, in the form of its target",
        StoredMetric::value,
    ),
    (
        "autoscaler_metric_target",
        "Each metric's target value",
        StoredMetric::target,
    ),
];

/// The bits of a metric value that is not known (a NaN no computation yields).
const ABSENT: u64 = u64::MAX;

/// One metric of an Autoscaler, as its gauges label it.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricReading {
    /// The metric's name, escaped for the exposition format.
    pub name: String,
    pub target_type: &'static str,
    pub target: Option<f64>,
    /// None while the metric has no value (its read failed).
    pub value: Option<f64>,
}

/// What one evaluation reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// current, desired, min and max replicas, and the evaluation's Unix time.
    pub integers: [i64; 5],
    pub metrics: Vec<MetricReading>,
}

#[derive(Debug)]
struct StoredMetric {
    name: Box<str>,
    target_type: &'static str,
    target: Option<f64>,
    /// f64 bits, or [`ABSENT`].
    value: AtomicU64,
}

/// A value as its atomic holds it.
fn bits(value: Option<f64>) -> u64 {
    value.map_or(ABSENT, f64::to_bits)
}

impl StoredMetric {
    fn store(&self, value: Option<f64>) {
        self.value.store(bits(value), Ordering::Relaxed);
    }

    fn value(&self) -> Option<f64> {
        Some(self.value.load(Ordering::Relaxed))
            .filter(|bits| *bits != ABSENT)
            .map(f64::from_bits)
    }

    fn target(&self) -> Option<f64> {
        self.target
    }
}

/// One Autoscaler's gauges. A new reading of the same metrics is stored in place, under the
/// read lock, so evaluations and scrapes do not wait for each other.
#[derive(Debug)]
struct Entry {
    integers: [AtomicI64; 5],
    metrics: Box<[StoredMetric]>,
}

impl Entry {
    fn new(reading: &Reading) -> Self {
        Self {
            integers: reading.integers.map(AtomicI64::new),
            metrics: reading
                .metrics
                .iter()
                .map(|m| StoredMetric {
                    name: m.name.as_str().into(),
                    target_type: m.target_type,
                    target: m.target,
                    value: AtomicU64::new(bits(m.value)),
                })
                .collect(),
        }
    }

    /// Whether `reading` names the same metrics with the same targets.
    fn same_metrics(&self, reading: &Reading) -> bool {
        self.metrics.len() == reading.metrics.len()
            && self.metrics.iter().zip(&reading.metrics).all(|(stored, new)| {
                *stored.name == *new.name && stored.target_type == new.target_type && stored.target == new.target
            })
    }

    fn store(&self, reading: &Reading) {
        for (stored, value) in self.integers.iter().zip(reading.integers) {
            stored.store(value, Ordering::Relaxed);
        }
        for (stored, new) in self.metrics.iter().zip(&reading.metrics) {
            stored.store(new.value);
        }
    }
}

/// Every Autoscaler's gauges, by namespace and name.
#[derive(Debug, Default)]
pub struct AutoscalerGauges {
    namespaces: RwLock<Namespaces>,
}

/// Namespace → name → gauges.
type Namespaces = HashMap<Box<str>, HashMap<Box<str>, Entry>>;

impl AutoscalerGauges {
    fn read(&self) -> RwLockReadGuard<'_, Namespaces> {
        self.namespaces.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Namespaces> {
        self.namespaces.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records an evaluation of `namespace/name`.
    pub fn record(&self, namespace: &str, name: &str, reading: &Reading) {
        if let Some(entry) = self.read().get(namespace).and_then(|n| n.get(name))
            && entry.same_metrics(reading)
        {
            entry.store(reading);
            return;
        }
        let mut namespaces = self.write();
        let autoscalers = match namespaces.get_mut(namespace) {
            Some(autoscalers) => autoscalers,
            None => namespaces.entry(namespace.into()).or_default(),
        };
        autoscalers.insert(name.into(), Entry::new(reading));
    }

    /// Drops the gauges of `namespace/name`.
    pub fn remove(&self, namespace: &str, name: &str) {
        let mut namespaces = self.write();
        if let Some(autoscalers) = namespaces.get_mut(namespace) {
            autoscalers.remove(name);
            if autoscalers.is_empty() {
                namespaces.remove(namespace);
            }
        }
    }

    /// Drops every Autoscaler's gauges.
    pub fn clear(&self) {
        self.write().clear();
    }

    /// When `namespace/name` was last evaluated (Unix time), if it is known.
    pub fn last_evaluation(&self, namespace: &str, name: &str) -> Option<i64> {
        self.read()
            .get(namespace)
            .and_then(|n| n.get(name))
            .map(|entry| entry.integers[4].load(Ordering::Relaxed))
    }
}

impl Collector for AutoscalerGauges {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let namespaces = self.read();
        let autoscalers = || {
            namespaces.iter().flat_map(|(namespace, autoscalers)| {
                autoscalers
                    .iter()
                    .map(move |(name, entry)| (&**namespace, &**name, entry))
            })
        };
        for (i, (name, help)) in INTEGER_GAUGES.iter().enumerate() {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for (namespace, autoscaler, entry) in autoscalers() {
                let labels = [("namespace", namespace), ("autoscaler", autoscaler)];
                ConstGauge::new(entry.integers[i].load(Ordering::Relaxed)).encode(family.encode_family(&labels)?)?;
            }
        }
        for (name, help, read) in METRIC_GAUGES {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for (namespace, autoscaler, entry) in autoscalers() {
                for metric in &entry.metrics {
                    let Some(number) = read(metric) else { continue };
                    let labels = [
                        ("namespace", namespace),
                        ("autoscaler", autoscaler),
                        ("metric_name", &*metric.name),
                        ("metric_target_type", metric.target_type),
                    ];
                    ConstGauge::new(number).encode(family.encode_family(&labels)?)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;
    use prometheus_client::registry::Registry;
    use std::sync::Arc;

    fn reading(desired: i64, value: Option<f64>) -> Reading {
        Reading {
            integers: [2, desired, 1, 10, 1_796_000_000],
            metrics: vec![MetricReading {
                name: "cpu".into(),
                target_type: "utilization",
                target: Some(50.0),
                value,
            }],
        }
    }

    fn scrape(gauges: &Arc<AutoscalerGauges>) -> String {
        let mut registry = Registry::default();
        registry
            .sub_registry_with_prefix("ferroscale")
            .register_collector(Box::new(gauges.clone()));
        let mut text = String::new();
        encode(&mut text, &registry).unwrap_or_else(|e| panic!("{e}"));
        text
    }

    #[test]
    fn each_autoscaler_is_one_sample_of_each_family_and_goes_when_removed() {
        let gauges = Arc::new(AutoscalerGauges::default());
        gauges.record("shop", "web", &reading(3, Some(75.0)));
        gauges.record("shop", "api", &reading(2, None));
        let text = scrape(&gauges);
        for line in [
            "# TYPE ferroscale_autoscaler_current_replicas gauge",
            r#"ferroscale_autoscaler_desired_replicas{namespace="shop",autoscaler="web"} 3"#,
            r#"ferroscale_autoscaler_desired_replicas{namespace="shop",autoscaler="api"} 2"#,
            r#"ferroscale_autoscaler_max_replicas{namespace="shop",autoscaler="web"} 10"#,
            r#"ferroscale_autoscaler_last_evaluation_timestamp_seconds{namespace="shop",autoscaler="api"} 1796000000"#,
            r#"ferroscale_autoscaler_metric_value{namespace="shop",autoscaler="web",metric_name="cpu",metric_target_type="utilization"} 75.0"#,
            r#"ferroscale_autoscaler_metric_target{namespace="shop",autoscaler="api",metric_name="cpu",metric_target_type="utilization"} 50.0"#,
        ] {
            assert!(text.contains(line), "missing {line} in:\n{text}");
        }
        assert!(
            !text.contains(r#"metric_value{namespace="shop",autoscaler="api""#),
            "a metric without a value has no value sample:\n{text}"
        );
        assert_eq!(text.matches("ferroscale_autoscaler_min_replicas{").count(), 2);

        // The same metrics again: stored in place; another target: the entry is replaced.
        gauges.record("shop", "web", &reading(4, None));
        let mut retargeted = reading(4, Some(1.0));
        retargeted.metrics[0].target = Some(60.0);
        gauges.record("shop", "api", &retargeted);
        let text = scrape(&gauges);
        assert!(
            text.contains(r#"desired_replicas{namespace="shop",autoscaler="web"} 4"#),
            "{text}"
        );
        assert!(
            !text.contains(r#"metric_value{namespace="shop",autoscaler="web""#),
            "{text}"
        );
        assert!(text.contains(r#"metric_target{namespace="shop",autoscaler="api",metric_name="cpu",metric_target_type="utilization"} 60.0"#), "{text}");
        assert_eq!(gauges.last_evaluation("shop", "web"), Some(1_796_000_000));

        gauges.remove("shop", "web");
        let text = scrape(&gauges);
        assert!(!text.contains(r#"autoscaler="web""#), "{text}");
        assert!(text.contains(r#"autoscaler="api""#), "{text}");
        assert_eq!(gauges.last_evaluation("shop", "web"), None);
        gauges.clear();
        assert!(!scrape(&gauges).contains("autoscaler=\""));
    }
}
