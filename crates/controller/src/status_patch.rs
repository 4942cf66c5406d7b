//! Status written whole. A JSON merge patch keeps every field it leaves out, so a field the
//! controller stopped writing (a cleared failure, a pause lifted) would stay on the server for
//! good. A JSON patch that sets `/status` replaces it, absent fields included.
//!
//! With the resourceVersion the status was computed from, the write is conditional: the API
//! server answers 409 Conflict when the object changed since, so a status decided from a cache
//! that fell behind (a partition, a new leader's writes) never overwrites a newer one.

use kube::api::Patch;
use serde::Serialize;
use serde_json::{Value, json};

/// The patch that sets `status` as a whole, only on `resource_version` when one is given.
pub fn replace<S: Serialize>(status: &S, resource_version: Option<&str>) -> Result<Patch<Value>, serde_json::Error> {
    let mut operations = Vec::with_capacity(2);
    if let Some(version) = resource_version {
        operations.push(json!({"op": "replace", "path": "/metadata/resourceVersion", "value": version}));
    }
    // `add` replaces a member that exists and creates one that does not.
    operations.push(json!({"op": "add", "path": "/status", "value": status}));
    let patch: json_patch::Patch = serde_json::from_value(Value::Array(operations))?;
    Ok(Patch::Json(patch))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_status_is_replaced_whole_on_the_version_it_was_read_at() {
        let Patch::Json(patch) = replace(&json!({"replicas": 2}), Some("41")).unwrap() else {
            panic!("not a JSON patch")
        };
        assert_eq!(
            serde_json::to_value(&patch).unwrap(),
            json!([
                {"op": "replace", "path": "/metadata/resourceVersion", "value": "41"},
                {"op": "add", "path": "/status", "value": {"replicas": 2}}
            ])
        );
        let Patch::Json(unconditional) = replace(&json!({}), None).unwrap() else {
            panic!("not a JSON patch")
        };
        assert_eq!(
            serde_json::to_value(&unconditional).unwrap(),
            json!([{"op": "add", "path": "/status", "value": {}}])
        );
    }

    #[test]
    fn applying_it_drops_fields_the_new_status_leaves_out() {
        let Patch::Json(patch) = replace(&json!({"desiredReplicas": 2}), None).unwrap() else {
            panic!("not a JSON patch")
        };
        let mut object = json!({"status": {"desiredReplicas": 4, "pausedReplicas": 1,
                                           "metricFailures": [{"index": 0, "since": "2026-01-01T00:00:00Z"}]}});
        json_patch::patch(&mut object, &patch).unwrap();
        assert_eq!(object, json!({"status": {"desiredReplicas": 2}}));
    }
}
