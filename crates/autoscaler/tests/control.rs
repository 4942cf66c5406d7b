//! Control in production: pause annotations, conflicts that hold a target, and each
//! Autoscaler's own sync period.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use ferroscale_autoscaler::hold::Conflict;
use ferroscale_autoscaler::settings::sync_period;
use ferroscale_autoscaler::{Decision, Input, MetricValues, Settings, decide};

/// 9 proposed (an External metric), 3 running; min 1, max 20.
fn busy() -> Case {
    Case::new(
        spec(Some(1), 20, vec![external_average("1")]),
        3,
        pods(3, 100),
        vec![Ok(MetricValues::External(vec![9000]))],
    )
}

fn decide_with(case: &Case, annotations: &[(&str, &str)], conflict: Option<&Conflict>) -> Decision {
    let annotations: BTreeMap<String, String> = annotations
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    decide(&Input {
        spec: &case.spec,
        status: case.status.as_ref(),
        generation: Some(1),
        scale: &case.scale,
        pods: &case.pods,
        metrics: &case.metrics,
        now: now(),
        settings: &case.settings,
        last_recommended: None,
        annotations: Some(&annotations),
        conflict,
        pods_left_out: 0,
        compiled: None,
        series: &[],
    })
}

fn scaling_active(d: &Decision) -> (String, String, String) {
    let c = d
        .status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "ScalingActive")
        .unwrap();
    (
        c.status.clone(),
        c.reason.clone().unwrap_or_default(),
        c.message.clone().unwrap_or_default(),
    )
}

#[test]
fn a_paused_autoscaler_evaluates_but_writes_no_scale() {
    let d = decide_with(&busy(), &[("ferroscale.dev/paused", "true")], None);
    assert!(!d.rescale);
    assert_eq!(d.desired_replicas, 3);
    let (status, reason, message) = scaling_active(&d);
    assert_eq!((status.as_str(), reason.as_str()), ("False", "Paused"));
    assert!(message.contains("it would set 6 replicas"), "{message}");
    assert_eq!(
        d.metrics[0].replicas,
        Some(9),
        "the metrics are still read and reported"
    );
    assert!(
        d.status
            .recommendations
            .is_some_and(|r| r.iter().any(|r| r.replicas == 9))
    );
    assert!(d.events.is_empty(), "a pause is deliberate: no warning");

    let resumed = decide_with(&busy(), &[("ferroscale.dev/paused", "false")], None);
    assert_eq!((resumed.rescale, resumed.desired_replicas), (true, 6));
}

#[test]
fn paused_replicas_are_set_once_then_held() {
    let first = decide_with(&busy(), &[("ferroscale.dev/paused-replicas", "12")], None);
    assert_eq!(
        (first.rescale, first.desired_replicas),
        (true, 12),
        "an override: max and policies do not bound it"
    );
    assert_eq!(first.status.paused_replicas, Some(12));
    assert!(first.reason.as_deref().unwrap().contains("paused-replicas"));

    // Once set, a count someone else writes is held, not fought.
    let mut later = busy();
    later.status = Some(first.status.clone());
    later.scale.spec_replicas = 5;
    let d = decide_with(&later, &[("ferroscale.dev/paused-replicas", "12")], None);
    assert!(!d.rescale);
    assert_eq!(d.status.paused_replicas, Some(12));
    // A new value is set once again.
    let d = decide_with(&later, &[("ferroscale.dev/paused-replicas", "2")], None);
    assert_eq!((d.rescale, d.desired_replicas), (true, 2));
}

#[test]
fn a_malformed_pause_writes_nothing_and_names_the_annotation() {
    let d = decide_with(&busy(), &[("ferroscale.dev/paused", "yes")], None);
    assert!(!d.rescale);
    let (status, reason, message) = scaling_active(&d);
    assert_eq!((status.as_str(), reason.as_str()), ("False", "InvalidAnnotation"));
    assert!(message.contains("ferroscale.dev/paused"), "{message}");
    assert_eq!(d.events.iter().filter(|e| e.reason == "InvalidAnnotation").count(), 1);
    // The warning comes once per change, not at every evaluation.
    let mut again = busy();
    again.status = Some(d.status);
    let d = decide_with(&again, &[("ferroscale.dev/paused", "yes")], None);
    assert!(d.events.iter().all(|e| e.reason != "InvalidAnnotation"));
}

#[test]
fn a_conflict_holds_the_target_even_against_paused_replicas() {
    let conflict = Conflict {
        reason: "ConflictingAutoscaler",
        message: "the HorizontalPodAutoscaler shop/web also scales Deployment/web".into(),
    };
    let d = decide_with(&busy(), &[("ferroscale.dev/paused-replicas", "8")], Some(&conflict));
    assert!(!d.rescale);
    let (status, reason, message) = scaling_active(&d);
    assert_eq!((status.as_str(), reason.as_str()), ("False", "ConflictingAutoscaler"));
    assert!(message.contains("shop/web"), "{message}");
    assert_eq!(
        d.events.iter().filter(|e| e.reason == "ConflictingAutoscaler").count(),
        1
    );
    // Once the other is gone, the first decision follows the history: no jump.
    let mut after = busy();
    after.status = Some(d.status);
    let d = decide_with(&after, &[], None);
    assert_eq!((d.rescale, d.desired_replicas), (true, 6));
}

#[test]
fn each_autoscaler_may_set_its_own_sync_period() {
    let settings = Settings::default();
    let mut spec = spec(Some(1), 5, vec![cpu(50)]);
    assert_eq!(sync_period(&spec, &settings), Duration::from_secs(15));
    spec.sync_period_seconds = Some(5);
    assert_eq!(sync_period(&spec, &settings), Duration::from_secs(5));
}

#[test]
fn lifting_paused_replicas_clears_it_so_the_same_count_acts_again() {
    // 3 → 1 by annotation; the annotation goes and the metric decides (→ 6); the same
    // annotation set again must set 1 again, not find it "already done" in status.
    let paused = [("ferroscale.dev/paused-replicas", "1")];
    let first = decide_with(&busy(), &paused, None);
    assert_eq!((first.rescale, first.desired_replicas), (true, 1));

    let mut resumed = busy();
    resumed.status = Some(first.status.clone());
    resumed.scale.spec_replicas = 1;
    let resumed_decision = decide_with(&resumed, &[], None);
    assert_eq!(
        resumed_decision.status.paused_replicas, None,
        "no annotation: nothing paused left in status"
    );
    assert!(resumed_decision.rescale);

    let mut again = busy();
    again.status = Some(resumed_decision.status.clone());
    again.scale.spec_replicas = resumed_decision.desired_replicas;
    let d = decide_with(&again, &paused, None);
    assert_eq!((d.rescale, d.desired_replicas), (true, 1), "the second pause acts");
    assert_eq!(d.status.paused_replicas, Some(1));
}

#[test]
fn a_refused_metric_source_is_named_as_forbidden() {
    let case = Case::new(
        spec(
            Some(1),
            20,
            vec![prometheus(ferroscale_api::MetricTargetType::Value, "1")],
        ),
        3,
        pods(3, 100),
        vec![Err(format!(
            "{}: prometheus.serverAddress \"http://169.254.169.254\" is not among the Prometheus servers",
            ferroscale_autoscaler::samples::FORBIDDEN_METRIC_SOURCE
        ))],
    );
    let d = decide_with(&case, &[], None);
    assert!(!d.rescale);
    let (status, reason, message) = scaling_active(&d);
    assert_eq!((status.as_str(), reason.as_str()), ("False", "ForbiddenMetricSource"));
    assert!(message.contains("prometheus.serverAddress"), "{message}");
    assert!(
        d.events
            .iter()
            .any(|e| e.reason == "ForbiddenMetricSource" && e.warning)
    );
}
