//! The gates an evaluation passes before any metric is read: an invalid spec stops it (the
//! controller and `explain` say so alike); a target at zero replicas is
//! maintenance (nothing scaled) unless ferroscale itself set that zero, when only the metrics
//! that can be read without pods decide whether to wake it; a target outside [min, max] is only
//! brought back into range.

use ferroscale_api::{AutoscalerSpec, AutoscalerStatus};
use jiff::Timestamp;

use crate::compiled::Compiled;
use crate::schedule::{self, Bounds};
use crate::zero;

/// What the gates let through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    /// The spec breaks a rule the API server could not enforce: nothing is read or scaled
    /// until it changes; the message names every offending field.
    InvalidSpec(String),
    /// The target is at 0 and ferroscale did not put it there: nothing is scaled (maintenance
    /// mode). With minReplicas 0 the metrics readable without pods are still read and
    /// reported (`report`), so status and `explain` show what they say.
    Disabled { report: bool },
    /// The target is at the zero ferroscale set: Object, External and Prometheus metrics decide
    /// whether to wake it.
    Zero,
    /// The target is outside [min, max]: it is set to the nearest bound, metrics unread.
    OutOfRange { desired: i32, reason: &'static str },
    /// An ordinary evaluation from the metrics.
    Open,
}

const BELOW_MIN: &str = "Current number of replicas below Spec.MinReplicas";

/// The gate for a target at `current` replicas, given the last status and the bounds in force
/// (the spec's, or an active schedule's).
pub fn check(compiled: &Compiled, bounds: &Bounds, status: Option<&AutoscalerStatus>, current: i32) -> Gate {
    if let Some(problems) = &compiled.problems {
        return Gate::InvalidSpec(problems.clone());
    }
    let (min, max) = (bounds.min, bounds.max);
    let ours = status
        .and_then(|s| s.conditions.as_deref())
        .is_some_and(zero::set_by_us);
    if current == 0 {
        return match (ours, min) {
            (true, 0) => Gate::Zero,
            // A zero ferroscale set, with minReplicas raised since: back to the minimum.
            (true, _) => Gate::OutOfRange {
                desired: min,
                reason: BELOW_MIN,
            },
            (false, min) => Gate::Disabled { report: min == 0 },
        };
    }
    if current > max {
        Gate::OutOfRange {
            desired: max,
            reason: "Current number of replicas above Spec.MaxReplicas",
        }
    } else if current < min {
        Gate::OutOfRange {
            desired: min,
            reason: BELOW_MIN,
        }
    } else {
        Gate::Open
    }
}

/// The problems that stop an evaluation, naming each field; None when there are none. A
/// problem inside one metric's upstream fields (an unknown type, a target without its value)
/// is that metric's failure, reported as the HPA reports it, not a reason to stop the others;
/// ferroscale's own extensions (fallback, activation threshold) have no such reading and stop it.
pub fn spec_problems(spec: &AutoscalerSpec) -> Option<String> {
    Compiled::of(spec).problems
}

/// The problems of [`spec_problems`] that the API crate's validation finds (the schedules'
/// cron expressions and the formula are parsed by [`Compiled`]).
pub fn validation_problems(spec: &AutoscalerSpec) -> Vec<String> {
    let Err(errors) = spec.validate() else {
        return Vec::new();
    };
    errors
        .0
        .iter()
        .filter(|e| {
            !e.path.starts_with("spec.metrics[")
                || e.path.contains(".fallback")
                || e.path.contains(".activationThreshold")
                || e.path.contains(".predictive")
                // The metric's own name (for the formula), not an upstream field such as
                // `pods.metric.name`, whose problems stay that metric's failure.
                || e.path.ends_with("].name")
        })
        .map(ToString::to_string)
        .collect()
}

/// Which of the spec's metrics (of [`crate::effective_metrics`]) an evaluation at `now` reads:
/// all that count when the gates are open (with a formula, those it reads), those readable
/// without pods at ferroscale's zero, none otherwise. Callers skip gathering the others.
pub fn metrics_read(
    spec: &AutoscalerSpec,
    compiled: &Compiled,
    status: Option<&AutoscalerStatus>,
    current: i32,
    now: Timestamp,
) -> Vec<bool> {
    let bounds = schedule::bounds(spec, &compiled.schedules, now);
    let gate = check(compiled, &bounds, status, current);
    crate::effective_metrics(spec)
        .iter()
        .enumerate()
        .map(|(i, m)| {
            compiled.counts_metric(i)
                && match gate {
                    Gate::Open => true,
                    Gate::Zero | Gate::Disabled { report: true } => m.reads_without_pods(),
                    Gate::InvalidSpec(_) | Gate::Disabled { report: false } | Gate::OutOfRange { .. } => false,
                }
        })
        .collect()
}

/// Whether an evaluation at `now` reads any metric.
pub fn reads_metrics(spec: &AutoscalerSpec, status: Option<&AutoscalerStatus>, current: i32, now: Timestamp) -> bool {
    metrics_read(spec, &Compiled::of(spec), status, current, now).contains(&true)
}
