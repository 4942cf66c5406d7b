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

    /// Sets the target's replica count through `scale`.
    pub async fn set_replicas(
        &self,
        namespace: &str,
        reference: &CrossVersionObjectReference,
        replicas: i32,
    ) -> Result<(), String> {
        let resource = self.resolve(reference).await?;
        let patch = json!({"spec": {"replicas": replicas}});
        self.api(namespace, &resource)
            .patch_scale(&reference.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(api_error)?;
        Ok(())
    }
}
