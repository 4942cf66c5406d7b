//! Whole evaluations: branches, conditions, events, behavior and the history kept in status.
//! Cases marked "upstream" mirror tests of horizontal_test.go.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use common::*;
use ferroscale_api::ScalingPolicyType::{Percent, Pods};
use ferroscale_api::{Behavior, SelectPolicy};
use ferroscale_autoscaler::Path;
use ferroscale_autoscaler::{Decision, MetricValues};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

fn cpu_case(current: i32, min: i32, max: i32, usage: &[i64]) -> Case {
    Case::new(
        spec(Some(min), max, vec![cpu(30)]),
        current,
        pods(usage.len(), 1000),
        vec![per_pod(usage)],
    )
}

/// An External AverageValue metric with target 1 proposes exactly `replicas` (outside the
/// tolerance), the way to feed a chosen proposal to the behavior logic.
fn proposing(replicas: i64, current: i32, min: i32, max: i32) -> Case {
    Case::new(
        spec(Some(min), max, vec![external_average("1")]),
        current,
        pods(current.max(0) as usize, 0),
        vec![Ok(MetricValues::External(vec![replicas * 1000]))],
    )
}

fn reasons(d: &Decision) -> Vec<String> {
    d.events.iter().map(|e| e.reason.clone()).collect()
}

#[test]
fn upstream_scale_up_sets_the_three_conditions() {
    let d = Case::new(
        spec(Some(2), 6, vec![cpu(30)]),
        3,
        pods(3, 1000),
        vec![per_pod(&[300, 500, 700])],
    )
    .decide();
    assert_eq!((d.desired_replicas, d.rescale), (5, true));
    assert_eq!(
        conditions(&d),
        vec![
            cond("AbleToScale", "True", "SucceededRescale"),
            cond("ScalingActive", "True", "ValidMetricFound"),
            cond("ScalingLimited", "False", "DesiredWithinRange")
        ]
    );
    assert_eq!(d.events[0].reason, "SuccessfulRescale");
    assert_eq!(
        d.events[0].message,
        "New size: 5; reason: cpu resource utilization (percentage of request) above target"
    );
    assert_eq!(d.status.last_scale_time, Some(Time(now())));
    assert_eq!((d.status.current_replicas, d.status.desired_replicas), (3, 5));
    assert_eq!(d.status.targets.as_deref(), Some("cpu: 50%/30%"));
}

#[test]
fn no_change_keeps_the_count_and_the_scale_time() {
    let d = cpu_case(3, 1, 10, &[300, 300, 300])
        .with_status(|s| s.last_scale_time = Some(Time(ago(900))))
        .decide();
    assert_eq!((d.desired_replicas, d.rescale), (3, false));
    assert!(conditions(&d).contains(&cond("AbleToScale", "True", "ReadyForNewScale")));
    assert_eq!(d.status.last_scale_time, Some(Time(ago(900))));
    assert!(d.events.is_empty());
}

#[test]
fn upstream_zero_replicas_disables_scaling() {
    let d = cpu_case(0, 1, 5, &[]).decide();
    assert_eq!((d.path, d.desired_replicas, d.rescale), (Path::Disabled, 0, false));
    assert_eq!(
        conditions(&d),
        vec![
            cond("AbleToScale", "True", "SucceededGetScale"),
            cond("ScalingActive", "False", "ScalingDisabled")
        ]
    );
}

#[test]
fn upstream_out_of_range_targets_are_brought_back_without_metrics() {
    let d = cpu_case(10, 1, 5, &[]).decide();
    assert_eq!((d.path, d.desired_replicas, d.rescale), (Path::OutOfRange, 5, true));
    assert_eq!(
        d.reason.as_deref(),
        Some("Current number of replicas above Spec.MaxReplicas")
    );
    assert_eq!(conditions(&d), vec![cond("AbleToScale", "True", "SucceededRescale")]);
    let d = cpu_case(1, 2, 5, &[]).decide();
    assert_eq!(
        (d.desired_replicas, d.reason.as_deref()),
        (2, Some("Current number of replicas below Spec.MinReplicas"))
    );
}

#[test]
fn upstream_min_and_max_limit_the_proposal() {
    let d = cpu_case(3, 3, 10, &[10, 10, 10]).decide();
    assert_eq!(d.desired_replicas, 3);
    assert!(
        conditions(&d).contains(&cond("ScalingLimited", "True", "TooFewReplicas")),
        "{:?}",
        conditions(&d)
    );
    let d = cpu_case(5, 1, 6, &[900, 900, 900, 900, 900]).decide();
    assert_eq!(d.desired_replicas, 6);
    assert!(conditions(&d).contains(&cond("ScalingLimited", "True", "TooManyReplicas")));
}

#[test]
fn upstream_legacy_scale_up_limit_doubles_at_most() {
    let d = proposing(100, 3, 1, 1000).decide();
    assert_eq!(d.desired_replicas, 6);
    assert!(conditions(&d).contains(&cond("ScalingLimited", "True", "ScaleUpLimit")));
    let d = proposing(100, 1, 1, 1000).decide();
    assert_eq!(d.desired_replicas, 4, "at least 4");
}

#[test]
fn upstream_first_evaluation_cannot_scale_down_at_once() {
    let mut case = cpu_case(5, 1, 10, &[30, 30, 30, 30, 30]);
    case.status = None;
    let d = case.decide();
    assert_eq!((d.desired_replicas, d.rescale), (5, false));
    assert!(conditions(&d).contains(&cond("AbleToScale", "True", "ScaleDownStabilized")));
    let recs = d.status.recommendations.unwrap();
    assert_eq!(recs.len(), 2, "the seed {{now, current}} and the new proposal");
    assert!(recs.iter().all(|r| r.timestamp == Time(now())));
}

#[test]
fn legacy_stabilization_holds_the_highest_recent_proposal() {
    let d = proposing(2, 8, 1, 10)
        .with_status(|s| s.recommendations = Some(history(&[(400, 9), (120, 6), (30, 4)])))
        .decide();
    assert_eq!(d.desired_replicas, 6, "9 is outside the 5m window");
    let kept: Vec<i32> = d.status.recommendations.unwrap().iter().map(|r| r.replicas).collect();
    assert_eq!(
        kept,
        vec![6, 4, 2],
        "older recommendations are pruned, the new one recorded"
    );
}

#[test]
fn invalid_selector_stops_scaling() {
    let mut case = cpu_case(3, 1, 10, &[900, 900, 900]);
    case.scale.selector = None;
    let d = case.decide();
    assert_eq!((d.path, d.rescale), (Path::InvalidSelector, false));
    assert_eq!(
        conditions(&d),
        vec![
            cond("AbleToScale", "True", "SucceededGetScale"),
            cond("ScalingActive", "False", "InvalidSelector")
        ]
    );
    assert_eq!(reasons(&d), vec!["SelectorRequired", "FailedComputeMetricsReplicas"]);
    case.scale.selector = Some("app in (".into());
    let d = case.decide();
    assert_eq!(reasons(&d), vec!["InvalidSelector", "FailedComputeMetricsReplicas"]);
}

#[test]
fn upstream_failed_metric_conditions_name_the_source() {
    for (metric, reason) in [
        (cpu(50), "FailedGetResourceMetric"),
        (container_cpu("app", 50), "FailedGetContainerResourceMetric"),
        (pods_metric("qps", "1"), "FailedGetPodsMetric"),
        (object_value("1"), "FailedGetObjectMetric"),
        (external_value("1"), "FailedGetExternalMetric"),
        (unknown_metric(), "InvalidMetricSourceType"),
    ] {
        let d = Case::new(
            spec(Some(1), 5, vec![metric]),
            3,
            pods(3, 1000),
            vec![Err("unavailable".into())],
        )
        .decide();
        assert_eq!(d.path, Path::MetricsFailed);
        assert_eq!(
            conditions(&d),
            vec![
                cond("AbleToScale", "True", "SucceededGetScale"),
                cond("ScalingActive", "False", reason)
            ],
            "{reason}"
        );
        assert_eq!(reasons(&d), vec![reason, "FailedComputeMetricsReplicas"]);
        assert_eq!((d.desired_replicas, d.rescale), (3, false));
    }
}

#[test]
fn upstream_an_invalid_metric_blocks_scale_down_but_not_scale_up() {
    let up = Case::new(
        spec(Some(1), 10, vec![cpu(30), unknown_metric()]),
        3,
        pods(3, 1000),
        vec![per_pod(&[900, 900, 900]), Err("x".into())],
    )
    .decide();
    assert_eq!(
        (up.desired_replicas, up.rescale),
        (6, true),
        "9 proposed, doubled at most"
    );
    assert!(conditions(&up).contains(&cond("ScalingActive", "True", "ValidMetricFound")));
    assert_eq!(metric_replicas(&up), vec![Some(9), None]);

    let down = Case::new(
        spec(Some(1), 10, vec![cpu(30), unknown_metric()]),
        3,
        pods(3, 1000),
        vec![per_pod(&[30, 30, 30]), Err("x".into())],
    )
    .decide();
    assert_eq!((down.desired_replicas, down.rescale), (3, false));
    assert!(conditions(&down).contains(&cond("ScalingActive", "False", "InvalidMetricSourceType")));
    let last = down.events.last().unwrap();
    assert_eq!(
        last.message,
        "invalid metrics (1 invalid out of 2), first error is: unknown metric source type"
    );
}

#[test]
fn the_largest_proposal_wins() {
    let d = Case::new(
        spec(
            Some(1),
            20,
            vec![cpu(50), external_value("10"), pods_metric("qps", "10")],
        ),
        4,
        pods(4, 1000),
        vec![
            per_pod(&[500, 500, 500, 500]),
            Ok(MetricValues::External(vec![30_000])),
            per_pod(&[15_000, 15_000, 15_000, 15_000]),
        ],
    )
    .decide();
    assert_eq!(metric_replicas(&d), vec![Some(4), Some(12), Some(6)]);
    assert_eq!(d.desired_replicas, 8, "12 limited by the legacy doubling");
    assert_eq!(d.reason.as_deref(), Some("external metric queue above target"));
}

#[test]
fn no_metrics_means_80_percent_cpu() {
    let mut case = cpu_case(2, 1, 10, &[1000, 1000]);
    case.spec.metrics = None;
    let d = case.decide();
    assert_eq!(
        d.metrics[0].description,
        "cpu resource utilization (percentage of request)"
    );
    assert_eq!(d.desired_replicas, 3, "100% against 80%: ceil(1.25 × 2)");
}

#[test]
fn per_direction_tolerance() {
    let behavior = |up: &str, down: &str| Behavior {
        scale_up: Some(ferroscale_api::ScalingRules {
            tolerance: Some(Quantity(up.into())),
            ..Default::default()
        }),
        scale_down: Some(ferroscale_api::ScalingRules {
            tolerance: Some(Quantity(down.into())),
            ..Default::default()
        }),
    };
    // Upstream's numbers: 190% against 100% is within a 200% scale-up tolerance.
    let d = Case::new(
        spec(Some(1), 1000, vec![cpu(100)]),
        3,
        vec![pod("pod-0", 900), pod("pod-1", 1000), pod("pod-2", 1100)],
        vec![per_pod(&[1890, 1910, 1900])],
    )
    .with_behavior(behavior("2", "100m"))
    .decide();
    assert_eq!(metric_replicas(&d), vec![Some(3)]);
    // 5% under target scales down with a 1% scale-down tolerance; 5% over does not scale up with 10%.
    let d = cpu_case(4, 1, 10, &[285, 285, 285, 285])
        .with_behavior(behavior("0.1", "10m"))
        .decide();
    assert_eq!(metric_replicas(&d), vec![Some(4)], "ceil(0.95 × 4) is still 4");
    let d = cpu_case(20, 1, 40, &[285; 20])
        .with_behavior(behavior("0.1", "10m"))
        .decide();
    assert_eq!(metric_replicas(&d), vec![Some(19)]);
    let d = cpu_case(20, 1, 40, &[315; 20])
        .with_behavior(behavior("0.1", "10m"))
        .decide();
    assert_eq!(metric_replicas(&d), vec![Some(20)]);
    // The operator's default applies without behavior.
    let mut case = cpu_case(20, 1, 40, &[315; 20]);
    case.settings.tolerance = 0.01;
    assert_eq!(metric_replicas(&case.decide()), vec![Some(21)]);
}

#[test]
fn upstream_scaling_with_rules() {
    struct Row {
        name: &'static str,
        current: i32,
        proposal: i64,
        up: ferroscale_api::ScalingRules,
        down: ferroscale_api::ScalingRules,
        up_events: Vec<(i64, i32)>,
        down_events: Vec<(i64, i32)>,
        min: i32,
        max: i32,
        want: i32,
        reason: &'static str,
    }
    let open_up = || rules(Some(0), None, &[(Pods, 1000, 15)]);
    let open_down = || rules(Some(0), None, &[(Percent, 100, 15)]);
    let rows = [
        Row {
            name: "percent policy larger than pods policy",
            current: 10,
            proposal: 500,
            up: rules(Some(0), Some(SelectPolicy::Max), &[(Pods, 2, 60), (Percent, 100, 60)]),
            down: open_down(),
            up_events: vec![],
            down_events: vec![],
            min: 1,
            max: 1000,
            want: 20,
            reason: "ScaleUpLimit",
        },
        Row {
            name: "pods policy larger than percent policy",
            current: 10,
            proposal: 500,
            up: rules(Some(0), Some(SelectPolicy::Max), &[(Pods, 100, 60), (Percent, 100, 60)]),
            down: open_down(),
            up_events: vec![],
            down_events: vec![],
            min: 1,
            max: 1000,
            want: 110,
            reason: "ScaleUpLimit",
        },
        Row {
            name: "min select picks the smaller increase",
            current: 10,
            proposal: 500,
            up: rules(Some(0), Some(SelectPolicy::Min), &[(Pods, 2, 60), (Percent, 100, 60)]),
            down: open_down(),
            up_events: vec![],
            down_events: vec![],
            min: 1,
            max: 1000,
            want: 12,
            reason: "ScaleUpLimit",
        },
        Row {
            name: "scale up disabled",
            current: 10,
            proposal: 500,
            up: rules(Some(0), Some(SelectPolicy::Disabled), &[(Pods, 2, 60)]),
            down: open_down(),
            up_events: vec![],
            down_events: vec![],
            min: 1,
            max: 1000,
            want: 10,
            reason: "ScaleUpLimit",
        },
        Row {
            name: "recent scale-ups use the budget",
            current: 12,
            proposal: 500,
            up: rules(Some(0), None, &[(Pods, 4, 60)]),
            down: open_down(),
            up_events: vec![(30, 2), (70, 10)],
            down_events: vec![],
            min: 1,
            max: 1000,
            want: 14,
            reason: "ScaleUpLimit",
        },
        Row {
            name: "budget exhausted keeps the count",
            current: 14,
            proposal: 500,
            up: rules(Some(0), None, &[(Pods, 4, 60)]),
            down: open_down(),
            up_events: vec![(10, 3), (20, 3)],
            down_events: vec![],
            min: 1,
            max: 1000,
            want: 14,
            reason: "ScaleUpLimit",
        },
        Row {
            name: "max replicas below the rate",
            current: 10,
            proposal: 500,
            up: rules(Some(0), None, &[(Percent, 100, 60)]),
            down: open_down(),
            up_events: vec![],
            down_events: vec![],
            min: 1,
            max: 15,
            want: 15,
            reason: "TooManyReplicas",
        },
        Row {
            name: "scale down by percent",
            current: 10,
            proposal: 1,
            up: open_up(),
            down: rules(Some(0), None, &[(Percent, 20, 60)]),
            up_events: vec![],
            down_events: vec![],
            min: 1,
            max: 100,
            want: 8,
            reason: "ScaleDownLimit",
        },
        Row {
            name: "scale down min select",
            current: 10,
            proposal: 1,
            up: open_up(),
            down: rules(Some(0), Some(SelectPolicy::Min), &[(Percent, 50, 60), (Pods, 2, 60)]),
            up_events: vec![],
            down_events: vec![],
            min: 1,
            max: 100,
            want: 8,
            reason: "ScaleDownLimit",
        },
        Row {
            name: "recent scale-downs use the budget",
            current: 8,
            proposal: 1,
            up: open_up(),
            down: rules(Some(0), None, &[(Pods, 3, 60)]),
            up_events: vec![],
            down_events: vec![(30, 2)],
            min: 1,
            max: 100,
            want: 7,
            reason: "ScaleDownLimit",
        },
        Row {
            name: "scale down disabled",
            current: 10,
            proposal: 1,
            up: open_up(),
            down: rules(Some(0), Some(SelectPolicy::Disabled), &[]),
            up_events: vec![],
            down_events: vec![],
            min: 1,
            max: 100,
            want: 10,
            reason: "ScaleDownLimit",
        },
        Row {
            name: "min replicas above the rate",
            current: 10,
            proposal: 1,
            up: open_up(),
            down: rules(Some(0), None, &[(Percent, 90, 60)]),
            up_events: vec![],
            down_events: vec![],
            min: 4,
            max: 100,
            want: 4,
            reason: "TooFewReplicas",
        },
        Row {
            name: "within every limit",
            current: 10,
            proposal: 12,
            up: rules(Some(0), None, &[(Pods, 4, 60)]),
            down: open_down(),
            up_events: vec![],
            down_events: vec![],
            min: 1,
            max: 100,
            want: 12,
            reason: "DesiredWithinRange",
        },
    ];
    for r in rows {
        let d = proposing(r.proposal, r.current, r.min, r.max)
            .with_behavior(Behavior {
                scale_up: Some(r.up),
                scale_down: Some(r.down),
            })
            .with_status(|s| {
                s.scale_up_events = Some(events(&r.up_events));
                s.scale_down_events = Some(events(&r.down_events));
            })
            .decide();
        assert_eq!(d.desired_replicas, r.want, "{}", r.name);
        let limited = conditions(&d).into_iter().find(|c| c.0 == "ScalingLimited").unwrap();
        assert_eq!(limited.2, r.reason, "{}", r.name);
        assert_eq!(
            limited.1,
            if r.want == r.proposal as i32 { "False" } else { "True" },
            "{}",
            r.name
        );
    }
}

#[test]
fn upstream_stabilization_with_behavior() {
    let down_window = |seconds| Behavior {
        scale_up: Some(rules(Some(0), None, &[(Pods, 1000, 15)])),
        scale_down: Some(rules(Some(seconds), None, &[(Percent, 100, 15)])),
    };
    // Upstream's "simple scale down stabilization": proposals 4 and 5 within 180s hold a proposal of 3 at 5.
    let d = proposing(3, 100, 1, 1000)
        .with_behavior(down_window(180))
        .with_status(|s| s.recommendations = Some(history(&[(120, 4), (60, 5)])))
        .decide();
    assert_eq!(d.desired_replicas, 5);
    assert!(conditions(&d).contains(&cond("AbleToScale", "True", "SucceededRescale")));
    let d = proposing(3, 5, 1, 1000)
        .with_behavior(down_window(180))
        .with_status(|s| s.recommendations = Some(history(&[(120, 4), (60, 5)])))
        .decide();
    assert_eq!((d.desired_replicas, d.rescale), (5, false));
    assert!(conditions(&d).contains(&cond("AbleToScale", "True", "ScaleDownStabilized")));
    // A scale-up window holds the lowest recent proposal.
    let up_window = Behavior {
        scale_up: Some(rules(Some(300), None, &[(Pods, 1000, 15)])),
        scale_down: None,
    };
    let d = proposing(10, 3, 1, 1000)
        .with_behavior(up_window)
        .with_status(|s| s.recommendations = Some(history(&[(200, 4), (100, 6)])))
        .decide();
    assert_eq!(d.desired_replicas, 4);
    assert!(conditions(&d).contains(&cond("AbleToScale", "True", "SucceededRescale")));
    // Without its own window, scale-down uses the operator's (5 minutes by default).
    let d = proposing(2, 8, 1, 10)
        .with_behavior(Behavior::default())
        .with_status(|s| s.recommendations = Some(history(&[(290, 7), (310, 9)])))
        .decide();
    assert_eq!(d.desired_replicas, 7);
}

#[test]
fn history_is_recorded_and_pruned() {
    let behavior = Behavior {
        scale_up: Some(rules(Some(60), None, &[(Pods, 10, 120)])),
        scale_down: Some(rules(Some(240), None, &[(Percent, 100, 30)])),
    };
    let d = proposing(6, 4, 1, 100)
        .with_behavior(behavior.clone())
        .with_status(|s| {
            s.recommendations = Some(history(&[(300, 4), (200, 4)]));
            s.scale_up_events = Some(events(&[(150, 1), (90, 1)]));
            s.scale_down_events = Some(events(&[(40, 1), (20, 1)]));
        })
        .decide();
    assert_eq!(d.desired_replicas, 6);
    let st = &d.status;
    assert_eq!(
        st.recommendations
            .as_ref()
            .unwrap()
            .iter()
            .map(|r| r.replicas)
            .collect::<Vec<_>>(),
        vec![4, 6],
        "240s is the longest window"
    );
    assert_eq!(
        st.scale_up_events
            .as_ref()
            .unwrap()
            .iter()
            .map(|e| e.change)
            .collect::<Vec<_>>(),
        vec![1, 2],
        "120s is the longest scale-up period"
    );
    assert_eq!(st.scale_up_events.as_ref().unwrap()[1].timestamp, Time(now()));
    assert_eq!(
        st.scale_down_events
            .as_ref()
            .unwrap()
            .iter()
            .map(|e| e.change)
            .collect::<Vec<_>>(),
        vec![1],
        "30s is the longest scale-down period"
    );
    // Without behavior no scale events are kept: they would never be read.
    let d = proposing(6, 4, 1, 100).decide();
    assert!(d.rescale);
    assert_eq!(d.status.scale_up_events, Some(vec![]));
}

#[test]
fn a_failed_rescale_keeps_no_scale_event() {
    let behavior = Behavior {
        scale_up: Some(rules(Some(0), None, &[(Pods, 10, 60)])),
        scale_down: None,
    };
    let case = proposing(6, 4, 1, 100).with_behavior(behavior);
    let mut d = case.decide();
    d.rescale_failed(case.status.as_ref(), "conflict", now());
    assert!(!d.rescale);
    assert_eq!(d.desired_replicas, 4);
    assert_eq!(d.status.scale_up_events, None);
    assert!(conditions(&d).contains(&cond("AbleToScale", "False", "FailedUpdateScale")));
    assert_eq!(reasons(&d), vec!["FailedRescale"]);
}

#[test]
fn conditions_keep_their_transition_time_while_unchanged() {
    let first = cpu_case(3, 1, 10, &[300, 300, 300]).decide();
    let mut case = cpu_case(3, 1, 10, &[300, 300, 300]);
    let mut earlier = first.status.clone();
    for c in earlier.conditions.iter_mut().flatten() {
        c.last_transition_time = Some(Time(ago(600)));
    }
    case.status = Some(earlier);
    let d = case.decide();
    assert!(
        d.status
            .conditions
            .unwrap()
            .iter()
            .all(|c| c.last_transition_time == Some(Time(ago(600))))
    );
}

#[test]
fn scale_from_zero_with_external_metric() {
    use ferroscale_api::AutoscalerCondition;
    let at_zero = || {
        Case::new(
            spec(Some(0), 10, vec![external_value("10")]),
            0,
            vec![],
            vec![Ok(MetricValues::External(vec![35_000]))],
        )
    };
    // A zero someone else set is maintenance: the metric is read and reported, nothing moves.
    let d = at_zero().decide();
    assert_eq!((d.desired_replicas, d.rescale, d.path), (0, false, Path::Disabled));
    assert_eq!(d.metrics[0].replicas, Some(4), "what the metric says is still shown");
    // The zero ferroscale set wakes on the metric.
    let d = at_zero()
        .with_status(|s| {
            s.conditions = Some(vec![AutoscalerCondition {
                type_: "ScaledToZero".into(),
                status: "True".into(),
                last_transition_time: Some(Time(ago(60))),
                reason: Some("ScaledToZero".into()),
                message: None,
            }])
        })
        .decide();
    assert_eq!((d.desired_replicas, d.rescale), (4, true));
    let d = Case::new(
        spec(Some(0), 10, vec![external_value("10")]),
        2,
        pods(2, 0),
        vec![Ok(MetricValues::External(vec![0]))],
    )
    .decide();
    assert_eq!(d.desired_replicas, 0, "scales to zero when minReplicas is 0");
}
