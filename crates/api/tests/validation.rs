//! Invalid specs are refused with the offending field's path: by `validate()` in Rust, and by
//! the CRD's own rules (evaluated here as the API server would, without one).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use ferroscale_api::{Autoscaler, AutoscalerSpec, PodSetSpec};
use kube::core::cel::Validator;
use serde_json::{Value, json};

fn spec(patch: Value) -> AutoscalerSpec {
    let mut base = json!({
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        "minReplicas": 1,
        "maxReplicas": 5,
        "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]
    });
    merge(&mut base, patch);
    serde_json::from_value(base).unwrap()
}

fn merge(base: &mut Value, patch: Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, p) => *b = p,
    }
}

fn paths(spec: &AutoscalerSpec) -> Vec<String> {
    match spec.validate() {
        Ok(()) => Vec::new(),
        Err(errors) => errors.0.into_iter().map(|e| e.path).collect(),
    }
}

#[test]
fn validate_names_each_offending_field() {
    let metric = |m: Value| json!({"metrics": [m]});
    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        ("valid", json!({}), vec![]),
        ("min above max", json!({"minReplicas": 6}), vec!["spec.maxReplicas"]),
        (
            "max zero",
            json!({"maxReplicas": 0, "minReplicas": 0}),
            vec!["spec.minReplicas", "spec.maxReplicas"],
        ),
        ("negative min", json!({"minReplicas": -1}), vec!["spec.minReplicas"]),
        (
            "zero min without object metric",
            json!({"minReplicas": 0}),
            vec!["spec.minReplicas"],
        ),
        (
            "empty target name",
            json!({"scaleTargetRef": {"name": ""}}),
            vec!["spec.scaleTargetRef.name"],
        ),
        (
            "member missing",
            metric(
                json!({"type": "Pods", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 5}}}),
            ),
            vec!["spec.metrics[0].resource", "spec.metrics[0].pods"],
        ),
        (
            "utilization without value",
            metric(json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization"}}})),
            vec!["spec.metrics[0].resource.target.averageUtilization"],
        ),
        (
            "value target on a resource",
            metric(json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Value", "value": "1"}}})),
            vec!["spec.metrics[0].resource.target.type"],
        ),
        (
            "unparseable quantity",
            metric(
                json!({"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "ten"}}}),
            ),
            vec!["spec.metrics[0].pods.target.averageValue"],
        ),
        (
            "negative value",
            metric(
                json!({"type": "External", "external": {"metric": {"name": "q"}, "target": {"type": "Value", "value": "-3"}}}),
            ),
            vec!["spec.metrics[0].external.target.value"],
        ),
        (
            "bad selector operator",
            metric(
                json!({"type": "External", "external": {"metric": {"name": "q", "selector": {"matchExpressions": [{"key": "a", "operator": "Like"}]}}, "target": {"type": "Value", "value": "3"}}}),
            ),
            vec!["spec.metrics[0].external.metric.selector.matchExpressions[0].operator"],
        ),
        (
            "prometheus without query or URL scheme",
            metric(
                json!({"type": "Prometheus", "prometheus": {"serverAddress": "prom:9090", "query": " ", "target": {"type": "Value", "value": "3"}}}),
            ),
            vec![
                "spec.metrics[0].prometheus.query",
                "spec.metrics[0].prometheus.serverAddress",
            ],
        ),
        (
            "policies",
            json!({"behavior": {"scaleUp": {"policies": [{"type": "Pods", "value": 0, "periodSeconds": 4000}]}, "scaleDown": {"stabilizationWindowSeconds": 7200, "policies": [], "tolerance": "-1"}}}),
            vec![
                "spec.behavior.scaleUp.policies[0].value",
                "spec.behavior.scaleUp.policies[0].periodSeconds",
                "spec.behavior.scaleDown.stabilizationWindowSeconds",
                "spec.behavior.scaleDown.policies",
                "spec.behavior.scaleDown.tolerance",
            ],
        ),
    ];
    for (name, patch, want) in cases {
        assert_eq!(paths(&spec(patch)), want, "{name}");
    }
}

#[test]
fn validate_messages_say_what_is_wrong() {
    let errors = spec(json!({"minReplicas": 6})).validate().unwrap_err();
    assert_eq!(
        errors.to_string(),
        "spec.maxReplicas: must be greater than or equal to minReplicas (6)"
    );
}

#[test]
fn podset_selector_must_match_the_template() {
    let podset: PodSetSpec = serde_json::from_value(json!({
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "api"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
    }))
    .unwrap();
    let errors = podset.validate().unwrap_err();
    assert_eq!(errors.0[0].path, "spec.template.metadata.labels");
    assert!(errors.0[0].message.contains("app=web"), "{errors}");
}

/// The Autoscaler CRD's openAPIV3Schema, as installed from crds/.
fn crd_schema() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../crds/autoscalers.ferroscale.dev.yaml"
    ))
    .unwrap();
    let crd: Value = serde_yaml::from_str(&text).unwrap();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

fn cel_errors(object: &Value) -> Vec<(String, String)> {
    match Validator::new().validate(&crd_schema(), object, None) {
        Ok(()) => Vec::new(),
        Err(errors) => errors
            .into_vec()
            .into_iter()
            .map(|e| (e.field_path, e.message))
            .collect(),
    }
}

fn object(spec: Value) -> Value {
    json!({"apiVersion": "ferroscale.dev/v1alpha1", "kind": "Autoscaler", "metadata": {"name": "a"}, "spec": spec})
}

#[test]
fn crd_rules_name_the_offending_field() {
    let valid = serde_json::to_value(spec(json!({}))).unwrap();
    assert_eq!(cel_errors(&object(valid.clone())), vec![]);

    let mut inverted = valid.clone();
    inverted["minReplicas"] = json!(9);
    let errors = cel_errors(&object(inverted));
    assert_eq!(errors.len(), 1, "{errors:?}");
    // The rule compares two fields, so it sits on spec; its message names the field.
    assert!(errors[0].0.ends_with("spec"), "{errors:?}");
    assert_eq!(errors[0].1, "minReplicas must be less than or equal to maxReplicas");

    let mut no_member = valid.clone();
    no_member["metrics"][0] = json!({"type": "External"});
    let errors = cel_errors(&object(no_member));
    assert!(
        errors
            .iter()
            .any(|(path, msg)| path.contains("metrics") && msg == "external must be set when type is External"),
        "{errors:?}"
    );

    let mut no_value = valid;
    no_value["metrics"][0]["resource"]["target"] = json!({"type": "AverageValue"});
    let errors = cel_errors(&object(no_value));
    assert!(
        errors
            .iter()
            .any(|(path, msg)| path.contains("target") && msg == "averageValue must be set when type is AverageValue"),
        "{errors:?}"
    );
}

#[test]
fn the_crd_schema_carries_descriptions_and_bounds() {
    let schema = crd_schema();
    let spec = &schema["properties"]["spec"];
    assert!(
        spec["properties"]["maxReplicas"]["description"]
            .as_str()
            .unwrap()
            .contains("upper limit")
    );
    assert_eq!(spec["properties"]["maxReplicas"]["minimum"], json!(1.0));
    let autoscaler: Autoscaler =
        serde_json::from_value(object(serde_json::to_value(self::spec(json!({}))).unwrap())).unwrap();
    assert_eq!(autoscaler.spec.max_replicas, 5);
}

#[test]
fn names_schedules_formula_and_predictive_fields_are_checked() {
    let prometheus = |predictive: Value| {
        json!({"type": "Prometheus", "prometheus": {"query": "up", "target": {"type": "Value", "value": "1"},
               "predictive": predictive}})
    };
    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        (
            "names unique and DNS labels",
            json!({"metrics": [
                {"name": "queue", "type": "External", "external": {"metric": {"name": "q"}, "target": {"type": "Value", "value": "1"}}},
                {"name": "queue", "type": "External", "external": {"metric": {"name": "r"}, "target": {"type": "Value", "value": "1"}}},
                {"name": "9lives", "type": "External", "external": {"metric": {"name": "s"}, "target": {"type": "Value", "value": "1"}}}
            ]}),
            vec!["spec.metrics[1].name", "spec.metrics[2].name"],
        ),
        (
            "schedule bounds and duplicate names",
            json!({"schedules": [
                {"name": "day", "start": "0 9 * * *", "end": "8h", "minReplicas": 5, "maxReplicas": 3},
                {"name": "day", "start": "0 9 * * *", "end": "8h", "minReplicas": 0}
            ]}),
            vec![
                "spec.schedules[0].maxReplicas",
                "spec.schedules[1].name",
                "spec.schedules[1].minReplicas",
            ],
        ),
        (
            "a formula needs named metrics and a Value or AverageValue target",
            json!({"formula": {"expression": "1", "target": {"type": "Utilization", "averageUtilization": 50}}}),
            vec!["spec.formula.target.type", "spec.formula"],
        ),
        (
            "predictive durations and their rules",
            json!({"metrics": [prometheus(json!({"model": "SeasonalNaive", "season": "10m", "lookAhead": "1h",
                                                  "history": "5m", "window": "5m", "maxErrorPercent": 0}))]}),
            vec![
                "spec.metrics[0].prometheus.predictive.window",
                "spec.metrics[0].prometheus.predictive.lookAhead",
                "spec.metrics[0].prometheus.predictive.history",
                "spec.metrics[0].prometheus.predictive.maxErrorPercent",
            ],
        ),
        (
            "a duration that is not one",
            json!({"metrics": [prometheus(json!({"model": "LinearRegression", "window": "ten minutes", "season": "1d"}))]}),
            vec![
                "spec.metrics[0].prometheus.predictive.season",
                "spec.metrics[0].prometheus.predictive.window",
            ],
        ),
    ];
    for (name, patch, expected) in cases {
        let mut found = paths(&spec(patch));
        found.sort();
        let mut expected: Vec<String> = expected.into_iter().map(String::from).collect();
        expected.sort();
        assert_eq!(found, expected, "{name}");
    }
}
