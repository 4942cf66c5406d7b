//! The gates an evaluation passes before any metric is read: a target scaled to zero while
//! minReplicas is not zero disables scaling, and a target outside [min, max] is only brought
//! back into range.

use ferroscale_api::AutoscalerSpec;

/// What the gates let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// The target is at 0 and minReplicas is not: nothing is scaled (maintenance mode).
    Disabled,
    /// The target is outside [min, max]: it is set to the nearest bound, metrics unread.
    OutOfRange { desired: i32, reason: &'static str },
    /// An ordinary evaluation from the metrics.
    Open,
}

/// The gate for a target at `current` replicas.
pub fn check(spec: &AutoscalerSpec, current: i32) -> Gate {
    let min = spec.min_replicas_or_default();
    let max = spec.max_replicas;
    if current == 0 && min != 0 {
        Gate::Disabled
    } else if current > max {
        Gate::OutOfRange {
            desired: max,
            reason: "Current number of replicas above Spec.MaxReplicas",
        }
    } else if current < min {
        Gate::OutOfRange {
            desired: min,
            reason: "Current number of replicas below Spec.MinReplicas",
        }
    } else {
        Gate::Open
    }
}

/// Whether an evaluation at `current` replicas reads metrics: only when the gates are open.
/// Callers skip gathering metrics otherwise.
pub fn reads_metrics(spec: &AutoscalerSpec, current: i32) -> bool {
    check(spec, current) == Gate::Open
}
