//! The older shapes of HorizontalPodAutoscaler metrics and behavior: the metric specs of
//! `autoscaling/v2beta1` (which `autoscaling/v1` also keeps, in an annotation), and the
//! behavior that `autoscaling/v1` and `autoscaling/v2beta1` keep in an annotation. Each is
//! turned into its `autoscaling/v2` form the way the API server turns it.

use k8s_openapi::api::autoscaling::v2;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One metric in the `autoscaling/v2beta1` shape: targets are flat fields of each source.
/// Fields left out take Go's zero values, as the API server reads them; its validation, and
/// the Autoscaler's, then names what is missing.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LegacyMetric {
    #[serde(rename = "type")]
    #[serde(default)]
    pub type_: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<LegacyObject>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pods: Option<LegacyPods>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<LegacyResource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_resource: Option<LegacyContainerResource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<LegacyExternal>,
}

/// A metric of one object; `target` names the object, not the value.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LegacyObject {
    #[serde(default)]
    pub target: v2::CrossVersionObjectReference,
    #[serde(default)]
    pub metric_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_value: Option<Quantity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub average_value: Option<Quantity>,
}

/// A per-pod custom metric.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LegacyPods {
    #[serde(default)]
    pub metric_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_average_value: Option<Quantity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
}

/// A resource metric of the pods.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LegacyResource {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_average_utilization: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_average_value: Option<Quantity>,
}

/// A resource metric of one container of each pod.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LegacyContainerResource {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub container: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_average_utilization: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_average_value: Option<Quantity>,
}

/// A metric from outside the cluster.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LegacyExternal {
    #[serde(default)]
    pub metric_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_selector: Option<LabelSelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_value: Option<Quantity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_average_value: Option<Quantity>,
}

/// Go's zero quantity: what a non-pointer quantity field holds when it was never set.
fn zero() -> Quantity {
    Quantity("0".into())
}

fn target(type_: &str) -> v2::MetricTarget {
    v2::MetricTarget {
        type_: type_.into(),
        ..Default::default()
    }
}

impl LegacyMetric {
    /// The `autoscaling/v2` metric. Each member present is converted, whatever `type` says
    /// (validation then names a mismatch), and the target type follows from which target
    /// fields are set, as the API server decides it.
    pub fn to_v2(&self) -> v2::MetricSpec {
        let identifier = |name: &str, selector: &Option<LabelSelector>| v2::MetricIdentifier {
            name: name.into(),
            selector: selector.clone(),
        };
        v2::MetricSpec {
            type_: self.type_.clone(),
            object: self.object.as_ref().map(|o| v2::ObjectMetricSource {
                described_object: o.target.clone(),
                metric: identifier(&o.metric_name, &o.selector),
                // The older object target value is a plain quantity: it is always carried over,
                // as zero when unset, even when the average value is the one that counts.
                target: v2::MetricTarget {
                    value: Some(o.target_value.clone().unwrap_or_else(zero)),
                    average_value: o.average_value.clone(),
                    ..target(if o.average_value.is_some() {
                        "AverageValue"
                    } else {
                        "Value"
                    })
                },
            }),
            pods: self.pods.as_ref().map(|p| v2::PodsMetricSource {
                metric: identifier(&p.metric_name, &p.selector),
                target: v2::MetricTarget {
                    average_value: Some(p.target_average_value.clone().unwrap_or_else(zero)),
                    ..target("AverageValue")
                },
            }),
            resource: self.resource.as_ref().map(|r| v2::ResourceMetricSource {
                name: r.name.clone(),
                target: resource_target(r.target_average_utilization, &r.target_average_value),
            }),
            container_resource: self
                .container_resource
                .as_ref()
                .map(|c| v2::ContainerResourceMetricSource {
                    name: c.name.clone(),
                    container: c.container.clone(),
                    target: resource_target(c.target_average_utilization, &c.target_average_value),
                }),
            external: self.external.as_ref().map(|e| v2::ExternalMetricSource {
                metric: identifier(&e.metric_name, &e.metric_selector),
                target: v2::MetricTarget {
                    value: e.target_value.clone(),
                    average_value: e.target_average_value.clone(),
                    ..target(if e.target_value.is_some() {
                        "Value"
                    } else {
                        "AverageValue"
                    })
                },
            }),
        }
    }
}

fn resource_target(utilization: Option<i32>, average: &Option<Quantity>) -> v2::MetricTarget {
    v2::MetricTarget {
        average_utilization: utilization,
        average_value: average.clone(),
        ..target(if utilization.is_some() {
            "Utilization"
        } else {
            "AverageValue"
        })
    }
}

/// The fields of an object in JSON that the API server reads with Go's `encoding/json`, which
/// matches names regardless of case (the behavior annotation holds Go field names such as
/// `ScaleUp`) and ignores names it does not know.
#[derive(Debug)]
enum Shape {
    Struct(&'static [(&'static str, &'static Shape)]),
    List(&'static Shape),
    /// Taken as it is: a value, or a map whose keys are data (label names).
    Leaf,
}

static LEAF: Shape = Shape::Leaf;
static REQUIREMENT: Shape = Shape::Struct(&[("key", &LEAF), ("operator", &LEAF), ("values", &LEAF)]);
static REQUIREMENTS: Shape = Shape::List(&REQUIREMENT);
static SELECTOR: Shape = Shape::Struct(&[("matchLabels", &LEAF), ("matchExpressions", &REQUIREMENTS)]);
static REFERENCE: Shape = Shape::Struct(&[("kind", &LEAF), ("name", &LEAF), ("apiVersion", &LEAF)]);
static OBJECT: Shape = Shape::Struct(&[
    ("target", &REFERENCE),
    ("metricName", &LEAF),
    ("targetValue", &LEAF),
    ("selector", &SELECTOR),
    ("averageValue", &LEAF),
]);
static PODS: Shape = Shape::Struct(&[
    ("metricName", &LEAF),
    ("targetAverageValue", &LEAF),
    ("selector", &SELECTOR),
]);
static RESOURCE: Shape = Shape::Struct(&[
    ("name", &LEAF),
    ("targetAverageUtilization", &LEAF),
    ("targetAverageValue", &LEAF),
]);
static CONTAINER_RESOURCE: Shape = Shape::Struct(&[
    ("name", &LEAF),
    ("container", &LEAF),
    ("targetAverageUtilization", &LEAF),
    ("targetAverageValue", &LEAF),
]);
static EXTERNAL: Shape = Shape::Struct(&[
    ("metricName", &LEAF),
    ("metricSelector", &SELECTOR),
    ("targetValue", &LEAF),
    ("targetAverageValue", &LEAF),
]);
static METRIC: Shape = Shape::Struct(&[
    ("type", &LEAF),
    ("object", &OBJECT),
    ("pods", &PODS),
    ("resource", &RESOURCE),
    ("containerResource", &CONTAINER_RESOURCE),
    ("external", &EXTERNAL),
]);
static METRICS: Shape = Shape::List(&METRIC);
static POLICY: Shape = Shape::Struct(&[("type", &LEAF), ("value", &LEAF), ("periodSeconds", &LEAF)]);
static POLICIES: Shape = Shape::List(&POLICY);
static RULES: Shape = Shape::Struct(&[
    ("stabilizationWindowSeconds", &LEAF),
    ("selectPolicy", &LEAF),
    ("policies", &POLICIES),
    ("tolerance", &LEAF),
]);
static BEHAVIOR: Shape = Shape::Struct(&[("scaleUp", &RULES), ("scaleDown", &RULES)]);

/// `value` with the field names of `shape` spelled as the API documents them; names that
/// match none are left out, as Go leaves them out.
fn canonical(value: &Value, shape: &Shape) -> Value {
    match (shape, value) {
        (Shape::Struct(fields), Value::Object(map)) => {
            let mut out = Map::new();
            // An exact match wins over a match that ignores case.
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by_key(|k| fields.iter().any(|(name, _)| name == k));
            for key in keys {
                if let Some((name, field)) = fields.iter().find(|(name, _)| name.eq_ignore_ascii_case(key)) {
                    out.insert((*name).to_string(), canonical(&map[key], field));
                }
            }
            Value::Object(out)
        }
        (Shape::List(item), Value::Array(items)) => Value::Array(items.iter().map(|v| canonical(v, item)).collect()),
        _ => value.clone(),
    }
}

/// A problem with an annotation's JSON: where in it, and what.
fn describe(error: serde_path_to_error::Error<serde_json::Error>) -> String {
    let path = error.path().to_string();
    if path == "." {
        error.into_inner().to_string()
    } else {
        format!("{path}: {}", error.into_inner())
    }
}

/// The metrics of the `autoscaling.alpha.kubernetes.io/metrics` annotation of an
/// `autoscaling/v1` HPA, as `autoscaling/v2` metrics.
pub fn metrics_annotation(text: &str) -> Result<Vec<v2::MetricSpec>, String> {
    let raw: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let metrics: Vec<LegacyMetric> = serde_path_to_error::deserialize(canonical(&raw, &METRICS)).map_err(describe)?;
    Ok(metrics.iter().map(LegacyMetric::to_v2).collect())
}

/// The behavior of the `autoscaling.alpha.kubernetes.io/behavior` annotation of an
/// `autoscaling/v1` or `autoscaling/v2beta1` HPA; None when it sets no direction.
pub fn behavior_annotation(text: &str) -> Result<Option<v2::HorizontalPodAutoscalerBehavior>, String> {
    let raw: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let behavior: v2::HorizontalPodAutoscalerBehavior =
        serde_path_to_error::deserialize(canonical(&raw, &BEHAVIOR)).map_err(describe)?;
    Ok((behavior.scale_up.is_some() || behavior.scale_down.is_some()).then_some(behavior))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

    use super::*;
    use serde_json::json;

    fn metric(value: Value) -> Value {
        let metrics = metrics_annotation(&json!([value]).to_string()).unwrap();
        serde_json::to_value(&metrics[0]).unwrap()
    }

    #[test]
    fn each_legacy_source_becomes_its_v2_form() {
        let cases = [
            (
                "resource utilization",
                json!({"type": "Resource", "resource": {"name": "cpu", "targetAverageUtilization": 60}}),
                json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}}),
            ),
            (
                "resource average value",
                json!({"type": "Resource", "resource": {"name": "memory", "targetAverageValue": "100Mi"}}),
                json!({"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "100Mi"}}}),
            ),
            (
                "container resource",
                json!({"type": "ContainerResource", "containerResource": {"name": "cpu", "container": "app", "targetAverageUtilization": 70}}),
                json!({"type": "ContainerResource", "containerResource": {"name": "cpu", "container": "app", "target": {"type": "Utilization", "averageUtilization": 70}}}),
            ),
            (
                "pods",
                json!({"type": "Pods", "pods": {"metricName": "qps", "targetAverageValue": "10", "selector": {"matchLabels": {"Verb": "GET"}}}}),
                json!({"type": "Pods", "pods": {"metric": {"name": "qps", "selector": {"matchLabels": {"Verb": "GET"}}}, "target": {"type": "AverageValue", "averageValue": "10"}}}),
            ),
            (
                "object value",
                json!({"type": "Object", "object": {"target": {"kind": "Service", "name": "web"}, "metricName": "rps", "targetValue": "5"}}),
                json!({"type": "Object", "object": {"describedObject": {"kind": "Service", "name": "web"}, "metric": {"name": "rps"}, "target": {"type": "Value", "value": "5"}}}),
            ),
            (
                "object average value keeps the plain target value",
                json!({"type": "Object", "object": {"target": {"kind": "Service", "name": "web", "apiVersion": "v1"}, "metricName": "rps", "targetValue": "5", "averageValue": "2"}}),
                json!({"type": "Object", "object": {"describedObject": {"kind": "Service", "name": "web", "apiVersion": "v1"}, "metric": {"name": "rps"}, "target": {"type": "AverageValue", "value": "5", "averageValue": "2"}}}),
            ),
            (
                "object average value alone gets a zero value",
                json!({"type": "Object", "object": {"target": {"kind": "Service", "name": "web"}, "metricName": "rps", "averageValue": "2"}}),
                json!({"type": "Object", "object": {"describedObject": {"kind": "Service", "name": "web"}, "metric": {"name": "rps"}, "target": {"type": "AverageValue", "value": "0", "averageValue": "2"}}}),
            ),
            (
                "external value",
                json!({"type": "External", "external": {"metricName": "queue", "metricSelector": {"matchLabels": {"q": "a"}}, "targetValue": "30"}}),
                json!({"type": "External", "external": {"metric": {"name": "queue", "selector": {"matchLabels": {"q": "a"}}}, "target": {"type": "Value", "value": "30"}}}),
            ),
            (
                "external average value",
                json!({"type": "External", "external": {"metricName": "queue", "targetAverageValue": "30"}}),
                json!({"type": "External", "external": {"metric": {"name": "queue"}, "target": {"type": "AverageValue", "averageValue": "30"}}}),
            ),
        ];
        for (name, legacy, expected) in cases {
            assert_eq!(metric(legacy), expected, "{name}");
        }
    }

    #[test]
    fn annotation_names_match_regardless_of_case_but_label_keys_stay() {
        let converted = metric(
            json!({"Type": "Pods", "PODS": {"MetricName": "qps", "targetaveragevalue": "1",
            "Selector": {"MatchLabels": {"App": "x"}, "matchExpressions": [{"Key": "tier", "Operator": "In", "Values": ["A"]}]}}}),
        );
        assert_eq!(
            converted,
            json!({"type": "Pods", "pods": {"metric": {"name": "qps", "selector": {
                "matchLabels": {"App": "x"},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["A"]}]}},
                "target": {"type": "AverageValue", "averageValue": "1"}}})
        );
    }

    #[test]
    fn behavior_annotation_reads_go_field_names() {
        let text = r#"{"ScaleUp":{"StabilizationWindowSeconds":30,"SelectPolicy":"Max","Policies":[{"Type":"Pods","Value":2,"PeriodSeconds":60}]},
                      "ScaleDown":{"StabilizationWindowSeconds":null,"SelectPolicy":"Disabled","Policies":[{"Type":"Percent","Value":10,"PeriodSeconds":60}],"Tolerance":"50m"},
                      "Unknown":1}"#;
        let behavior = behavior_annotation(text).unwrap().unwrap();
        assert_eq!(
            serde_json::to_value(behavior).unwrap(),
            json!({
                "scaleUp": {"stabilizationWindowSeconds": 30, "selectPolicy": "Max", "policies": [{"type": "Pods", "value": 2, "periodSeconds": 60}]},
                "scaleDown": {"selectPolicy": "Disabled", "policies": [{"type": "Percent", "value": 10, "periodSeconds": 60}], "tolerance": "50m"}
            })
        );
    }

    #[test]
    fn an_empty_behavior_is_none_and_a_malformed_one_names_the_field() {
        assert_eq!(behavior_annotation("{}").unwrap(), None);
        assert_eq!(behavior_annotation(r#"{"ScaleUp":null}"#).unwrap(), None);
        let error = behavior_annotation(r#"{"scaleUp":{"stabilizationWindowSeconds":"x"}}"#).unwrap_err();
        assert!(error.starts_with("scaleUp.stabilizationWindowSeconds: "), "{error}");
        assert!(behavior_annotation("nope").unwrap_err().starts_with("not JSON"));
    }

    #[test]
    fn a_malformed_metric_names_its_index_and_field() {
        let error = metrics_annotation(
            r#"[{"type":"Pods","pods":{"metricName":"a"}},{"type":"Object","object":{"metricName":5}}]"#,
        )
        .unwrap_err();
        assert!(
            error.starts_with("[1].object.metricName: invalid type: integer `5`"),
            "{error}"
        );
        // A pods target never set is Go's zero quantity, which validation later refuses.
        let metrics = metrics_annotation(r#"[{"type":"Pods","pods":{"metricName":"a"}}]"#).unwrap();
        assert_eq!(metrics[0].pods.as_ref().unwrap().target.average_value, Some(zero()));
    }
}
