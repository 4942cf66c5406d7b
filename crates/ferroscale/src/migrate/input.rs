//! HorizontalPodAutoscalers found in multi-document YAML: plain documents and the items of
//! `List` and `HorizontalPodAutoscalerList` documents. Pure: the text is read elsewhere.

use serde::Deserialize;
use serde_json::Value;

use super::convert::HPA_KIND;

/// An HPA object and where it came from, for messages.
#[derive(Debug, Clone)]
pub struct Found {
    /// E.g. `hpas.yaml document 2 (shop/web)`.
    pub source: String,
    pub object: Value,
}

/// One finding in a file: an HPA, or a line (without the `warning: ` or `error: ` prefix) about
/// what is not one.
#[derive(Debug)]
pub enum Entry {
    Hpa(Found),
    Warning(String),
    Error(String),
}

/// `namespace/name` of an object, or `name`, or nothing, for messages.
pub fn identity(object: &Value) -> Option<String> {
    let metadata = object.get("metadata")?;
    let name = metadata
        .get("name")
        .or_else(|| metadata.get("generateName"))?
        .as_str()?;
    Some(match metadata.get("namespace").and_then(Value::as_str) {
        Some(namespace) => format!("{namespace}/{name}"),
        None => name.to_string(),
    })
}

fn text_of<'a>(object: &'a Value, field: &str) -> Option<&'a str> {
    object.get(field).and_then(Value::as_str)
}

/// The documents of `text` (read from `file`, a name for messages).
pub fn documents(file: &str, text: &str) -> Vec<Entry> {
    let mut found = Vec::new();
    for (i, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let at = format!("{file} document {}", i + 1);
        let value = match serde_yaml::Value::deserialize(document) {
            Ok(mut value) => {
                if let Err(e) = value.apply_merge() {
                    found.push(Entry::Error(format!("{at}: invalid YAML: {e}")));
                    continue;
                }
                value
            }
            Err(e) => {
                // The parser cannot find the next document after a syntax error.
                found.push(Entry::Error(format!("{at}: invalid YAML: {e}")));
                break;
            }
        };
        if value.is_null() {
            continue;
        }
        match serde_json::to_value(&value) {
            Ok(json) => object(&at, json, None, &mut found),
            Err(e) => found.push(Entry::Error(format!("{at}: not a Kubernetes object: {e}"))),
        }
    }
    found
}

/// Sorts one object (a document, or a list's item) into an HPA, a list to open, or something
/// else. `defaults` are the (apiVersion, kind) the items of a typed list leave out.
fn object(at: &str, value: Value, defaults: Option<(&str, &str)>, found: &mut Vec<Entry>) {
    if !value.is_object() {
        found.push(Entry::Error(format!(
            "{at}: not a Kubernetes object (a mapping with apiVersion and kind)"
        )));
        return;
    }
    let mut value = value;
    if let (Some((api_version, kind)), Some(map)) = (defaults, value.as_object_mut()) {
        map.entry("apiVersion").or_insert_with(|| api_version.into());
        map.entry("kind").or_insert_with(|| kind.into());
    }
    let named = |at: &str, value: &Value| match identity(value) {
        Some(id) => format!("{at} ({id})"),
        None => at.to_string(),
    };
    let Some(kind) = text_of(&value, "kind") else {
        found.push(Entry::Error(format!("{}: kind: missing", named(at, &value))));
        return;
    };
    if kind == HPA_KIND {
        found.push(Entry::Hpa(Found {
            source: named(at, &value),
            object: value,
        }));
        return;
    }
    if kind.ends_with("List")
        && let Some(items) = value.get("items").and_then(Value::as_array)
    {
        let api_version = text_of(&value, "apiVersion").unwrap_or_default();
        // A typed list (HorizontalPodAutoscalerList) may leave apiVersion and kind out of its
        // items; a plain List may not.
        let item_kind = kind.strip_suffix("List").filter(|k| !k.is_empty());
        let defaults = item_kind.map(|k| (api_version, k));
        for (i, item) in items.iter().enumerate() {
            object(&format!("{at} items[{i}]"), item.clone(), defaults, found);
        }
        return;
    }
    let api_version = text_of(&value, "apiVersion").unwrap_or("no apiVersion");
    found.push(Entry::Warning(format!(
        "{}: kind: {kind} ({api_version}) is not a {HPA_KIND}; skipped",
        named(at, &value)
    )));
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

    use super::*;

    /// The HPAs, the warnings and the errors.
    fn sort(entries: Vec<Entry>) -> (Vec<Found>, Vec<String>, Vec<String>) {
        let (mut hpas, mut warnings, mut errors) = (Vec::new(), Vec::new(), Vec::new());
        for entry in entries {
            match entry {
                Entry::Hpa(found) => hpas.push(found),
                Entry::Warning(line) => warnings.push(line),
                Entry::Error(line) => errors.push(line),
            }
        }
        (hpas, warnings, errors)
    }

    #[test]
    fn documents_lists_and_other_kinds() {
        let text = "\
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: a, namespace: one}
---
---
apiVersion: v1
kind: List
items:
- {apiVersion: autoscaling/v1, kind: HorizontalPodAutoscaler, metadata: {name: b}}
- {apiVersion: apps/v1, kind: Deployment, metadata: {name: web}}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscalerList
items:
- metadata: {name: c}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
";
        let (hpas, warnings, errors) = sort(documents("hpas.yaml", text));
        let sources: Vec<&str> = hpas.iter().map(|f| f.source.as_str()).collect();
        assert_eq!(
            sources,
            [
                "hpas.yaml document 1 (one/a)",
                "hpas.yaml document 3 items[0] (b)",
                "hpas.yaml document 4 items[0] (c)",
            ]
        );
        assert_eq!(hpas[2].object["apiVersion"], "autoscaling/v2");
        assert_eq!(hpas[2].object["kind"], "HorizontalPodAutoscaler");
        assert_eq!(
            warnings,
            [
                "hpas.yaml document 3 items[1] (web): kind: Deployment (apps/v1) is not a HorizontalPodAutoscaler; skipped",
                "hpas.yaml document 5 (settings): kind: ConfigMap (v1) is not a HorizontalPodAutoscaler; skipped",
            ]
        );
        assert!(errors.is_empty(), "{:?}", errors);
    }

    #[test]
    fn errors_name_file_and_document() {
        let (hpas, _, errors) = sort(documents(
            "bad.yaml",
            "kind: HorizontalPodAutoscaler\n---\n[1, 2]\n---\nmetadata: {name: x}\n---\na: [\n",
        ));
        assert_eq!(hpas.len(), 1);
        assert_eq!(errors.len(), 3, "{:?}", errors);
        assert_eq!(
            errors[0],
            "bad.yaml document 2: not a Kubernetes object (a mapping with apiVersion and kind)"
        );
        assert_eq!(errors[1], "bad.yaml document 3 (x): kind: missing");
        assert!(
            errors[2].starts_with("bad.yaml document 4: invalid YAML: "),
            "{:?}",
            errors
        );
        let (_, _, plain) = sort(documents(
            "l.yaml",
            "apiVersion: v1\nkind: List\nitems:\n- metadata: {name: x}\n",
        ));
        assert_eq!(plain, ["l.yaml document 1 items[0] (x): kind: missing"]);
    }
}
