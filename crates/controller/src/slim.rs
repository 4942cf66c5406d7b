//! What the controllers' caches drop from the objects they keep: the bookkeeping the API server
//! adds (managed fields) and the copy of the whole object that `kubectl apply` leaves in an
//! annotation, neither of which a decision reads.

use kube::Resource;

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Drops managed fields and kubectl's last-applied copy, keeping every other annotation
/// (ferroscale's own are read).
pub fn metadata<K: Resource>(object: &mut K) {
    let meta = object.meta_mut();
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bookkeeping_goes_and_other_annotations_stay() {
        let mut podset: ferroscale_api::PodSet = serde_json::from_value(serde_json::json!({
            "apiVersion": "ferroscale.dev/v1alpha1", "kind": "PodSet",
            "metadata": {"name": "web", "managedFields": [{"manager": "kubectl"}],
                         "annotations": {LAST_APPLIED: "{...}", "ferroscale.dev/paused": "true"}},
            "spec": {"replicas": 1, "selector": {}, "template": {}}
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        metadata(&mut podset);
        assert!(podset.metadata.managed_fields.is_none());
        let annotations = podset.metadata.annotations.unwrap_or_default();
        assert_eq!(annotations.len(), 1);
        assert_eq!(
            annotations.get("ferroscale.dev/paused").map(String::as_str),
            Some("true")
        );
    }
}
