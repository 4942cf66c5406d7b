//! Where ferroscale's metrics come from: the Kubernetes metrics APIs and Prometheus, behind one
//! trait so the controller and its tests can swap them.

pub mod destinations;
pub mod discovery;
pub mod kubernetes;
pub mod namespace_list;
pub mod pod_metrics;
pub mod prometheus;
pub mod shared;

use std::sync::Arc;
use std::time::{Duration, Instant};

use ferroscale_api::{MetricSourceType, MetricSpec};
use ferroscale_autoscaler::predict::Range;
use ferroscale_autoscaler::samples::{PodUsage, Series, resource_samples};
use ferroscale_autoscaler::{Gathered, MetricValues};
use futures::future::BoxFuture;

pub use kubernetes::MetricsApis;
pub use prometheus::Prometheus;

/// One metric's values, and how long reading them took.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub value: Gathered,
    pub elapsed: Duration,
    /// For Resource and ContainerResource metrics, the PodMetrics the values were taken from
    /// (what `explain --save` writes into a snapshot).
    pub pod_usage: Option<Arc<Vec<PodUsage>>>,
}

/// Gathers the values of an Autoscaler's metrics for the core, one entry per metric.
pub trait MetricsSource: Send + Sync {
    /// `pod_selector` is the target's selector in string form.
    fn gather<'a>(
        &'a self,
        namespace: &'a str,
        metrics: &'a [MetricSpec],
        pod_selector: &'a str,
    ) -> BoxFuture<'a, Vec<Fetched>>;

    /// The history of each predictive metric over its range, one entry per request. A source
    /// that keeps no history says so, and the metrics stay reactive.
    fn gather_series<'a>(
        &'a self,
        namespace: &'a str,
        requests: &'a [(MetricSpec, Range)],
    ) -> BoxFuture<'a, Vec<Result<Series, String>>> {
        let _ = namespace;
        Box::pin(async move {
            requests
                .iter()
                .map(|_| Err("this metrics source keeps no history".to_string()))
                .collect()
        })
    }
}

/// The real sources.
#[derive(Debug, Clone)]
pub struct Sources {
    pub apis: Arc<MetricsApis>,
    pub prometheus: Arc<Prometheus>,
    /// How PodMetrics are read: per Autoscaler, or once per namespace and shared.
    pub pod_metrics: Arc<shared::SharedPodMetrics>,
}

impl MetricsSource for Sources {
    fn gather<'a>(
        &'a self,
        namespace: &'a str,
        metrics: &'a [MetricSpec],
        pod_selector: &'a str,
    ) -> BoxFuture<'a, Vec<Fetched>> {
        Box::pin(async move {
            // One PodMetrics read serves every resource metric of the Autoscaler.
            let mut pod_metrics = None;
            let mut gathered = Vec::with_capacity(metrics.len());
            for m in metrics {
                let start = Instant::now();
                let mut usage = None;
                let value = match m.type_ {
                    MetricSourceType::Resource | MetricSourceType::ContainerResource => {
                        if pod_metrics.is_none() {
                            pod_metrics = Some(
                                self.pod_metrics
                                    .read(&self.apis, namespace, pod_selector)
                                    .await
                                    .map(Arc::new),
                            );
                        }
                        let (resource, container) = match (&m.resource, &m.container_resource) {
                            (Some(r), _) if m.type_ == MetricSourceType::Resource => (r.name.as_str(), None),
                            (_, Some(c)) => (c.name.as_str(), Some(c.container.as_str())),
                            _ => {
                                gathered.push(Fetched {
                                    value: Err("the metric names no resource".into()),
                                    elapsed: start.elapsed(),
                                    pod_usage: None,
                                });
                                continue;
                            }
                        };
                        match pod_metrics.as_ref() {
                            Some(Ok(raw)) => {
                                usage = Some(raw.clone());
                                resource_samples(raw, resource, container).map(MetricValues::PerPod)
                            }
                            Some(Err(e)) => Err(e.clone()),
                            None => Err("no PodMetrics".into()),
                        }
                    }
                    MetricSourceType::Pods => match &m.pods {
                        Some(p) => self
                            .apis
                            .pods_metric(namespace, &p.metric.name, pod_selector, p.metric.selector.as_ref())
                            .await
                            .map(MetricValues::PerPod),
                        None => Err("the metric has no pods member".into()),
                    },
                    MetricSourceType::Object => match &m.object {
                        Some(o) => self
                            .apis
                            .object_metric(
                                namespace,
                                &o.described_object,
                                &o.metric.name,
                                o.metric.selector.as_ref(),
                            )
                            .await
                            .map(MetricValues::Object),
                        None => Err("the metric has no object member".into()),
                    },
                    MetricSourceType::External => match &m.external {
                        Some(e) => self
                            .apis
                            .external_metric(namespace, &e.metric.name, e.metric.selector.as_ref())
                            .await
                            .map(MetricValues::External),
                        None => Err("the metric has no external member".into()),
                    },
                    MetricSourceType::Prometheus => match &m.prometheus {
                        Some(p) => self.prometheus.query(namespace, p).await.map(MetricValues::Prometheus),
                        None => Err("the metric has no prometheus member".into()),
                    },
                    MetricSourceType::Unknown => Err("unknown metric source type".into()),
                };
                gathered.push(Fetched {
                    value,
                    elapsed: start.elapsed(),
                    pod_usage: usage,
                });
            }
            gathered
        })
    }

    fn gather_series<'a>(
        &'a self,
        namespace: &'a str,
        requests: &'a [(MetricSpec, Range)],
    ) -> BoxFuture<'a, Vec<Result<Series, String>>> {
        Box::pin(async move {
            let mut series = Vec::with_capacity(requests.len());
            for (metric, range) in requests {
                series.push(match &metric.prometheus {
                    Some(p) => self.prometheus.query_range(namespace, p, range).await,
                    None => Err("only Prometheus metrics have a history to read".into()),
                });
            }
            series
        })
    }
}
