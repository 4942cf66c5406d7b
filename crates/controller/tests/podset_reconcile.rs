//! One PodSet reconcile against a fake API server: the pod writes, the status patch and the
//! events it makes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use ferroscale_api::PodSet;
use ferroscale_controller::backoff::Backoff;
use ferroscale_controller::events::{Recorder, Reporter};
use ferroscale_controller::pod_cache::PodCache;
use ferroscale_controller::podset::expectations::Expectations;
use ferroscale_controller::podset::{Context, reconcile};
use ferroscale_controller::telemetry::Telemetry;
use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};

fn podset(replicas: i32, selector_app: &str) -> PodSet {
    serde_json::from_value(json!({
        "apiVersion": "ferroscale.dev/v1alpha1", "kind": "PodSet",
        "metadata": {"name": "web", "namespace": "ns", "uid": "uid-web", "generation": 4},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": selector_app}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
        }
    }))
    .unwrap()
}

fn pod(name: &str, ready: bool, age_seconds: i64) -> Pod {
    let created = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(age_seconds);
    serde_json::from_value(json!({
        "metadata": {
            "name": name, "namespace": "ns", "labels": {"app": "web"},
            "creationTimestamp": created.to_string(),
            "ownerReferences": [{"apiVersion": "ferroscale.dev/v1alpha1", "kind": "PodSet", "name": "web", "uid": "uid-web", "controller": true}]
        },
        "spec": {"containers": [{"name": "c", "image": "nginx"}], "nodeName": "node-1"},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}
    }))
    .unwrap()
}

fn context(client: kube::Client, pods: Vec<Pod>) -> Arc<Context> {
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "ferroscale".into(),
            instance: "test".into(),
        },
    );
    let ctx = Context {
        client,
        pods: PodCache::of(pods),
        expectations: Expectations::default(),
        recorder,
        backoff: Backoff::default(),
        telemetry: Arc::new(Telemetry::empty()),
        ownership: Default::default(),
    };
    Arc::new(ctx)
}

/// Creates pods with generated names, patches status and records events; `refuse_creates`
/// answers pod creation with 403 (a quota).
fn api(refuse_creates: bool) -> (kube::Client, Log) {
    let counter = Arc::new(AtomicUsize::new(0));
    fake_api(move |method, path, body| {
        if let Some(answer) = events_route(method, path, body) {
            return answer;
        }
        match (method, path) {
            ("POST", "/api/v1/namespaces/ns/pods") if refuse_creates => {
                status_error(403, "Forbidden", "exceeded quota: pods=10")
            }
            ("POST", "/api/v1/namespaces/ns/pods") => {
                let mut pod = body.clone();
                pod["metadata"]["name"] = Value::String(format!("web-{}", counter.fetch_add(1, Ordering::SeqCst)));
                (201, pod)
            }
            ("DELETE", p) if p.starts_with("/api/v1/namespaces/ns/pods/") => (
                200,
                json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"name": p.rsplit('/').next()}}),
            ),
            ("PATCH", "/apis/ferroscale.dev/v1alpha1/namespaces/ns/podsets/web/status") => {
                (200, serde_json::to_value(podset(0, "web")).unwrap())
            }
            _ => status_error(404, "NotFound", "no route"),
        }
    })
}

#[tokio::test]
async fn creates_missing_pods_once_and_reports_status() {
    let (client, log) = api(false);
    let ctx = context(client, vec![pod("web-old", true, 600)]);
    let ps = Arc::new(podset(3, "web"));
    reconcile(ps.clone(), ctx.clone()).await.unwrap();

    let created = log.find("POST", "/api/v1/namespaces/ns/pods");
    assert_eq!(created.len(), 2);
    let meta = &created[0].body["metadata"];
    assert_eq!(meta["generateName"], "web-");
    assert_eq!(meta["labels"]["app"], "web");
    assert_eq!(meta["ownerReferences"][0]["uid"], "uid-web");
    assert_eq!(meta["ownerReferences"][0]["controller"], true);

    let status = &status_set(&log.find("PATCH", "/podsets/web/status")[0]);
    assert_eq!(status["replicas"], 1, "counts what the cache shows");
    assert_eq!(status["readyReplicas"], 1);
    assert_eq!(status["selector"], "app=web");
    assert_eq!(status["observedGeneration"], 4);
    let events = log.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["reason"], "SuccessfulCreate");
    assert_eq!(events[0]["note"], "Created 2 pods: web-0, web-1");

    // The cache has not caught up with the two new pods: a second pass must not create again.
    reconcile(ps, ctx).await.unwrap();
    assert_eq!(
        log.find("POST", "/api/v1/namespaces/ns/pods").len(),
        2,
        "no overshoot while the cache lags"
    );
}

#[tokio::test]
async fn deletes_not_ready_then_newest() {
    let (client, log) = api(false);
    let pods = vec![
        pod("web-a", true, 900),
        pod("web-b", true, 30),
        pod("web-c", false, 600),
        pod("web-d", true, 300),
    ];
    let ctx = context(client, pods);
    reconcile(Arc::new(podset(2, "web")), ctx).await.unwrap();
    assert_eq!(
        log.calls(),
        vec![
            "DELETE /api/v1/namespaces/ns/pods/web-c",
            "DELETE /api/v1/namespaces/ns/pods/web-b",
            "PATCH /apis/ferroscale.dev/v1alpha1/namespaces/ns/podsets/web/status"
        ]
    );
}

#[tokio::test]
async fn a_selector_missing_the_template_creates_nothing() {
    let (client, log) = api(false);
    let ctx = context(client, vec![]);
    reconcile(Arc::new(podset(3, "api")), ctx).await.unwrap();
    assert!(log.find("POST", "/api/v1/namespaces/ns/pods").is_empty());
    let status = &status_set(&log.find("PATCH", "/podsets/web/status")[0]);
    let failure = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "ReplicaFailure")
        .unwrap();
    assert_eq!(failure["status"], "True");
    assert_eq!(failure["reason"], "InvalidSpec");
    assert!(
        failure["message"]
            .as_str()
            .unwrap()
            .contains("spec.template.metadata.labels")
    );
    assert_eq!(log.events()[0]["reason"], "InvalidSpec");
}

#[tokio::test]
async fn refused_creation_is_reported_and_retried() {
    let (client, log) = api(true);
    let ctx = context(client, vec![]);
    let err = reconcile(Arc::new(podset(2, "web")), ctx).await.unwrap_err();
    assert_eq!(err.category(), "create");
    assert_eq!(
        log.find("POST", "/api/v1/namespaces/ns/pods").len(),
        1,
        "stops at the first refusal"
    );
    let status = &status_set(&log.find("PATCH", "/podsets/web/status")[0]);
    let failure = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "ReplicaFailure")
        .unwrap();
    assert_eq!(failure["reason"], "FailedCreate");
    assert!(failure["message"].as_str().unwrap().contains("exceeded quota"));
    assert_eq!(log.events()[0]["reason"], "FailedCreate");
}

#[tokio::test]
async fn a_settled_podset_makes_no_writes() {
    let (client, log) = api(false);
    let ctx = context(client, vec![pod("web-a", true, 60)]);
    let mut ps = podset(1, "web");
    ps.status = Some(ferroscale_api::PodSetStatus {
        replicas: 1,
        ready_replicas: 1,
        selector: Some("app=web".into()),
        observed_generation: Some(4),
        conditions: Some(vec![k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
            type_: "Available".into(),
            status: "True".into(),
            reason: "MinimumReplicasAvailable".into(),
            message: "every desired pod is ready".into(),
            observed_generation: Some(4),
            last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now()),
        }]),
    });
    reconcile(Arc::new(ps), ctx).await.unwrap();
    assert!(log.calls().is_empty(), "{:?}", log.calls());
}

#[tokio::test(start_paused = true)]
async fn nothing_is_created_before_the_pod_cache_is_filled() {
    let (client, log) = api(false);
    // Never listed: the cache is not ready.
    let pods = PodCache::new(vec![None]);
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "ferroscale".into(),
            instance: "test".into(),
        },
    );
    let ctx = Arc::new(Context {
        client,
        pods,
        expectations: Expectations::default(),
        recorder,
        backoff: Backoff::default(),
        telemetry: Arc::new(Telemetry::empty()),
        ownership: Default::default(),
    });
    let waiting = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        reconcile(Arc::new(podset(3, "web")), ctx),
    )
    .await;
    assert!(waiting.is_err(), "reconcile must wait for the cache");
    assert!(log.all().is_empty());
}
