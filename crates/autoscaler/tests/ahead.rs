//! Scaling ahead of the load, decided by the core: schedules raise the bounds, a formula
//! replaces the maximum over metrics, and a predictive metric proposes from its forecast.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use std::time::Duration;

use common::*;
use ferroscale_api::*;
use ferroscale_autoscaler::samples::Series;
use ferroscale_autoscaler::{MetricValues, Path};
use jiff::{SignedDuration, Timestamp};

fn named(name: &str, mut metric: MetricSpec) -> MetricSpec {
    metric.name = Some(name.into());
    metric
}

fn condition(d: &ferroscale_autoscaler::Decision, type_: &str) -> Option<(String, String, String)> {
    d.status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == type_)
        .map(|c| {
            (
                c.status.clone(),
                c.reason.clone().unwrap_or_default(),
                c.message.clone().unwrap_or_default(),
            )
        })
}

fn business_hours(min: i32) -> Schedule {
    Schedule {
        name: "business-hours".into(),
        // now() is Thursday 2026-01-01 00:00 UTC: 09:00 in Tokyo.
        start: "0 9 * * 1-5".into(),
        end: "0 18 * * 1-5".into(),
        timezone: Some("Asia/Tokyo".into()),
        min_replicas: Some(min),
        max_replicas: Some(20),
    }
}

#[test]
fn an_active_schedule_raises_the_minimum_and_names_itself() {
    let mut s = spec(Some(1), 10, vec![external_value("100")]);
    s.schedules = Some(vec![business_hours(6)]);
    // The metric alone proposes 2 of 2 replicas.
    let case = Case::new(s, 2, pods(2, 0), vec![Ok(MetricValues::External(vec![100_000]))]);
    let d = case.decide();
    assert_eq!(d.path, Path::OutOfRange);
    assert_eq!(d.desired_replicas, 6);
    assert_eq!((d.bounds.min, d.bounds.max), (6, 20));
    let (status, reason, message) = condition(&d, "ScheduleActive").unwrap();
    assert_eq!((status.as_str(), reason.as_str()), ("True", "ScheduleActive"));
    assert!(message.contains("business-hours"), "{message}");
}

#[test]
fn outside_its_window_the_spec_bounds_apply_again() {
    let mut s = spec(Some(1), 10, vec![external_value("100")]);
    s.schedules = Some(vec![business_hours(6)]);
    let mut case = Case::new(s, 6, pods(6, 0), vec![Ok(MetricValues::External(vec![200_000]))]);
    // 18:00 in Tokyo: the window has ended, and the metric's proposal (twice its target over 6
    // ready pods: 12) is bounded by the spec's own maximum.
    case.now = "2026-01-01T09:00:00Z".parse().unwrap();
    let d = case.decide();
    assert_eq!((d.bounds.min, d.bounds.max), (1, 10));
    assert_eq!(d.desired_replicas, 10, "the spec's max bounds the proposal of 12");
    assert_eq!(condition(&d, "ScheduleActive").unwrap().1, "NoScheduleActive");
}

#[test]
fn an_invalid_cron_or_time_zone_is_an_invalid_spec_naming_the_field() {
    let mut s = spec(Some(1), 10, vec![external_value("100")]);
    let mut bad = business_hours(6);
    bad.timezone = Some("Europe/Atlantis".into());
    s.schedules = Some(vec![bad]);
    let d = Case::new(s, 2, pods(2, 0), vec![Ok(MetricValues::External(vec![100_000]))]).decide();
    assert_eq!(d.path, Path::InvalidSpec);
    let (_, reason, message) = condition(&d, "ScalingActive").unwrap();
    assert_eq!(reason, "InvalidSpec");
    assert!(message.contains("spec.schedules[0].timezone"), "{message}");
}

fn queue_and_rps() -> Vec<MetricSpec> {
    vec![
        named("queue", external_value("50")),
        named("rps", prometheus(MetricTargetType::Value, "200")),
    ]
}

fn formula(expression: &str, target: &str) -> Formula {
    Formula {
        expression: expression.into(),
        target: MetricTarget {
            type_: MetricTargetType::AverageValue,
            value: None,
            average_value: q(target),
            average_utilization: None,
        },
        activation_threshold: None,
    }
}

#[test]
fn a_formula_replaces_the_maximum_over_metrics() {
    let mut s = spec(Some(1), 50, queue_and_rps());
    s.formula = Some(formula("max(queue / 50, rps / 200)", "1"));
    // queue 600 → 12 workers; rps 1000 → 5: the formula says 12.
    let case = Case::new(
        s,
        4,
        pods(4, 0),
        vec![
            Ok(MetricValues::External(vec![600_000])),
            Ok(MetricValues::Prometheus(1_000_000)),
        ],
    );
    let d = case.decide();
    assert_eq!(d.proposal, Some(12));
    assert_eq!(d.desired_replicas, 8, "the HPA's default scale-up limit still applies");
    let f = d.formula.as_ref().unwrap();
    assert_eq!(f.result, Some(12.0));
    assert_eq!(
        f.inputs.iter().map(|i| (i.name.as_str(), i.value)).collect::<Vec<_>>(),
        [("queue", Some(600.0)), ("rps", Some(1000.0))]
    );
    assert!(
        d.reason.as_deref().unwrap_or("").starts_with("formula max("),
        "{:?}",
        d.reason
    );
}

#[test]
fn a_formula_input_that_fails_blocks_as_a_failed_metric_does_and_its_fallback_stands_in() {
    let mut s = spec(Some(1), 50, queue_and_rps());
    s.formula = Some(formula("max(queue / 50, rps / 200)", "1"));
    let failing = vec![
        Ok(MetricValues::External(vec![600_000])),
        Err("connection refused".to_string()),
    ];
    let d = Case::new(s.clone(), 4, pods(4, 0), failing.clone()).decide();
    assert_eq!(d.path, Path::MetricsFailed);
    assert_eq!(d.desired_replicas, 4);
    assert!(d.events.iter().any(|e| e.reason == "FailedEvaluateFormula"));
    // With a fallback on the failing input, failing for longer than its duration, the fallback
    // stands in for the formula.
    if let Some(p) = s.metrics.as_mut().and_then(|m| m[1].prometheus.as_mut()) {
        p.fallback = Some(Fallback {
            failure_duration_seconds: Some(60),
            replicas: 9,
        });
    }
    let d = Case::new(s, 4, pods(4, 0), failing)
        .with_status(|st| {
            st.metric_failures = Some(vec![MetricFailure {
                index: 1,
                since: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(ago(120)),
            }])
        })
        .decide();
    assert_eq!(d.proposal, Some(9));
}

#[test]
fn an_invalid_formula_names_the_column() {
    let mut s = spec(Some(1), 50, queue_and_rps());
    s.formula = Some(formula("max(queue / 50, latency)", "1"));
    let d = Case::new(s, 4, pods(4, 0), vec![]).decide();
    assert_eq!(d.path, Path::InvalidSpec);
    let message = condition(&d, "ScalingActive").unwrap().2;
    assert!(
        message.contains("spec.formula.expression: at column 17: \"latency\" names no metric"),
        "{message}"
    );
}

#[test]
fn a_formula_decides_scale_to_zero_by_its_activation() {
    let mut s = spec(Some(0), 50, queue_and_rps());
    let mut f = formula("queue > 0 ? max(queue / 30, 1) : 0", "1");
    f.activation_threshold = q("0");
    s.formula = Some(f);
    let idle = vec![Ok(MetricValues::External(vec![0])), Ok(MetricValues::Prometheus(0))];
    let d = Case::new(s.clone(), 2, pods(2, 0), idle).decide();
    assert_eq!(d.proposal, Some(0));
    let busy = vec![
        Ok(MetricValues::External(vec![90_000])),
        Ok(MetricValues::Prometheus(0)),
    ];
    let d = Case::new(s, 2, pods(2, 0), busy).decide();
    assert_eq!(d.proposal, Some(3));
}

fn predictive_metric(model: PredictiveModel, scale_down: bool) -> MetricSpec {
    let mut m = prometheus(MetricTargetType::AverageValue, "100");
    if let Some(p) = m.prometheus.as_mut() {
        p.predictive = Some(Predictive {
            model,
            history: Some("20m".into()),
            look_ahead: Some("2m".into()),
            season: Some("10m".into()),
            window: None,
            max_error_percent: None,
            scale_down: Some(scale_down),
        });
    }
    m
}

/// A load that repeats every 10 minutes: 100 for 5 minutes, then 800 for 5, sampled every 15 s
/// for 20 minutes up to `end`.
fn square_history(end: Timestamp) -> Series {
    let points = (0..80)
        .map(|i| {
            let t = end - SignedDuration::from_secs(15 * (79 - i));
            let phase = (t.as_second().rem_euclid(600)) / 300;
            (t, if phase == 0 { 100.0 } else { 800.0 })
        })
        .collect();
    Series {
        step: Duration::from_secs(15),
        points,
    }
}

#[test]
fn a_forecast_raises_the_proposal_ahead_of_a_load_seen_a_season_ago() {
    // 4 minutes into the 10-minute season the load is 100; 2 minutes ahead it is 800.
    let now: Timestamp = "2026-01-01T00:04:00Z".parse().unwrap();
    let s = spec(
        Some(1),
        20,
        vec![predictive_metric(PredictiveModel::SeasonalNaive, false)],
    );
    let mut case = Case::new(s, 1, pods(1, 0), vec![Ok(MetricValues::Prometheus(100_000))]);
    case.now = now;
    case.series = vec![Some(Ok(square_history(now)))];
    let d = case.decide();
    let forecast = d.metrics[0].forecast.as_ref().unwrap();
    assert!(forecast.used, "{forecast:?}");
    assert_eq!(forecast.replicas, Some(8));
    assert_eq!(forecast.reactive, Some(1));
    assert_eq!(d.proposal, Some(8));
    let (status, reason, message) = condition(&d, "PredictionActive").unwrap();
    assert_eq!((status.as_str(), reason.as_str()), ("True", "ForecastUsed"));
    assert!(message.contains("SeasonalNaive forecasts 800"), "{message}");
    let written = &d.status.forecasts.as_ref().unwrap()[0];
    assert_eq!((written.index, written.used, written.replicas), (0, true, Some(8)));
    assert_eq!(written.value.as_ref().map(|q| q.0.as_str()), Some("800"));
}

#[test]
fn a_forecast_lowers_nothing_unless_scale_down_is_allowed() {
    // 9 minutes in: the load is 800 now and will be 100 in 2 minutes.
    let now: Timestamp = "2026-01-01T00:09:00Z".parse().unwrap();
    for (scale_down, proposal) in [(false, 8), (true, 1)] {
        let s = spec(
            Some(1),
            20,
            vec![predictive_metric(PredictiveModel::SeasonalNaive, scale_down)],
        );
        let mut case = Case::new(s, 8, pods(8, 0), vec![Ok(MetricValues::Prometheus(800_000))]);
        case.now = now;
        case.series = vec![Some(Ok(square_history(now)))];
        assert_eq!(case.decide().proposal, Some(proposal), "scaleDown: {scale_down}");
    }
}

#[test]
fn a_model_that_errs_too_much_or_a_history_that_cannot_be_read_leaves_the_metric_reactive() {
    let now: Timestamp = "2026-01-01T00:04:00Z".parse().unwrap();
    let s = spec(
        Some(1),
        20,
        vec![predictive_metric(PredictiveModel::SeasonalNaive, false)],
    );
    // The last season differs from the one before: a large error.
    let mut noisy = square_history(now);
    for (i, (_, v)) in noisy.points.iter_mut().enumerate() {
        if i >= 40 {
            *v = if *v > 400.0 { 100.0 } else { 800.0 };
        }
    }
    for (series, reason) in [
        (Some(Ok(noisy)), "ForecastErrorTooHigh"),
        (
            Some(Err("Prometheus at http://p:9090 did not answer".to_string())),
            "HistoryUnavailable",
        ),
        (None, "HistoryUnavailable"),
    ] {
        let mut case = Case::new(s.clone(), 1, pods(1, 0), vec![Ok(MetricValues::Prometheus(100_000))]);
        case.now = now;
        case.series = vec![series];
        let d = case.decide();
        assert_eq!(d.proposal, Some(1), "{reason}");
        let (status, got, _) = condition(&d, "PredictionActive").unwrap();
        assert_eq!((status.as_str(), got.as_str()), ("False", reason));
        assert!(!d.status.forecasts.as_ref().unwrap()[0].used);
    }
}

#[test]
fn the_same_history_at_the_same_time_gives_the_same_decision() {
    // The hidden-state rule: nothing but the spec, the time, the pods and Prometheus' history
    // decides a forecast, so an operator restarted in between decides the same.
    let now: Timestamp = "2026-01-01T00:04:00Z".parse().unwrap();
    let s = spec(
        Some(1),
        20,
        vec![predictive_metric(PredictiveModel::HoltWinters, false)],
    );
    let mut case = Case::new(s, 1, pods(1, 0), vec![Ok(MetricValues::Prometheus(100_000))]);
    case.now = now;
    case.series = vec![Some(Ok(square_history(now)))];
    let first = case.decide();
    let restarted = case.decide();
    assert_eq!(first, restarted);
}

#[test]
fn a_bad_metric_name_stops_the_evaluation_but_an_empty_upstream_metric_name_stays_that_metrics_failure() {
    let mut bad = named("Queue_1", external_value("50"));
    let s = spec(Some(1), 10, vec![bad.clone()]);
    let d = Case::new(s, 2, pods(2, 0), vec![Ok(MetricValues::External(vec![100_000]))]).decide();
    assert_eq!(d.path, Path::InvalidSpec);
    assert!(
        condition(&d, "ScalingActive")
            .unwrap()
            .2
            .contains("spec.metrics[0].name")
    );
    // An empty metric name inside the upstream fields is reported as the HPA reports it.
    bad.name = None;
    if let Some(e) = bad.external.as_mut() {
        e.metric.name = String::new();
    }
    let s = spec(Some(1), 10, vec![bad]);
    let d = Case::new(s, 2, pods(2, 0), vec![Ok(MetricValues::External(vec![100_000]))]).decide();
    assert_ne!(d.path, Path::InvalidSpec);
}
