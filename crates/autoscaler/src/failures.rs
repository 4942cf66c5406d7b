//! Metrics that keep failing, and their fallbacks. Each failing metric's first failure time is
//! kept in status (`metricFailures`), so a restart or a new leader neither resets nor shortens
//! the count. Once a metric with a `fallback` has failed for its `failureDurationSeconds`, it
//! proposes the fallback's replica count instead of blocking scale-down; before that, and
//! without a fallback, a failing metric keeps the HPA's rule (it never causes a scale-down).

use ferroscale_api::{AutoscalerCondition, MetricFailure, MetricSpec};
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::conditions;
use crate::metric::MetricOutcome;
use crate::time::minus_seconds;
use crate::types::Event;

pub const FALLBACK_ACTIVE: &str = "FallbackActive";

/// The failing metrics, by index into spec.metrics, with when each first failed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Failures(Vec<(usize, Timestamp)>);

impl Failures {
    pub fn read(list: Option<&Vec<MetricFailure>>) -> Self {
        let mut failures: Vec<(usize, Timestamp)> = list
            .into_iter()
            .flatten()
            .filter_map(|f| Some((usize::try_from(f.index).ok()?, f.since.0)))
            .collect();
        failures.sort_by_key(|(i, _)| *i);
        failures.dedup_by_key(|(i, _)| *i);
        Self(failures)
    }

    /// Since when metric `index` fails, if it does.
    pub fn since(&self, index: usize) -> Option<Timestamp> {
        self.0.iter().find(|(i, _)| *i == index).map(|(_, t)| *t)
    }

    /// Records this evaluation: metrics read and failed start (or continue) failing, metrics
    /// read and computed stop. Metrics not read keep what they had; entries past the spec's
    /// metrics (after an edit) go.
    pub fn update(&mut self, outcomes: &[MetricOutcome], now: Timestamp) {
        self.0.retain(|(i, _)| *i < outcomes.len());
        for (i, m) in outcomes.iter().enumerate() {
            if m.skipped {
                continue;
            }
            let failing = m.error.is_some() || m.replicas.is_none();
            match (failing, self.since(i)) {
                (true, None) => self.0.push((i, now)),
                (false, Some(_)) => self.0.retain(|(j, _)| *j != i),
                _ => {}
            }
        }
        self.0.sort_by_key(|(i, _)| *i);
    }

    /// For status: None when nothing fails, so the field is absent.
    pub fn to_status(&self) -> Option<Vec<MetricFailure>> {
        (!self.0.is_empty()).then(|| {
            self.0
                .iter()
                .map(|(i, since)| MetricFailure {
                    index: i32::try_from(*i).unwrap_or(i32::MAX),
                    since: Time(*since),
                })
                .collect()
        })
    }
}

/// Sets the fallback of every metric that has failed long enough; returns their indices.
pub fn apply(specs: &[MetricSpec], outcomes: &mut [MetricOutcome], failures: &Failures, now: Timestamp) -> Vec<usize> {
    let mut applied = Vec::new();
    for (i, (spec, m)) in specs.iter().zip(outcomes.iter_mut()).enumerate() {
        let (Some(fallback), Some(since)) = (spec.fallback(), failures.since(i)) else {
            continue;
        };
        if m.skipped || since > minus_seconds(now, fallback.failure_duration_seconds_or_default()) {
            continue;
        }
        m.fallback = Some(fallback.replicas);
        m.description = format!("the fallback of metric {i} ({})", spec.type_.as_str());
        applied.push(i);
    }
    applied
}

/// Keeps the FallbackActive condition of Autoscalers that configure a fallback, and records
/// an event when fallbacks start and end.
pub fn record(
    conds: &mut Vec<AutoscalerCondition>,
    events: &mut Vec<Event>,
    specs: &[MetricSpec],
    applied: &[usize],
    failures: &Failures,
    now: Timestamp,
) {
    if !specs.iter().any(|m| m.fallback().is_some()) {
        return;
    }
    let was_active = conditions::find(conds, FALLBACK_ACTIVE).is_some_and(|c| c.status == "True");
    if applied.is_empty() {
        conditions::set(
            conds,
            FALLBACK_ACTIVE,
            false,
            "MetricsAvailable",
            "no metric uses its fallback",
            now,
        );
        if was_active {
            events.push(Event {
                warning: false,
                reason: "FallbackEnded".into(),
                message: "every metric with a fallback can be read again".into(),
            });
        }
        return;
    }
    let parts: Vec<String> = applied
        .iter()
        .filter_map(|&i| {
            let replicas = specs.get(i)?.fallback()?.replicas;
            let since = failures.since(i)?;
            Some(format!(
                "metric {i} ({}) failing since {since} proposes {replicas}",
                specs[i].type_.as_str()
            ))
        })
        .collect();
    let message = parts.join("; ");
    conditions::set(conds, FALLBACK_ACTIVE, true, "FallbackApplied", message.clone(), now);
    if !was_active {
        events.push(Event {
            warning: true,
            reason: "FallbackStarted".into(),
            message,
        });
    }
}
