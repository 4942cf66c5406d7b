//! HorizontalPodAutoscalers read from a cluster, in the newest version it serves. Read only.

use anyhow::{Context as _, Result, anyhow, bail};
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use kube::core::GroupVersionKind;
use kube::{Client, ResourceExt as _};
use serde_json::Value;

use super::convert::{HPA_KIND, Version};
use super::input::Found;

/// Which HPAs to read.
#[derive(Debug, Clone)]
pub enum Scope {
    /// One namespace; None for the kubeconfig's.
    Namespace(Option<String>),
    All,
}

/// What the cluster holds.
#[derive(Debug)]
pub struct Read {
    pub hpas: Vec<Found>,
    /// Where they were looked for, e.g. `namespace "shop"`.
    pub place: String,
    pub version: Version,
}

/// Reads the HPAs of `scope` from the cluster of the usual kubeconfig.
pub fn read(scope: Scope) -> Result<Read> {
    crate::cluster::block_on(read_from_cluster(scope))?
}

async fn read_from_cluster(scope: Scope) -> Result<Read> {
    let client = crate::cluster::client().await?;
    let version = served_version(&client).await?;
    let (group, api_version) = version
        .api_version()
        .split_once('/')
        .ok_or_else(|| anyhow!("{} has no group", version.api_version()))?;
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(group, api_version, HPA_KIND),
        "horizontalpodautoscalers",
    );
    let (api, place): (Api<DynamicObject>, String) = match scope {
        Scope::All => (Api::all_with(client, &resource), "all namespaces".into()),
        Scope::Namespace(namespace) => {
            let namespace = namespace.unwrap_or_else(|| client.default_namespace().to_string());
            let place = format!("namespace {namespace:?}");
            (Api::namespaced_with(client, &namespace, &resource), place)
        }
    };
    let items = crate::cluster::list_pages(&api, &ListParams::default())
        .await
        .map_err(|e| {
            explain(
                e,
                &format!("listing {}s ({}) in {place}", HPA_KIND, version.api_version()),
                "`list` on horizontalpodautoscalers.autoscaling",
            )
        })?;
    let mut hpas = Vec::with_capacity(items.len());
    for item in items {
        let source = format!(
            "{HPA_KIND} {}/{}",
            item.namespace().unwrap_or_default(),
            item.name_any()
        );
        let mut object = serde_json::to_value(&item).with_context(|| format!("cannot encode {source}"))?;
        // The items of a list carry no apiVersion and kind of their own.
        if let Some(map) = object.as_object_mut() {
            map.insert("apiVersion".into(), Value::from(version.api_version()));
            map.insert("kind".into(), Value::from(HPA_KIND));
        }
        hpas.push(Found { source, object });
    }
    Ok(Read { hpas, place, version })
}

/// The newest HorizontalPodAutoscaler version the cluster serves: autoscaling/v2 from
/// Kubernetes 1.23, autoscaling/v2beta2 before.
async fn served_version(client: &Client) -> Result<Version> {
    let groups = client.list_api_groups().await.map_err(|e| {
        explain(
            e,
            "discovering the API groups the cluster serves (GET /apis)",
            "access to the discovery endpoints",
        )
    })?;
    let Some(group) = groups.groups.iter().find(|g| g.name == "autoscaling") else {
        bail!("the cluster serves no autoscaling API group, so it has no {HPA_KIND}s");
    };
    let served: Vec<&str> = group.versions.iter().map(|v| v.group_version.as_str()).collect();
    Version::ALL
        .into_iter()
        .find(|v| served.contains(&v.api_version()))
        .ok_or_else(|| {
            anyhow!(
                "the cluster serves {HPA_KIND}s only as {}, none of which ferroscale reads",
                served.join(", ")
            )
        })
}

/// An API error, saying what was being done and, when refused, what permission it needs.
fn explain(error: kube::Error, doing: &str, needs: &str) -> anyhow::Error {
    match &error {
        kube::Error::Api(status) if status.is_forbidden() => {
            anyhow!(
                "{doing}: forbidden by RBAC ({}); ferroscale migrate needs {needs}",
                status.message
            )
        }
        kube::Error::Api(status) if status.code == 401 => anyhow!(
            "{doing}: unauthorized ({}); the kubeconfig's credentials were refused",
            status.message
        ),
        kube::Error::Api(status) if status.is_not_found() => {
            anyhow!("{doing}: the API server does not serve it ({})", status.message)
        }
        // kube's errors repeat their sources in their messages: one line is enough.
        _ => anyhow!("{doing}: {error}"),
    }
}
