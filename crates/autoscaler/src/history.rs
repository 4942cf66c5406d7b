//! The history that stabilization windows and rate limits read, kept in the Autoscaler's
//! status so that a restart or a new leader forgets nothing: the recent unstabilized
//! recommendations, and the replicas added and removed by recent rescales.

use std::time::Duration;

use ferroscale_api::{AutoscalerStatus, Recommendation, ScaleEvent};
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::behavior::{Rules, TimedReplicas};
use crate::time::{minus, minus_seconds};

/// The history as one evaluation reads and extends it.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    /// Recommendations, oldest first.
    pub recommendations: Vec<TimedReplicas>,
    /// Replicas added by recent rescales.
    pub scale_ups: Vec<TimedReplicas>,
    /// Replicas removed by recent rescales.
    pub scale_downs: Vec<TimedReplicas>,
}

impl History {
    /// The history in `status`. A never-evaluated Autoscaler (no `recommendations` key) starts
    /// with the current count recommended now, so it does not scale down before one
    /// stabilization window has passed.
    pub fn read(status: Option<&AutoscalerStatus>, current: i32, now: Timestamp) -> Self {
        let recommendations = match status.and_then(|s| s.recommendations.as_ref()) {
            Some(list) => list
                .iter()
                .map(|r| TimedReplicas {
                    timestamp: r.timestamp.0,
                    replicas: r.replicas,
                })
                .collect(),
            None => vec![TimedReplicas {
                timestamp: now,
                replicas: current,
            }],
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
            recommendations,
            scale_ups: events(status.and_then(|s| s.scale_up_events.as_ref())),
            scale_downs: events(status.and_then(|s| s.scale_down_events.as_ref())),
        }
    }

    /// Records the metrics' (unstabilized) proposal of this evaluation.
    pub fn record(&mut self, replicas: i32, now: Timestamp) {
        self.recommendations.push(TimedReplicas {
            timestamp: now,
            replicas,
        });
    }

    /// Records a rescale from `current` to `desired`.
    pub fn record_rescale(&mut self, current: i32, desired: i32, now: Timestamp) {
        let change = TimedReplicas {
            timestamp: now,
            replicas: (desired - current).abs(),
        };
        if desired > current {
            self.scale_ups.push(change);
        } else {
            self.scale_downs.push(change);
        }
    }

    /// Drops what no window or policy period can reach any more: recommendations older than
    /// the longest stabilization window, scale events outside their direction's longest period.
    pub fn prune(&mut self, rules: Option<&(Rules, Rules)>, legacy_window: Duration, now: Timestamp) {
        let window = match rules {
            None => legacy_window,
            Some((up, down)) => Duration::from_secs(up.window_seconds.max(down.window_seconds).max(0) as u64),
        };
        let cutoff = minus(now, window);
        self.recommendations.retain(|r| r.timestamp >= cutoff);
        let (up_period, down_period) = rules.map_or((0, 0), |(u, d)| (u.longest_period(), d.longest_period()));
        self.scale_ups.retain(|e| e.timestamp > minus_seconds(now, up_period));
        self.scale_downs
            .retain(|e| e.timestamp > minus_seconds(now, down_period));
    }

    /// Writes the history into `status`.
    pub fn write(&self, status: &mut AutoscalerStatus) {
        status.recommendations = Some(
            self.recommendations
                .iter()
                .map(|r| Recommendation {
                    timestamp: Time(r.timestamp),
                    replicas: r.replicas,
                })
                .collect(),
        );
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
