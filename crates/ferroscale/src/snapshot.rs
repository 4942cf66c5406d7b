//! An `explain` snapshot: a multi-document YAML stream holding the objects a cluster would
//! return for one evaluation, in any order.

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use ferroscale_api::Autoscaler;
use ferroscale_api::metrics_apis::*;
use k8s_openapi::api::autoscaling::v1::Scale;
use k8s_openapi::api::core::v1::Pod;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The objects of one snapshot.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub autoscaler: Option<Autoscaler>,
    pub scale: Option<Scale>,
    pub pods: Vec<Pod>,
    pub pod_metrics: Vec<PodMetrics>,
    pub custom_metrics: Vec<MetricValue>,
    pub external_metrics: Vec<ExternalMetricValue>,
    pub prometheus: Vec<PrometheusSample>,
    /// Documents of kinds `explain` does not read, for a warning.
    pub ignored: Vec<String>,
}

/// A snapshot with its required parts present.
#[derive(Debug)]
pub struct Complete {
    pub autoscaler: Autoscaler,
    pub scale: Scale,
    pub rest: Snapshot,
}

fn typed<T: DeserializeOwned>(value: Value, what: &str) -> Result<T> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let at = if path == "." {
            String::new()
        } else {
            format!(" at {path}")
        };
        anyhow!("{what}{at}: {}", e.into_inner())
    })
}

fn describe(doc: &Value) -> String {
    let kind = doc.get("kind").and_then(Value::as_str).unwrap_or("object");
    match doc.pointer("/metadata/name").and_then(Value::as_str) {
        Some(name) => format!("{kind} {name}"),
        None => kind.to_string(),
    }
}

impl Snapshot {
    /// Reads and sorts every document of the file; errors name the file, the document and the field.
    pub fn load(path: &Path) -> Result<Complete> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("{}", path.display()))
    }

    /// Parses a snapshot from text.
    pub fn parse(text: &str) -> Result<Complete> {
        let mut snapshot = Snapshot::default();
        for (i, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
            let number = i + 1;
            let value = Value::deserialize(document).map_err(|e| anyhow!("document {number}: not valid YAML: {e}"))?;
            if value.is_null() {
                continue;
            }
            if !value.is_object() {
                bail!(
                    "document {number}: expected a Kubernetes object (a mapping), found {}",
                    kind_of(&value)
                );
            }
            let what = format!("document {number} ({})", describe(&value));
            snapshot.add(value, &what, None)?;
        }
        let autoscaler = snapshot.autoscaler.take().ok_or_else(|| {
            anyhow!("no Autoscaler (apiVersion ferroscale.dev/v1alpha1, kind Autoscaler) in the snapshot")
        })?;
        let scale = snapshot
            .scale
            .take()
            .ok_or_else(|| anyhow!("no Scale (apiVersion autoscaling/v1, kind Scale) of the target in the snapshot"))?;
        Ok(Complete {
            autoscaler,
            scale,
            rest: snapshot,
        })
    }

    fn add(&mut self, value: Value, what: &str, list_item_kind: Option<&str>) -> Result<()> {
        let api_version = value
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let kind = value
            .get("kind")
            .and_then(Value::as_str)
            .or(list_item_kind)
            .unwrap_or_default()
            .to_string();
        let group = api_version.split('/').rev().nth(1).unwrap_or("");
        match (group, kind.as_str()) {
            ("ferroscale.dev", "Autoscaler") => {
                if self.autoscaler.is_some() {
                    bail!("{what}: a snapshot holds one Autoscaler, and this is a second");
                }
                let autoscaler: Autoscaler = typed(value, what)?;
                self.autoscaler = Some(autoscaler);
            }
            ("autoscaling", "Scale") => {
                if self.scale.is_some() {
                    bail!("{what}: a snapshot holds one Scale, and this is a second");
                }
                self.scale = Some(typed(value, what)?);
            }
            ("", "Pod") => self.pods.push(typed(value, what)?),
            ("", "List" | "PodList") | ("metrics.k8s.io", "PodMetricsList") => {
                let item_kind = match kind.as_str() {
                    "PodList" => Some("Pod"),
                    "PodMetricsList" => Some("PodMetrics"),
                    _ => None,
                };
                let items = match value.get("items") {
                    Some(Value::Array(items)) => items.clone(),
                    Some(Value::Null) | None => Vec::new(),
                    Some(other) => bail!("{what}: items must be a list, found {}", kind_of(other)),
                };
                for (j, item) in items.into_iter().enumerate() {
                    let item_what = format!("{what} item {j} ({})", describe(&item));
                    let mut item = item;
                    if let (Some(obj), Some(k)) = (item.as_object_mut(), item_kind) {
                        obj.entry("apiVersion")
                            .or_insert_with(|| Value::String(api_version.clone()));
                        obj.entry("kind").or_insert_with(|| Value::String(k.into()));
                    }
                    self.add(item, &item_what, item_kind)?;
                }
            }
            ("metrics.k8s.io", "PodMetrics") => self.pod_metrics.push(typed(value, what)?),
            ("custom.metrics.k8s.io", "MetricValueList") => {
                let list: MetricValueList = typed(value, what)?;
                self.custom_metrics.extend(list.items);
            }
            ("custom.metrics.k8s.io", "MetricValue") => self.custom_metrics.push(typed(value, what)?),
            ("external.metrics.k8s.io", "ExternalMetricValueList") => {
                let list: ExternalMetricValueList = typed(value, what)?;
                self.external_metrics.extend(list.items);
            }
            ("external.metrics.k8s.io", "ExternalMetricValue") => self.external_metrics.push(typed(value, what)?),
            ("ferroscale.dev", "PrometheusSample") => self.prometheus.push(typed(value, what)?),
            _ => self.ignored.push(format!(
                "{what}: apiVersion {api_version:?} kind {kind:?} is not read by explain"
            )),
        }
        Ok(())
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AUTOSCALER: &str = "apiVersion: ferroscale.dev/v1alpha1\nkind: Autoscaler\nmetadata: {name: a, namespace: ns}\nspec:\n  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}\n  maxReplicas: 5\n";
    const SCALE: &str = "apiVersion: autoscaling/v1\nkind: Scale\nmetadata: {name: web}\nspec: {replicas: 2}\nstatus: {replicas: 2, selector: app=web}\n";

    #[test]
    fn reads_lists_of_pods_and_pod_metrics() {
        let text = format!(
            "{AUTOSCALER}---\n{SCALE}---\napiVersion: v1\nkind: PodList\nitems:\n- metadata: {{name: p1}}\n---\napiVersion: metrics.k8s.io/v1beta1\nkind: PodMetricsList\nitems:\n- metadata: {{name: p1}}\n  timestamp: '2026-01-01T00:00:00Z'\n  window: 30s\n  containers: []\n"
        );
        let s = Snapshot::parse(&text).unwrap();
        assert_eq!(s.rest.pods.len(), 1);
        assert_eq!(s.rest.pod_metrics.len(), 1);
    }

    #[test]
    fn errors_name_the_document_and_field() {
        let text = format!(
            "{AUTOSCALER}---\n{SCALE}---\napiVersion: v1\nkind: Pod\nmetadata: {{name: p1}}\nstatus: {{startTime: yesterday}}\n"
        );
        let err = format!("{:#}", Snapshot::parse(&text).unwrap_err());
        assert!(err.contains("document 3 (Pod p1) at status.startTime"), "{err}");
    }

    #[test]
    fn missing_parts_are_named() {
        let err = Snapshot::parse(SCALE).unwrap_err().to_string();
        assert!(err.contains("no Autoscaler"), "{err}");
        let err = Snapshot::parse(AUTOSCALER).unwrap_err().to_string();
        assert!(err.contains("no Scale"), "{err}");
        let err = Snapshot::parse("a: [").unwrap_err().to_string();
        assert!(err.contains("document 1: not valid YAML"), "{err}");
        let err = Snapshot::parse(&format!("{AUTOSCALER}---\n{AUTOSCALER}"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("document 2 (Autoscaler a): a snapshot holds one Autoscaler"),
            "{err}"
        );
    }
}
