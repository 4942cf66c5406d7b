//! The last stage before a decision is written: what may hold the target where it is. A
//! conflict with another autoscaler on the same target (or on overlapping pods) stops every
//! write, so two controllers never fight over one target; a pause annotation stops the
//! ordinary writes (and `paused-replicas` makes one of its own). Either way the evaluation
//! still runs and reports: status, metrics and `explain` say what would be done.

use ferroscale_api::{AutoscalerCondition, AutoscalerStatus};
use jiff::Timestamp;

use crate::conditions::{self, SCALING_ACTIVE};
use crate::pause::Pause;
use crate::types::Event;

/// Another autoscaler that this one must not fight, found by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// `ConflictingAutoscaler` (same target) or `AmbiguousSelector` (overlapping pods), as
    /// upstream names the latter.
    pub reason: &'static str,
    /// Names the other object.
    pub message: String,
}

/// What the stage decides: the count to set, if any, and the paused replicas applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    pub set: Option<i32>,
    pub paused_replicas: Option<i32>,
}

/// Applies conflicts and pauses to a decision that would set `desired` (None: it would not
/// write). Sets ScalingActive=False with the reason, and an event when the reason is new.
#[allow(clippy::too_many_arguments)]
pub fn apply(
    desired: Option<i32>,
    current: i32,
    pause: &Pause,
    conflict: Option<&Conflict>,
    previous: &AutoscalerStatus,
    conds: &mut Vec<AutoscalerCondition>,
    events: &mut Vec<Event>,
    now: Timestamp,
) -> Held {
    let wanted = desired.map_or_else(|| "no change".to_string(), |d| format!("{d} replicas"));
    let (reason, message, set, paused_replicas) = match (conflict, pause) {
        (None, Pause::No) => {
            return Held {
                set: desired,
                paused_replicas: None,
            };
        }
        (Some(c), _) => (c.reason, format!("{}; it would set {wanted}", c.message), None, None),
        (None, Pause::Paused) => (
            "Paused",
            format!(
                "paused by the annotation {}; it would set {wanted}",
                crate::pause::PAUSED
            ),
            None,
            None,
        ),
        (None, Pause::Replicas(n)) => {
            // Set once: a count someone sets later is held, not fought.
            let set = (previous.paused_replicas != Some(*n) && current != *n).then_some(*n);
            (
                "Paused",
                format!(
                    "held at {n} replicas by the annotation {}; it would set {wanted}",
                    crate::pause::PAUSED_REPLICAS
                ),
                set,
                Some(*n),
            )
        }
        (None, Pause::Invalid(problem)) => (
            "InvalidAnnotation",
            format!("{problem}; no scaling until it is fixed"),
            None,
            None,
        ),
    };
    let before = previous.conditions.as_deref().unwrap_or_default();
    let changed = conditions::find(before, SCALING_ACTIVE).is_none_or(|c| c.reason.as_deref() != Some(reason));
    if changed && reason != "Paused" {
        events.push(Event {
            warning: true,
            reason: reason.into(),
            message: message.clone(),
        });
    }
    conditions::set(conds, SCALING_ACTIVE, false, reason, message, now);
    Held { set, paused_replicas }
}
