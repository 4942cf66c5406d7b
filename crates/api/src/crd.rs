//! The CRD manifests, as every supported API server takes them.
//!
//! The schemas come from the Rust types. Two things are adjusted after generation:
//! - optional enums: the generator lists `null` among the values of an `Option<enum>` field,
//!   which API servers before 1.20 refuse (and which `nullable: true` already expresses), so
//!   it is dropped;
//! - schema fields a server does not know: `x-kubernetes-validations` (CEL rules, enforced from
//!   1.25) and the rule fields added later. An older server ignores them when a CRD is created
//!   or applied client-side, but refuses a server-side apply that carries them, so
//!   [`for_kube_version`] removes them for such servers. The full CRDs (`crds/`) keep them.

use std::fmt;
use std::str::FromStr;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use serde_json::Value;

use crate::{Autoscaler, PodSet};

/// A Kubernetes minor release, e.g. 1.24.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct KubeVersion {
    pub major: u32,
    pub minor: u32,
}

impl KubeVersion {
    pub const fn new(major: u32, minor: u32) -> Self {
        Self { major, minor }
    }
}

impl fmt::Display for KubeVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl FromStr for KubeVersion {
    type Err = String;

    /// Takes `1.24`, `v1.24` or `v1.24.3` (and server minors such as `24+`).
    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("{text:?} is not a Kubernetes version such as 1.24 or v1.24.3");
        let trimmed = text.trim().trim_start_matches('v');
        let mut parts = trimmed.split('.');
        let number = |part: Option<&str>| -> Result<u32, String> {
            let digits: String = part.ok_or_else(bad)?.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().map_err(|_| bad())
        };
        let major = number(parts.next())?;
        let minor = number(parts.next())?;
        Ok(Self { major, minor })
    }
}

/// Schema fields [`for_kube_version`] may remove, and the first version whose server knows each.
const RULE_FIELDS: &[(&str, KubeVersion)] = &[
    // Beta (on by default) in 1.25; alpha before, behind a gate no cluster should rely on.
    ("x-kubernetes-validations", KubeVersion::new(1, 25)),
];

/// Fields of one CEL rule, and the first version whose server knows each.
const RULE_MEMBERS: &[(&str, KubeVersion)] = &[
    ("messageExpression", KubeVersion::new(1, 27)),
    ("reason", KubeVersion::new(1, 28)),
    ("fieldPath", KubeVersion::new(1, 28)),
    ("optionalOldSelf", KubeVersion::new(1, 29)),
];

/// The oldest API server ferroscale supports.
pub const OLDEST_SUPPORTED: KubeVersion = KubeVersion::new(1, 19);

/// The CRDs, in the order `ferroscale crds` prints them, with every schema field kept.
pub fn crds() -> Vec<CustomResourceDefinition> {
    [Autoscaler::crd(), PodSet::crd()]
        .into_iter()
        .map(|crd| {
            let mut json = serde_json::to_value(&crd).unwrap_or_else(|e| unreachable!("a CRD serializes: {e}"));
            for_each_schema(&mut json, &mut drop_null_from_enum);
            serde_json::from_value(json).unwrap_or_else(|e| unreachable!("a CRD still deserializes: {e}"))
        })
        .collect()
}

/// The CRDs for a server of `version`: the schema fields it does not know are removed, so that
/// every way of applying them (server-side apply included) works there.
pub fn for_kube_version(version: KubeVersion) -> Vec<CustomResourceDefinition> {
    crds()
        .into_iter()
        .map(|crd| {
            let mut json = serde_json::to_value(&crd).unwrap_or_else(|e| unreachable!("a CRD serializes: {e}"));
            for_each_schema(&mut json, &mut |schema| strip_unknown_to(schema, version));
            serde_json::from_value(json).unwrap_or_else(|e| unreachable!("a CRD still deserializes: {e}"))
        })
        .collect()
}

/// The file name a CRD is kept under in `crds/`: `<plural>.<group>.yaml`.
pub fn file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}.yaml", crd.metadata.name.as_deref().unwrap_or("crd"))
}

/// Where `crds/` keeps the CRDs for servers older than CEL validation rules.
pub const PRE_CEL_DIR: &str = "kubernetes-1.19-1.24";
/// The newest version [`PRE_CEL_DIR`] serves.
pub const PRE_CEL: KubeVersion = KubeVersion::new(1, 24);

/// The Helm chart's `templates/crds.yaml`: the CRDs for the cluster's version, kept when the
/// release is uninstalled (deleting a CRD deletes every object of its kind).
pub fn helm_template() -> String {
    let render = |crds: Vec<CustomResourceDefinition>| {
        crds.into_iter()
            .map(|mut crd| {
                crd.metadata
                    .annotations
                    .get_or_insert_with(Default::default)
                    .insert("helm.sh/resource-policy".into(), "keep".into());
                let yaml = serde_yaml::to_string(&crd).unwrap_or_else(|e| unreachable!("a CRD serializes: {e}"));
                // Text that looks like a template action must reach the cluster as it is.
                format!("---\n{}", yaml.replace("{{", "{{ \"{{\" }}"))
            })
            .collect::<String>()
    };
    format!(
        "{{{{- /* Generated by `make crds` from the Rust types; do not edit. */}}}}\n\
         {{{{- if .Values.crds.install }}}}\n\
         {{{{- if semverCompare \">={}-0\" .Capabilities.KubeVersion.Version }}}}\n{}\
         {{{{- else }}}}\n{}\
         {{{{- end }}}}\n\
         {{{{- end }}}}\n",
        KubeVersion::new(PRE_CEL.major, PRE_CEL.minor + 1),
        render(crds()),
        render(for_kube_version(PRE_CEL)),
    )
}

/// The CRDs as (file name, YAML), for `ferroscale crds` and `crds/`.
pub fn documents(crds: &[CustomResourceDefinition]) -> Vec<(String, String)> {
    crds.iter()
        .map(|crd| {
            let yaml = serde_yaml::to_string(crd).unwrap_or_else(|e| unreachable!("a CRD always serializes: {e}"));
            (file_name(crd), yaml)
        })
        .collect()
}

fn drop_null_from_enum(schema: &mut serde_json::Map<String, Value>) {
    if let Some(Value::Array(values)) = schema.get_mut("enum") {
        values.retain(|v| !v.is_null());
    }
}

fn strip_unknown_to(schema: &mut serde_json::Map<String, Value>, version: KubeVersion) {
    for (field, since) in RULE_FIELDS {
        if version < *since {
            schema.remove(*field);
        }
    }
    if let Some(Value::Array(rules)) = schema.get_mut("x-kubernetes-validations") {
        for rule in rules.iter_mut().filter_map(Value::as_object_mut) {
            for (member, since) in RULE_MEMBERS {
                if version < *since {
                    rule.remove(*member);
                }
            }
        }
    }
}

/// Calls `f` on every schema node of every version of a CRD (given as JSON).
pub fn for_each_schema(crd: &mut Value, f: &mut dyn FnMut(&mut serde_json::Map<String, Value>)) {
    let Some(versions) = crd.pointer_mut("/spec/versions").and_then(Value::as_array_mut) else {
        return;
    };
    for version in versions {
        if let Some(root) = version.pointer_mut("/schema/openAPIV3Schema") {
            walk(root, f);
        }
    }
}

fn walk(node: &mut Value, f: &mut dyn FnMut(&mut serde_json::Map<String, Value>)) {
    let Some(schema) = node.as_object_mut() else { return };
    f(schema);
    for (key, child) in schema.iter_mut() {
        match key.as_str() {
            "properties" => {
                if let Some(properties) = child.as_object_mut() {
                    for property in properties.values_mut() {
                        walk(property, f);
                    }
                }
            }
            "items" | "additionalProperties" | "not" => walk(child, f),
            "allOf" | "anyOf" | "oneOf" => {
                if let Some(list) = child.as_array_mut() {
                    for item in list {
                        walk(item, f);
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_in_every_usual_spelling() {
        for (text, expected) in [
            ("1.24", KubeVersion::new(1, 24)),
            ("v1.28.0", KubeVersion::new(1, 28)),
            ("v1.19.16-gke.100", KubeVersion::new(1, 19)),
            ("1.25+", KubeVersion::new(1, 25)),
        ] {
            assert_eq!(text.parse::<KubeVersion>(), Ok(expected), "{text}");
        }
        for bad in ["", "1", "one.two", "v.1"] {
            let error = bad.parse::<KubeVersion>().unwrap_err();
            assert!(error.contains("not a Kubernetes version"), "{bad}: {error}");
        }
    }

    fn count(crds: &[CustomResourceDefinition], key: &str) -> usize {
        let mut n = 0;
        for crd in crds {
            let mut json = serde_json::to_value(crd).unwrap_or_default();
            for_each_schema(&mut json, &mut |s| {
                if let Some(Value::Array(rules)) = s.get("x-kubernetes-validations") {
                    n += if key == "x-kubernetes-validations" {
                        rules.len()
                    } else {
                        rules.iter().filter(|r| r.get(key).is_some()).count()
                    };
                }
            });
        }
        n
    }

    #[test]
    fn older_servers_get_only_the_rule_fields_they_know() {
        let full = crds();
        assert!(count(&full, "x-kubernetes-validations") > 0);
        assert_eq!(
            count(&for_kube_version(KubeVersion::new(1, 24)), "x-kubernetes-validations"),
            0
        );
        assert_eq!(
            for_kube_version(KubeVersion::new(1, 25)),
            full,
            "1.25 knows every field used"
        );

        let mut schema = serde_json::json!({"type": "object", "x-kubernetes-validations": [
            {"rule": "true", "message": "m", "fieldPath": ".a", "reason": "FieldValueInvalid"}]})
        .as_object()
        .cloned()
        .unwrap_or_default();
        strip_unknown_to(&mut schema, KubeVersion::new(1, 27));
        assert_eq!(
            serde_json::Value::Object(schema),
            serde_json::json!({"type": "object", "x-kubernetes-validations": [{"rule": "true", "message": "m"}]})
        );
    }

    #[test]
    fn no_enum_lists_null() {
        for crd in crds() {
            let mut json = serde_json::to_value(&crd).unwrap_or_default();
            for_each_schema(&mut json, &mut |s| {
                if let Some(Value::Array(values)) = s.get("enum") {
                    assert!(values.iter().all(|v| !v.is_null()), "{values:?}");
                }
            });
        }
    }
}
