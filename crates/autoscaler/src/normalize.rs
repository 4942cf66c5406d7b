//! The behavior stage: stabilization over the recommendation history, then rate limits and
//! the replica bounds.

use jiff::Timestamp;

use crate::behavior::{self, RateLimits, Rules, Step};
use crate::history::History;
use crate::schedule::Bounds;
use crate::types::Input;

/// Stabilization over the recommendation history, then rate limits and min/max: with
/// `behavior`, its windows and policies; without, the HPA's legacy rules.
pub fn normalize(
    history: &History,
    last_made: Timestamp,
    rules: Option<&(Rules, Rules)>,
    current: i32,
    proposal: i32,
    bounds: &Bounds,
    input: &Input,
) -> (Step, Step) {
    let (min, max, now) = (bounds.min, bounds.max, input.now);
    let recommendations = history.window(last_made);
    match rules {
        None => {
            let window = input.settings.downscale_stabilization;
            let s = behavior::stabilize_legacy(&recommendations, proposal, now, window);
            let l = behavior::limit_legacy(current, s.replicas, min, max);
            (s, l)
        }
        Some((up, down)) => {
            let s = behavior::stabilize(&recommendations, proposal, current, now, up, down);
            let rates = RateLimits {
                up,
                down,
                scale_ups: &history.scale_ups,
                scale_downs: &history.scale_downs,
                now,
            };
            let l = behavior::limit(current, s.replicas, min, max, rates);
            (s, l)
        }
    }
}
