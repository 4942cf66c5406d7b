//! Combining the metrics' proposals into one, with the HPA's rule for metrics that failed.

use ferroscale_api::{AutoscalerCondition, MetricSourceType};
use jiff::Timestamp;

use crate::conditions::{self, SCALING_ACTIVE};
use crate::metric::MetricOutcome;
use crate::samples::FORBIDDEN_METRIC_SOURCE;
use crate::types::Event;

/// The maximum over the `counted` outcomes, with the HPA's rule for invalid ones: they are
/// ignored when the valid ones propose a scale-up (or no change), and block everything
/// otherwise. Every failure among `reported` becomes an event.
pub fn combine(
    counted: &[MetricOutcome],
    reported: &[&MetricOutcome],
    events: &mut Vec<Event>,
    conds: &mut Vec<AutoscalerCondition>,
    current: i32,
    now: Timestamp,
) -> Result<(i32, String), String> {
    let mut best: Option<(i32, &str)> = None;
    let mut invalid = 0;
    let mut first_error: Option<(&str, &str)> = None;
    // Metrics this evaluation did not read take no part.
    let read: Vec<&MetricOutcome> = counted.iter().filter(|m| !m.skipped).collect();
    for m in &read {
        if m.failed() {
            invalid += 1;
            first_error.get_or_insert((reason_of(m), m.error.as_deref().unwrap_or("no proposal")));
        } else if let Some(replicas) = m.counted()
            && best.is_none_or(|(b, _)| b == 0 || replicas > b)
        {
            best = Some((replicas, &m.description));
        }
    }
    for m in reported {
        if let Some(error) = &m.error {
            events.push(Event {
                warning: true,
                reason: reason_of(m).into(),
                message: error.clone(),
            });
        }
    }
    let total = read.len();
    let replicas = best.map_or(0, |(r, _)| r);
    if let Some((reason, error)) = first_error
        && (invalid >= total || replicas < current)
    {
        conditions::set(
            conds,
            SCALING_ACTIVE,
            false,
            reason,
            format!("the HPA was unable to compute the replica count: {error}"),
            now,
        );
        return Err(format!(
            "invalid metrics ({invalid} invalid out of {total}), first error is: {error}"
        ));
    }
    let description = best.map_or_else(String::new, |(_, d)| d.to_string());
    conditions::set(
        conds,
        SCALING_ACTIVE,
        true,
        "ValidMetricFound",
        format!("the HPA was able to successfully calculate a replica count from {description}"),
        now,
    );
    Ok((replicas, description))
}

pub fn reason_of(m: &MetricOutcome) -> &'static str {
    if m.error
        .as_deref()
        .is_some_and(|e| e.starts_with(FORBIDDEN_METRIC_SOURCE))
    {
        return FORBIDDEN_METRIC_SOURCE;
    }
    if m.formula {
        return "FailedEvaluateFormula";
    }
    match m.source {
        Some(MetricSourceType::Resource) | None => "FailedGetResourceMetric",
        Some(MetricSourceType::ContainerResource) => "FailedGetContainerResourceMetric",
        Some(MetricSourceType::Pods) => "FailedGetPodsMetric",
        Some(MetricSourceType::Object) => "FailedGetObjectMetric",
        Some(MetricSourceType::External) => "FailedGetExternalMetric",
        Some(MetricSourceType::Prometheus) => "FailedGetPrometheusMetric",
        Some(MetricSourceType::Unknown) => "InvalidMetricSourceType",
    }
}
