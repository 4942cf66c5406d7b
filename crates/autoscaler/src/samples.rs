//! Metric samples as the metrics APIs return them, reduced to what the decision needs, and the
//! per-metric input the core takes: gathered values, or the error that prevented gathering.

use std::time::Duration;

use jiff::Timestamp;

/// One pod's value of a metric, in milli-units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodSample {
    pub pod: String,
    pub value: i64,
    pub timestamp: Timestamp,
    /// The interval the value was averaged over (metrics-server's `window`; 1m by default for
    /// custom metrics, as the HPA assumes).
    pub window: Duration,
}

/// What was gathered for one metric of the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricValues {
    /// Per-pod values: Resource, ContainerResource and Pods metrics.
    PerPod(Vec<PodSample>),
    /// The single value of an Object metric, in milli-units.
    Object(i64),
    /// The values of every series of an External metric, in milli-units.
    External(Vec<i64>),
    /// The value of a Prometheus query, in milli-units.
    Prometheus(i64),
}

/// A metric's values, or why they could not be fetched (the HPA's `FailedGet*Metric`).
pub type Gathered = Result<MetricValues, String>;

/// A metric's past values, read at a regular step (a Prometheus range query): the history a
/// predictive metric forecasts from.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The step between points.
    pub step: Duration,
    /// (time, value) in time order; a missing step is simply absent.
    pub points: Vec<(Timestamp, f64)>,
}

/// A predictive metric's history, or why it could not be read; None for a metric that is not
/// predictive or not read at this evaluation.
pub type GatheredSeries = Option<Result<Series, String>>;

/// How the error of a metric whose source the operator refuses to query begins (an address
/// outside its allowed servers); its reason is `ForbiddenMetricSource`, not `FailedGet*`.
pub const FORBIDDEN_METRIC_SOURCE: &str = "ForbiddenMetricSource";

/// Resource usage of one container, in milli-units per resource name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContainerUsage {
    pub name: String,
    pub usage: Vec<(String, i64)>,
}

/// One `metrics.k8s.io` PodMetrics object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodUsage {
    pub pod: String,
    pub timestamp: Timestamp,
    pub window: Duration,
    pub containers: Vec<ContainerUsage>,
}

fn usage_of(c: &ContainerUsage, resource: &str) -> Option<i64> {
    c.usage.iter().find(|(r, _)| r == resource).map(|(_, v)| *v)
}

/// Turns PodMetrics into per-pod samples of one resource as the HPA's metrics client does: a
/// pod's value is the sum over its containers, and a pod with a container lacking the resource
/// (or with no containers) has no sample; with `container`, only that container counts, and a
/// pod whose metrics lack that container has no sample either (a failed pod's container may be
/// gone; upstream since 1.32 treats it as a missing metric, not as the metric's failure).
pub fn resource_samples(raw: &[PodUsage], resource: &str, container: Option<&str>) -> Result<Vec<PodSample>, String> {
    if raw.is_empty() {
        return Err("no metrics returned from resource metrics API".into());
    }
    let mut samples = Vec::with_capacity(raw.len());
    for pod in raw {
        let value = match container {
            Some(name) => pod
                .containers
                .iter()
                .find(|c| c.name == name)
                .and_then(|c| usage_of(c, resource)),
            None if pod.containers.is_empty() => None,
            None => pod
                .containers
                .iter()
                .map(|c| usage_of(c, resource))
                .sum::<Option<i64>>(),
        };
        if let Some(value) = value {
            samples.push(PodSample {
                pod: pod.pod.clone(),
                value,
                timestamp: pod.timestamp,
                window: pod.window,
            });
        }
    }
    Ok(samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, containers: &[(&str, &[(&str, i64)])]) -> PodUsage {
        PodUsage {
            pod: name.into(),
            timestamp: Timestamp::UNIX_EPOCH,
            window: Duration::from_secs(60),
            containers: containers
                .iter()
                .map(|(n, u)| ContainerUsage {
                    name: n.to_string(),
                    usage: u.iter().map(|(r, v)| (r.to_string(), *v)).collect(),
                })
                .collect(),
        }
    }

    #[test]
    fn sums_containers_and_drops_pods_missing_the_resource() {
        let raw = [
            pod("a", &[("c1", &[("cpu", 100)]), ("c2", &[("cpu", 50)])]),
            pod("b", &[("c1", &[("cpu", 100)]), ("c2", &[("memory", 5)])]),
            pod("c", &[]),
        ];
        let samples = resource_samples(&raw, "cpu", None).unwrap();
        assert_eq!(
            samples.iter().map(|s| (s.pod.as_str(), s.value)).collect::<Vec<_>>(),
            [("a", 150)]
        );
    }

    #[test]
    fn one_container_only() {
        let raw = [pod("a", &[("c1", &[("cpu", 100)]), ("c2", &[("cpu", 50)])])];
        assert_eq!(resource_samples(&raw, "cpu", Some("c2")).unwrap()[0].value, 50);
        assert!(resource_samples(&raw, "cpu", Some("c3")).unwrap().is_empty());
    }

    #[test]
    fn empty_list_is_an_error() {
        assert_eq!(
            resource_samples(&[], "cpu", None).unwrap_err(),
            "no metrics returned from resource metrics API"
        );
    }
}
