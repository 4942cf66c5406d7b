//! Builds the core's input from a snapshot: the pods the scale's selector matches, and for each
//! metric the values its metrics API would have returned.

use std::collections::BTreeMap;
use std::time::Duration;

use ferroscale_api::metrics_apis::{ExternalMetricValue, MetricValue, PodMetrics, PrometheusHistory};
use ferroscale_api::quantity::milli_value;
use ferroscale_api::{MetricSourceType, MetricSpec};
use ferroscale_autoscaler::samples::{ContainerUsage, GatheredSeries, Series, resource_samples};
use ferroscale_autoscaler::selector::from_label_selector;
use ferroscale_autoscaler::{Gathered, MetricValues, PodInfo, PodSample, PodUsage};
use jiff::Timestamp;
use kube::core::{Selector, SelectorExt};

use crate::snapshot::Snapshot;

/// Custom metrics carry no window; the HPA assumes one minute.
const DEFAULT_CUSTOM_METRIC_WINDOW: Duration = Duration::from_secs(60);

fn in_namespace(object_namespace: Option<&str>, namespace: Option<&str>) -> bool {
    match (object_namespace, namespace) {
        (Some(o), Some(n)) => o == n,
        _ => true,
    }
}

fn labels_match(selector: &Selector, labels: Option<&BTreeMap<String, String>>) -> bool {
    selector.matches(labels.unwrap_or(&BTreeMap::new()))
}

/// The snapshot's pods that the selector matches, in the Autoscaler's namespace.
pub fn pods(snapshot: &Snapshot, namespace: Option<&str>, selector: Option<&Selector>) -> Vec<PodInfo> {
    let Some(selector) = selector else { return Vec::new() };
    snapshot
        .pods
        .iter()
        .filter(|p| {
            in_namespace(p.metadata.namespace.as_deref(), namespace)
                && labels_match(selector, p.metadata.labels.as_ref())
        })
        .map(PodInfo::from)
        .collect()
}

fn quantity(text: &str, what: &str) -> Result<i64, String> {
    milli_value(text).map_err(|e| format!("{what}: {e}"))
}

fn pod_usage(m: &PodMetrics) -> Result<PodUsage, String> {
    let name = m.metadata.name.clone().unwrap_or_default();
    let window = match m.window.as_deref() {
        None | Some("") => Duration::ZERO,
        Some(text) => ferroscale_api::duration::parse(text).map_err(|e| format!("PodMetrics {name}: window {e}"))?,
    };
    let mut containers = Vec::with_capacity(m.containers.len());
    for c in &m.containers {
        let mut usage = Vec::with_capacity(c.usage.len());
        for (resource, q) in &c.usage {
            usage.push((
                resource.clone(),
                quantity(&q.0, &format!("PodMetrics {name} container {} {resource}", c.name))?,
            ));
        }
        containers.push(ContainerUsage {
            name: c.name.clone(),
            usage,
        });
    }
    Ok(PodUsage {
        pod: name,
        timestamp: m.timestamp.0,
        window,
        containers,
    })
}

/// What each metric's API would have answered, in the order of `metrics`.
pub fn metrics(
    snapshot: &Snapshot,
    metrics: &[MetricSpec],
    namespace: Option<&str>,
    selector: Option<&Selector>,
) -> Vec<Gathered> {
    metrics
        .iter()
        .map(|m| metric(snapshot, m, namespace, selector))
        .collect()
}

fn metric(snapshot: &Snapshot, spec: &MetricSpec, namespace: Option<&str>, selector: Option<&Selector>) -> Gathered {
    match spec.type_ {
        MetricSourceType::Unknown => Err("unknown metric source type".into()),
        MetricSourceType::Resource | MetricSourceType::ContainerResource => {
            let (resource, container) = match (&spec.resource, &spec.container_resource) {
                (Some(r), _) if spec.type_ == MetricSourceType::Resource => (r.name.as_str(), None),
                (_, Some(c)) => (c.name.as_str(), Some(c.container.as_str())),
                _ => return Err("the metric names no resource".into()),
            };
            // metrics-server answers by label selector; PodMetrics without labels are taken as given.
            let raw = snapshot
                .pod_metrics
                .iter()
                .filter(|m| in_namespace(m.metadata.namespace.as_deref(), namespace))
                .filter(|m| match (selector, m.metadata.labels.as_ref()) {
                    (Some(s), Some(labels)) if !labels.is_empty() => s.matches(labels),
                    _ => true,
                })
                .map(pod_usage)
                .collect::<Result<Vec<_>, _>>()?;
            resource_samples(&raw, resource, container).map(MetricValues::PerPod)
        }
        MetricSourceType::Pods => {
            let name = spec.pods.as_ref().map_or("", |p| p.metric.name.as_str());
            let items: Vec<&MetricValue> = snapshot
                .custom_metrics
                .iter()
                .filter(|v| {
                    v.described_object.kind == "Pod"
                        && v.name() == name
                        && in_namespace(v.described_object.namespace.as_deref(), namespace)
                })
                .collect();
            if items.is_empty() {
                return Err("no metrics returned from custom metrics API".into());
            }
            let mut samples = Vec::with_capacity(items.len());
            for v in items {
                let window = v
                    .window_seconds
                    .map_or(DEFAULT_CUSTOM_METRIC_WINDOW, |s| Duration::from_secs(s.max(0) as u64));
                let value = quantity(&v.value.0, &format!("metric {name} of pod {}", v.described_object.name))?;
                samples.push(PodSample {
                    pod: v.described_object.name.clone(),
                    value,
                    timestamp: v.timestamp.0,
                    window,
                });
            }
            Ok(MetricValues::PerPod(samples))
        }
        MetricSourceType::Object => {
            let Some(object) = &spec.object else {
                return Err("the metric describes no object".into());
            };
            let reference = &object.described_object;
            let found = snapshot.custom_metrics.iter().find(|v| {
                v.described_object.kind == reference.kind
                    && v.described_object.name == reference.name
                    && v.name() == object.metric.name
            });
            match found {
                Some(v) => quantity(
                    &v.value.0,
                    &format!("metric {} of {} {}", object.metric.name, reference.kind, reference.name),
                )
                .map(MetricValues::Object),
                None => Err(format!(
                    "the server could not find the metric {} for {} {}",
                    object.metric.name, reference.kind, reference.name
                )),
            }
        }
        MetricSourceType::External => {
            let Some(external) = &spec.external else {
                return Err("the metric names no external metric".into());
            };
            let metric_selector = match &external.metric.selector {
                Some(s) => Some(from_label_selector(s)?),
                None => None,
            };
            let matches = |v: &&ExternalMetricValue| {
                v.metric_name == external.metric.name
                    && (v.metric_labels.is_empty()
                        || metric_selector.as_ref().is_none_or(|s| s.matches(&v.metric_labels)))
            };
            let values = snapshot
                .external_metrics
                .iter()
                .filter(matches)
                .map(|v| quantity(&v.value.0, &format!("external metric {}", v.metric_name)))
                .collect::<Result<Vec<_>, _>>()?;
            if values.is_empty() {
                return Err("no metrics returned from external metrics API".into());
            }
            Ok(MetricValues::External(values))
        }
        MetricSourceType::Prometheus => {
            let Some(prometheus) = &spec.prometheus else {
                return Err("the metric has no query".into());
            };
            match snapshot
                .prometheus
                .iter()
                .find(|s| s.query.trim() == prometheus.query.trim())
            {
                Some(s) => quantity(&s.value.0, "PrometheusSample value").map(MetricValues::Prometheus),
                None => Err(format!(
                    "no PrometheusSample for the query {:?} in the snapshot",
                    prometheus.query
                )),
            }
        }
    }
}

/// One entry per metric: for a predictive Prometheus metric, the history its PrometheusSample
/// carries (or why there is none), so a replay forecasts as the live evaluation did.
pub fn series(snapshot: &Snapshot, metrics: &[MetricSpec]) -> Vec<GatheredSeries> {
    metrics
        .iter()
        .map(|spec| {
            let prometheus = spec.prometheus.as_ref().filter(|p| p.predictive.is_some())?;
            let sample = snapshot
                .prometheus
                .iter()
                .find(|s| s.query.trim() == prometheus.query.trim());
            Some(match sample.and_then(|s| s.history.as_ref()) {
                None => Err(format!(
                    "no history for the query {:?} in the snapshot (a PrometheusSample's history)",
                    prometheus.query
                )),
                Some(history) => history_series(history),
            })
        })
        .collect()
}

fn history_series(history: &PrometheusHistory) -> Result<Series, String> {
    let step =
        ferroscale_api::duration::parse(&history.step).map_err(|e| format!("PrometheusSample history step: {e}"))?;
    let points = history
        .values
        .iter()
        .map(|(t, v)| {
            let time = Timestamp::from_second(*t).map_err(|e| format!("PrometheusSample history time {t}: {e}"))?;
            let value = v
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| format!("PrometheusSample history value {v:?} is not a number"))?;
            Ok((time, value))
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(Series { step, points })
}
