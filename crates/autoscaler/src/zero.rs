//! Scaling to zero and back. An Autoscaler with `minReplicas: 0` takes its target to zero when
//! none of its Object, External or Prometheus metrics is active (its whole value above its
//! `activationThreshold`), through the ordinary scale-down path, so the scale-down
//! stabilization window is the cool-down and the policies bound each step; Resource and Pods
//! metrics, which cannot be read with no pods, do not hold it up. A zero that ferroscale set is
//! remembered in status (`ScaledToZero=True`), and the target is woken as soon as a metric is
//! active (or a failing metric's fallback applies). A zero that someone else set is
//! maintenance: nothing is scaled, as upstream decides.

use ferroscale_api::{AutoscalerCondition, AutoscalerSpec};
use jiff::Timestamp;

use crate::conditions;
use crate::metric::MetricOutcome;

/// The condition ferroscale keeps on an Autoscaler whose target it scaled to zero.
pub const SCALED_TO_ZERO: &str = "ScaledToZero";

/// Whether ferroscale set the target's zero, from the conditions in status.
pub fn set_by_us(conditions: &[AutoscalerCondition]) -> bool {
    conditions::find(conditions, SCALED_TO_ZERO).is_some_and(|c| c.status == "True")
}

/// Whether the spec lets the target go to zero.
pub fn enabled(spec: &AutoscalerSpec) -> bool {
    spec.min_replicas_or_default() == 0
}

/// Applies the activation rule to the metrics' proposals. When no metric is active, every
/// metric read proposes zero (Resource and Pods metrics included: they cannot keep a target
/// up); otherwise an active metric proposes at least one replica. A metric on its fallback
/// counts as active: a failing source must not leave the target at zero. Returns whether any
/// metric is active.
pub fn activate(outcomes: &mut [MetricOutcome]) -> bool {
    let active = outcomes
        .iter()
        .any(|m| m.fallback.is_some() || m.activation.is_some_and(|a| a.active) && m.error.is_none());
    for m in outcomes.iter_mut().filter(|m| !m.skipped && m.error.is_none()) {
        match (active, m.activation, m.replicas.as_mut()) {
            (false, _, Some(replicas)) => *replicas = 0,
            (true, Some(a), Some(replicas)) if a.active => *replicas = (*replicas).max(1),
            _ => {}
        }
    }
    active
}

/// Keeps the ScaledToZero condition: True once ferroscale sets the target to zero, False once
/// the target has replicas again. Autoscalers never scaled to zero do not carry it.
pub fn record(conds: &mut Vec<AutoscalerCondition>, desired: i32, rescale: bool, now: Timestamp) {
    let carried = conditions::find(conds, SCALED_TO_ZERO).is_some();
    if rescale && desired == 0 {
        conditions::set(
            conds,
            SCALED_TO_ZERO,
            true,
            "ScaledToZero",
            "the Autoscaler scaled the target to zero; it is woken when a metric is active",
            now,
        );
    } else if desired > 0 && carried {
        conditions::set(
            conds,
            SCALED_TO_ZERO,
            false,
            "ScaledFromZero",
            format!("the target has {desired} replicas"),
            now,
        );
    }
}
