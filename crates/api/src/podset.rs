//! The `PodSet` custom resource: a minimal workload whose controller keeps `spec.replicas` pods
//! running, and which anyone can scale through its `scale` subresource.

use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::{CustomResource, KubeSchema};
use schemars::Schema;
use serde::{Deserialize, Serialize};

/// PodSet keeps `replicas` pods made from `template` running. It declares the `scale`
/// subresource, so `kubectl scale`, the HorizontalPodAutoscaler and ferroscale's Autoscaler
/// can all resize it.
// Each printer column repeats the same keys, which this lint mistakes for duplicates.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "ferroscale.dev",
    version = "v1alpha1",
    kind = "PodSet",
    doc = "PodSet keeps a number of identical pods running; its scale subresource lets kubectl scale and autoscalers resize it.",
    plural = "podsets",
    shortname = "ps",
    namespaced,
    status = "PodSetStatus",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.selector"
    ),
    printcolumn(name = "Desired", type_ = "integer", json_path = ".spec.replicas"),
    printcolumn(name = "Current", type_ = "integer", json_path = ".status.replicas"),
    printcolumn(name = "Ready", type_ = "integer", json_path = ".status.readyReplicas"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct PodSetSpec {
    /// How many pods to run. Defaults to 1.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 0))]
    pub replicas: i32,
    /// Selects the pods this PodSet owns. It must match the template's labels and should not
    /// overlap with any other controller's selector.
    pub selector: LabelSelector,
    /// The pod to create. Its labels must satisfy `selector`.
    #[schemars(schema_with = "pod_template_schema")]
    pub template: PodTemplate,
}

/// A pod template, kept as compact JSON and parsed when a pod is made from it. Parsed, the
/// template of a one-container PodSet costs about 4 KB of mostly empty fields, and the
/// operator's cache holds every PodSet: 40 MB at 10,000 of them, against 4 MB as JSON.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodTemplate {
    json: Box<str>,
}

impl PodTemplate {
    pub fn new(template: &PodTemplateSpec) -> Self {
        // A PodTemplateSpec always serializes: its maps are keyed by strings.
        let json = serde_json::to_string(template).unwrap_or_else(|_| "{}".into());
        Self { json: json.into() }
    }

    /// The template itself. It parsed when this was read, so it parses again.
    pub fn spec(&self) -> PodTemplateSpec {
        serde_json::from_str(&self.json).unwrap_or_default()
    }
}

impl From<PodTemplateSpec> for PodTemplate {
    fn from(template: PodTemplateSpec) -> Self {
        Self::new(&template)
    }
}

impl Serialize for PodTemplate {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.spec().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for PodTemplate {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        PodTemplateSpec::deserialize(deserializer).map(|template| Self::new(&template))
    }
}

fn default_replicas() -> i32 {
    1
}

/// The full PodTemplateSpec schema would make the CRD larger than client-side `kubectl apply`
/// accepts; the API server validates the pods themselves when the controller creates them.
fn pod_template_schema(_: &mut schemars::SchemaGenerator) -> Schema {
    schemars::json_schema!({
        "description": "The pod to create: `metadata` (labels must match the selector) and `spec` (a PodSpec).",
        "type": "object",
        "properties": {
            "metadata": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
            "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
        }
    })
}

/// What the PodSet controller observed.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct PodSetStatus {
    /// Live pods (not terminating, not failed) matching the selector.
    #[serde(default)]
    pub replicas: i32,
    /// Of those, how many are Ready.
    #[serde(default)]
    pub ready_replicas: i32,
    /// `spec.selector` in its string form (e.g. `app=web`), published through the scale
    /// subresource for autoscalers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// The generation of the spec last acted upon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Available and ReplicaFailure conditions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<Condition>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_template_reads_back_as_written_and_a_malformed_one_is_refused() {
        let written = serde_json::json!({
            "metadata": {"labels": {"app": "web"}, "annotations": {"note": "kept"}},
            "spec": {"containers": [{"name": "c", "image": "nginx",
                     "resources": {"requests": {"cpu": "100m"}}}], "terminationGracePeriodSeconds": 0}
        });
        let template: PodTemplate = serde_json::from_value(written.clone()).unwrap();
        assert_eq!(serde_json::to_value(&template).unwrap(), written);
        let spec = template.spec();
        assert_eq!(PodTemplate::from(spec.clone()), template);
        assert_eq!(spec.spec.unwrap().containers[0].image.as_deref(), Some("nginx"));
        // What the API server would reject in a PodTemplateSpec is refused here as well.
        let error =
            serde_json::from_value::<PodTemplate>(serde_json::json!({"spec": {"containers": "nginx"}})).unwrap_err();
        assert!(error.to_string().contains("invalid type"), "{error}");
    }
}
