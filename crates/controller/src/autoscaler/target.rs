//! The scale target: any kind whose API declares the `scale` subresource, found through
//! discovery (cached), read and written only through `scale`.

use ferroscale_api::CrossVersionObjectReference;
use ferroscale_metrics::discovery::Kinds;
use k8s_openapi::api::autoscaling::v1::Scale;
use kube::Client;
use kube::Resource;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::discovery::ApiResource;
use serde_json::json;

/// Finds, reads and resizes scale targets.
pub struct Targets {
    client: Client,
    kinds: Kinds,
}

impl std::fmt::Debug for Targets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Targets").finish_non_exhaustive()
    }
}

fn api_error(e: kube::Error) -> String {
    match e {
        kube::Error::Api(status) => status.message,
        other => other.to_string(),
    }
}

impl Targets {
    pub fn new(client: Client) -> Self {
        Self {
            kinds: Kinds::new(client.clone()),
            client,
        }
    }

    /// The API resource of the reference's kind, if it has a `scale` subresource.
    pub async fn resolve(&self, reference: &CrossVersionObjectReference) -> Result<ApiResource, String> {
        let api_version = reference
            .api_version
            .as_deref()
            .filter(|v| !v.is_empty())
            .ok_or("scaleTargetRef has no apiVersion")?;
        let (resource, capabilities) = self.kinds.resolve(api_version, &reference.kind).await?;
        if !capabilities.subresources.iter().any(|(sub, _)| sub.plural == "scale") {
            return Err(format!("{} {api_version} has no scale subresource", reference.kind));
        }
        Ok(resource)
    }

    fn api(&self, namespace: &str, resource: &ApiResource) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), namespace, resource)
    }

    /// The target's current scale. Read with `resourceVersion=0`, which lets the API server
    /// answer from its watch cache where it can (custom resources) instead of a quorum read
    /// from etcd: a scale at most milliseconds old serves a decision made every sync period.
    pub async fn get_scale(&self, namespace: &str, reference: &CrossVersionObjectReference) -> Result<Scale, String> {
        let resource = self.resolve(reference).await?;
        let path = format!(
            "{}/{}/scale?resourceVersion=0",
            DynamicObject::url_path(&resource, Some(namespace)),
            reference.name
        );
        let request = http::Request::get(path)
            .body(Vec::new())
            .map_err(|e| format!("invalid scale request: {e}"))?;
        self.client.request::<Scale>(request).await.map_err(api_error)
    }

    /// Sets the target's replica count through `scale`, conditional on the scale `read`: as
    /// upstream's update carries the resourceVersion it read, a count decided from a replica
    /// count someone has changed since is refused. A change elsewhere in the target (its status,
    /// a label) leaves the decision standing: the write is made again on the new version.
    pub async fn set_replicas(
        &self,
        namespace: &str,
        reference: &CrossVersionObjectReference,
        read: &Scale,
        replicas: i32,
    ) -> Result<(), String> {
        let resource = self.resolve(reference).await?;
        let api = self.api(namespace, &resource);
        let patch = |version: Option<&String>| match version {
            Some(version) => json!({"metadata": {"resourceVersion": version}, "spec": {"replicas": replicas}}),
            None => json!({"spec": {"replicas": replicas}}),
        };
        let decided_from = read.spec.as_ref().and_then(|s| s.replicas);
        match api
            .patch_scale(
                &reference.name,
                &PatchParams::default(),
                &Patch::Merge(&patch(read.metadata.resource_version.as_ref())),
            )
            .await
        {
            Err(error) if crate::is_conflict(&error) => {
                let current = api.get_scale(&reference.name).await.map_err(api_error)?;
                let now = current.spec.as_ref().and_then(|s| s.replicas);
                if now != decided_from {
                    return Err(format!(
                        "the target's replica count changed from {} to {} since it was read; the decision is made again",
                        decided_from.unwrap_or_default(),
                        now.unwrap_or_default()
                    ));
                }
                api.patch_scale(
                    &reference.name,
                    &PatchParams::default(),
                    &Patch::Merge(&patch(current.metadata.resource_version.as_ref())),
                )
                .await
                .map_err(api_error)?;
            }
            other => {
                other.map_err(api_error)?;
            }
        }
        Ok(())
    }
}
