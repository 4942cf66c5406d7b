//! One watch on pods shared by every controller: a store they read, and a stream of changes
//! that triggers their reconciles. Pods are slimmed to what the controllers read, so the cache
//! of a large cluster stays small.

use std::future::Future;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec, PodStatus};
use kube::runtime::reflector::{self, ObjectRef, ReflectHandle, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use tracing::warn;

/// Subscribers may lag this many changes behind before the watch waits for them.
const SUBSCRIBER_BUFFER: usize = 4096;

fn slim_container(c: &Container) -> Container {
    let resources = c
        .resources
        .as_ref()
        .map(|r| k8s_openapi::api::core::v1::ResourceRequirements {
            requests: r.requests.clone(),
            ..Default::default()
        });
    Container {
        name: c.name.clone(),
        resources,
        restart_policy: c.restart_policy.clone(),
        ..Container::default()
    }
}

/// Keeps metadata that identifies and owns the pod, the containers' names and requests, the
/// node it runs on, and its phase, start time and conditions; drops the rest.
pub fn slim(pod: &mut Pod) {
    let meta = &mut pod.metadata;
    meta.managed_fields = None;
    meta.annotations = None;
    if let Some(spec) = &pod.spec {
        pod.spec = Some(PodSpec {
            containers: spec.containers.iter().map(slim_container).collect(),
            init_containers: spec
                .init_containers
                .as_ref()
                .map(|cs| cs.iter().map(slim_container).collect()),
            node_name: spec.node_name.clone(),
            resources: spec.resources.clone(),
            ..PodSpec::default()
        });
    }
    if let Some(status) = &pod.status {
        pod.status = Some(PodStatus {
            phase: status.phase.clone(),
            start_time: status.start_time.clone(),
            conditions: status.conditions.clone(),
            ..PodStatus::default()
        });
    }
}

/// The pods of the watched namespaces: one store per watched namespace (or one for all), so
/// that each watch's re-lists only ever replace its own namespace's pods.
#[derive(Clone)]
pub struct PodCache {
    stores: Vec<(Option<String>, Store<Pod>)>,
}

impl std::fmt::Debug for PodCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PodCache")
            .field("namespaces", &self.stores.iter().map(|(ns, _)| ns).collect::<Vec<_>>())
            .finish()
    }
}

impl PodCache {
    /// A cache over one store covering `namespace` (None: all namespaces).
    pub fn single(namespace: Option<String>, store: Store<Pod>) -> Self {
        Self {
            stores: vec![(namespace, store)],
        }
    }

    fn store_for(&self, namespace: &str) -> Option<&Store<Pod>> {
        self.stores
            .iter()
            .find(|(ns, _)| ns.as_deref().is_none_or(|n| n == namespace))
            .map(|(_, s)| s)
    }

    /// The cached pods of one namespace.
    pub fn in_namespace(&self, namespace: &str) -> Vec<Arc<Pod>> {
        let Some(store) = self.store_for(namespace) else {
            return Vec::new();
        };
        store
            .state()
            .into_iter()
            .filter(|p| p.metadata.namespace.as_deref() == Some(namespace))
            .collect()
    }

    /// One cached pod.
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<Pod>> {
        self.store_for(namespace)?.get(&ObjectRef::new(name).within(namespace))
    }

    /// Resolves once every store has listed its pods; fails if a watch stopped first.
    pub async fn wait_until_ready(&self) -> Result<(), ()> {
        for (_, store) in &self.stores {
            store.wait_until_ready().await.map_err(|_| ())?;
        }
        Ok(())
    }
}

/// One namespace's watch: a subscription for a controller (clone it for more), and the
/// future that drives the watch.
pub struct NamespaceWatch {
    pub namespace: Option<String>,
    pub events: ReflectHandle<Pod>,
    pub driver: std::pin::Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl std::fmt::Debug for NamespaceWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NamespaceWatch")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

/// Watches pods in each of `namespaces` (all namespaces when empty).
pub fn watch(client: Client, namespaces: &[String]) -> (PodCache, Vec<NamespaceWatch>) {
    let scopes: Vec<Option<String>> = if namespaces.is_empty() {
        vec![None]
    } else {
        namespaces.iter().cloned().map(Some).collect()
    };
    let mut stores = Vec::new();
    let mut watches = Vec::new();
    for namespace in scopes {
        let (store, writer) = reflector::store_shared(SUBSCRIBER_BUFFER);
        let events = writer
            .subscribe()
            .unwrap_or_else(|| unreachable!("a shared store always has subscribers"));
        let driver = watcher(
            api(client.clone(), namespace.as_deref()),
            watcher::Config::default().any_semantic(),
        )
        .default_backoff()
        .modify(slim)
        .reflect_shared(writer)
        .for_each(|event| async move {
            if let Err(error) = event {
                warn!(%error, "pod watch error; retrying with backoff");
            }
        });
        stores.push((namespace.clone(), store));
        watches.push(NamespaceWatch {
            namespace,
            events,
            driver: Box::pin(driver),
        });
    }
    (PodCache { stores }, watches)
}

/// Pods in every namespace, or in one.
pub fn api(client: Client, namespace: Option<&str>) -> Api<Pod> {
    match namespace {
        Some(ns) => Api::namespaced(client, ns),
        None => Api::all(client),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slimming_keeps_what_decisions_read() {
        let mut pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "labels": {"app": "web"}, "annotations": {"big": "x"}, "managedFields": [{"manager": "kubectl"}],
                         "ownerReferences": [{"apiVersion": "v1", "kind": "PodSet", "name": "web", "uid": "u", "controller": true}]},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "nginx", "env": [{"name": "A", "value": "1"}],
                     "resources": {"requests": {"cpu": "100m"}, "limits": {"cpu": "1"}}}],
                     "initContainers": [{"name": "s", "image": "envoy", "restartPolicy": "Always", "resources": {"requests": {"cpu": "50m"}}}]},
            "status": {"phase": "Running", "startTime": "2026-01-01T00:00:00Z", "podIP": "10.0.0.1",
                       "conditions": [{"type": "Ready", "status": "True"}]}
        }))
        .unwrap();
        slim(&mut pod);
        let info = ferroscale_autoscaler::PodInfo::from(&pod);
        assert_eq!(
            info.request("cpu", None).unwrap(),
            150,
            "container and sidecar requests survive"
        );
        assert!(info.is_running_and_ready());
        let json = serde_json::to_value(&pod).unwrap();
        assert_eq!(json["metadata"]["labels"]["app"], "web");
        assert_eq!(json["metadata"]["ownerReferences"][0]["uid"], "u");
        assert_eq!(json["spec"]["nodeName"], "n1");
        for gone in [
            "/metadata/annotations",
            "/metadata/managedFields",
            "/spec/containers/0/image",
            "/spec/containers/0/env",
            "/spec/containers/0/resources/limits",
            "/status/podIP",
        ] {
            assert!(json.pointer(gone).is_none(), "{gone} should be dropped");
        }
    }

    fn pod(namespace: &str, name: &str) -> Pod {
        serde_json::from_value(serde_json::json!({"metadata": {"name": name, "namespace": namespace}})).unwrap()
    }

    #[tokio::test]
    async fn one_store_per_watched_namespace() {
        use kube::runtime::reflector::store::Writer;
        use kube::runtime::watcher::Event;
        let filled = |pods: Vec<Pod>| {
            let mut w = Writer::<Pod>::default();
            w.apply_watcher_event(&Event::Init);
            for p in pods {
                w.apply_watcher_event(&Event::InitApply(p));
            }
            w.apply_watcher_event(&Event::InitDone);
            w
        };
        let (a, b) = (
            filled(vec![pod("a", "p1"), pod("a", "p2")]),
            filled(vec![pod("b", "p1")]),
        );
        let cache = PodCache {
            stores: vec![(Some("a".into()), a.as_reader()), (Some("b".into()), b.as_reader())],
        };
        cache.wait_until_ready().await.unwrap();
        assert_eq!(cache.in_namespace("a").len(), 2);
        assert_eq!(cache.in_namespace("b").len(), 1);
        assert!(cache.in_namespace("c").is_empty(), "an unwatched namespace has no pods");
        assert!(cache.get("b", "p1").is_some());
        assert!(cache.get("b", "p2").is_none());
    }
}
