//! The one path from the cluster to the core's input: the target's scale, the pods that count,
//! the metrics, and any autoscaler this one must not fight. The controller reads through its
//! watch caches; `ferroscale explain` fills the same caches with one list each and reads
//! through this same code, so what explain shows is what the controller does.

use std::sync::Arc;
use std::time::Duration;

use ferroscale_api::{Autoscaler, AutoscalerStatus, MetricSpec};
use ferroscale_autoscaler::compiled::Compiled;
use ferroscale_autoscaler::gates::metrics_read;
use ferroscale_autoscaler::history::Remembered;
use ferroscale_autoscaler::hold::Conflict;
use ferroscale_autoscaler::predict::{Range, history_reads};
use ferroscale_autoscaler::samples::GatheredSeries;
use ferroscale_autoscaler::samples::PodUsage;
use ferroscale_autoscaler::selection::by_owner;
use ferroscale_autoscaler::selector::scale_selector;
use ferroscale_autoscaler::{Gathered, Input, PodInfo, Scale, Settings, effective_metrics};
use ferroscale_metrics::MetricsSource;
use jiff::Timestamp;
use kube::ResourceExt;

use super::neighbours::Neighbours;
use super::target::Targets;
use crate::pod_cache::{CachedPod, PodCache};

/// What an evaluation reads from.
pub struct Readers {
    pub client: kube::Client,
    pub pods: PodCache,
    pub targets: Targets,
    pub metrics: Arc<dyn MetricsSource>,
    /// Other autoscalers and owners, for conflicts and selection by owner.
    pub neighbours: Neighbours,
}

impl std::fmt::Debug for Readers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readers").finish_non_exhaustive()
    }
}

/// What one evaluation found.
#[derive(Debug)]
pub enum Observed {
    /// The spec breaks a rule the API server may not enforce: nothing is read.
    InvalidSpec,
    /// The target's scale could not be read: why.
    NoScale(String),
    Read(Box<Observation>),
}

/// A metric as read: its values, how long reading took, and the PodMetrics they came from.
#[derive(Debug, Clone)]
pub struct MetricRead {
    pub value: Gathered,
    /// None: not read at this evaluation.
    pub elapsed: Option<Duration>,
    pub pod_usage: Option<Arc<Vec<PodUsage>>>,
}

/// Everything the core decides from, besides the Autoscaler itself.
#[derive(Debug)]
pub struct Observation {
    /// The scale as the API server returned it.
    pub scale_object: k8s_openapi::api::autoscaling::v1::Scale,
    pub scale: Scale,
    /// The pods that count, as cached (labels and owners besides what the core reads).
    pub counted: Vec<Arc<CachedPod>>,
    pub pods: Vec<PodInfo>,
    /// One entry per effective metric, in the order of the spec.
    pub metrics: Vec<MetricSpec>,
    pub reads: Vec<MetricRead>,
    pub gathered: Vec<Gathered>,
    /// One entry per effective metric: the history of a predictive metric.
    pub series: Vec<GatheredSeries>,
    pub conflict: Option<Conflict>,
    /// Pods the selector matched that the target does not own (selectionStrategy OwnerReferences).
    pub pods_left_out: usize,
}

impl Observation {
    /// The core's input for `autoscaler`, deciding from `status`.
    pub fn input<'a>(
        &'a self,
        autoscaler: &'a Autoscaler,
        compiled: &'a Compiled,
        status: Option<&'a AutoscalerStatus>,
        now: Timestamp,
        settings: &'a Settings,
        last_recommended: Option<Remembered>,
    ) -> Input<'a> {
        Input {
            spec: &autoscaler.spec,
            status,
            generation: autoscaler.metadata.generation,
            scale: &self.scale,
            pods: &self.pods,
            metrics: &self.gathered,
            now,
            settings,
            last_recommended: last_recommended.and_then(|r| r.last_made(status)),
            annotations: autoscaler.metadata.annotations.as_ref(),
            conflict: self.conflict.as_ref(),
            pods_left_out: self.pods_left_out,
            compiled: Some(compiled),
            series: &self.series,
        }
    }
}

/// The core's input for an Autoscaler whose spec is invalid: nothing read.
pub fn invalid_spec_input<'a>(
    autoscaler: &'a Autoscaler,
    compiled: &'a Compiled,
    status: Option<&'a AutoscalerStatus>,
    now: Timestamp,
    settings: &'a Settings,
) -> Input<'a> {
    Input {
        spec: &autoscaler.spec,
        status,
        generation: autoscaler.metadata.generation,
        scale: &Scale::NONE,
        pods: &[],
        metrics: &[],
        now,
        settings,
        last_recommended: None,
        annotations: None,
        conflict: None,
        pods_left_out: 0,
        compiled: Some(compiled),
        series: &[],
    }
}

/// Reads what deciding on `autoscaler` needs; `previous` is the status it decides from (which
/// metrics to read depends on it, e.g. at a zero ferroscale set).
pub async fn observe(
    readers: &Readers,
    autoscaler: &Autoscaler,
    compiled: &Compiled,
    previous: Option<&AutoscalerStatus>,
    now: Timestamp,
    sync_period: Duration,
) -> Observed {
    if compiled.problems.is_some() {
        return Observed::InvalidSpec;
    }
    let namespace = autoscaler.namespace().unwrap_or_default();
    let scale_object = match readers
        .targets
        .get_scale(&namespace, &autoscaler.spec.scale_target_ref)
        .await
    {
        Ok(scale) => scale,
        Err(error) => return Observed::NoScale(error),
    };
    let target_uid = scale_object.metadata.uid.clone().unwrap_or_default();
    let scale = Scale::from(&scale_object);
    let metrics = effective_metrics(&autoscaler.spec).into_owned();
    let read = metrics_read(&autoscaler.spec, compiled, previous, scale.spec_replicas, now);
    let selector = scale_selector(&scale).ok();
    // The pods the selector matches decide conflicts; those the target owns, with
    // selectionStrategy OwnerReferences, are the ones counted.
    let selected = selector
        .as_ref()
        .map(|s| readers.pods.select(&namespace, s))
        .unwrap_or_default();
    let conflict = readers.neighbours.conflict(autoscaler, &selected);
    if let Some(s) = &selector {
        readers.neighbours.remember_selector(autoscaler, s);
    }
    let matched = selected.len();
    let counted = if by_owner(&autoscaler.spec) {
        readers
            .neighbours
            .owned(&readers.client, &namespace, &target_uid, selected)
            .await
    } else {
        selected
    };
    let pods_left_out = matched - counted.len();
    let reads = match &selector {
        Some(_) if read.contains(&true) => {
            let wanted: Vec<MetricSpec> = metrics
                .iter()
                .zip(&read)
                .filter(|(_, read)| **read)
                .map(|(m, _)| m.clone())
                .collect();
            let mut fetched = readers
                .metrics
                .gather(&namespace, &wanted, scale.selector.as_deref().unwrap_or_default())
                .await
                .into_iter();
            // `fetched` holds the metrics read, in order.
            read.iter()
                .map(|read| match if *read { fetched.next() } else { None } {
                    Some(f) => MetricRead {
                        value: f.value,
                        elapsed: Some(f.elapsed),
                        pod_usage: f.pod_usage,
                    },
                    None => MetricRead {
                        value: Err("not read at this evaluation".to_string()),
                        elapsed: None,
                        pod_usage: None,
                    },
                })
                .collect()
        }
        _ => Vec::new(),
    };
    let series = match &selector {
        Some(_) if read.contains(&true) => {
            let ranges = history_reads(&metrics, &read, sync_period, now);
            let requests: Vec<(MetricSpec, Range)> = metrics
                .iter()
                .zip(&ranges)
                .filter_map(|(m, r)| Some((m.clone(), (*r)?)))
                .collect();
            let mut fetched = if requests.is_empty() {
                Vec::new().into_iter()
            } else {
                readers.metrics.gather_series(&namespace, &requests).await.into_iter()
            };
            ranges.iter().map(|r| r.and_then(|_| fetched.next())).collect()
        }
        _ => Vec::new(),
    };
    let (pods, gathered) = if reads.is_empty() {
        (Vec::new(), Vec::new())
    } else {
        (
            counted.iter().map(|p| p.info.clone()).collect(),
            reads.iter().map(|r| r.value.clone()).collect(),
        )
    };
    Observed::Read(Box::new(Observation {
        scale_object,
        scale,
        counted,
        pods,
        metrics,
        reads,
        gathered,
        series,
        conflict,
        pods_left_out,
    }))
}
