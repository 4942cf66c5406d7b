//! Turning the metrics' proposal into the replica count to set: stabilization over the
//! recommendation history, then rate limits from recent scale events (or, without `behavior`,
//! the HPA's legacy rules), then min/max. History is an input, never hidden state.

use std::time::Duration;

use ferroscale_api::{Behavior, ScalingPolicy, ScalingPolicyType, ScalingRules, SelectPolicy};
use jiff::Timestamp;

use crate::time::{minus, minus_seconds};

/// A recommendation in the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimedReplicas {
    pub timestamp: Timestamp,
    pub replicas: i32,
}

/// One direction's rules with the HPA's defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    pub window_seconds: i32,
    pub select: SelectPolicy,
    pub policies: Vec<ScalingPolicy>,
}

impl Rules {
    /// The longest policy period: scale events older than this never count again.
    pub fn longest_period(&self) -> i32 {
        self.policies.iter().map(|p| p.period_seconds).max().unwrap_or(0)
    }
}

fn policy(type_: ScalingPolicyType, value: i32, period_seconds: i32) -> ScalingPolicy {
    ScalingPolicy {
        type_,
        value,
        period_seconds,
    }
}

fn fill(given: Option<&ScalingRules>, window_seconds: i32, policies: Vec<ScalingPolicy>) -> Rules {
    let given = given.cloned().unwrap_or_default();
    Rules {
        window_seconds: given.stabilization_window_seconds.unwrap_or(window_seconds),
        select: given.select_policy.unwrap_or(SelectPolicy::Max),
        policies: given.policies.unwrap_or(policies),
    }
}

/// Scale-up rules: no window; 4 pods or 100% per 15 s, whichever allows more.
pub fn scale_up_rules(behavior: &Behavior) -> Rules {
    let defaults = vec![
        policy(ScalingPolicyType::Pods, 4, 15),
        policy(ScalingPolicyType::Percent, 100, 15),
    ];
    fill(behavior.scale_up.as_ref(), 0, defaults)
}

/// Scale-down rules: the operator's default window; 100% per 15 s.
pub fn scale_down_rules(behavior: &Behavior, default_window: Duration) -> Rules {
    let window = i32::try_from(default_window.as_secs()).unwrap_or(i32::MAX);
    fill(
        behavior.scale_down.as_ref(),
        window,
        vec![policy(ScalingPolicyType::Percent, 100, 15)],
    )
}

/// The outcome of one normalization step, for conditions and `explain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub replicas: i32,
    pub reason: &'static str,
    pub message: &'static str,
}

/// Without `behavior`: the highest recommendation within the downscale window (samples at
/// exactly the cutoff still count).
pub fn stabilize_legacy(history: &[TimedReplicas], proposal: i32, now: Timestamp, window: Duration) -> Step {
    let cutoff = minus(now, window);
    let highest = history
        .iter()
        .filter(|r| r.timestamp >= cutoff)
        .map(|r| r.replicas)
        .fold(proposal, i32::max);
    if highest != proposal {
        Step {
            replicas: highest,
            reason: "ScaleDownStabilized",
            message: "recent recommendations were higher than current one, applying the highest recent recommendation",
        }
    } else {
        Step {
            replicas: highest,
            reason: "ReadyForNewScale",
            message: "recommended size matches current size",
        }
    }
}

/// With `behavior`: the result may not rise above the highest recommendation of the scale-down
/// window nor fall below the lowest of the scale-up window (samples strictly inside count).
pub fn stabilize(
    history: &[TimedReplicas],
    proposal: i32,
    current: i32,
    now: Timestamp,
    up: &Rules,
    down: &Rules,
) -> Step {
    let up_cutoff = minus_seconds(now, up.window_seconds);
    let down_cutoff = minus_seconds(now, down.window_seconds);
    let mut up_limit = proposal;
    let mut down_limit = proposal;
    for r in history {
        if r.timestamp > up_cutoff {
            up_limit = up_limit.min(r.replicas);
        }
        if r.timestamp > down_cutoff {
            down_limit = down_limit.max(r.replicas);
        }
    }
    let replicas = current.max(up_limit).min(down_limit);
    if replicas == proposal {
        return Step {
            replicas,
            reason: "ReadyForNewScale",
            message: "recommended size matches current size",
        };
    }
    if proposal >= current {
        Step {
            replicas,
            reason: "ScaleUpStabilized",
            message: "recent recommendations were lower than current one, applying the lowest recent recommendation",
        }
    } else {
        Step {
            replicas,
            reason: "ScaleDownStabilized",
            message: "recent recommendations were higher than current one, applying the highest recent recommendation",
        }
    }
}

const WITHIN_RANGE: (&str, &str) = ("DesiredWithinRange", "the desired count is within the acceptable range");
const TOO_MANY: (&str, &str) = (
    "TooManyReplicas",
    "the desired replica count is more than the maximum replica count",
);
const TOO_FEW: (&str, &str) = (
    "TooFewReplicas",
    "the desired replica count is less than the minimum replica count",
);
const UP_LIMIT: (&str, &str) = (
    "ScaleUpLimit",
    "the desired replica count is increasing faster than the maximum scale rate",
);
const DOWN_LIMIT: (&str, &str) = (
    "ScaleDownLimit",
    "the desired replica count is decreasing faster than the maximum scale rate",
);

fn step(replicas: i32, (reason, message): (&'static str, &'static str)) -> Step {
    Step {
        replicas,
        reason,
        message,
    }
}

/// Without `behavior`: min/max, and at most double (at least 4) per rescale.
pub fn limit_legacy(current: i32, desired: i32, min: i32, max: i32) -> Step {
    let scale_up_limit = (2.0 * f64::from(current)).max(4.0) as i32;
    let (ceiling, limit) = if max > scale_up_limit {
        (scale_up_limit, UP_LIMIT)
    } else {
        (max, TOO_MANY)
    };
    if desired < min {
        step(min, TOO_FEW)
    } else if desired > ceiling {
        step(ceiling, limit)
    } else {
        step(desired, WITHIN_RANGE)
    }
}

/// Replicas added or removed by the events strictly inside the last `period_seconds`.
fn change_within(events: &[TimedReplicas], period_seconds: i32, now: Timestamp) -> i32 {
    let cutoff = minus_seconds(now, period_seconds);
    events
        .iter()
        .filter(|e| e.timestamp > cutoff)
        .fold(0i32, |acc, e| acc.saturating_add(e.replicas))
}

/// The highest count the scale-up policies allow now.
pub fn scale_up_limit(
    current: i32,
    ups: &[TimedReplicas],
    downs: &[TimedReplicas],
    rules: &Rules,
    now: Timestamp,
) -> i32 {
    let pick: fn(i32, i32) -> i32 = match rules.select {
        SelectPolicy::Disabled => return current,
        SelectPolicy::Min => i32::min,
        SelectPolicy::Max => i32::max,
    };
    let mut result = if rules.select == SelectPolicy::Min {
        i32::MAX
    } else {
        i32::MIN
    };
    for p in &rules.policies {
        let start = current - change_within(ups, p.period_seconds, now) + change_within(downs, p.period_seconds, now);
        let proposed = match p.type_ {
            ScalingPolicyType::Pods => start.saturating_add(p.value),
            // Rounded up, or a small target could never grow.
            ScalingPolicyType::Percent => (f64::from(start) * (1.0 + f64::from(p.value) / 100.0)).ceil() as i32,
        };
        result = pick(result, proposed);
    }
    result
}

/// The lowest count the scale-down policies allow now.
pub fn scale_down_limit(
    current: i32,
    ups: &[TimedReplicas],
    downs: &[TimedReplicas],
    rules: &Rules,
    now: Timestamp,
) -> i32 {
    let pick: fn(i32, i32) -> i32 = match rules.select {
        SelectPolicy::Disabled => return current,
        SelectPolicy::Min => i32::max,
        SelectPolicy::Max => i32::min,
    };
    let mut result = if rules.select == SelectPolicy::Min {
        i32::MIN
    } else {
        i32::MAX
    };
    for p in &rules.policies {
        let start = current - change_within(ups, p.period_seconds, now) + change_within(downs, p.period_seconds, now);
        let proposed = match p.type_ {
            ScalingPolicyType::Pods => start.saturating_sub(p.value),
            ScalingPolicyType::Percent => (f64::from(start) * (1.0 - f64::from(p.value) / 100.0)) as i32,
        };
        result = pick(result, proposed);
    }
    result
}

/// Everything the rate-limit step reads.
#[derive(Debug, Clone, Copy)]
pub struct RateLimits<'a> {
    pub up: &'a Rules,
    pub down: &'a Rules,
    pub scale_ups: &'a [TimedReplicas],
    pub scale_downs: &'a [TimedReplicas],
    pub now: Timestamp,
}

/// With `behavior`: clamp to the policies' rate and to min/max.
pub fn limit(current: i32, desired: i32, min: i32, max: i32, rates: RateLimits) -> Step {
    let RateLimits {
        up,
        down,
        scale_ups,
        scale_downs,
        now,
    } = rates;
    if desired > current {
        // Never below the current count, even while recent scale-ups use up the budget; from
        // zero, at least one (a percentage of zero would never wake a target).
        let mut allowed = scale_up_limit(current, scale_ups, scale_downs, up, now).max(current);
        if current == 0 && up.select != SelectPolicy::Disabled {
            allowed = allowed.max(1);
        }
        let (ceiling, limit) = if max > allowed {
            (allowed, UP_LIMIT)
        } else {
            (max, TOO_MANY)
        };
        if desired > ceiling {
            return step(ceiling, limit);
        }
    } else if desired < current {
        let allowed = scale_down_limit(current, scale_ups, scale_downs, down, now).min(current);
        let (floor, limit) = if min < allowed {
            (allowed, DOWN_LIMIT)
        } else {
            (min, TOO_FEW)
        };
        if desired < floor {
            return step(floor, limit);
        }
    }
    step(desired, WITHIN_RANGE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds_ago: i64, replicas: i32) -> TimedReplicas {
        TimedReplicas {
            timestamp: now() - jiff::SignedDuration::from_secs(seconds_ago),
            replicas,
        }
    }

    fn now() -> Timestamp {
        "2026-01-01T00:00:00Z".parse().unwrap()
    }

    fn rules(select: SelectPolicy, policies: &[(ScalingPolicyType, i32, i32)]) -> Rules {
        Rules {
            window_seconds: 0,
            select,
            policies: policies.iter().map(|(t, v, p)| policy(*t, *v, *p)).collect(),
        }
    }

    use ScalingPolicyType::{Percent, Pods};

    #[test]
    fn scale_up_limits_by_policy() {
        struct Case {
            name: &'static str,
            current: i32,
            ups: Vec<TimedReplicas>,
            downs: Vec<TimedReplicas>,
            rules: Rules,
            want: i32,
        }
        let cases = [
            Case {
                name: "pods policy",
                current: 10,
                ups: vec![],
                downs: vec![],
                rules: rules(SelectPolicy::Max, &[(Pods, 2, 60)]),
                want: 12,
            },
            Case {
                name: "max of pods and percent",
                current: 10,
                ups: vec![],
                downs: vec![],
                rules: rules(SelectPolicy::Max, &[(Pods, 2, 60), (Percent, 100, 60)]),
                want: 20,
            },
            Case {
                name: "min of pods and percent",
                current: 10,
                ups: vec![],
                downs: vec![],
                rules: rules(SelectPolicy::Min, &[(Pods, 2, 60), (Percent, 100, 60)]),
                want: 12,
            },
            Case {
                name: "recent scale-up uses the budget",
                current: 12,
                ups: vec![at(30, 2)],
                downs: vec![],
                rules: rules(SelectPolicy::Max, &[(Pods, 2, 60)]),
                want: 12,
            },
            Case {
                name: "old scale-up no longer counts",
                current: 12,
                ups: vec![at(61, 2)],
                downs: vec![],
                rules: rules(SelectPolicy::Max, &[(Pods, 2, 60)]),
                want: 14,
            },
            Case {
                name: "event at the cutoff does not count",
                current: 12,
                ups: vec![at(60, 2)],
                downs: vec![],
                rules: rules(SelectPolicy::Max, &[(Pods, 2, 60)]),
                want: 14,
            },
            Case {
                name: "recent scale-down gives budget back",
                current: 8,
                ups: vec![],
                downs: vec![at(10, 2)],
                rules: rules(SelectPolicy::Max, &[(Percent, 50, 60)]),
                want: 15,
            },
            Case {
                name: "percent rounds up",
                current: 1,
                ups: vec![],
                downs: vec![],
                rules: rules(SelectPolicy::Max, &[(Percent, 10, 60)]),
                want: 2,
            },
            Case {
                name: "disabled",
                current: 5,
                ups: vec![],
                downs: vec![],
                rules: rules(SelectPolicy::Disabled, &[(Pods, 2, 60)]),
                want: 5,
            },
        ];
        for c in cases {
            assert_eq!(
                scale_up_limit(c.current, &c.ups, &c.downs, &c.rules, now()),
                c.want,
                "{}",
                c.name
            );
        }
    }

    #[test]
    fn scale_down_limits_by_policy() {
        let r = rules(SelectPolicy::Max, &[(Pods, 2, 60), (Percent, 50, 60)]);
        assert_eq!(
            scale_down_limit(10, &[], &[], &r, now()),
            5,
            "max change picks the lower count"
        );
        let r = rules(SelectPolicy::Min, &[(Pods, 2, 60), (Percent, 50, 60)]);
        assert_eq!(
            scale_down_limit(10, &[], &[], &r, now()),
            8,
            "min change picks the higher count"
        );
        let r = rules(SelectPolicy::Max, &[(Percent, 50, 60)]);
        assert_eq!(scale_down_limit(9, &[], &[], &r, now()), 4, "percent rounds down");
        assert_eq!(
            scale_down_limit(8, &[], &[at(5, 2)], &r, now()),
            5,
            "recent scale-down uses the budget"
        );
    }

    #[test]
    fn stabilization_with_behavior() {
        let up = Rules {
            window_seconds: 0,
            ..scale_up_rules(&Behavior::default())
        };
        let down = Rules {
            window_seconds: 180,
            ..scale_down_rules(&Behavior::default(), Duration::from_secs(300))
        };
        let history = [at(120, 4), at(60, 5), at(200, 9)];
        let s = stabilize(&history, 3, 100, now(), &up, &down);
        assert_eq!((s.replicas, s.reason), (5, "ScaleDownStabilized"));
        let up = Rules {
            window_seconds: 300,
            ..up
        };
        let s = stabilize(&[at(100, 4)], 10, 3, now(), &up, &down);
        assert_eq!((s.replicas, s.reason), (4, "ScaleUpStabilized"));
        let s = stabilize(&[], 7, 3, now(), &up, &down);
        assert_eq!((s.replicas, s.reason), (7, "ReadyForNewScale"));
    }

    #[test]
    fn legacy_stabilization_counts_the_cutoff() {
        let s = stabilize_legacy(&[at(300, 8), at(301, 9)], 3, now(), Duration::from_secs(300));
        assert_eq!((s.replicas, s.reason), (8, "ScaleDownStabilized"));
    }

    #[test]
    fn legacy_limits() {
        assert_eq!(limit_legacy(3, 100, 1, 1000), step(6, UP_LIMIT));
        assert_eq!(limit_legacy(1, 100, 1, 1000), step(4, UP_LIMIT));
        assert_eq!(limit_legacy(3, 100, 1, 5), step(5, TOO_MANY));
        assert_eq!(limit_legacy(3, 0, 2, 5), step(2, TOO_FEW));
        assert_eq!(limit_legacy(3, 4, 2, 5), step(4, WITHIN_RANGE));
    }
}
