//! Fuzzing the decision past hand-made inputs: Autoscaler specs and statuses generated from the
//! CRD's own schema (what the API server admits, CEL rules aside), metric values at the edges
//! (0, negative, huge, errors), arbitrary pods, histories and pause annotations. `decide()`
//! must never panic, and a rescale must stay within [min, max] unless `paused-replicas`
//! overrides it.
//!
//! The number of cases comes from FUZZ_CASES (default 2,000, a short pass for every test run);
//! `make fuzz` runs a million in release mode. Failures proptest finds are kept in
//! `tests/fuzz.proptest-regressions` and replayed first on every run.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ferroscale_api::{AutoscalerSpec, AutoscalerStatus};
use ferroscale_autoscaler::pause::Pause;
use ferroscale_autoscaler::pods::{ConditionStatus, ContainerRequests, PodPhase, ReadyCondition};
use ferroscale_autoscaler::{
    Gathered, Input, MetricValues, PodInfo, PodSample, Scale, Settings, decide, effective_metrics,
};
use jiff::Timestamp;
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};
use serde_json::{Map, Value};

fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2_000)
}

fn now() -> Timestamp {
    "2026-06-01T12:00:00Z".parse().unwrap()
}

/// The Autoscaler CRD's schema for `part` (`spec` or `status`), as generated into crds/.
fn schema(part: &str) -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../crds/autoscalers.ferroscale.dev.yaml"
    );
    let crd: Value = serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"][part].clone()
}

/// Integers at the edges, within the schema's bounds.
fn integer(schema: &Value) -> BoxedStrategy<Value> {
    let int32 = schema["format"] == "int32";
    let low = schema["minimum"]
        .as_i64()
        .unwrap_or(if int32 { i64::from(i32::MIN) } else { i64::MIN / 2 });
    let high = schema["maximum"]
        .as_i64()
        .unwrap_or(if int32 { i64::from(i32::MAX) } else { i64::MAX / 2 });
    let edges: Vec<i64> = [low, high, 0, 1, -1, 2, 3, 5, 10, 15, 60, 100, 300, 3600]
        .into_iter()
        .filter(|v| (low..=high).contains(v))
        .collect();
    prop_oneof![
        3 => proptest::sample::select(edges),
        1 => low..=high,
        2 => (low.max(-5))..=(high.min(200)),
    ]
    .prop_map(Value::from)
    .boxed()
}

/// Quantities as a tenant may write them, well-formed or not.
fn quantity() -> BoxedStrategy<Value> {
    prop_oneof![
        proptest::sample::select(vec![
            "0",
            "1",
            "100m",
            "0.5",
            "-1",
            "1e3",
            "1Ki",
            "1Mi",
            "2.5Gi",
            "9223372036854775807",
            "1e309",
            "1E-9",
            "0.000000001",
            "abc",
            "",
            "1.2.3",
            "5n",
            "-0",
            "+3",
        ])
        .prop_map(Value::from),
        (-1_000_000i64..1_000_000).prop_map(|v| Value::from(v.to_string())),
        (0..i64::MAX).prop_map(Value::from),
        (0u32..1000).prop_map(|v| Value::from(format!("{v}m"))),
    ]
    .boxed()
}

fn string(schema: &Value) -> BoxedStrategy<Value> {
    if let Some(options) = schema["enum"].as_array() {
        return proptest::sample::select(options.clone()).boxed();
    }
    if schema["format"] == "date-time" {
        return prop_oneof![
            (-86_400 * 3i64..600)
                .prop_map(|s| Value::from(Timestamp::from_second(now().as_second() + s).unwrap().to_string())),
            Just(Value::from("0001-01-01T00:00:00Z")),
            // The latest instant the time library holds: a later one, which the schema's
            // date-time admits, cannot be read (status only; see the README's security notes).
            Just(Value::from("9999-12-30T00:00:00Z")),
        ]
        .boxed();
    }
    proptest::sample::select(vec![
        "",
        "web",
        "cpu",
        "memory",
        "app",
        "v1",
        "apps/v1",
        "Deployment",
        "PodSet",
        "ferroscale.dev/v1alpha1",
        "sum(x)",
        "http://prometheus:9090",
        "In",
        "NotIn",
        "Exists",
        "DoesNotExist",
    ])
    .prop_map(Value::from)
    .boxed()
}

/// Any value the schema admits (CEL rules aside), from the schema itself.
fn from_schema(schema: &Value) -> BoxedStrategy<Value> {
    if schema["x-kubernetes-int-or-string"] == true {
        return quantity();
    }
    if schema["x-kubernetes-preserve-unknown-fields"] == true && schema.get("properties").is_none() {
        return Just(Value::Object(Map::new())).boxed();
    }
    let value = match schema["type"].as_str() {
        Some("object") => object(schema),
        Some("array") => {
            let items = from_schema(&schema["items"]);
            let most = schema["maxItems"].as_u64().unwrap_or(4).min(4) as usize;
            proptest::collection::vec(items, 0..=most).prop_map(Value::from).boxed()
        }
        Some("integer") => integer(schema),
        Some("number") => prop_oneof![Just(0.0), Just(-1.0), Just(1e308), -1e3..1e3f64]
            .prop_map(Value::from)
            .boxed(),
        Some("boolean") => any::<bool>().prop_map(Value::from).boxed(),
        _ => string(schema),
    };
    if schema["nullable"] == true {
        prop_oneof![1 => Just(Value::Null), 4 => value].boxed()
    } else {
        value
    }
}

fn object(schema: &Value) -> BoxedStrategy<Value> {
    if let Some(values) = schema.get("additionalProperties").filter(|v| v.is_object()) {
        let keys = proptest::sample::select(vec!["app", "tier", "queue", "x"]);
        return proptest::collection::btree_map(keys, from_schema(values), 0..3)
            .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()))
            .boxed();
    }
    let required: Vec<&str> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let fields: Vec<BoxedStrategy<Option<(String, Value)>>> = schema["properties"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, field)| {
            let name = name.clone();
            let value = from_schema(field);
            if required.contains(&name.as_str()) {
                value.prop_map(move |v| Some((name.clone(), v))).boxed()
            } else {
                proptest::option::weighted(0.5, value.prop_map(move |v| (name.clone(), v))).boxed()
            }
        })
        .collect();
    fields
        .prop_map(|fields| Value::Object(fields.into_iter().flatten().collect()))
        .boxed()
}

fn value() -> impl Strategy<Value = i64> {
    prop_oneof![
        3 => proptest::sample::select(vec![0, 1, -1, 1000, i64::MAX, i64::MIN, i64::MAX / 1000, -1_000_000]),
        3 => -1_000i64..1_000_000,
        1 => any::<i64>(),
    ]
}

fn gathered(pods: usize) -> impl Strategy<Value = Gathered> {
    let sample = (0..pods.max(1) + 1, value(), 0u64..120).prop_map(|(i, value, window)| PodSample {
        pod: format!("p{i}"),
        value,
        timestamp: now(),
        window: Duration::from_secs(window),
    });
    prop_oneof![
        proptest::collection::vec(sample, 0..6).prop_map(|s| Ok(MetricValues::PerPod(s))),
        value().prop_map(|v| Ok(MetricValues::Object(v))),
        proptest::collection::vec(value(), 0..4).prop_map(|v| Ok(MetricValues::External(v))),
        value().prop_map(|v| Ok(MetricValues::Prometheus(v))),
        Just(Err("unavailable".to_string())),
    ]
}

/// A generated pod: phase, terminating, seconds since start, Ready (status index, seconds since
/// its transition), and requests (resource index, value).
type GeneratedPod = (PodPhase, bool, Option<i64>, Option<(u8, Option<i64>)>, Vec<(u8, i64)>);

fn pod() -> impl Strategy<Value = GeneratedPod> {
    (
        proptest::sample::select(vec![
            PodPhase::Running,
            PodPhase::Pending,
            PodPhase::Failed,
            PodPhase::Succeeded,
            PodPhase::Unknown,
        ]),
        any::<bool>(),
        proptest::option::of(-7200i64..7200),
        proptest::option::of((0u8..3, proptest::option::of(-7200i64..7200))),
        proptest::collection::vec((0u8..3, value()), 0..3),
    )
}

fn pod_info(i: usize, p: &GeneratedPod) -> PodInfo {
    let at = |s: i64| Timestamp::from_second(now().as_second() - s).unwrap();
    let resource = |r: u8| ["cpu", "memory", "gpu"][usize::from(r)].to_string();
    PodInfo {
        name: Arc::from(format!("p{i}")),
        phase: p.0,
        terminating: p.1,
        start_time: p.2.map(at),
        ready: p.3.map(|(s, t)| ReadyCondition {
            status: [ConditionStatus::True, ConditionStatus::False, ConditionStatus::Unknown][usize::from(s)],
            last_transition: t.map(at),
        }),
        containers: Arc::from(vec![ContainerRequests {
            name: "c".into(),
            requests: p.4.iter().map(|(r, v)| (resource(*r), *v)).collect(),
        }]),
        pod_requests: Vec::new(),
    }
}

fn annotations() -> impl Strategy<Value = Option<BTreeMap<String, String>>> {
    let key = proptest::sample::select(vec!["ferroscale.dev/paused", "ferroscale.dev/paused-replicas", "other"]);
    let text = proptest::sample::select(vec!["true", "false", "yes", "0", "1", "3", "-1", "x", "2147483647", ""]);
    proptest::option::of(
        proptest::collection::btree_map(key, text, 0..3)
            .prop_map(|m| m.into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
    )
}

fn scale() -> impl Strategy<Value = Scale> {
    (
        proptest::sample::select(vec![0, 1, 2, 3, 10, 100, -1, i32::MAX]),
        proptest::sample::select(vec![0, 1, 3, -1, i32::MAX]),
        proptest::sample::select(vec![
            Some("app=web"),
            None,
            Some(""),
            Some("!!"),
            Some("app in (a,b),tier!=x"),
        ]),
    )
        .prop_map(|(spec_replicas, status_replicas, selector)| Scale {
            spec_replicas,
            status_replicas,
            selector: selector.map(String::from),
        })
}

/// Everything one evaluation reads, generated.
#[derive(Debug, Clone)]
struct Generated {
    spec: AutoscalerSpec,
    status: Option<AutoscalerStatus>,
    scale: Scale,
    pods: Vec<PodInfo>,
    metrics: Vec<Gathered>,
    annotations: Option<BTreeMap<String, String>>,
}

fn generated() -> impl Strategy<Value = Generated> {
    let (spec_schema, status_schema) = (schema("spec"), schema("status"));
    (
        from_schema(&spec_schema),
        proptest::option::of(from_schema(&status_schema)),
        scale(),
        proptest::collection::vec(pod(), 0..6),
        annotations(),
    )
        .prop_flat_map(|(spec, status, scale, pods, annotations)| {
            let spec: AutoscalerSpec = serde_json::from_value(spec.clone())
                .unwrap_or_else(|e| panic!("the schema admits a spec the operator cannot read: {e}\n{spec:#}"));
            let status: Option<AutoscalerStatus> = status.filter(|s| !s.is_null()).map(|status| {
                serde_json::from_value(status.clone())
                    .unwrap_or_else(|e| panic!("the schema admits a status the operator cannot read: {e}\n{status:#}"))
            });
            let pods: Vec<PodInfo> = pods.iter().enumerate().map(|(i, p)| pod_info(i, p)).collect();
            let count = effective_metrics(&spec).len();
            let metrics = proptest::collection::vec(gathered(pods.len()), count..=count);
            (Just((spec, status, scale, pods, annotations)), metrics)
        })
        .prop_map(|((spec, status, scale, pods, annotations), metrics)| Generated {
            spec,
            status,
            scale,
            pods,
            metrics,
            annotations,
        })
}

fn decide_generated(g: &Generated, settings: &Settings) -> ferroscale_autoscaler::Decision {
    decide(&Input {
        spec: &g.spec,
        status: g.status.as_ref(),
        generation: Some(3),
        scale: &g.scale,
        pods: &g.pods,
        metrics: &g.metrics,
        now: now(),
        settings,
        last_recommended: None,
        annotations: g.annotations.as_ref(),
        conflict: None,
        pods_left_out: 0,
        compiled: None,
        series: &[],
    })
}

proptest! {
    #![proptest_config(Config {
        cases: cases(),
        max_shrink_iters: 10_000,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..Config::default()
    })]

    #[test]
    fn decide_never_panics_and_keeps_its_bounds(g in generated()) {
        let decision = decide_generated(&g, &Settings::default());
        if decision.rescale {
            prop_assert!(decision.desired_replicas >= 0, "{decision:?}");
            let min = g.spec.min_replicas.unwrap_or(1);
            let max = g.spec.max_replicas;
            match Pause::from_annotations(g.annotations.as_ref()) {
                Pause::Replicas(n) => prop_assert_eq!(decision.desired_replicas, n),
                _ => prop_assert!(
                    (min..=max).contains(&decision.desired_replicas),
                    "rescaled to {} outside [{min}, {max}]", decision.desired_replicas
                ),
            }
        } else {
            prop_assert_eq!(decision.desired_replicas, decision.current_replicas);
        }
        // What is written reads back as the same status: the next evaluation starts from it.
        let written = serde_json::to_value(&decision.status).unwrap();
        let read: AutoscalerStatus = serde_json::from_value(written).unwrap();
        prop_assert_eq!(read, decision.status);
    }
}

/// Found by the fuzzer: `paused-replicas: "2147483647"` on a target whose custom resource
/// allowed `spec.replicas: -1` overflowed the size of the recorded scale event.
#[test]
fn regression_a_rescale_from_a_negative_count_to_the_largest_one() {
    let spec: AutoscalerSpec = serde_json::from_value(serde_json::json!({
        "scaleTargetRef": {"kind": "web", "name": "apps/v1"}, "maxReplicas": 2, "behavior": {},
        "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]
    }))
    .unwrap();
    let g = Generated {
        spec,
        status: Some(AutoscalerStatus {
            desired_replicas: 3,
            ..AutoscalerStatus::default()
        }),
        scale: Scale {
            spec_replicas: -1,
            status_replicas: 1,
            selector: Some("app=web".into()),
        },
        pods: Vec::new(),
        metrics: vec![Ok(MetricValues::PerPod(Vec::new()))],
        annotations: Some(BTreeMap::from([(
            "ferroscale.dev/paused-replicas".to_string(),
            i32::MAX.to_string(),
        )])),
    };
    let d = decide_generated(&g, &Settings::default());
    assert_eq!((d.rescale, d.desired_replicas), (true, i32::MAX));
    let change = d.status.scale_up_events.unwrap()[0].change;
    assert_eq!(change, i32::MAX, "the change saturates");
}
