//! One HorizontalPodAutoscaler, of any version, into an Autoscaler: the spec the API server
//! shows as `autoscaling/v2`, under ferroscale's `apiVersion` and `kind`. Pure: no I/O.

use std::collections::BTreeMap;

use ferroscale_api::quantity::ParsedQuantity;
use ferroscale_api::{Autoscaler, FieldError};
use k8s_openapi::api::autoscaling::{v1, v2};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::legacy::{self, LegacyMetric};

/// The `apiVersion` and `kind` every output document has.
pub const AUTOSCALER_API_VERSION: &str = "ferroscale.dev/v1alpha1";
pub const AUTOSCALER_KIND: &str = "Autoscaler";
pub const HPA_KIND: &str = "HorizontalPodAutoscaler";

/// Annotations in which the API server keeps, on the older versions, what only the newer ones
/// have fields for.
const METRICS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/metrics";
const BEHAVIOR_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/behavior";
const SCALE_UP_TOLERANCE_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/scale-up-tolerance";
const SCALE_DOWN_TOLERANCE_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/scale-down-tolerance";
/// Status kept in annotations: an Autoscaler writes its own status, so these go silently.
const STATUS_ANNOTATIONS: [&str; 2] = [
    "autoscaling.alpha.kubernetes.io/current-metrics",
    "autoscaling.alpha.kubernetes.io/conditions",
];
/// kubectl's record of the HPA it last applied: wrong for the Autoscaler, so left out.
const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// What the API server puts in an HPA that names no metric.
const DEFAULT_CPU_UTILIZATION: i32 = 80;

/// The HorizontalPodAutoscaler versions that can be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2beta1,
    V2beta2,
    V2,
}

impl Version {
    pub const ALL: [Version; 4] = [Version::V2, Version::V2beta2, Version::V2beta1, Version::V1];

    pub fn api_version(self) -> &'static str {
        match self {
            Version::V1 => "autoscaling/v1",
            Version::V2beta1 => "autoscaling/v2beta1",
            Version::V2beta2 => "autoscaling/v2beta2",
            Version::V2 => "autoscaling/v2",
        }
    }

    pub fn from_api_version(api_version: &str) -> Option<Version> {
        Version::ALL.into_iter().find(|v| v.api_version() == api_version)
    }

    /// Which of the round-trip annotations the API server reads when given this version.
    fn reads(self, annotation: &str) -> bool {
        match self {
            Version::V1 => annotation == METRICS_ANNOTATION || annotation == BEHAVIOR_ANNOTATION,
            Version::V2beta1 => annotation == BEHAVIOR_ANNOTATION,
            Version::V2beta2 => {
                annotation == SCALE_UP_TOLERANCE_ANNOTATION || annotation == SCALE_DOWN_TOLERANCE_ANNOTATION
            }
            Version::V2 => false,
        }
    }
}

/// An Autoscaler made from an HPA.
#[derive(Debug, Clone)]
pub struct Converted {
    /// The Autoscaler as one YAML document (without the leading `---`).
    pub yaml: String,
    /// Everything worth a look, each at the field it concerns. None stops the conversion.
    pub warnings: Vec<FieldError>,
}

fn problem(path: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError {
        path: path.into(),
        message: message.into(),
    }
}

fn annotation_path(key: &str) -> String {
    format!("metadata.annotations[{key}]")
}

/// An HPA object of one version: `spec` in that version's shape.
#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct Hpa<S> {
    api_version: String,
    kind: String,
    #[serde(default)]
    metadata: ObjectMeta,
    spec: S,
}

/// The spec of an `autoscaling/v2beta1` HPA.
#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct V2beta1Spec {
    scale_target_ref: v2::CrossVersionObjectReference,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    min_replicas: Option<i32>,
    max_replicas: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    metrics: Option<Vec<LegacyMetric>>,
}

/// Converts one HPA object (its `apiVersion` says which version). Fields that no Autoscaler
/// can hold, or that the API server would drop, become warnings; a document that is no HPA of
/// a known version, or does not parse as one, is an error naming the field.
pub fn convert(object: &Value) -> Result<Converted, FieldError> {
    let api_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .ok_or_else(|| problem("apiVersion", "missing"))?;
    let version = Version::from_api_version(api_version).ok_or_else(|| {
        let known: Vec<&str> = Version::ALL.iter().map(|v| v.api_version()).collect();
        problem(
            "apiVersion",
            format!(
                "{api_version} is not a HorizontalPodAutoscaler version ferroscale reads ({})",
                known.join(", ")
            ),
        )
    })?;
    let mut input = object.clone();
    if let Some(map) = input.as_object_mut() {
        // Status is the HPA's own; the Autoscaler computes its own.
        map.remove("status");
    }
    let mut warnings = Vec::new();
    let (metadata, spec) = match version {
        Version::V2 => {
            let hpa: Hpa<v2::HorizontalPodAutoscalerSpec> = parse(&input, version, &mut warnings)?;
            let annotations = split_annotations(&hpa.metadata, version, &mut warnings);
            (
                finish_metadata(hpa.metadata, annotations.kept, &mut warnings)?,
                hpa.spec,
            )
        }
        Version::V2beta2 => {
            drop_tolerance_fields(&mut input, &mut warnings);
            let hpa: Hpa<v2::HorizontalPodAutoscalerSpec> = parse(&input, version, &mut warnings)?;
            let annotations = split_annotations(&hpa.metadata, version, &mut warnings);
            let mut spec = hpa.spec;
            apply_tolerance_annotations(&mut spec, &annotations.legacy)?;
            (finish_metadata(hpa.metadata, annotations.kept, &mut warnings)?, spec)
        }
        Version::V2beta1 => {
            let hpa: Hpa<V2beta1Spec> = parse(&input, version, &mut warnings)?;
            let annotations = split_annotations(&hpa.metadata, version, &mut warnings);
            let spec = v2::HorizontalPodAutoscalerSpec {
                scale_target_ref: hpa.spec.scale_target_ref,
                min_replicas: hpa.spec.min_replicas,
                max_replicas: hpa.spec.max_replicas,
                metrics: hpa
                    .spec
                    .metrics
                    .map(|metrics| metrics.iter().map(LegacyMetric::to_v2).collect()),
                behavior: behavior_from_annotation(&annotations.legacy, &mut warnings),
            };
            (finish_metadata(hpa.metadata, annotations.kept, &mut warnings)?, spec)
        }
        Version::V1 => {
            let hpa: Hpa<v1::HorizontalPodAutoscalerSpec> = parse(&input, version, &mut warnings)?;
            let annotations = split_annotations(&hpa.metadata, version, &mut warnings);
            let spec = spec_from_v1(hpa.spec, &annotations.legacy, &mut warnings);
            (finish_metadata(hpa.metadata, annotations.kept, &mut warnings)?, spec)
        }
    };
    let mut spec = with_default_metric(spec, version, &mut warnings);
    drop_zero_values_of_average_object_targets(&mut spec);
    let encode =
        |value: Result<Value, serde_json::Error>| value.map_err(|e| problem("", format!("cannot be encoded: {e}")));
    let mut document = Map::new();
    document.insert("apiVersion".into(), AUTOSCALER_API_VERSION.into());
    document.insert("kind".into(), AUTOSCALER_KIND.into());
    document.insert("metadata".into(), encode(serde_json::to_value(&metadata))?);
    document.insert("spec".into(), encode(serde_json::to_value(&spec))?);
    let document = Value::Object(document);
    let yaml = render(&document, &mut warnings)?;
    Ok(Converted { yaml, warnings })
}

/// Reads `input` as an HPA of `version`; fields the version does not have become warnings.
fn parse<S>(input: &Value, version: Version, warnings: &mut Vec<FieldError>) -> Result<Hpa<S>, FieldError>
where
    S: DeserializeOwned + Serialize,
{
    let hpa: Hpa<S> = serde_path_to_error::deserialize(input).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        problem(if path == "." { String::new() } else { path }, message)
    })?;
    let kept = serde_json::to_value(&hpa).map_err(|e| problem("", format!("cannot be re-encoded: {e}")))?;
    let mut lost = Vec::new();
    lost_fields(input, &kept, "", &mut lost);
    for path in lost {
        warnings.push(problem(
            path,
            format!(
                "not a field of {} {HPA_KIND}; dropped, as the API server drops it",
                version.api_version()
            ),
        ));
    }
    Ok(hpa)
}

/// The paths of fields set in `input` that `kept` does not have.
fn lost_fields(input: &Value, kept: &Value, path: &str, out: &mut Vec<String>) {
    match (input, kept) {
        (Value::Object(input), Value::Object(kept)) => {
            for (key, value) in input {
                let at = if path.is_empty() {
                    key.clone()
                } else if key.contains(['.', '/']) {
                    format!("{path}[{key}]")
                } else {
                    format!("{path}.{key}")
                };
                match kept.get(key) {
                    _ if value.is_null() => {}
                    None => out.push(at),
                    Some(kept) => lost_fields(value, kept, &at, out),
                }
            }
        }
        (Value::Array(input), Value::Array(kept)) => {
            for (i, (value, kept)) in input.iter().zip(kept).enumerate() {
                lost_fields(value, kept, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// `autoscaling/v2beta2` has no tolerance: the API server drops it (it reads tolerance only
/// from annotations there).
fn drop_tolerance_fields(input: &mut Value, warnings: &mut Vec<FieldError>) {
    for direction in ["scaleUp", "scaleDown"] {
        let rules = input
            .pointer_mut(&format!("/spec/behavior/{direction}"))
            .and_then(Value::as_object_mut);
        if let Some(rules) = rules
            && rules.remove("tolerance").is_some_and(|t| !t.is_null())
        {
            warnings.push(problem(
                format!("spec.behavior.{direction}.tolerance"),
                format!(
                    "not a field of {} {HPA_KIND}; dropped, as the API server drops it",
                    Version::V2beta2.api_version()
                ),
            ));
        }
    }
}

/// An HPA's annotations, sorted into those the Autoscaler keeps and the round-trip ones the
/// conversion reads.
struct Annotations {
    kept: BTreeMap<String, String>,
    legacy: BTreeMap<&'static str, String>,
}

fn split_annotations(metadata: &ObjectMeta, version: Version, warnings: &mut Vec<FieldError>) -> Annotations {
    let mut kept = metadata.annotations.clone().unwrap_or_default();
    kept.remove(LAST_APPLIED_ANNOTATION);
    for key in STATUS_ANNOTATIONS {
        kept.remove(key);
    }
    let mut legacy = BTreeMap::new();
    for key in [
        METRICS_ANNOTATION,
        BEHAVIOR_ANNOTATION,
        SCALE_UP_TOLERANCE_ANNOTATION,
        SCALE_DOWN_TOLERANCE_ANNOTATION,
    ] {
        let Some(value) = kept.remove(key) else { continue };
        if version.reads(key) {
            legacy.insert(key, value);
        } else {
            let readers: Vec<&str> = Version::ALL
                .iter()
                .filter(|v| v.reads(key))
                .map(|v| v.api_version())
                .collect();
            warnings.push(problem(
                annotation_path(key),
                format!(
                    "only {} reads it; the API server ignores it on {}: dropped",
                    readers.join(" and "),
                    version.api_version()
                ),
            ));
        }
    }
    Annotations { kept, legacy }
}

/// The behavior annotation's behavior; a malformed one is ignored, as the API server ignores it.
fn behavior_from_annotation(
    legacy: &BTreeMap<&'static str, String>,
    warnings: &mut Vec<FieldError>,
) -> Option<v2::HorizontalPodAutoscalerBehavior> {
    let text = legacy.get(BEHAVIOR_ANNOTATION)?;
    match legacy::behavior_annotation(text) {
        Ok(behavior) => behavior,
        Err(e) => {
            warnings.push(problem(
                annotation_path(BEHAVIOR_ANNOTATION),
                format!("{e}; ignored, as the API server ignores a malformed behavior"),
            ));
            None
        }
    }
}

/// The `autoscaling/v2` spec of an `autoscaling/v1` HPA: the metrics of the annotation first,
/// then the CPU target, as the API server orders them.
fn spec_from_v1(
    spec: v1::HorizontalPodAutoscalerSpec,
    legacy: &BTreeMap<&'static str, String>,
    warnings: &mut Vec<FieldError>,
) -> v2::HorizontalPodAutoscalerSpec {
    let mut metrics = Vec::new();
    if let Some(text) = legacy.get(METRICS_ANNOTATION) {
        match legacy::metrics_annotation(text) {
            Ok(found) => metrics = found,
            Err(e) => warnings.push(problem(
                annotation_path(METRICS_ANNOTATION),
                format!("{e}; ignored, as the API server ignores malformed metrics"),
            )),
        }
    }
    if let Some(percent) = spec.target_cpu_utilization_percentage {
        metrics.push(cpu_utilization(percent));
    }
    let target = spec.scale_target_ref;
    v2::HorizontalPodAutoscalerSpec {
        scale_target_ref: v2::CrossVersionObjectReference {
            api_version: target.api_version,
            kind: target.kind,
            name: target.name,
        },
        min_replicas: spec.min_replicas,
        max_replicas: spec.max_replicas,
        metrics: (!metrics.is_empty()).then_some(metrics),
        behavior: behavior_from_annotation(legacy, warnings),
    }
}

fn cpu_utilization(percent: i32) -> v2::MetricSpec {
    v2::MetricSpec {
        type_: "Resource".into(),
        resource: Some(v2::ResourceMetricSource {
            name: "cpu".into(),
            target: v2::MetricTarget {
                type_: "Utilization".into(),
                average_utilization: Some(percent),
                ..Default::default()
            },
        }),
        ..Default::default()
    }
}

/// Tolerances the `autoscaling/v2beta2` annotations carry. The API server refuses an HPA whose
/// tolerance annotation is no quantity, so that is an error.
fn apply_tolerance_annotations(
    spec: &mut v2::HorizontalPodAutoscalerSpec,
    legacy: &BTreeMap<&'static str, String>,
) -> Result<(), FieldError> {
    for key in [SCALE_UP_TOLERANCE_ANNOTATION, SCALE_DOWN_TOLERANCE_ANNOTATION] {
        let Some(text) = legacy.get(key) else { continue };
        ParsedQuantity::parse(text)
            .map_err(|e| problem(annotation_path(key), format!("{text:?} is not a quantity: {e}")))?;
        let behavior = spec.behavior.get_or_insert_with(Default::default);
        let rules = if key == SCALE_UP_TOLERANCE_ANNOTATION {
            &mut behavior.scale_up
        } else {
            &mut behavior.scale_down
        };
        rules.get_or_insert_with(Default::default).tolerance = Some(Quantity(text.clone()));
    }
    Ok(())
}

/// An HPA with no metric scales on 80% average CPU utilization, which the API server writes
/// into it; the Autoscaler gets it written out too.
fn with_default_metric(
    mut spec: v2::HorizontalPodAutoscalerSpec,
    version: Version,
    warnings: &mut Vec<FieldError>,
) -> v2::HorizontalPodAutoscalerSpec {
    if spec.metrics.as_ref().is_none_or(Vec::is_empty) {
        let path = match version {
            Version::V1 => "spec.targetCPUUtilizationPercentage",
            _ => "spec.metrics",
        };
        warnings.push(problem(
            path,
            format!(
                "not set: written out as the API server's default, a Resource metric of \
                 {DEFAULT_CPU_UTILIZATION}% average CPU utilization"
            ),
        ));
        spec.metrics = Some(vec![cpu_utilization(DEFAULT_CPU_UTILIZATION)]);
    }
    spec
}

/// An Object target of type AverageValue that went through `autoscaling/v1` (the version older
/// clusters, 1.19 among them, store HPAs in; its annotation keeps the object target value as a
/// plain quantity) comes back with `value: "0"` beside its average value. The value means nothing
/// for an AverageValue target, but a zero one fails validation, the Autoscaler's as the API
/// server's: it is left out. Any other value is kept.
fn drop_zero_values_of_average_object_targets(spec: &mut v2::HorizontalPodAutoscalerSpec) {
    for metric in spec.metrics.iter_mut().flatten() {
        let Some(target) = metric.object.as_mut().map(|o| &mut o.target) else {
            continue;
        };
        let zero = target
            .value
            .as_ref()
            .and_then(|v| ParsedQuantity::parse(&v.0).ok())
            .is_some_and(|q| q.is_zero());
        if target.type_ == "AverageValue" && target.average_value.is_some() && zero {
            target.value = None;
        }
    }
}

/// The Autoscaler's metadata: name, namespace, labels and annotations. Server-set fields go
/// silently; an owner or a pending deletion is worth a warning, since the Autoscaler has neither.
fn finish_metadata(
    metadata: ObjectMeta,
    annotations: BTreeMap<String, String>,
    warnings: &mut Vec<FieldError>,
) -> Result<ObjectMeta, FieldError> {
    if metadata.name.is_none() && metadata.generate_name.is_none() {
        return Err(problem("metadata.name", "missing"));
    }
    if let Some(owners) = metadata.owner_references.as_ref().filter(|o| !o.is_empty()) {
        let names: Vec<String> = owners.iter().map(|o| format!("{} {}", o.kind, o.name)).collect();
        warnings.push(problem(
            "metadata.ownerReferences",
            format!(
                "dropped: the HPA belongs to {}, which may keep managing it; migrate the owner instead, \
                 or make sure it will not re-create the HPA",
                names.join(", ")
            ),
        ));
    }
    if metadata.deletion_timestamp.is_some() {
        warnings.push(problem(
            "metadata.deletionTimestamp",
            "the HPA is being deleted; the Autoscaler is converted all the same",
        ));
    }
    Ok(ObjectMeta {
        name: metadata.name,
        generate_name: metadata.generate_name,
        namespace: metadata.namespace,
        labels: metadata.labels.filter(|l| !l.is_empty()),
        annotations: (!annotations.is_empty()).then_some(annotations),
        ..ObjectMeta::default()
    })
}

/// The YAML of the Autoscaler `document`, in the Autoscaler's own field order. What the
/// Autoscaler would refuse is a warning naming the field; the document is printed anyway, so
/// that the API server, or the operator, reports the same problem where it is applied.
fn render(document: &Value, warnings: &mut Vec<FieldError>) -> Result<String, FieldError> {
    let as_read = |warnings: &mut Vec<FieldError>, path: String, message: String| {
        warnings.push(problem(
            path,
            format!("{message}; printed as read: the API server will refuse this Autoscaler"),
        ));
        serde_yaml::to_string(document).map_err(|e| problem("", format!("cannot be written as YAML: {e}")))
    };
    let autoscaler: Autoscaler = match serde_path_to_error::deserialize(document) {
        Ok(autoscaler) => autoscaler,
        Err(e) => {
            let path = e.path().to_string();
            return as_read(warnings, path, e.into_inner().to_string());
        }
    };
    if let Err(errors) = autoscaler.spec.validate() {
        for error in errors.0 {
            warnings.push(problem(
                error.path,
                format!(
                    "{}; the Autoscaler is printed, but will be refused until this is fixed",
                    error.message
                ),
            ));
        }
    }
    let typed = serde_json::to_value(&autoscaler).map_err(|e| problem("", format!("cannot be re-encoded: {e}")))?;
    let mut lost = Vec::new();
    lost_fields(document, &typed, "", &mut lost);
    if let Some(path) = lost.into_iter().next() {
        return as_read(warnings, path, "not representable in an Autoscaler".into());
    }
    if typed != *document {
        return as_read(warnings, String::new(), "changes when read as an Autoscaler".into());
    }
    serde_yaml::to_string(&autoscaler).map_err(|e| problem("", format!("cannot be written as YAML: {e}")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

    use super::*;

    fn yaml(text: &str) -> Value {
        serde_yaml::from_str(text).unwrap()
    }

    /// The conversion as JSON, and its warnings as `path: message` lines.
    fn run(text: &str) -> (Value, Vec<String>) {
        let converted = convert(&yaml(text)).unwrap_or_else(|e| panic!("{e}"));
        (
            serde_yaml::from_str(&converted.yaml).unwrap(),
            converted.warnings.iter().map(ToString::to_string).collect(),
        )
    }

    fn error(text: &str) -> String {
        convert(&yaml(text)).map(|c| c.yaml).unwrap_err().to_string()
    }

    const TARGET: &str = "scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}";

    #[test]
    fn v2_spec_is_copied_as_is() {
        let text = format!(
            "apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {{name: web, namespace: shop}}
spec:
  {TARGET}
  minReplicas: 2
  maxReplicas: 9
  metrics:
  - type: Pods
    pods: {{metric: {{name: qps}}, target: {{type: AverageValue, averageValue: 1k}}}}
  behavior:
    scaleUp: {{tolerance: 50m}}
"
        );
        let (out, warnings) = run(&text);
        let mut expected = yaml(&text);
        expected["apiVersion"] = "ferroscale.dev/v1alpha1".into();
        expected["kind"] = "Autoscaler".into();
        assert_eq!(out, expected);
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn v2beta2_is_v2_without_tolerance_fields_but_with_tolerance_annotations() {
        let (out, warnings) = run(&format!(
            "apiVersion: autoscaling/v2beta2
kind: HorizontalPodAutoscaler
metadata:
  name: web
  annotations:
    autoscaling.alpha.kubernetes.io/scale-down-tolerance: '0.2'
spec:
  {TARGET}
  maxReplicas: 9
  metrics:
  - type: Resource
    resource: {{name: cpu, target: {{type: Utilization, averageUtilization: 50}}}}
  behavior:
    scaleUp: {{stabilizationWindowSeconds: 30, tolerance: 50m}}
"
        ));
        assert_eq!(
            out["spec"]["behavior"],
            serde_json::json!({"scaleUp": {"stabilizationWindowSeconds": 30}, "scaleDown": {"tolerance": "0.2"}})
        );
        assert_eq!(out["metadata"].get("annotations"), None);
        assert_eq!(
            warnings,
            [
                "spec.behavior.scaleUp.tolerance: not a field of autoscaling/v2beta2 HorizontalPodAutoscaler; dropped, as the API server drops it"
            ]
        );
        let bad = error(&format!(
            "apiVersion: autoscaling/v2beta2
kind: HorizontalPodAutoscaler
metadata:
  name: web
  annotations: {{autoscaling.alpha.kubernetes.io/scale-up-tolerance: lots}}
spec: {{ {TARGET}, maxReplicas: 3 }}
"
        ));
        assert!(
            bad.starts_with(
                "metadata.annotations[autoscaling.alpha.kubernetes.io/scale-up-tolerance]: \"lots\" is not a quantity"
            ),
            "{bad}"
        );
    }

    #[test]
    fn v1_target_becomes_a_cpu_metric() {
        let (out, warnings) = run(&format!(
            "apiVersion: autoscaling/v1
kind: HorizontalPodAutoscaler
metadata: {{name: web}}
spec: {{ {TARGET}, minReplicas: 1, maxReplicas: 10, targetCPUUtilizationPercentage: 50 }}
"
        ));
        assert_eq!(
            out,
            yaml(&format!(
                "apiVersion: ferroscale.dev/v1alpha1
kind: Autoscaler
metadata: {{name: web}}
spec:
  {TARGET}
  minReplicas: 1
  maxReplicas: 10
  metrics:
  - type: Resource
    resource: {{name: cpu, target: {{type: Utilization, averageUtilization: 50}}}}
"
            ))
        );
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn v1_without_target_gets_the_default_written_out_with_a_warning() {
        let (out, warnings) = run(&format!(
            "apiVersion: autoscaling/v1
kind: HorizontalPodAutoscaler
metadata: {{name: web}}
spec: {{ {TARGET}, maxReplicas: 4 }}
"
        ));
        assert_eq!(
            out["spec"]["metrics"],
            serde_json::json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}])
        );
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0]
                .starts_with("spec.targetCPUUtilizationPercentage: not set: written out as the API server's default"),
            "{warnings:?}"
        );
    }

    #[test]
    fn v1_annotations_become_metrics_and_behavior_and_leave_the_annotations() {
        let (out, warnings) = run(&format!(
            r#"apiVersion: autoscaling/v1
kind: HorizontalPodAutoscaler
metadata:
  name: web
  annotations:
    team: shop
    autoscaling.alpha.kubernetes.io/metrics: '[{{"type":"Resource","resource":{{"name":"memory","targetAverageValue":"500Mi"}}}}]'
    autoscaling.alpha.kubernetes.io/behavior: '{{"ScaleUp":{{"StabilizationWindowSeconds":0,"SelectPolicy":"Max","Policies":[{{"Type":"Pods","Value":4,"PeriodSeconds":15}}]}},"ScaleDown":null}}'
    autoscaling.alpha.kubernetes.io/conditions: '[{{"type":"AbleToScale","status":"True"}}]'
    autoscaling.alpha.kubernetes.io/current-metrics: '[]'
    kubectl.kubernetes.io/last-applied-configuration: '{{}}'
spec: {{ {TARGET}, maxReplicas: 10, targetCPUUtilizationPercentage: 70 }}
"#
        ));
        assert_eq!(
            out["spec"]["metrics"],
            serde_json::json!([
                {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "500Mi"}}},
                {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}
            ])
        );
        assert_eq!(
            out["spec"]["behavior"],
            serde_json::json!({"scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15}]}})
        );
        assert_eq!(out["metadata"]["annotations"], serde_json::json!({"team": "shop"}));
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn malformed_v1_annotations_are_ignored_with_a_warning() {
        let (out, warnings) = run(&format!(
            r#"apiVersion: autoscaling/v1
kind: HorizontalPodAutoscaler
metadata:
  name: web
  annotations:
    autoscaling.alpha.kubernetes.io/metrics: 'not json'
    autoscaling.alpha.kubernetes.io/behavior: '{{"scaleUp":{{"stabilizationWindowSeconds":"soon"}}}}'
spec: {{ {TARGET}, maxReplicas: 10, targetCPUUtilizationPercentage: 70 }}
"#
        ));
        assert_eq!(out["spec"]["metrics"].as_array().unwrap().len(), 1);
        assert_eq!(out["spec"].get("behavior"), None);
        assert_eq!(out["metadata"].get("annotations"), None);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(
            warnings[0].starts_with("metadata.annotations[autoscaling.alpha.kubernetes.io/metrics]: not JSON"),
            "{warnings:?}"
        );
        assert!(
            warnings[1].starts_with(
                "metadata.annotations[autoscaling.alpha.kubernetes.io/behavior]: scaleUp.stabilizationWindowSeconds: invalid type"
            ),
            "{warnings:?}"
        );
    }

    #[test]
    fn round_trip_annotations_of_other_versions_are_dropped_with_a_warning() {
        let (out, warnings) = run(&format!(
            r#"apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: web
  annotations:
    autoscaling.alpha.kubernetes.io/metrics: '[]'
    autoscaling.alpha.kubernetes.io/conditions: '[]'
spec:
  {TARGET}
  maxReplicas: 3
  metrics: [{{type: Resource, resource: {{name: cpu, target: {{type: Utilization, averageUtilization: 60}}}}}}]
"#
        ));
        assert_eq!(out["metadata"].get("annotations"), None);
        assert_eq!(
            warnings,
            [
                "metadata.annotations[autoscaling.alpha.kubernetes.io/metrics]: only autoscaling/v1 reads it; the API server ignores it on autoscaling/v2: dropped"
            ]
        );
    }

    #[test]
    fn v2beta1_metrics_and_behavior_annotation_convert() {
        let (out, warnings) = run(&format!(
            r#"apiVersion: autoscaling/v2beta1
kind: HorizontalPodAutoscaler
metadata:
  name: web
  annotations:
    autoscaling.alpha.kubernetes.io/behavior: '{{"ScaleDown":{{"SelectPolicy":"Disabled"}}}}'
spec:
  {TARGET}
  maxReplicas: 3
  metrics:
  - type: External
    external: {{metricName: queue, targetAverageValue: "30"}}
  - type: Resource
    resource: {{name: cpu, targetAverageUtilization: 60}}
"#
        ));
        assert_eq!(
            out["spec"]["metrics"],
            serde_json::json!([
                {"type": "External", "external": {"metric": {"name": "queue"}, "target": {"type": "AverageValue", "averageValue": "30"}}},
                {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}}
            ])
        );
        assert_eq!(
            out["spec"]["behavior"],
            serde_json::json!({"scaleDown": {"selectPolicy": "Disabled"}})
        );
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn metadata_keeps_identity_labels_and_annotations_only() {
        let (out, warnings) = run(&format!(
            r#"apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: web
  namespace: shop
  labels: {{app: web}}
  annotations: {{note: kept}}
  uid: 0b6f5d7e-1111-2222-3333-444455556666
  resourceVersion: "42"
  generation: 3
  creationTimestamp: "2024-01-01T00:00:00Z"
  selfLink: /apis/autoscaling/v2/namespaces/shop/horizontalpodautoscalers/web
  finalizers: [example.com/keep]
  managedFields:
  - {{manager: kubectl, operation: Update, apiVersion: autoscaling/v2, time: "2024-01-01T00:00:00Z"}}
  ownerReferences:
  - {{apiVersion: keda.sh/v1alpha1, kind: ScaledObject, name: web, uid: 0b6f5d7e-aaaa-2222-3333-444455556666, controller: true}}
spec:
  {TARGET}
  maxReplicas: 3
  metrics: [{{type: Resource, resource: {{name: cpu, target: {{type: Utilization, averageUtilization: 60}}}}}}]
status:
  currentReplicas: 2
  desiredReplicas: 2
"#
        ));
        assert_eq!(
            out["metadata"],
            serde_json::json!({"name": "web", "namespace": "shop", "labels": {"app": "web"}, "annotations": {"note": "kept"}})
        );
        assert_eq!(out.get("status"), None);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].starts_with("metadata.ownerReferences: dropped: the HPA belongs to ScaledObject web"),
            "{warnings:?}"
        );
    }

    #[test]
    fn unknown_fields_are_dropped_with_a_warning_naming_them() {
        let (out, warnings) = run(&format!(
            "apiVersion: autoscaling/v1
kind: HorizontalPodAutoscaler
metadata: {{name: web}}
spec:
  {TARGET}
  maxReplicas: 3
  targetCPUUtilizationPercentage: 60
  targetMemory: 70
extra: true
"
        ));
        assert_eq!(out.get("extra"), None);
        assert_eq!(
            warnings,
            [
                "extra: not a field of autoscaling/v1 HorizontalPodAutoscaler; dropped, as the API server drops it",
                "spec.targetMemory: not a field of autoscaling/v1 HorizontalPodAutoscaler; dropped, as the API server drops it",
            ]
        );
    }

    #[test]
    fn an_invalid_result_is_printed_with_a_warning_per_field() {
        // The older pods metric without a target value carries Go's zero quantity, which the
        // API server refuses, and so does the Autoscaler.
        let (out, warnings) = run(&format!(
            r#"apiVersion: autoscaling/v1
kind: HorizontalPodAutoscaler
metadata:
  name: web
  annotations:
    autoscaling.alpha.kubernetes.io/metrics: '[{{"type":"Pods","pods":{{"metricName":"rps"}}}}]'
spec: {{ {TARGET}, minReplicas: 5, maxReplicas: 3 }}
"#
        ));
        assert_eq!(out["spec"]["metrics"][0]["pods"]["target"]["averageValue"], "0");
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].starts_with("spec.maxReplicas: must be greater than or equal to minReplicas (5)"));
        assert!(
            warnings[1]
                .starts_with("spec.metrics[0].pods.target.averageValue: must be positive; the Autoscaler is printed")
        );
    }

    #[test]
    fn the_zero_value_v1_storage_adds_to_average_object_targets_is_left_out() {
        // As a 1.19 server shows an Object AverageValue metric created as autoscaling/v2beta2.
        let metric = |target: &str| {
            format!(
                "apiVersion: autoscaling/v2beta2
kind: HorizontalPodAutoscaler
metadata: {{name: web}}
spec:
  {TARGET}
  maxReplicas: 3
  metrics:
  - type: Object
    object: {{describedObject: {{kind: Service, name: web}}, metric: {{name: rps}}, target: {target}}}
"
            )
        };
        let (out, warnings) = run(&metric("{type: AverageValue, value: '0', averageValue: '100'}"));
        assert_eq!(
            out["spec"]["metrics"][0]["object"]["target"],
            serde_json::json!({"type": "AverageValue", "averageValue": "100"})
        );
        assert!(warnings.is_empty(), "{warnings:?}");
        // A value that is not zero stays, and a zero value target stays invalid.
        let (out, _) = run(&metric("{type: AverageValue, value: '5', averageValue: '100'}"));
        assert_eq!(out["spec"]["metrics"][0]["object"]["target"]["value"], "5");
        let (out, warnings) = run(&metric("{type: Value, value: '0'}"));
        assert_eq!(out["spec"]["metrics"][0]["object"]["target"]["value"], "0");
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        // From a v1 file, likewise: the average value alone makes a valid Autoscaler.
        let (out, warnings) = run(&format!(
            r#"apiVersion: autoscaling/v1
kind: HorizontalPodAutoscaler
metadata:
  name: web
  annotations:
    autoscaling.alpha.kubernetes.io/metrics: '[{{"type":"Object","object":{{"target":{{"kind":"Service","name":"web"}},"metricName":"rps","averageValue":"2"}}}}]'
spec: {{ {TARGET}, maxReplicas: 3 }}
"#
        ));
        assert_eq!(
            out["spec"]["metrics"][0]["object"]["target"],
            serde_json::json!({"type": "AverageValue", "averageValue": "2"})
        );
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn a_value_no_autoscaler_can_hold_is_printed_as_read() {
        let text = format!(
            "apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {{name: web}}
spec:
  {TARGET}
  maxReplicas: 3
  metrics: [{{type: Resource, resource: {{name: cpu, target: {{type: Average, averageUtilization: 60}}}}}}]
"
        );
        let (out, warnings) = run(&text);
        assert_eq!(out["spec"]["metrics"][0]["resource"]["target"]["type"], "Average");
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].starts_with("spec.metrics[0].resource.target.type: unknown variant `Average`"),
            "{warnings:?}"
        );
    }

    #[test]
    fn missing_fields_are_zero_values_that_validation_names() {
        let (_, warnings) = run("apiVersion: autoscaling/v1
kind: HorizontalPodAutoscaler
metadata: {name: x}
spec: {scaleTargetRef: {kind: Deployment}, targetCPUUtilizationPercentage: 50}
");
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        assert!(
            warnings[0].starts_with("spec.scaleTargetRef.name: must not be empty"),
            "{warnings:?}"
        );
        assert!(
            warnings[1].starts_with("spec.maxReplicas: must be greater than 0"),
            "{warnings:?}"
        );
        let (_, warnings) = run("apiVersion: autoscaling/v2beta1
kind: HorizontalPodAutoscaler
metadata: {name: x}
spec: {scaleTargetRef: {kind: D, name: d}, maxReplicas: 1, metrics: [{type: Pods, pods: {targetAverageValue: 1}}]}
");
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].starts_with("spec.metrics[0].pods.metric.name: must not be empty"),
            "{warnings:?}"
        );
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (
                "apiVersion: autoscaling/v3\nkind: HorizontalPodAutoscaler\n",
                "apiVersion: autoscaling/v3 is not a HorizontalPodAutoscaler version",
            ),
            ("kind: HorizontalPodAutoscaler\n", "apiVersion: missing"),
            (
                "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: x}\n",
                ": missing field `spec`",
            ),
            (
                "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: x}\nspec: {scaleTargetRef: {kind: D, name: d}, maxReplicas: ten}\n",
                "spec.maxReplicas: invalid type: string \"ten\"",
            ),
            (
                "apiVersion: autoscaling/v2beta1\nkind: HorizontalPodAutoscaler\nmetadata: {name: x}\nspec: {scaleTargetRef: {kind: D, name: d}, maxReplicas: 1, metrics: [{type: Pods, pods: {metricName: [a]}}]}\n",
                "spec.metrics[0].pods.metricName: invalid type: sequence",
            ),
            (
                "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {namespace: x}\nspec: {scaleTargetRef: {kind: D, name: d}, maxReplicas: 1}\n",
                "metadata.name: missing",
            ),
        ];
        for (text, expected) in cases {
            let message = error(text);
            assert!(message.starts_with(expected), "{text}\n=> {message}");
        }
    }
}
