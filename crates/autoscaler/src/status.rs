//! The status an evaluation writes: what it keeps when the Autoscaler cannot be evaluated, and
//! the TARGETS column.

use ferroscale_api::*;
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::conditions::{self, ABLE_TO_SCALE, SCALING_ACTIVE};
use crate::metric::MetricOutcome;

/// The last status with one condition set and the generation stamped; history and the
/// rest are kept, so nothing is lost while the Autoscaler cannot be evaluated.
fn with_condition(
    spec: &AutoscalerSpec,
    status: Option<&AutoscalerStatus>,
    generation: Option<i64>,
    type_: &str,
    reason: &str,
    message: String,
    now: Timestamp,
) -> AutoscalerStatus {
    let mut status = status.cloned().unwrap_or_default();
    conditions::set(
        status.conditions.get_or_insert_with(Vec::new),
        type_,
        false,
        reason,
        message,
        now,
    );
    status.observed_generation = generation;
    status.reference = Some(reference(spec));
    status
}

/// The target as the REFERENCE column shows it: `Kind/name`.
pub fn reference(spec: &AutoscalerSpec) -> String {
    format!("{}/{}", spec.scale_target_ref.kind, spec.scale_target_ref.name)
}

/// The status to write when the target's scale cannot be read (no such target, no scale
/// subresource, an API error): AbleToScale=False/FailedGetScale.
pub fn failed_get_scale(
    spec: &AutoscalerSpec,
    status: Option<&AutoscalerStatus>,
    generation: Option<i64>,
    error: &str,
    now: Timestamp,
) -> AutoscalerStatus {
    let message = format!("the HPA controller was unable to get the target's current scale: {error}");
    with_condition(spec, status, generation, ABLE_TO_SCALE, "FailedGetScale", message, now)
}

/// The status to write when the spec breaks a rule the API server could not enforce:
/// ScalingActive=False/InvalidSpec naming the fields.
pub fn invalid_spec(
    spec: &AutoscalerSpec,
    status: Option<&AutoscalerStatus>,
    generation: Option<i64>,
    problems: &str,
    now: Timestamp,
) -> AutoscalerStatus {
    with_condition(
        spec,
        status,
        generation,
        SCALING_ACTIVE,
        "InvalidSpec",
        format!("the spec is invalid: {problems}"),
        now,
    )
}

/// `cpu: 50%/80%, 20/15 (avg)`: each metric's current value against its target, as
/// `kubectl get hpa` prints them.
pub fn targets_summary(specs: &[MetricSpec], outcomes: &[MetricOutcome]) -> String {
    let unknown = "<unknown>".to_string();
    let q = |q: &Option<Quantity>| q.as_ref().map_or_else(|| unknown.clone(), |q| q.0.clone());
    let mut parts = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let current = outcomes.get(i).and_then(|o| o.status.as_ref());
        let part = match spec.type_ {
            MetricSourceType::Resource | MetricSourceType::ContainerResource => {
                let (name, target) = match (&spec.resource, &spec.container_resource) {
                    (Some(r), _) => (r.name.clone(), &r.target),
                    (_, Some(c)) => (format!("{}/{}", c.container, c.name), &c.target),
                    _ => continue,
                };
                let value = current.and_then(|s| {
                    s.resource
                        .as_ref()
                        .map(|r| &r.current)
                        .or(s.container_resource.as_ref().map(|c| &c.current))
                });
                match (target.average_value.as_ref(), target.average_utilization) {
                    (Some(avg), _) => format!(
                        "{name}: {}/{}",
                        value.map_or_else(|| unknown.clone(), |v| q(&v.average_value)),
                        avg.0
                    ),
                    (None, Some(u)) => {
                        let cur = value
                            .and_then(|v| v.average_utilization)
                            .map_or_else(|| unknown.clone(), |p| format!("{p}%"));
                        format!("{name}: {cur}/{u}%")
                    }
                    _ => format!("{name}: {unknown}"),
                }
            }
            _ => {
                let (target, value) = match spec.type_ {
                    MetricSourceType::Pods => (
                        spec.pods.as_ref().map(|p| &p.target),
                        current.and_then(|s| s.pods.as_ref()).map(|p| &p.current),
                    ),
                    MetricSourceType::Object => (
                        spec.object.as_ref().map(|o| &o.target),
                        current.and_then(|s| s.object.as_ref()).map(|o| &o.current),
                    ),
                    MetricSourceType::External => (
                        spec.external.as_ref().map(|e| &e.target),
                        current.and_then(|s| s.external.as_ref()).map(|e| &e.current),
                    ),
                    _ => (
                        spec.prometheus.as_ref().map(|p| &p.target),
                        current.and_then(|s| s.prometheus.as_ref()).map(|p| &p.current),
                    ),
                };
                let Some(target) = target else { continue };
                match (&target.value, &target.average_value) {
                    (Some(v), _) if target.type_ == MetricTargetType::Value => {
                        format!("{}/{}", value.map_or_else(|| unknown.clone(), |c| q(&c.value)), v.0)
                    }
                    (_, Some(avg)) => {
                        let suffix = if spec.type_ == MetricSourceType::Pods {
                            ""
                        } else {
                            " (avg)"
                        };
                        format!(
                            "{}/{}{suffix}",
                            value.map_or_else(|| unknown.clone(), |c| q(&c.average_value)),
                            avg.0
                        )
                    }
                    _ => unknown.clone(),
                }
            }
        };
        parts.push(part);
    }
    if parts.len() > 4 {
        let more = parts.len() - 4;
        parts.truncate(4);
        return format!("{} + {more} more...", parts.join(", "));
    }
    parts.join(", ")
}
