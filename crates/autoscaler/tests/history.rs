//! The compact history in status decides exactly as upstream's full list of every
//! evaluation's recommendation, and a steady Autoscaler's status does not change.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use common::*;
use ferroscale_api::ScalingPolicyType::{Percent, Pods};
use ferroscale_api::{AutoscalerSpec, AutoscalerStatus, Behavior, Recommendation};
use ferroscale_autoscaler::history::Remembered;
use ferroscale_autoscaler::{Decision, Gathered, Input, MetricValues, Scale, Settings, decide};
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use proptest::prelude::*;

/// One evaluation at `now` of a target at `replicas`, its External metric proposing `proposal`
/// replicas (None: the metric fails).
fn evaluate(
    spec: &AutoscalerSpec,
    status: Option<&AutoscalerStatus>,
    replicas: i32,
    proposal: Option<i64>,
    now: Timestamp,
    last_recommended: Option<Timestamp>,
) -> Decision {
    let scale = Scale {
        spec_replicas: replicas,
        status_replicas: replicas,
        selector: Some("app=web".into()),
    };
    let metrics: Vec<Gathered> = vec![match proposal {
        Some(p) => Ok(MetricValues::External(vec![p * 1000])),
        None => Err("the queue is unreachable".into()),
    }];
    let pods = pods(replicas.max(0) as usize, 0);
    decide(&Input {
        spec,
        status,
        generation: Some(1),
        scale: &scale,
        pods: &pods,
        metrics: &metrics,
        now,
        settings: &Settings::default(),
        last_recommended,
        annotations: None,
        conflict: None,
        pods_left_out: 0,
        compiled: None,
        series: &[],
    })
}

fn windows() -> impl Strategy<Value = Option<Behavior>> {
    let direction = (0..240i32, 1..10i32, 10..200i32, 15..120i32).prop_map(|(window, pods, percent, period)| {
        rules(Some(window), None, &[(Pods, pods, period), (Percent, percent, period)])
    });
    proptest::option::of((direction.clone(), direction).prop_map(|(up, down)| Behavior {
        scale_up: Some(up),
        scale_down: Some(down),
    }))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The reference keeps every evaluation's recommendation in status, as 0.1.0 did (and as
    /// upstream keeps them in memory); the controller keeps the compact form and remembers when
    /// the current recommendation was last made. Every decision is the same.
    #[test]
    fn the_compact_history_decides_as_the_full_one(
        behavior in windows(),
        start in 1..20i32,
        steps in proptest::collection::vec((1..40i64, proptest::option::of(0..30i64)), 1..80),
    ) {
        let mut spec = spec(Some(1), 30, vec![external_average("1")]);
        spec.behavior = behavior;
        let empty = AutoscalerStatus { recommendations: Some(Vec::new()), ..AutoscalerStatus::default() };
        let (mut reference, mut compact) = (empty.clone(), empty);
        let mut every: Vec<Recommendation> = Vec::new();
        let mut remembered: Option<Remembered> = None;
        let (mut replicas_ref, mut replicas) = (start, start);
        let mut t = now();
        for (i, (seconds, proposal)) in steps.into_iter().enumerate() {
            t += SignedDuration::from_secs(seconds);
            let full = evaluate(&spec, Some(&reference), replicas_ref, proposal, t, None);
            if let Some(p) = full.proposal {
                every.push(Recommendation { timestamp: Time(t), replicas: p, current: false });
            }
            reference = AutoscalerStatus { recommendations: Some(every.clone()), ..full.status.clone() };

            let last = remembered.and_then(|r| r.last_made(Some(&compact)));
            let d = evaluate(&spec, Some(&compact), replicas, proposal, t, last);
            remembered = Remembered::after(d.proposal.is_some(), &d.status, t);
            prop_assert_eq!(d.desired_replicas, full.desired_replicas, "step {}", i);
            prop_assert_eq!(&d.stabilization, &full.stabilization, "step {}", i);
            prop_assert_eq!(&d.status.conditions, &full.status.conditions, "step {}", i);
            compact = d.status;
            replicas_ref = full.desired_replicas;
            replicas = d.desired_replicas;
        }
    }
}

#[test]
fn a_steady_autoscaler_writes_no_status() {
    let mut spec = spec(Some(1), 10, vec![external_average("1")]);
    spec.behavior = Some(Behavior {
        scale_up: None,
        scale_down: Some(rules(Some(60), None, &[])),
    });
    let first = evaluate(&spec, None, 4, Some(4), now(), None);
    assert!(first.writes_status(None));
    let mut status = first.status;
    let mut remembered = Remembered::after(true, &status, now());
    for step in 1..=10 {
        let t = now() + SignedDuration::from_secs(15 * step);
        let last = remembered.and_then(|r| r.last_made(Some(&status)));
        let d = evaluate(&spec, Some(&status), 4, Some(4), t, last);
        assert!(
            !d.writes_status(Some(&status)),
            "evaluation {step} changed {:?}",
            d.status
        );
        remembered = Remembered::after(true, &d.status, t);
        status = d.status;
    }
    // A failed metric is a change worth writing; so is the recommendation moving again.
    let t = now() + SignedDuration::from_secs(165);
    assert!(evaluate(&spec, Some(&status), 4, None, t, None).writes_status(Some(&status)));
    assert!(evaluate(&spec, Some(&status), 4, Some(6), t, None).writes_status(Some(&status)));
}

#[test]
fn a_new_leader_holds_a_scale_down_as_long_as_the_old_one_would() {
    // 8 recommended since 00:00, steadily every 15 s; the old leader's last evaluation was at
    // 00:05:00, the new leader's first at 00:05:15 sees 2 proposed. Status says only that 8
    // holds since 00:00.
    let mut spec = spec(Some(1), 10, vec![external_average("1")]);
    spec.behavior = Some(Behavior {
        scale_up: None,
        scale_down: Some(rules(Some(60), None, &[])),
    });
    let status = evaluate(&spec, None, 8, Some(8), now(), None).status;
    let at = |s: i64| now() + SignedDuration::from_secs(s);
    let first = evaluate(&spec, Some(&status), 8, Some(2), at(315), None);
    assert_eq!(first.desired_replicas, 8, "held: 8 counts as made at 00:05:00");
    let held = first.status;
    // Upstream's last 8 was made at 00:05:00, so the 60 s window holds it until 00:06:00.
    let d = evaluate(&spec, Some(&held), 8, Some(2), at(359), Some(at(345)));
    assert_eq!(d.desired_replicas, 8, "one second before the window ends");
    let d = evaluate(&spec, Some(&held), 8, Some(2), at(360), Some(at(345)));
    assert_eq!(d.desired_replicas, 2, "the window ends with upstream's");
}
