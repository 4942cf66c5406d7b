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

/// Neighbours that have watched `autoscalers` and `hpas` being listed.
fn listed(autoscalers: Vec<Autoscaler>, hpas: Vec<HorizontalPodAutoscaler>) -> Neighbours {
    let neighbours = Neighbours::default();
    let source = neighbours.source();
    neighbours.autoscaler_event(source, &Event::Init);
    for a in autoscalers {
        neighbours.autoscaler_event(source, &Event::InitApply(a));
    }
    neighbours.autoscaler_event(source, &Event::InitDone);
    let source = neighbours.source();
    neighbours.hpa_event(source, &Event::Init);
    for h in hpas {
        neighbours.hpa_event(source, &Event::InitApply(h));
    }
    neighbours.hpa_event(source, &Event::InitDone);
    neighbours
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
    let neighbours = listed(vec![old.clone(), new.clone(), other], vec![]);
    assert_eq!(neighbours.conflict(&old, &[]), None, "the older one is not held");
    let conflict = neighbours.conflict(&new, &[]).expect("the newer one waits");
    assert_eq!(conflict.reason, "ConflictingAutoscaler");
    assert!(conflict.message.contains("shop/web-old"), "{}", conflict.message);
    // Same creation time: the name decides, so exactly one of two twins works.
    let twin_a = autoscaler("a", "uid-a", "2026-01-01T00:00:00Z", "web");
    let twin_b = autoscaler("b", "uid-b", "2026-01-01T00:00:00Z", "web");
    let twins = listed(vec![twin_a.clone(), twin_b.clone()], vec![]);
    assert!(twins.conflict(&twin_a, &[]).is_none());
    assert!(twins.conflict(&twin_b, &[]).is_some());
}

#[test]
fn an_upstream_hpa_on_the_target_holds_the_autoscaler() {
    let hpa: HorizontalPodAutoscaler = serde_json::from_value(json!({
        "apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": "shop", "uid": "uid-hpa"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "maxReplicas": 5}
    }))
    .unwrap();
    let neighbours = listed(vec![], vec![hpa]);
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
    neighbours.remember_selector(&api, &ferroscale_autoscaler::selector::parse("tier=front").unwrap());
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

#[test]
fn a_deleted_or_relisted_away_autoscaler_no_longer_holds_the_newer_one() {
    let old = autoscaler("web-old", "uid-1", "2026-01-01T00:00:00Z", "web");
    let new = autoscaler("web-new", "uid-2", "2026-01-02T00:00:00Z", "web");
    let neighbours = Neighbours::default();
    let source = neighbours.source();
    neighbours.autoscaler_event(source, &Event::Apply(old.clone()));
    neighbours.autoscaler_event(source, &Event::Apply(new.clone()));
    assert!(neighbours.conflict(&new, &[]).is_some());
    neighbours.autoscaler_event(source, &Event::Delete(old.clone()));
    assert!(neighbours.conflict(&new, &[]).is_none(), "deleted");

    // A watch gap: the older one was deleted meanwhile, and the relist does not list it.
    neighbours.autoscaler_event(source, &Event::Apply(old.clone()));
    assert!(neighbours.conflict(&new, &[]).is_some());
    neighbours.autoscaler_event(source, &Event::Init);
    neighbours.autoscaler_event(source, &Event::InitApply(new.clone()));
    assert!(
        neighbours.conflict(&new, &[]).is_some(),
        "held until the relist is done"
    );
    neighbours.autoscaler_event(source, &Event::InitDone);
    assert!(neighbours.conflict(&new, &[]).is_none(), "relisted away");

    // Another watch's relist leaves this one's Autoscalers alone.
    neighbours.autoscaler_event(source, &Event::Apply(old.clone()));
    let other = neighbours.source();
    neighbours.autoscaler_event(other, &Event::Init);
    neighbours.autoscaler_event(other, &Event::InitDone);
    assert!(neighbours.conflict(&new, &[]).is_some());

    // Being deleted is as good as gone.
    let mut deleting = old;
    deleting.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        jiff::Timestamp::UNIX_EPOCH,
    ));
    neighbours.autoscaler_event(source, &Event::Apply(deleting));
    assert!(neighbours.conflict(&new, &[]).is_none());
}

#[test]
fn selectors_without_a_required_label_are_still_checked() {
    let web = autoscaler("web", "uid-1", "2026-01-01T00:00:00Z", "web");
    let api = autoscaler("api", "uid-2", "2026-01-01T00:00:00Z", "api");
    let neighbours = Neighbours::default();
    neighbours.remember_selector(
        &api,
        &ferroscale_autoscaler::selector::parse("app in (web,api)").unwrap(),
    );
    let conflict = neighbours.conflict(&web, &[pod("web-1", "web", None)]).unwrap();
    assert_eq!(conflict.reason, "AmbiguousSelector");
    // Its selector changes: the index follows.
    neighbours.remember_selector(&api, &ferroscale_autoscaler::selector::parse("app=api").unwrap());
    assert!(neighbours.conflict(&web, &[pod("web-1", "web", None)]).is_none());
    // Deleted while the watch was away: the relist forgets its selector too.
    neighbours.remember_selector(&api, &ferroscale_autoscaler::selector::parse("app=web").unwrap());
    let source = neighbours.source();
    neighbours.autoscaler_event(source, &Event::Apply(api.clone()));
    assert!(neighbours.conflict(&web, &[pod("web-1", "web", None)]).is_some());
    neighbours.autoscaler_event(source, &Event::Init);
    neighbours.autoscaler_event(source, &Event::InitDone);
    assert!(neighbours.conflict(&web, &[pod("web-1", "web", None)]).is_none());
}

#[tokio::test(start_paused = true)]
async fn evaluations_wait_for_every_watch_to_list_once_but_not_forever() {
    use std::time::Duration;
    let neighbours = Arc::new(Neighbours::default());
    let (autoscalers, hpas) = (neighbours.source(), neighbours.source());
    let waiting = {
        let neighbours = neighbours.clone();
        tokio::spawn(async move { neighbours.wait_until_listed().await })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    neighbours.autoscaler_event(autoscalers, &Event::Init);
    neighbours.autoscaler_event(autoscalers, &Event::InitDone);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!waiting.is_finished(), "the HPA watch has not listed yet");
    neighbours.hpa_event(hpas, &Event::Init);
    neighbours.hpa_event(hpas, &Event::InitDone);
    tokio::time::timeout(Duration::from_millis(10), waiting)
        .await
        .expect("both listed")
        .unwrap();

    // A watch that never lists holds evaluations back only until the deadline.
    let stuck = Neighbours::default();
    stuck.source();
    let started = tokio::time::Instant::now();
    stuck.wait_until_listed().await;
    assert_eq!(started.elapsed(), Duration::from_secs(30));
    let again = tokio::time::Instant::now();
    stuck.wait_until_listed().await;
    assert_eq!(
        again.elapsed(),
        Duration::ZERO,
        "the deadline is set once, by the first wait"
    );
}
