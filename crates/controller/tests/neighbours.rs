//! Other autoscalers an Autoscaler must not fight (and the tie-break), and the pods a target
//! owns through a ReplicaSet.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use std::sync::Arc;

use common::*;
use ferroscale_api::Autoscaler;
use ferroscale_controller::autoscaler::neighbours::Neighbours;
use ferroscale_controller::pod_cache::CachedPod;
use k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::Pod;
use kube::Resource;
use kube::runtime::reflector::store::Writer;
use kube::runtime::watcher::Event;
use serde_json::json;

fn autoscaler(name: &str, uid: &str, created: &str, target: &str) -> Autoscaler {
    serde_json::from_value(json!({
        "apiVersion": "ferroscale.dev/v1alpha1", "kind": "Autoscaler",
        "metadata": {"name": name, "namespace": "shop", "uid": uid, "creationTimestamp": created},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target}, "maxReplicas": 5}
    }))
    .unwrap()
}

fn store<K: Resource<DynamicType = ()> + Clone>(objects: Vec<K>) -> kube::runtime::reflector::Store<K> {
    let mut writer = Writer::<K>::default();
    writer.apply_watcher_event(&Event::Init);
    for o in objects {
        writer.apply_watcher_event(&Event::InitApply(o));
    }
    writer.apply_watcher_event(&Event::InitDone);
    writer.as_reader()
}

fn pod(name: &str, app: &str, owner: Option<(&str, &str, &str)>) -> Arc<CachedPod> {
    let owners = owner.map(|(kind, name, uid)| {
        vec![json!({"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": uid, "controller": true})]
    });
    let pod: Pod = serde_json::from_value(json!({"metadata": {
        "name": name, "namespace": "shop", "labels": {"app": app}, "ownerReferences": owners
    }}))
    .unwrap();
    Arc::new(CachedPod::from(&pod))
}

#[test]
fn the_oldest_autoscaler_on_a_target_keeps_working() {
    let old = autoscaler("web-old", "uid-1", "2026-01-01T00:00:00Z", "web");
    let new = autoscaler("web-new", "uid-2", "2026-01-02T00:00:00Z", "web");
    let other = autoscaler("api", "uid-3", "2025-01-01T00:00:00Z", "api");
    let neighbours = Neighbours::default();
    neighbours.add_autoscalers(store(vec![old.clone(), new.clone(), other]));
    assert_eq!(neighbours.conflict(&old, &[]), None, "the older one is not held");
    let conflict = neighbours.conflict(&new, &[]).expect("the newer one waits");
    assert_eq!(conflict.reason, "ConflictingAutoscaler");
    assert!(conflict.message.contains("shop/web-old"), "{}", conflict.message);
    // Same creation time: the name decides, so exactly one of two twins works.
    let twin_a = autoscaler("a", "uid-a", "2026-01-01T00:00:00Z", "web");
    let twin_b = autoscaler("b", "uid-b", "2026-01-01T00:00:00Z", "web");
    let twins = Neighbours::default();
    twins.add_autoscalers(store(vec![twin_a.clone(), twin_b.clone()]));
    assert!(twins.conflict(&twin_a, &[]).is_none());
    assert!(twins.conflict(&twin_b, &[]).is_some());
}

#[test]
fn an_upstream_hpa_on_the_target_holds_the_autoscaler() {
    let hpa: HorizontalPodAutoscaler = serde_json::from_value(json!({
        "apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "maxReplicas": 5}
    }))
    .unwrap();
    let neighbours = Neighbours::default();
    neighbours.add_hpas(store(vec![hpa]));
    let conflict = neighbours
        .conflict(&autoscaler("web", "uid-1", "2026-01-01T00:00:00Z", "web"), &[])
        .unwrap();
    assert_eq!(conflict.reason, "ConflictingAutoscaler");
    assert!(conflict.message.contains("HorizontalPodAutoscaler shop/web"));
    assert!(
        neighbours
            .conflict(&autoscaler("api", "uid-2", "2026-01-01T00:00:00Z", "api"), &[])
            .is_none()
    );
}

#[test]
fn overlapping_pods_make_the_selector_ambiguous() {
    let web = autoscaler("web", "uid-1", "2026-01-01T00:00:00Z", "web");
    let api = autoscaler("api", "uid-2", "2026-01-01T00:00:00Z", "api");
    let neighbours = Neighbours::default();
    neighbours.remember_selector(&api, ferroscale_autoscaler::selector::parse("tier=front").unwrap());
    let mine = vec![pod("web-1", "web", None)];
    assert!(neighbours.conflict(&web, &mine).is_none(), "no shared pod");
    let mut shared: Pod = serde_json::from_value(json!({"metadata": {
        "name": "web-2", "namespace": "shop", "labels": {"app": "web", "tier": "front"}}}))
    .unwrap();
    shared.metadata.namespace = Some("shop".into());
    let conflict = neighbours
        .conflict(&web, &[Arc::new(CachedPod::from(&shared))])
        .unwrap();
    assert_eq!(conflict.reason, "AmbiguousSelector");
    assert!(conflict.message.contains("shop/api"), "{}", conflict.message);
}

#[tokio::test]
async fn a_deployments_pods_are_found_through_their_replica_set() {
    let (client, log) = fake_api(|_, path, _| match path {
        "/apis/apps/v1/namespaces/shop/replicasets/web-5d9" => (
            200,
            json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
                   "metadata": {"name": "web-5d9", "namespace": "shop", "uid": "uid-rs",
                                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "uid-deploy", "controller": true}]}}),
        ),
        _ => status_error(404, "NotFound", "no route"),
    });
    let neighbours = Neighbours::default();
    let selected = vec![
        pod("web-5d9-a", "web", Some(("ReplicaSet", "web-5d9", "uid-rs"))),
        pod("web-5d9-b", "web", Some(("ReplicaSet", "web-5d9", "uid-rs"))),
        pod("stray", "web", Some(("ReplicaSet", "other-1", "uid-other"))),
        pod("orphan", "web", None),
    ];
    let owned = neighbours.owned(&client, "shop", "uid-deploy", selected.clone()).await;
    let names: Vec<&str> = owned.iter().map(|p| p.name()).collect();
    assert_eq!(names, ["web-5d9-a", "web-5d9-b"]);
    assert_eq!(
        log.find("GET", "/replicasets/web-5d9").len(),
        1,
        "one read per ReplicaSet, not per pod"
    );
    // Remembered: a second evaluation reads nothing.
    neighbours.owned(&client, "shop", "uid-deploy", selected).await;
    assert_eq!(log.find("GET", "/replicasets/web-5d9").len(), 1);
}
