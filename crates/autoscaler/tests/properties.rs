//! Invariants that hold for every input: the count stays within [min, max], nothing changes
//! inside the tolerance, and more load never proposes fewer replicas.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use common::*;
use ferroscale_api::ScalingPolicyType::{Percent, Pods};
use ferroscale_api::{Behavior, SelectPolicy};
use ferroscale_autoscaler::MetricValues;
use ferroscale_autoscaler::Path;
use ferroscale_autoscaler::gates::reads_metrics;
use proptest::prelude::*;

fn select() -> impl Strategy<Value = Option<SelectPolicy>> {
    prop_oneof![
        Just(None),
        Just(Some(SelectPolicy::Max)),
        Just(Some(SelectPolicy::Min)),
        Just(Some(SelectPolicy::Disabled))
    ]
}

fn direction() -> impl Strategy<Value = ferroscale_api::ScalingRules> {
    (
        proptest::option::of(0..600i32),
        select(),
        1..20i32,
        1..200i32,
        1..300i32,
    )
        .prop_map(|(window, select, pods, percent, period)| {
            rules(window, select, &[(Pods, pods, period), (Percent, percent, period)])
        })
}

fn behavior() -> impl Strategy<Value = Option<Behavior>> {
    proptest::option::of(
        (proptest::option::of(direction()), proptest::option::of(direction()))
            .prop_map(|(scale_up, scale_down)| Behavior { scale_up, scale_down }),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn desired_stays_within_min_and_max(
        min in 1..20i32,
        extra in 0..50i32,
        current in 0..100i32,
        proposal in 0..10_000i64,
        behavior in behavior(),
        past in proptest::collection::vec((0..900i64, 0..100i32), 0..8),
        ups in proptest::collection::vec((0..900i64, 1..20i32), 0..4),
        downs in proptest::collection::vec((0..900i64, 1..20i32), 0..4),
    ) {
        let max = min + extra;
        let mut case = Case::new(spec(Some(min), max, vec![external_average("1")]), current, pods(current as usize, 0), vec![Ok(MetricValues::External(vec![proposal * 1000]))]);
        case.spec.behavior = behavior;
        case = case.with_status(|s| {
            s.recommendations = Some(history(&past));
            s.scale_up_events = Some(events(&ups));
            s.scale_down_events = Some(events(&downs));
        });
        let d = case.decide();
        // Callers skip gathering metrics exactly when the decision does not read them.
        prop_assert_eq!(reads_metrics(&case.spec, case.status.as_ref(), current, common::now()), !matches!(d.path, Path::Disabled | Path::OutOfRange | Path::InvalidSpec));
        if d.path == Path::Disabled {
            prop_assert_eq!(d.desired_replicas, 0);
        } else {
            prop_assert!(d.desired_replicas >= min && d.desired_replicas <= max, "{} not in [{}, {}]", d.desired_replicas, min, max);
        }
        prop_assert_eq!(d.rescale, d.desired_replicas != current);
    }

    #[test]
    fn no_change_inside_the_tolerance(
        n in 1..40usize,
        request in 100..4000i64,
        target in 10..200i32,
        usage in proptest::collection::vec(0..8000i64, 40),
        tolerance in 0.0..0.5f64,
    ) {
        let usage = &usage[..n];
        let mut case = Case::new(spec(Some(1), 1000, vec![cpu(target)]), n as i32, pods(n, request), vec![per_pod(usage)]);
        case.settings.tolerance = tolerance;
        let d = case.decide();
        // The HPA's ratio: integer utilization over the target.
        let utilization = usage.iter().sum::<i64>() * 100 / (request * n as i64);
        let ratio = utilization as f64 / f64::from(target);
        if (1.0 - tolerance) <= ratio && ratio <= 1.0 + tolerance {
            prop_assert_eq!(d.metrics[0].replicas, Some(n as i32));
        } else {
            prop_assert_eq!(d.metrics[0].replicas, Some((ratio * n as f64).ceil() as i32));
        }
    }

    #[test]
    fn more_load_never_proposes_fewer_replicas(
        n in 1..30usize,
        target in 1..10_000i64,
        usage in proptest::collection::vec(0..20_000i64, 30),
        pod in 0..30usize,
        more in 0..20_000i64,
    ) {
        let usage = usage[..n].to_vec();
        let mut loaded = usage.clone();
        loaded[pod % n] += more;
        let proposal = |values: &[i64]| {
            let metric = pods_metric("qps", &format!("{target}m"));
            Case::new(spec(Some(1), 100_000, vec![metric]), n as i32, pods(n, 0), vec![per_pod(values)]).decide().metrics[0].replicas.unwrap()
        };
        prop_assert!(proposal(&loaded) >= proposal(&usage));
    }

    #[test]
    fn arbitrary_quantities_never_panic(text in "[-+]?[0-9]{0,40}(\\.[0-9]{0,30})?(m|k|Ki|Mi|Gi|Ei|E|e[-+]?[0-9]{1,4}|[a-z]{0,2})?") {
        if let Ok(q) = ferroscale_api::quantity::ParsedQuantity::parse(&text) {
            let _ = q.milli_value();
            let _ = q.as_f64();
        }
    }
}
