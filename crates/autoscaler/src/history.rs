//! The history that stabilization windows and rate limits read, kept in the Autoscaler's
//! status so that a restart or a new leader forgets nothing: the recent unstabilized
//! recommendations, and the replicas added and removed by recent rescales.
//!
//! Upstream keeps every evaluation's recommendation with its time. A window only asks whether
//! a replica count was recommended inside it, so only the newest time of each count matters:
//! that is what `past` keeps, which changes no decision. The latest evaluations'
//! recommendation is kept as `current`, with the time it was first made: it is recommended at
//! every evaluation from then on, so an evaluation that repeats it changes nothing in status.
//! When it ends (another count, or an evaluation that recommends nothing), it joins `past`
//! with the time it was last made: the caller's memory of that time when it has one, else one
//! sync period before the evaluation that ends it, as a steady controller would have made it.

use std::collections::HashMap;
use std::time::Duration;

use ferroscale_api::{AutoscalerStatus, Recommendation, ScaleEvent};
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::behavior::{Rules, TimedReplicas};
use crate::time::{minus, minus_seconds};

/// The history as one evaluation reads and extends it.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    /// Recommendations no longer current: the newest time each count was recommended, oldest
    /// first.
    pub past: Vec<TimedReplicas>,
    /// The current recommendation and the time it was first made.
    pub current: Option<TimedReplicas>,
    /// Replicas added by recent rescales.
    pub scale_ups: Vec<TimedReplicas>,
    /// Replicas removed by recent rescales.
    pub scale_downs: Vec<TimedReplicas>,
}

/// Keeps the newest time of each replica count, oldest first.
fn newest_of_each(list: impl IntoIterator<Item = TimedReplicas>) -> Vec<TimedReplicas> {
    let mut newest: HashMap<i32, Timestamp> = HashMap::new();
    for r in list {
        let at = newest.entry(r.replicas).or_insert(r.timestamp);
        *at = (*at).max(r.timestamp);
    }
    let mut past: Vec<TimedReplicas> = newest
        .into_iter()
        .map(|(replicas, timestamp)| TimedReplicas { timestamp, replicas })
        .collect();
    past.sort_by_key(|r| (r.timestamp, r.replicas));
    past
}

impl History {
    /// The history in `status`. A never-evaluated Autoscaler (no `recommendations` key) starts
    /// with the current count recommended now, so it does not scale down before one
    /// stabilization window has passed. Status written before `current` existed holds only
    /// past recommendations, and is read as such.
    pub fn read(status: Option<&AutoscalerStatus>, current_replicas: i32, now: Timestamp) -> Self {
        let timed = |r: &Recommendation| TimedReplicas {
            timestamp: r.timestamp.0,
            replicas: r.replicas,
        };
        let (past, current) = match status.and_then(|s| s.recommendations.as_ref()) {
            None => (
                vec![TimedReplicas {
                    timestamp: now,
                    replicas: current_replicas,
                }],
                None,
            ),
            Some(list) => {
                // Only one can be current; should a status hold more, the newest is.
                let current = list
                    .iter()
                    .filter(|r| r.current)
                    .max_by_key(|r| r.timestamp.0)
                    .map(timed);
                let past = list.iter().map(timed).filter(|r| Some(*r) != current);
                (newest_of_each(past), current)
            }
        };
        let events = |list: Option<&Vec<ScaleEvent>>| {
            list.into_iter()
                .flatten()
                .map(|e| TimedReplicas {
                    timestamp: e.timestamp.0,
                    replicas: e.change,
                })
                .collect()
        };
        Self {
            past,
            current,
            scale_ups: events(status.and_then(|s| s.scale_up_events.as_ref())),
            scale_downs: events(status.and_then(|s| s.scale_down_events.as_ref())),
        }
    }

    /// When the current recommendation was last made: `remembered` when the caller knows it
    /// (and it fits), else one sync period before `now`, never before the recommendation began.
    pub fn last_made(&self, remembered: Option<Timestamp>, now: Timestamp, sync_period: Duration) -> Timestamp {
        let Some(current) = self.current else { return now };
        match remembered {
            Some(at) if at >= current.timestamp && at < now => at,
            _ => minus(now, sync_period).max(current.timestamp),
        }
    }

    /// The recommendations a window sees at this evaluation, before it records its own: the
    /// past ones, and the current one as last made at `last_made`.
    pub fn window(&self, last_made: Timestamp) -> Vec<TimedReplicas> {
        let mut window = self.past.clone();
        if let Some(current) = self.current {
            window.push(TimedReplicas {
                timestamp: last_made,
                replicas: current.replicas,
            });
        }
        window
    }

    /// Records this evaluation's (unstabilized) recommendation. Repeating the current one
    /// changes nothing; another count ends it and becomes current.
    pub fn record(&mut self, replicas: i32, now: Timestamp, last_made: Timestamp) {
        if self.current.is_some_and(|c| c.replicas == replicas) {
            return;
        }
        self.end_current(last_made);
        // Older past entries of this count can never matter again: it is recommended now.
        self.past.retain(|r| r.replicas != replicas);
        self.current = Some(TimedReplicas {
            timestamp: now,
            replicas,
        });
    }

    /// Ends the current recommendation (an evaluation that recommends nothing): it becomes a
    /// past one, last made at `last_made`.
    pub fn end_current(&mut self, last_made: Timestamp) {
        if let Some(ended) = self.current.take() {
            self.past.retain(|r| r.replicas != ended.replicas);
            self.past.push(TimedReplicas {
                timestamp: last_made,
                replicas: ended.replicas,
            });
            self.past.sort_by_key(|r| (r.timestamp, r.replicas));
        }
    }

    /// Records a rescale from `current` to `desired`.
    pub fn record_rescale(&mut self, current: i32, desired: i32, now: Timestamp) {
        let change = TimedReplicas {
            timestamp: now,
            replicas: desired.saturating_sub(current).saturating_abs(),
        };
        if desired > current {
            self.scale_ups.push(change);
        } else {
            self.scale_downs.push(change);
        }
    }

    /// Drops what no window or policy period can reach any more: past recommendations older
    /// than the longest stabilization window, scale events outside their direction's longest
    /// period. The current recommendation always stays.
    pub fn prune(&mut self, rules: Option<&(Rules, Rules)>, legacy_window: Duration, now: Timestamp) {
        let window = match rules {
            None => legacy_window,
            Some((up, down)) => Duration::from_secs(up.window_seconds.max(down.window_seconds).max(0) as u64),
        };
        let cutoff = minus(now, window);
        self.past.retain(|r| r.timestamp >= cutoff);
        let (up_period, down_period) = rules.map_or((0, 0), |(u, d)| (u.longest_period(), d.longest_period()));
        self.scale_ups.retain(|e| e.timestamp > minus_seconds(now, up_period));
        self.scale_downs
            .retain(|e| e.timestamp > minus_seconds(now, down_period));
    }

    /// Writes the history into `status`: past recommendations oldest first, then the current.
    pub fn write(&self, status: &mut AutoscalerStatus) {
        let recommendation = |r: &TimedReplicas, current: bool| Recommendation {
            timestamp: Time(r.timestamp),
            replicas: r.replicas,
            current,
        };
        let mut recommendations: Vec<Recommendation> = self.past.iter().map(|r| recommendation(r, false)).collect();
        recommendations.extend(self.current.iter().map(|r| recommendation(r, true)));
        status.recommendations = Some(recommendations);
        let events = |list: &[TimedReplicas]| {
            list.iter()
                .map(|e| ScaleEvent {
                    timestamp: Time(e.timestamp),
                    change: e.replicas,
                })
                .collect()
        };
        status.scale_up_events = Some(events(&self.scale_ups));
        status.scale_down_events = Some(events(&self.scale_downs));
    }
}

/// What a long-running caller (the controller, `simulate`) remembers of one Autoscaler between
/// evaluations: when the current recommendation in its status was last made. A steady
/// Autoscaler's status does not record that time, and a restarted controller assumes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Remembered {
    current: TimedReplicas,
    made_at: Timestamp,
}

/// The current recommendation in a status, if any.
fn current_of(status: &AutoscalerStatus) -> Option<TimedReplicas> {
    status
        .recommendations
        .iter()
        .flatten()
        .filter(|r| r.current)
        .max_by_key(|r| r.timestamp.0)
        .map(|r| TimedReplicas {
            timestamp: r.timestamp.0,
            replicas: r.replicas,
        })
}

impl Remembered {
    /// What to remember after an evaluation at `now` that wrote `status`; None when it made
    /// no recommendation.
    pub fn after(made_recommendation: bool, status: &AutoscalerStatus, now: Timestamp) -> Option<Self> {
        let current = current_of(status).filter(|_| made_recommendation)?;
        Some(Self { current, made_at: now })
    }

    /// The time to pass as the input's `last_recommended` for an evaluation of `status`: known
    /// only if the status still holds the recommendation remembered.
    pub fn last_made(&self, status: Option<&AutoscalerStatus>) -> Option<Timestamp> {
        (status.and_then(current_of) == Some(self.current)).then_some(self.made_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-01-01T00:10:00Z".parse().unwrap()
    }

    fn at(seconds_ago: i64, replicas: i32) -> TimedReplicas {
        TimedReplicas {
            timestamp: now() - jiff::SignedDuration::from_secs(seconds_ago),
            replicas,
        }
    }

    fn status(list: &[(i64, i32, bool)]) -> AutoscalerStatus {
        AutoscalerStatus {
            recommendations: Some(
                list.iter()
                    .map(|(ago, replicas, current)| Recommendation {
                        timestamp: Time(at(*ago, 0).timestamp),
                        replicas: *replicas,
                        current: *current,
                    })
                    .collect(),
            ),
            ..AutoscalerStatus::default()
        }
    }

    const PERIOD: Duration = Duration::from_secs(15);

    #[test]
    fn status_of_0_1_keeps_the_newest_time_of_each_count() {
        let h = History::read(
            Some(&status(&[(90, 4), (60, 5), (30, 4)].map(|(a, r)| (a, r, false)))),
            4,
            now(),
        );
        assert_eq!(h.past, vec![at(60, 5), at(30, 4)]);
        assert_eq!(h.current, None);
        assert_eq!(
            h.window(now()),
            h.past,
            "nothing current: the window sees the past only"
        );
    }

    #[test]
    fn a_never_evaluated_autoscaler_starts_from_the_current_count() {
        let h = History::read(None, 7, now());
        assert_eq!((h.past, h.current), (vec![at(0, 7)], None));
    }

    #[test]
    fn repeating_the_current_recommendation_changes_nothing() {
        let mut h = History::read(Some(&status(&[(120, 9, false), (60, 4, true)])), 4, now());
        let before = h.clone();
        let last = h.last_made(None, now(), PERIOD);
        h.record(4, now(), last);
        assert_eq!(h, before);
    }

    #[test]
    fn a_new_count_ends_the_current_one_at_its_last_making() {
        let mut h = History::read(Some(&status(&[(300, 6, false), (200, 4, true)])), 4, now());
        assert_eq!(
            h.last_made(None, now(), PERIOD),
            at(15, 0).timestamp,
            "one sync period ago"
        );
        let remembered = Some(at(14, 0).timestamp);
        let last = h.last_made(remembered, now(), PERIOD);
        assert_eq!(last, at(14, 0).timestamp, "the caller's memory wins");
        assert_eq!(h.window(last), vec![at(300, 6), at(14, 4)]);
        h.record(6, now(), last);
        assert_eq!(h.past, vec![at(14, 4)], "the older 6 is superseded by the new one");
        assert_eq!(h.current, Some(at(0, 6)));
        let mut written = AutoscalerStatus::default();
        h.write(&mut written);
        let list = written.recommendations.unwrap();
        assert_eq!(
            list.iter().map(|r| (r.replicas, r.current)).collect::<Vec<_>>(),
            [(4, false), (6, true)]
        );
    }

    #[test]
    fn memory_that_does_not_fit_the_current_recommendation_is_ignored() {
        let h = History::read(Some(&status(&[(10, 4, true)])), 4, now());
        assert_eq!(
            h.last_made(Some(at(60, 0).timestamp), now(), PERIOD),
            at(10, 0).timestamp
        );
        assert_eq!(
            h.last_made(Some(now()), now(), PERIOD),
            at(10, 0).timestamp,
            "not before it began"
        );
    }

    #[test]
    fn an_evaluation_without_a_recommendation_ends_the_current_one() {
        let mut h = History::read(Some(&status(&[(100, 3, false), (50, 5, true)])), 5, now());
        h.end_current(at(15, 0).timestamp);
        assert_eq!((h.past.clone(), h.current), (vec![at(100, 3), at(15, 5)], None));
        h.prune(None, Duration::from_secs(60), now());
        assert_eq!(
            h.past,
            vec![at(15, 5)],
            "past entries leave the window; the legacy cutoff counts"
        );
    }

    #[test]
    fn the_current_recommendation_is_never_pruned() {
        let mut h = History::read(Some(&status(&[(3600, 2, true)])), 2, now());
        h.prune(None, Duration::from_secs(300), now());
        assert_eq!(h.current, Some(at(3600, 2)));
    }
}
