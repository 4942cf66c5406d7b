//! Each metric's proposal: its gathered values against its target, computed as the HPA's
//! replica calculator does, with the value that status reports.

use std::borrow::Cow;

use ferroscale_api::quantity::format_milli;
use ferroscale_api::*;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::calculate::{self, Context, Proposal};
use crate::predict::ForecastOutcome;
use crate::samples::{FORBIDDEN_METRIC_SOURCE, Gathered, MetricValues};
use crate::types::Scale;

/// One metric's part in the decision.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MetricOutcome {
    /// The metric's source type.
    pub source: Option<MetricSourceType>,
    /// What the metric is, in the HPA's words (e.g. `cpu resource utilization (percentage of request)`).
    pub description: String,
    /// The metric's proposal before min/max and behavior.
    pub replicas: Option<i32>,
    /// Its current value as status reports it.
    pub status: Option<MetricStatus>,
    /// Why it could not be computed.
    pub error: Option<String>,
    /// How it was computed.
    pub proposal: Option<Proposal>,
    /// Not read at this evaluation (at zero replicas, only metrics readable without pods are).
    pub skipped: bool,
    /// For Object, External and Prometheus metrics: whether the value is above the activation
    /// threshold.
    pub activation: Option<Activation>,
    /// The fallback's replica count, proposed because the metric has failed for its
    /// failureDurationSeconds (`error` says how it fails).
    pub fallback: Option<i32>,
    /// The outcome of spec.formula, standing for the metrics it reads.
    pub formula: bool,
    /// For a predictive metric: its forecast, and whether it decided.
    pub forecast: Option<ForecastOutcome>,
}

/// Whether a metric is active: its whole value above its activation threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Activation {
    /// The metric's value as a whole (the sum of an External metric's series), milli-units.
    pub value: i64,
    /// The activation threshold, milli-units.
    pub threshold: i64,
    pub active: bool,
}

impl MetricOutcome {
    /// The proposal the combination counts: a computed one, or the fallback's.
    pub fn counted(&self) -> Option<i32> {
        if self.skipped {
            return None;
        }
        match (&self.error, self.fallback) {
            (None, _) => self.replicas,
            (Some(_), fallback) => fallback,
        }
    }

    /// Failed without a fallback to stand in: such a metric blocks scaling down.
    pub fn failed(&self) -> bool {
        !self.skipped && self.fallback.is_none() && (self.error.is_some() || self.replicas.is_none())
    }

    /// An outcome for a metric this evaluation does not read.
    pub fn skipped(spec: &MetricSpec) -> Self {
        Self {
            source: Some(spec.type_),
            description: format!("{} metric", spec.type_.as_str()),
            skipped: true,
            ..Self::default()
        }
    }
}

/// The spec's metrics, or the HPA's default of 80% average CPU utilization when there are none.
pub fn effective_metrics(spec: &AutoscalerSpec) -> Cow<'_, [MetricSpec]> {
    match spec.metrics.as_deref() {
        Some(metrics) if !metrics.is_empty() => Cow::Borrowed(metrics),
        _ => Cow::Owned(vec![MetricSpec {
            name: None,
            type_: MetricSourceType::Resource,
            resource: Some(Box::new(ResourceMetricSource {
                fallback: None,
                name: "cpu".into(),
                target: MetricTarget {
                    type_: MetricTargetType::Utilization,
                    value: None,
                    average_value: None,
                    average_utilization: Some(80),
                },
            })),
            container_resource: None,
            pods: None,
            object: None,
            external: None,
            prometheus: None,
        }]),
    }
}

fn milli(q: &Option<Quantity>, field: &str) -> Result<Option<i64>, String> {
    q.as_ref()
        .map(|q| ferroscale_api::quantity::milli_value(&q.0).map_err(|e| format!("{field}: {e}")))
        .transpose()
}

fn value_status(value: Option<i64>, average: Option<i64>, utilization: Option<i32>) -> MetricValueStatus {
    MetricValueStatus {
        value: value.map(|v| Quantity(format_milli(v))),
        average_value: average.map(|v| Quantity(format_milli(v))),
        average_utilization: utilization,
    }
}

fn empty_status(type_: MetricSourceType) -> MetricStatus {
    MetricStatus {
        type_,
        resource: None,
        container_resource: None,
        pods: None,
        object: None,
        external: None,
        prometheus: None,
    }
}

/// Computes one metric's proposal and status. Failures are reported in the outcome.
pub fn compute_metric(ctx: &Context, spec: &MetricSpec, scale: &Scale, gathered: Option<&Gathered>) -> MetricOutcome {
    let tag = spec.type_.as_str();
    let mut outcome = MetricOutcome {
        source: Some(spec.type_),
        ..MetricOutcome::default()
    };
    // (proposal, status, description, the whole value of an Object, External or Prometheus metric)
    let result = (|| -> Result<(Proposal, MetricStatus, String, Option<i64>), String> {
        let gathered = gathered.ok_or_else(|| "no samples were gathered for this metric".to_string())?;
        let current = scale.spec_replicas;
        let mut status = empty_status(spec.type_);
        match spec.type_ {
            MetricSourceType::Unknown => Err("unknown metric source type".into()),
            MetricSourceType::Resource | MetricSourceType::ContainerResource => {
                let (name, container, target) = match (spec.type_, &spec.resource, &spec.container_resource) {
                    (MetricSourceType::Resource, Some(r), _) => (r.name.as_str(), None, &r.target),
                    (_, _, Some(c)) if spec.type_ == MetricSourceType::ContainerResource => {
                        (c.name.as_str(), Some(c.container.as_str()), &c.target)
                    }
                    _ => {
                        return Err(format!(
                            "metric type {tag} has no {} member",
                            if spec.type_ == MetricSourceType::ContainerResource {
                                "containerResource"
                            } else {
                                "resource"
                            }
                        ));
                    }
                };
                let samples = match gathered {
                    Ok(MetricValues::PerPod(s)) => s,
                    Ok(_) => return Err("internal error: gathered values are not per-pod samples".into()),
                    Err(e) => {
                        let kind = if target.average_value.is_some() {
                            "usage"
                        } else {
                            "utilization"
                        };
                        return Err(format!(
                            "failed to get {name} {kind}: unable to get metrics for resource {name}: {e}"
                        ));
                    }
                };
                let (proposal, description) = if let Some(avg) = milli(&target.average_value, "target.averageValue")? {
                    let p = calculate::average_value(ctx, current, avg, name == "cpu", samples)
                        .map_err(|e| format!("failed to get {name} usage: {e}"))?;
                    (p, format!("{name} resource"))
                } else if let Some(percent) = target.average_utilization {
                    let p = calculate::resource_utilization(ctx, current, percent, name, container, samples)
                        .map_err(|e| format!("failed to get {name} utilization: {e}"))?;
                    let what = if container.is_some() {
                        "container resource"
                    } else {
                        "resource"
                    };
                    (p, format!("{name} {what} utilization (percentage of request)"))
                } else {
                    return Err("invalid resource metric source: neither an average utilization target nor an average value (usage) target was set".into());
                };
                let current = value_status(None, Some(proposal.value), proposal.utilization);
                match container {
                    None => {
                        status.resource = Some(ResourceMetricStatus {
                            name: name.into(),
                            current,
                        })
                    }
                    Some(c) => {
                        status.container_resource = Some(ContainerResourceMetricStatus {
                            name: name.into(),
                            container: c.into(),
                            current,
                        })
                    }
                }
                Ok((proposal, status, description, None))
            }
            MetricSourceType::Pods => {
                let pods = spec.pods.as_ref().ok_or("metric type Pods has no pods member")?;
                let name = &pods.metric.name;
                let samples = match gathered {
                    Ok(MetricValues::PerPod(s)) => s,
                    Ok(_) => return Err("internal error: gathered values are not per-pod samples".into()),
                    Err(e) => return Err(format!("unable to get metric {name}: {e}")),
                };
                let target = milli(&pods.target.average_value, "target.averageValue")?
                    .ok_or("pods metric target has no averageValue")?;
                let p = calculate::average_value(ctx, current, target, false, samples)?;
                status.pods = Some(PodsMetricStatus {
                    metric: pods.metric.clone(),
                    current: value_status(None, Some(p.value), None),
                });
                Ok((p, status, format!("pods metric {name}"), None))
            }
            MetricSourceType::Object => {
                let object = spec.object.as_ref().ok_or("metric type Object has no object member")?;
                let name = &object.metric.name;
                let reference = &object.described_object;
                let value = match gathered {
                    Ok(MetricValues::Object(v)) => *v,
                    Ok(_) => return Err("internal error: gathered values are not an object metric".into()),
                    Err(e) => {
                        return Err(format!(
                            "unable to get metric {name}: {e} on {} {}",
                            reference.kind, reference.name
                        ));
                    }
                };
                let (p, current) = whole_or_average(ctx, scale, &object.target, value, TargetChoice::ByType)?;
                status.object = Some(ObjectMetricStatus {
                    described_object: reference.clone(),
                    metric: object.metric.clone(),
                    current,
                });
                Ok((p, status, format!("{} metric {name}", reference.kind), Some(value)))
            }
            MetricSourceType::External => {
                let external = spec
                    .external
                    .as_ref()
                    .ok_or("metric type External has no external member")?;
                let name = &external.metric.name;
                let values = match gathered {
                    Ok(MetricValues::External(v)) => v,
                    Ok(_) => return Err("internal error: gathered values are not an external metric".into()),
                    Err(e) => return Err(format!("unable to get external metric {name}: {e}")),
                };
                if values.is_empty() {
                    return Err(format!(
                        "unable to get external metric {name}: no metrics returned from external metrics API"
                    ));
                }
                let sum = external_sum(values, external.target.average_value.is_some());
                let (p, current) = whole_or_average(ctx, scale, &external.target, sum, TargetChoice::AverageFirst)?;
                status.external = Some(ExternalMetricStatus {
                    metric: external.metric.clone(),
                    current,
                });
                Ok((p, status, format!("external metric {name}"), Some(sum)))
            }
            MetricSourceType::Prometheus => {
                let prometheus = spec
                    .prometheus
                    .as_ref()
                    .ok_or("metric type Prometheus has no prometheus member")?;
                let value = match gathered {
                    Ok(MetricValues::Prometheus(v)) => *v,
                    Ok(_) => return Err("internal error: gathered values are not a Prometheus result".into()),
                    // A refused address was never queried: said as it is.
                    Err(e) if e.starts_with(FORBIDDEN_METRIC_SOURCE) => return Err(e.clone()),
                    Err(e) => return Err(format!("unable to query Prometheus: {e}")),
                };
                let (p, current) = whole_or_average(ctx, scale, &prometheus.target, value, TargetChoice::AverageFirst)?;
                status.prometheus = Some(PrometheusMetricStatus {
                    query: prometheus.query.clone(),
                    current,
                });
                Ok((p, status, format!("prometheus query {}", prometheus.query), Some(value)))
            }
        }
    })();
    match result {
        Ok((proposal, status, description, whole)) => {
            if let Some(value) = whole {
                let threshold = milli(&spec.activation_threshold().cloned(), "activationThreshold")
                    .ok()
                    .flatten()
                    .unwrap_or(0);
                outcome.activation = Some(Activation {
                    value,
                    threshold,
                    active: value > threshold,
                });
            }
            outcome.replicas = Some(proposal.replicas);
            outcome.status = Some(status);
            outcome.description = description;
            outcome.proposal = Some(proposal);
        }
        Err(error) => {
            outcome.description = format!("{tag} metric");
            outcome.error = Some(error);
        }
    }
    outcome
}

/// Sums an External metric's series as the HPA does: a Value target caps positive overflow at
/// i64::MAX; an AverageValue target treats any negative running sum as overflow.
fn external_sum(values: &[i64], average: bool) -> i64 {
    if !average {
        return calculate::sum_capped(values);
    }
    let mut total = 0i64;
    for v in values {
        total = total.wrapping_add(*v);
        if total < 0 {
            return i64::MAX;
        }
    }
    total
}

/// Which field of an Object, External or Prometheus target counts. The HPA reads Object
/// targets by their type, and External targets by which value is set, AverageValue first.
#[derive(Clone, Copy, PartialEq, Eq)]
enum TargetChoice {
    ByType,
    AverageFirst,
}

/// Object, External and Prometheus targets: Value against the whole, AverageValue per replica.
fn whole_or_average(
    ctx: &Context,
    scale: &Scale,
    target: &MetricTarget,
    value: i64,
    choice: TargetChoice,
) -> Result<(Proposal, MetricValueStatus), String> {
    let value_target = milli(&target.value, "target.value")?;
    let average_target = milli(&target.average_value, "target.averageValue")?;
    let (use_value, use_average) = match choice {
        TargetChoice::ByType => (
            value_target.filter(|_| target.type_ == MetricTargetType::Value),
            average_target.filter(|_| target.type_ == MetricTargetType::AverageValue),
        ),
        TargetChoice::AverageFirst => (value_target.filter(|_| average_target.is_none()), average_target),
    };
    if let Some(t) = use_value {
        let p = calculate::whole_value(ctx, scale.spec_replicas, t, value)?;
        let status = value_status(Some(p.value), None, None);
        return Ok((p, status));
    }
    if let Some(t) = use_average {
        let p = calculate::average_of_whole(ctx, scale.status_replicas, t, value);
        let status = value_status(None, Some(p.value), None);
        return Ok((p, status));
    }
    Err("invalid metric source: neither a value target nor an average value target was set".into())
}
