//! Scale to zero and back (activation thresholds, the zero remembered in status, maintenance
//! zeros), and fallbacks of metrics that keep failing (the failure time kept in status).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use common::*;
use ferroscale_api::ScalingPolicyType::{Percent, Pods};
use ferroscale_api::{AutoscalerCondition, Behavior, Fallback, MetricFailure, MetricSpec};
use ferroscale_autoscaler::Path;
use ferroscale_autoscaler::{Decision, Gathered, MetricValues};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// An External metric (target an average of 10 per replica) reading `value`.
fn queue(value: i64) -> Gathered {
    Ok(MetricValues::External(vec![value * 1000]))
}

fn queue_metric(threshold: Option<&str>, fallback: Option<i32>) -> MetricSpec {
    let mut m = external_average("10");
    let external = m.external.as_mut().unwrap();
    external.activation_threshold = threshold.map(|t| Quantity(t.into()));
    external.fallback = fallback.map(|replicas| Fallback {
        failure_duration_seconds: Some(180),
        replicas,
    });
    m
}

/// Scale down at once (no window), by at most `pods` per 15 s.
fn scale_down(window: i32, pods: i32) -> Behavior {
    Behavior {
        scale_up: None,
        scale_down: Some(rules(Some(window), None, &[(Pods, pods, 15)])),
    }
}

fn zero_case(current: i32, metrics: Vec<MetricSpec>, values: Vec<Gathered>) -> Case {
    Case::new(spec(Some(0), 20, metrics), current, pods(current as usize, 100), values)
        .with_behavior(scale_down(0, 100))
}

fn scaled_to_zero() -> AutoscalerCondition {
    AutoscalerCondition {
        type_: "ScaledToZero".into(),
        status: "True".into(),
        last_transition_time: Some(Time(ago(600))),
        reason: Some("ScaledToZero".into()),
        message: Some("set by ferroscale".into()),
    }
}

fn condition(d: &Decision, type_: &str) -> Option<(String, String)> {
    d.status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone().unwrap_or_default()))
}

fn reasons(d: &Decision) -> Vec<String> {
    d.events.iter().map(|e| e.reason.clone()).collect()
}

#[test]
fn an_idle_target_goes_to_zero_and_the_zero_is_remembered() {
    let d = zero_case(3, vec![queue_metric(None, None)], vec![queue(0)]).decide();
    assert_eq!((d.desired_replicas, d.rescale), (0, true));
    assert_eq!(
        condition(&d, "ScaledToZero"),
        Some(("True".into(), "ScaledToZero".into()))
    );
}

#[test]
fn the_way_to_zero_is_the_ordinary_scale_down_path() {
    // The window is the cool-down: a recommendation of 3 a minute ago holds the target.
    let held = zero_case(3, vec![queue_metric(None, None)], vec![queue(0)])
        .with_behavior(scale_down(120, 100))
        .with_status(|s| s.recommendations = Some(history(&[(60, 3)])))
        .decide();
    assert_eq!((held.desired_replicas, held.rescale), (3, false));
    assert_eq!(condition(&held, "ScaledToZero"), None);
    // Policies bound each step: one pod per 15 s.
    let stepped = zero_case(3, vec![queue_metric(None, None)], vec![queue(0)])
        .with_behavior(scale_down(0, 1))
        .decide();
    assert_eq!(stepped.desired_replicas, 2);
}

#[test]
fn resource_metrics_do_not_keep_a_target_up_when_nothing_is_active() {
    // CPU at 200% of its target would ask for 6; the queue is empty.
    let d = zero_case(
        3,
        vec![cpu(50), queue_metric(None, None)],
        vec![per_pod(&[100, 100, 100]), queue(0)],
    )
    .decide();
    assert_eq!(d.desired_replicas, 0);
    // An active queue keeps every metric's say.
    let d = zero_case(
        3,
        vec![cpu(50), queue_metric(None, None)],
        vec![per_pod(&[100, 100, 100]), queue(5)],
    )
    .decide();
    assert_eq!(d.desired_replicas, 6);
}

#[test]
fn the_activation_threshold_decides_what_is_active() {
    let below = zero_case(2, vec![queue_metric(Some("8"), None)], vec![queue(8)]).decide();
    assert_eq!(below.desired_replicas, 0, "8 is not above a threshold of 8");
    let above = zero_case(2, vec![queue_metric(Some("8"), None)], vec![queue(9)]).decide();
    assert_eq!(
        above.desired_replicas, 1,
        "an active metric proposes at least one replica"
    );
    let activation = above.metrics[0].activation.unwrap();
    assert_eq!(
        (activation.value, activation.threshold, activation.active),
        (9000, 8000, true)
    );
}

#[test]
fn ferroscales_zero_wakes_when_a_metric_is_active() {
    let at_zero = |value: i64| {
        Case::new(
            spec(Some(0), 20, vec![cpu(50), queue_metric(None, None)]),
            0,
            vec![],
            vec![Err("no pods".into()), queue(value)],
        )
        .with_status(|s| s.conditions = Some(vec![scaled_to_zero()]))
    };
    let idle = at_zero(0).decide();
    assert_eq!((idle.desired_replicas, idle.rescale), (0, false));
    assert!(idle.metrics[0].skipped, "CPU is not read at zero");
    assert_eq!(
        condition(&idle, "ScaledToZero"),
        Some(("True".into(), "ScaledToZero".into()))
    );
    assert_eq!(condition(&idle, "ScalingActive").unwrap().0, "True");

    let woken = at_zero(30).decide();
    assert_eq!(
        (woken.desired_replicas, woken.rescale),
        (3, true),
        "30 at 10 per replica"
    );
    assert_eq!(
        condition(&woken, "ScaledToZero"),
        Some(("False".into(), "ScaledFromZero".into()))
    );
}

#[test]
fn a_percent_policy_still_wakes_a_target_from_zero() {
    let d = Case::new(
        spec(Some(0), 20, vec![queue_metric(None, None)]),
        0,
        vec![],
        vec![queue(5)],
    )
    .with_behavior(Behavior {
        scale_up: Some(rules(Some(0), None, &[(Percent, 100, 15)])),
        scale_down: None,
    })
    .with_status(|s| s.conditions = Some(vec![scaled_to_zero()]))
    .decide();
    assert_eq!(d.desired_replicas, 1);
}

#[test]
fn a_zero_someone_else_set_is_maintenance() {
    let d = Case::new(
        spec(Some(0), 20, vec![queue_metric(None, None)]),
        0,
        vec![],
        vec![queue(50)],
    )
    .decide();
    assert_eq!((d.desired_replicas, d.rescale, d.path), (0, false, Path::Disabled));
    assert_eq!(
        condition(&d, "ScalingActive"),
        Some(("False".into(), "ScalingDisabled".into()))
    );
}

#[test]
fn a_zero_ferroscale_set_is_left_when_min_replicas_rises() {
    let d = Case::new(
        spec(Some(2), 20, vec![queue_metric(None, None)]),
        0,
        vec![],
        vec![queue(0)],
    )
    .with_status(|s| s.conditions = Some(vec![scaled_to_zero()]))
    .decide();
    assert_eq!((d.desired_replicas, d.path), (2, Path::OutOfRange));
}

#[test]
fn a_restart_in_the_cool_down_still_holds_from_status() {
    // Status written before the restart: 4 recommended until 90 s ago, 0 since.
    let d = zero_case(4, vec![queue_metric(None, None)], vec![queue(0)])
        .with_behavior(scale_down(120, 100))
        .with_status(|s| s.recommendations = Some(history(&[(90, 4)])))
        .decide();
    assert_eq!(d.desired_replicas, 4, "held for another 30 s");
    let d = zero_case(4, vec![queue_metric(None, None)], vec![queue(0)])
        .with_behavior(scale_down(120, 100))
        .with_status(|s| s.recommendations = Some(history(&[(121, 4)])))
        .decide();
    assert_eq!(d.desired_replicas, 0);
}

fn failing_since(seconds_ago: i64) -> Vec<MetricFailure> {
    vec![MetricFailure {
        index: 0,
        since: Time(ago(seconds_ago)),
    }]
}

#[test]
fn a_failing_metric_is_recorded_and_blocks_scale_down_until_its_fallback_applies() {
    let failing = |since: Option<i64>| {
        Case::new(
            spec(Some(1), 20, vec![queue_metric(None, Some(7))]),
            5,
            pods(5, 100),
            vec![Err("the queue service is down".into())],
        )
        .with_behavior(scale_down(0, 100))
        .with_status(|s| s.metric_failures = since.map(failing_since))
    };
    let first = failing(None).decide();
    assert_eq!((first.desired_replicas, first.rescale), (5, false));
    assert_eq!(
        first.status.metric_failures,
        Some(failing_since(0)),
        "the first failure is dated"
    );
    assert_eq!(
        condition(&first, "FallbackActive"),
        Some(("False".into(), "MetricsAvailable".into()))
    );

    let not_yet = failing(Some(179)).decide();
    assert_eq!(
        not_yet.desired_replicas, 5,
        "179 s of a 180 s failure duration: still blocked"
    );
    assert_eq!(
        not_yet.status.metric_failures,
        Some(failing_since(179)),
        "the count is kept"
    );

    let fallback = failing(Some(180)).decide();
    assert_eq!((fallback.desired_replicas, fallback.rescale), (7, true));
    assert_eq!(fallback.metrics[0].fallback, Some(7));
    assert_eq!(
        condition(&fallback, "FallbackActive"),
        Some(("True".into(), "FallbackApplied".into()))
    );
    assert!(reasons(&fallback).contains(&"FallbackStarted".to_string()));
    assert!(reasons(&fallback).contains(&"FailedGetExternalMetric".to_string()));
}

#[test]
fn a_recovered_metric_ends_its_fallback() {
    let d = Case::new(
        spec(Some(1), 20, vec![queue_metric(None, Some(7))]),
        7,
        pods(7, 100),
        vec![queue(70)],
    )
    .with_status(|s| {
        s.metric_failures = Some(failing_since(400));
        s.conditions = Some(vec![AutoscalerCondition {
            type_: "FallbackActive".into(),
            status: "True".into(),
            last_transition_time: Some(Time(ago(220))),
            reason: Some("FallbackApplied".into()),
            message: Some("metric 0".into()),
        }]);
    })
    .decide();
    assert_eq!(d.status.metric_failures, None);
    assert_eq!(
        condition(&d, "FallbackActive"),
        Some(("False".into(), "MetricsAvailable".into()))
    );
    assert!(reasons(&d).contains(&"FallbackEnded".to_string()));
}

#[test]
fn a_fallback_wakes_a_target_at_zero() {
    let d = Case::new(
        spec(Some(0), 20, vec![queue_metric(None, Some(2))]),
        0,
        vec![],
        vec![Err("the queue service is down".into())],
    )
    .with_status(|s| {
        s.conditions = Some(vec![scaled_to_zero()]);
        s.metric_failures = Some(failing_since(300));
    })
    .decide();
    assert_eq!((d.desired_replicas, d.rescale), (2, true));
}

#[test]
fn without_a_fallback_a_failure_never_scales_down() {
    let d = Case::new(
        spec(Some(1), 20, vec![queue_metric(None, None)]),
        5,
        pods(5, 100),
        vec![Err("down".into())],
    )
    .with_behavior(scale_down(0, 100))
    .with_status(|s| s.metric_failures = Some(failing_since(3600)))
    .decide();
    assert_eq!(d.desired_replicas, 5);
    assert_eq!(
        condition(&d, "FallbackActive"),
        None,
        "no fallback configured, no condition"
    );
}

#[test]
fn a_second_outage_counts_its_failure_duration_from_its_own_start() {
    // An outage long enough for the fallback, a recovery, then a new outage: the new one is
    // dated at its own start, so its fallback waits the whole failure duration again.
    let case = |values: Vec<Gathered>, status: &ferroscale_api::AutoscalerStatus| {
        let mut c = Case::new(
            spec(Some(1), 20, vec![queue_metric(None, Some(7))]),
            5,
            pods(5, 100),
            values,
        )
        .with_behavior(scale_down(0, 100));
        c.status = Some(status.clone());
        c
    };
    let outage = Case::new(
        spec(Some(1), 20, vec![queue_metric(None, Some(7))]),
        5,
        pods(5, 100),
        vec![Err("down".into())],
    )
    .with_status(|s| s.metric_failures = Some(failing_since(400)))
    .decide();
    assert_eq!((outage.desired_replicas, outage.rescale), (7, true));

    let recovered = case(vec![queue(20)], &outage.status).decide();
    assert_eq!(
        recovered.status.metric_failures, None,
        "the first good read clears the failure"
    );

    let second = case(vec![Err("down again".into())], &recovered.status).decide();
    assert_eq!(second.status.metric_failures, Some(failing_since(0)));
    assert!(!second.rescale, "the fallback waits for its failure duration");
    assert_ne!(condition(&second, "FallbackActive").map(|c| c.0), Some("True".into()));
}
