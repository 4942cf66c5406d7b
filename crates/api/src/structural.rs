//! The rules an API server applies to a CRD before it accepts it, checked without a server:
//! structural schemas (a type on every node, no `null` among enum values, what `nullable`,
//! `default` and the `x-kubernetes-*` extensions may combine with, no JSON-Schema features that
//! Kubernetes forbids), the scale subresource's paths and the printer columns, and the schema
//! fields a given server version knows (server-side apply refuses fields it does not).
//!
//! The rules follow kube-apiserver's `apiextensions` validation; a CRD that passes here is one
//! every server from [`crate::crd::OLDEST_SUPPORTED`] to `version` accepts.

use serde_json::{Map, Value};

use crate::crd::KubeVersion;

/// Keys a schema node may carry, and the first server version that knows each (for server-side
/// apply, which refuses unknown fields; create and client-side apply drop them).
const KNOWN_KEYS: &[(&str, KubeVersion)] = &[
    ("type", V1_16),
    ("format", V1_16),
    ("title", V1_16),
    ("description", V1_16),
    ("default", V1_16),
    ("example", V1_16),
    ("externalDocs", V1_16),
    ("maximum", V1_16),
    ("exclusiveMaximum", V1_16),
    ("minimum", V1_16),
    ("exclusiveMinimum", V1_16),
    ("maxLength", V1_16),
    ("minLength", V1_16),
    ("pattern", V1_16),
    ("maxItems", V1_16),
    ("minItems", V1_16),
    ("uniqueItems", V1_16),
    ("multipleOf", V1_16),
    ("enum", V1_16),
    ("maxProperties", V1_16),
    ("minProperties", V1_16),
    ("required", V1_16),
    ("items", V1_16),
    ("allOf", V1_16),
    ("oneOf", V1_16),
    ("anyOf", V1_16),
    ("not", V1_16),
    ("properties", V1_16),
    ("additionalProperties", V1_16),
    ("nullable", V1_16),
    ("x-kubernetes-preserve-unknown-fields", V1_16),
    ("x-kubernetes-embedded-resource", V1_16),
    ("x-kubernetes-int-or-string", V1_16),
    ("x-kubernetes-list-map-keys", V1_16),
    ("x-kubernetes-list-type", V1_16),
    ("x-kubernetes-map-type", KubeVersion::new(1, 17)),
    ("x-kubernetes-validations", KubeVersion::new(1, 25)),
];

/// Members of one `x-kubernetes-validations` rule, and the first version that knows each.
const RULE_KEYS: &[(&str, KubeVersion)] = &[
    ("rule", KubeVersion::new(1, 25)),
    ("message", KubeVersion::new(1, 25)),
    ("messageExpression", KubeVersion::new(1, 27)),
    ("reason", KubeVersion::new(1, 28)),
    ("fieldPath", KubeVersion::new(1, 28)),
    ("optionalOldSelf", KubeVersion::new(1, 29)),
];

const V1_16: KubeVersion = KubeVersion::new(1, 16);

/// Formats the API server recognizes; others draw a warning on new servers and mean nothing.
const FORMATS: &[&str] = &[
    "bsonobjectid",
    "uri",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "cidr",
    "mac",
    "uuid",
    "uuid3",
    "uuid4",
    "uuid5",
    "isbn",
    "isbn10",
    "isbn13",
    "creditcard",
    "ssn",
    "hexcolor",
    "rgbcolor",
    "byte",
    "password",
    "date",
    "duration",
    "datetime",
    "date-time",
    "int32",
    "int64",
    "float",
    "double",
];

const TYPES: &[&str] = &["object", "array", "string", "integer", "number", "boolean"];

/// What the value-validation parts of a schema (`allOf`, `anyOf`, `oneOf`, `not`) must not set.
const FORBIDDEN_IN_JUNCTORS: &[&str] = &[
    "type",
    "nullable",
    "default",
    "description",
    "additionalProperties",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-embedded-resource",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type",
    "x-kubernetes-validations",
];

/// Every problem a server of `version` (or any older supported one) would find in `crd`, each
/// naming the CRD and the schema path. Empty when the CRD is fine.
pub fn check(crd: &Value, version: KubeVersion) -> Vec<String> {
    let name = crd
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("<unnamed CRD>");
    let mut problems = Problems {
        crd: name.to_string(),
        version,
        found: Vec::new(),
    };
    match crd.pointer("/spec/versions").and_then(Value::as_array) {
        None => problems.push("spec.versions", "must list the served versions"),
        Some(versions) => {
            for (i, v) in versions.iter().enumerate() {
                let at = format!("spec.versions[{i}]");
                match v.pointer("/schema/openAPIV3Schema") {
                    None => problems.push(&at, "has no schema.openAPIV3Schema"),
                    Some(root) => {
                        let path = format!("{at}.schema.openAPIV3Schema");
                        problems.root(&path, root);
                        problems.node(&path, root, false);
                        problems.subresources(&at, v, root);
                        problems.printer_columns(&at, v);
                    }
                }
            }
        }
    }
    problems.found
}

struct Problems {
    crd: String,
    version: KubeVersion,
    found: Vec<String>,
}

impl Problems {
    fn push(&mut self, path: &str, problem: impl std::fmt::Display) {
        self.found.push(format!("CRD {}: {path}: {problem}", self.crd));
    }

    fn root(&mut self, path: &str, root: &Value) {
        if root.get("type").and_then(Value::as_str) != Some("object") {
            self.push(path, "the root schema must have type: object");
        }
        for forbidden in [
            "nullable",
            "default",
            "x-kubernetes-int-or-string",
            "x-kubernetes-embedded-resource",
        ] {
            if root.get(forbidden).is_some() {
                self.push(path, format!("the root schema must not set {forbidden}"));
            }
        }
        if let Some(metadata) = root.pointer("/properties/metadata") {
            let allowed = ["name", "generateName"];
            if let Some(properties) = metadata.get("properties").and_then(Value::as_object) {
                for key in properties.keys().filter(|k| !allowed.contains(&k.as_str())) {
                    self.push(
                        &format!("{path}.properties.metadata.properties.{key}"),
                        "only name and generateName may be specified under metadata",
                    );
                }
            }
        }
    }

    /// One schema node; `in_junctor` is true inside allOf/anyOf/oneOf/not.
    fn node(&mut self, path: &str, node: &Value, in_junctor: bool) {
        let Some(schema) = node.as_object() else {
            self.push(path, "must be a schema object");
            return;
        };
        self.keys(path, schema);
        let flag = |key: &str| schema.get(key).and_then(Value::as_bool);
        let int_or_string = flag("x-kubernetes-int-or-string") == Some(true);
        let preserve = flag("x-kubernetes-preserve-unknown-fields");
        let type_ = schema.get("type").and_then(Value::as_str);

        if in_junctor {
            for key in FORBIDDEN_IN_JUNCTORS {
                if schema.contains_key(*key) {
                    self.push(path, format!("{key} must not be set inside allOf, anyOf, oneOf or not"));
                }
            }
        } else {
            match type_ {
                None if !int_or_string && preserve != Some(true) => self.push(path, "must specify a type"),
                Some(t) if !TYPES.contains(&t) => self.push(path, format!("unknown type {t:?}")),
                _ => {}
            }
        }
        if preserve == Some(false) {
            self.push(path, "x-kubernetes-preserve-unknown-fields must be true or absent");
        }
        if int_or_string {
            if type_.is_some() {
                self.push(path, "x-kubernetes-int-or-string must not be combined with a type");
            }
            self.int_or_string_junctors(path, schema);
        }
        if flag("x-kubernetes-embedded-resource") == Some(true) && type_ != Some("object") {
            self.push(path, "x-kubernetes-embedded-resource needs type: object");
        }
        if schema.get("uniqueItems").and_then(Value::as_bool) == Some(true) {
            self.push(path, "uniqueItems must not be true");
        }
        match schema.get("additionalProperties") {
            Some(Value::Bool(_)) => self.push(path, "additionalProperties must be a schema, not a boolean"),
            Some(additional) => {
                if schema.contains_key("properties") {
                    self.push(path, "properties and additionalProperties must not both be set");
                }
                self.node(&format!("{path}.additionalProperties"), additional, in_junctor);
            }
            None => {}
        }
        if let Some(format) = schema.get("format").and_then(Value::as_str)
            && !FORMATS.contains(&format)
        {
            self.push(path, format!("unknown format {format:?}"));
        }
        if let Some(values) = schema.get("enum") {
            self.enum_values(path, values, type_, schema);
        }
        let null_allowed = flag("nullable") == Some(true);
        if let Some(default) = schema.get("default")
            && !(matches_type(default, type_, int_or_string) || default.is_null() && null_allowed)
        {
            self.push(
                path,
                format!("default {default} is not of type {}", type_.unwrap_or("?")),
            );
        }
        self.lists_and_maps(path, schema, type_);
        self.rules(path, schema);

        if let Some(properties) = schema.get("properties") {
            match properties.as_object() {
                None => self.push(path, "properties must be a map of schemas"),
                Some(properties) => {
                    if !in_junctor && type_.is_some_and(|t| t != "object") {
                        self.push(path, "properties need type: object");
                    }
                    for (name, child) in properties {
                        self.node(&format!("{path}.properties.{name}"), child, in_junctor);
                    }
                }
            }
        }
        match schema.get("items") {
            Some(Value::Array(_)) => self.push(path, "items must be one schema, not a list"),
            Some(items) => self.node(&format!("{path}.items"), items, in_junctor),
            None if type_ == Some("array") && !in_junctor => self.push(path, "an array must specify items"),
            None => {}
        }
        for junctor in ["allOf", "anyOf", "oneOf"] {
            if let Some(list) = schema.get(junctor) {
                match list.as_array() {
                    None => self.push(path, format!("{junctor} must be a list of schemas")),
                    Some(list) => {
                        for (i, child) in list.iter().enumerate() {
                            self.node(&format!("{path}.{junctor}[{i}]"), child, true);
                        }
                    }
                }
            }
        }
        if let Some(not) = schema.get("not") {
            self.node(&format!("{path}.not"), not, true);
        }
    }

    fn keys(&mut self, path: &str, schema: &Map<String, Value>) {
        for key in schema.keys() {
            match KNOWN_KEYS.iter().find(|(k, _)| k == key) {
                None => self.push(path, format!("{key} is not a field of a Kubernetes structural schema")),
                Some((_, since)) if *since > self.version => self.push(
                    path,
                    format!("{key} is unknown to Kubernetes {} (known from {since})", self.version),
                ),
                Some(_) => {}
            }
        }
    }

    /// int-or-string may carry only the junctor pair Kubernetes itself generates.
    fn int_or_string_junctors(&mut self, path: &str, schema: &Map<String, Value>) {
        for junctor in ["allOf", "anyOf"] {
            let Some(list) = schema.get(junctor) else { continue };
            let types: Vec<Option<&str>> = list
                .as_array()
                .map(|l| l.iter().map(|s| s.get("type").and_then(Value::as_str)).collect())
                .unwrap_or_default();
            if types != [Some("integer"), Some("string")] {
                self.push(
                    path,
                    format!(
                        "x-kubernetes-int-or-string allows {junctor} only as [{{type: integer}}, {{type: string}}]"
                    ),
                );
            }
        }
        if schema.contains_key("oneOf") {
            self.push(path, "x-kubernetes-int-or-string must not be combined with oneOf");
        }
    }

    fn enum_values(&mut self, path: &str, values: &Value, type_: Option<&str>, schema: &Map<String, Value>) {
        let Some(values) = values.as_array() else {
            self.push(path, "enum must be a list");
            return;
        };
        let int_or_string = schema.get("x-kubernetes-int-or-string").and_then(Value::as_bool) == Some(true);
        for value in values {
            if value.is_null() {
                self.push(path, "enum must not list null (use nullable: true to allow null)");
            } else if !matches_type(value, type_, int_or_string) {
                self.push(
                    path,
                    format!("enum value {value} is not of type {}", type_.unwrap_or("?")),
                );
            }
        }
    }

    fn lists_and_maps(&mut self, path: &str, schema: &Map<String, Value>, type_: Option<&str>) {
        if let Some(list_type) = schema.get("x-kubernetes-list-type").and_then(Value::as_str) {
            if type_ != Some("array") {
                self.push(path, "x-kubernetes-list-type needs type: array");
            }
            let items = schema.get("items");
            match list_type {
                "atomic" => {}
                "set" => {
                    let item_type = items.and_then(|i| i.get("type")).and_then(Value::as_str);
                    let atomic = items
                        .and_then(|i| i.get("x-kubernetes-map-type"))
                        .and_then(Value::as_str)
                        == Some("atomic");
                    if item_type.is_some_and(|t| t == "object" || t == "array") && !atomic {
                        self.push(path, "a set's items must be scalars or atomic");
                    }
                }
                "map" => {
                    let keys: Vec<&str> = schema
                        .get("x-kubernetes-list-map-keys")
                        .and_then(Value::as_array)
                        .map(|k| k.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    if keys.is_empty() {
                        self.push(path, "x-kubernetes-list-type: map needs x-kubernetes-list-map-keys");
                    }
                    if items.and_then(|i| i.get("type")).and_then(Value::as_str) != Some("object") {
                        self.push(path, "x-kubernetes-list-type: map needs items of type object");
                    }
                    let required: Vec<&str> = items
                        .and_then(|i| i.get("required"))
                        .and_then(Value::as_array)
                        .map(|r| r.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    for key in keys {
                        let property = items.and_then(|i| i.pointer(&format!("/properties/{key}")));
                        let has_default = property.is_some_and(|p| p.get("default").is_some());
                        if !required.contains(&key) && !has_default {
                            self.push(path, format!("map key {key} must be required or have a default"));
                        }
                    }
                }
                other => self.push(path, format!("unknown x-kubernetes-list-type {other:?}")),
            }
        } else if schema.contains_key("x-kubernetes-list-map-keys") {
            self.push(path, "x-kubernetes-list-map-keys needs x-kubernetes-list-type: map");
        }
        if let Some(map_type) = schema.get("x-kubernetes-map-type").and_then(Value::as_str) {
            if !["granular", "atomic"].contains(&map_type) {
                self.push(path, format!("unknown x-kubernetes-map-type {map_type:?}"));
            }
            if type_ != Some("object") {
                self.push(path, "x-kubernetes-map-type needs type: object");
            }
        }
    }

    fn rules(&mut self, path: &str, schema: &Map<String, Value>) {
        let Some(rules) = schema.get("x-kubernetes-validations") else {
            return;
        };
        let Some(rules) = rules.as_array() else {
            self.push(path, "x-kubernetes-validations must be a list");
            return;
        };
        for (i, rule) in rules.iter().enumerate() {
            let at = format!("{path}.x-kubernetes-validations[{i}]");
            let Some(rule) = rule.as_object() else {
                self.push(&at, "must be an object");
                continue;
            };
            if rule.get("rule").and_then(Value::as_str).is_none_or(str::is_empty) {
                self.push(&at, "rule must be a non-empty expression");
            }
            for key in rule.keys() {
                match RULE_KEYS.iter().find(|(k, _)| k == key) {
                    None => self.push(&at, format!("{key} is not a field of a validation rule")),
                    Some((_, since)) if *since > self.version => self.push(
                        &at,
                        format!("{key} is unknown to Kubernetes {} (known from {since})", self.version),
                    ),
                    Some(_) => {}
                }
            }
        }
    }

    fn subresources(&mut self, at: &str, version: &Value, root: &Value) {
        let Some(scale) = version.pointer("/subresources/scale") else {
            return;
        };
        let paths = [
            ("specReplicasPath", Some(".spec."), true),
            ("statusReplicasPath", Some(".status."), true),
            ("labelSelectorPath", None, false),
        ];
        for (field, prefix, required) in paths {
            let at = format!("{at}.subresources.scale.{field}");
            let Some(json_path) = scale.get(field).and_then(Value::as_str) else {
                if required {
                    self.push(&at, "is required");
                }
                continue;
            };
            let prefix_ok = match prefix {
                Some(p) => json_path.starts_with(p),
                None => json_path.starts_with(".spec.") || json_path.starts_with(".status."),
            };
            if !prefix_ok {
                self.push(
                    &at,
                    format!("{json_path} must be under {}", prefix.unwrap_or(".spec. or .status.")),
                );
                continue;
            }
            let mut node = Some(root);
            for segment in json_path.trim_start_matches('.').split('.') {
                node = node.and_then(|n| n.pointer(&format!("/properties/{segment}")));
            }
            let expected = if field == "labelSelectorPath" {
                "string"
            } else {
                "integer"
            };
            match node.and_then(|n| n.get("type")).and_then(Value::as_str) {
                Some(t) if t == expected => {}
                Some(t) => self.push(&at, format!("{json_path} is of type {t}, not {expected}")),
                // The spec path must exist in the schema; the status paths may be unspecified.
                None if field == "specReplicasPath" => self.push(&at, format!("{json_path} is not in the schema")),
                None => {}
            }
        }
    }

    fn printer_columns(&mut self, at: &str, version: &Value) {
        let Some(columns) = version.get("additionalPrinterColumns").and_then(Value::as_array) else {
            return;
        };
        for (i, column) in columns.iter().enumerate() {
            let at = format!("{at}.additionalPrinterColumns[{i}]");
            if column.get("name").and_then(Value::as_str).is_none_or(str::is_empty) {
                self.push(&at, "name is required");
            }
            match column.get("type").and_then(Value::as_str) {
                Some("integer" | "number" | "string" | "boolean" | "date") => {}
                other => self.push(
                    &at,
                    format!("type {other:?} must be integer, number, string, boolean or date"),
                ),
            }
            if !column
                .get("jsonPath")
                .and_then(Value::as_str)
                .is_some_and(|p| p.starts_with('.'))
            {
                self.push(&at, "jsonPath must be a path starting with '.'");
            }
        }
    }
}

fn matches_type(value: &Value, type_: Option<&str>, int_or_string: bool) -> bool {
    if int_or_string {
        return value.is_string() || value.is_i64() || value.is_u64();
    }
    match type_ {
        Some("object") => value.is_object(),
        Some("array") => value.is_array(),
        Some("string") => value.is_string(),
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("number") => value.is_number(),
        Some("boolean") => value.is_boolean(),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn crd(schema: Value) -> Value {
        json!({"metadata": {"name": "things.example.com"},
               "spec": {"versions": [{"name": "v1", "schema": {"openAPIV3Schema": schema}}]}})
    }

    fn problems(schema: Value) -> Vec<String> {
        check(&crd(schema), KubeVersion::new(1, 19))
    }

    fn object(properties: Value) -> Value {
        json!({"type": "object", "properties": properties})
    }

    #[test]
    fn a_sound_schema_passes() {
        let schema = object(json!({
            "spec": {"type": "object", "properties": {
                "replicas": {"type": "integer", "format": "int32", "default": 1, "minimum": 0},
                "policy": {"type": "string", "nullable": true, "enum": ["Max", "Min"]},
                "tolerance": {"x-kubernetes-int-or-string": true, "nullable": true},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "template": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                          "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}}
            }}
        }));
        assert_eq!(problems(schema), Vec::<String>::new());
    }

    #[test]
    fn each_defect_is_named_with_its_path() {
        let cases: Vec<(&str, Value, &str)> = vec![
            (
                "null in enum",
                json!({"type": "string", "nullable": true, "enum": ["Max", null]}),
                "properties.f: enum must not list null",
            ),
            (
                "no type",
                json!({"description": "x"}),
                "properties.f: must specify a type",
            ),
            ("bad type", json!({"type": "map"}), "unknown type \"map\""),
            (
                "enum of the wrong type",
                json!({"type": "integer", "enum": ["a"]}),
                "enum value \"a\" is not of type integer",
            ),
            (
                "default of the wrong type",
                json!({"type": "integer", "default": "1"}),
                "default \"1\" is not of type integer",
            ),
            ("$ref", json!({"$ref": "#/definitions/x"}), "$ref is not a field"),
            (
                "uniqueItems",
                json!({"type": "array", "uniqueItems": true, "items": {"type": "string"}}),
                "uniqueItems must not be true",
            ),
            (
                "array without items",
                json!({"type": "array"}),
                "an array must specify items",
            ),
            (
                "tuple items",
                json!({"type": "array", "items": [{"type": "string"}]}),
                "items must be one schema",
            ),
            (
                "both property kinds",
                json!({"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": {"type": "string"}}),
                "properties and additionalProperties must not both be set",
            ),
            (
                "boolean additionalProperties",
                json!({"type": "object", "additionalProperties": false}),
                "not a boolean",
            ),
            (
                "int-or-string with a type",
                json!({"type": "string", "x-kubernetes-int-or-string": true}),
                "must not be combined with a type",
            ),
            (
                "type inside anyOf",
                json!({"type": "string", "anyOf": [{"type": "string"}, {"type": "integer"}]}),
                "anyOf[0]: type must not be set inside",
            ),
            (
                "preserve false",
                json!({"type": "object", "x-kubernetes-preserve-unknown-fields": false}),
                "must be true or absent",
            ),
            (
                "unknown format",
                json!({"type": "integer", "format": "uint32"}),
                "unknown format \"uint32\"",
            ),
            (
                "map list without required keys",
                json!({"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                       "items": {"type": "object", "properties": {"name": {"type": "string"}}}}),
                "map key name must be required or have a default",
            ),
            (
                "CEL on an old server",
                json!({"type": "object", "x-kubernetes-validations": [{"rule": "true"}]}),
                "x-kubernetes-validations is unknown to Kubernetes 1.19 (known from 1.25)",
            ),
        ];
        for (name, field, expected) in cases {
            let found = problems(object(json!({ "f": field })));
            assert!(
                found
                    .iter()
                    .any(|p| p.contains(expected) && p.starts_with("CRD things.example.com: spec.versions[0]")),
                "{name}: expected {expected:?} in {found:?}"
            );
        }
    }

    #[test]
    fn rule_fields_are_checked_against_the_server_version() {
        let schema = object(json!({"spec": {"type": "object",
            "x-kubernetes-validations": [{"rule": "true", "message": "m", "fieldPath": ".a"}]}}));
        assert_eq!(
            check(&crd(schema.clone()), KubeVersion::new(1, 28)),
            Vec::<String>::new()
        );
        let found = check(&crd(schema), KubeVersion::new(1, 25));
        assert!(
            found
                .iter()
                .any(|p| p.contains("fieldPath is unknown to Kubernetes 1.25")),
            "{found:?}"
        );
    }

    #[test]
    fn the_root_and_the_scale_paths_are_checked() {
        let mut bad = crd(json!({"type": "object", "nullable": true, "properties": {
            "metadata": {"type": "object", "properties": {"labels": {"type": "object"}}},
            "spec": {"type": "object", "properties": {"replicas": {"type": "string"}}}}}));
        bad["spec"]["versions"][0]["subresources"] = json!({"scale": {
            "specReplicasPath": ".spec.replicas", "statusReplicasPath": ".spec.replicas"}});
        bad["spec"]["versions"][0]["additionalPrinterColumns"] =
            json!([{"name": "X", "type": "map", "jsonPath": "spec"}]);
        let found = check(&bad, KubeVersion::new(1, 19));
        for expected in [
            "the root schema must not set nullable",
            "only name and generateName",
            "specReplicasPath: .spec.replicas is of type string, not integer",
            "statusReplicasPath: .spec.replicas must be under .status.",
            "type Some(\"map\") must be",
            "jsonPath must be a path",
        ] {
            assert!(
                found.iter().any(|p| p.contains(expected)),
                "expected {expected:?} in {found:?}"
            );
        }
    }
}
