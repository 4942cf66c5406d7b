//! One watch on pods shared by every controller: a store they read, and a stream of changes
//! that triggers their reconciles. Pods are slimmed to what the controllers read, so the cache
//! of a large cluster stays small.

use std::future::Future;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec, PodStatus};
use kube::runtime::reflector::{self, ReflectHandle, Store};
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

/// The shared pod watch: the store, a subscription for one controller (call
/// [`ReflectHandle::clone`] for more), and the future that drives the watch.
pub fn watch(api: Api<Pod>) -> (Store<Pod>, ReflectHandle<Pod>, impl Future<Output = ()> + Send) {
    let (store, writer) = reflector::store_shared(SUBSCRIBER_BUFFER);
    let subscriber = writer
        .subscribe()
        .unwrap_or_else(|| unreachable!("a shared store always has subscribers"));
    let driver = watcher(api, watcher::Config::default().any_semantic())
        .default_backoff()
        .modify(slim)
        .reflect_shared(writer)
        .for_each(|event| async move {
            if let Err(error) = event {
                warn!(%error, "pod watch error; retrying with backoff");
            }
        });
    (store, subscriber, driver)
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
}
