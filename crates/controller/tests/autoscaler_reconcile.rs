//! One Autoscaler reconcile against a fake API server and a fake metrics source: the scale
//! read and write, the status patch and the events.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use ferroscale_api::{Autoscaler, MetricSpec};
use ferroscale_autoscaler::{MetricValues, PodSample, Settings};
use ferroscale_controller::autoscaler::observe::Readers;
use ferroscale_controller::autoscaler::target::Targets;
use ferroscale_controller::autoscaler::{Context, reconcile};
use ferroscale_controller::backoff::Backoff;
use ferroscale_controller::events::{Recorder, Reporter};
use ferroscale_controller::pod_cache::PodCache;
use ferroscale_controller::telemetry::Telemetry;
use ferroscale_metrics::{Fetched, MetricsSource};
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};

/// Answers every metric with the same per-pod CPU samples, or an error.
struct FakeMetrics(Result<Vec<i64>, String>);

impl MetricsSource for FakeMetrics {
    fn gather<'a>(&'a self, _: &'a str, metrics: &'a [MetricSpec], _: &'a str) -> BoxFuture<'a, Vec<Fetched>> {
        let now = jiff::Timestamp::now();
        let one = move |values: &Vec<i64>| {
            let samples = values
                .iter()
                .enumerate()
                .map(|(i, v)| PodSample {
                    pod: format!("web-{i}"),
                    value: *v,
                    timestamp: now,
                    window: Duration::from_secs(30),
                })
                .collect();
            Ok(MetricValues::PerPod(samples))
        };
        Box::pin(async move {
            metrics
                .iter()
                .map(|_| Fetched {
                    value: self.0.as_ref().map_err(Clone::clone).and_then(one),
                    elapsed: Duration::ZERO,
                    pod_usage: None,
                })
                .collect()
        })
    }
}

fn autoscaler(target: &str, min: i32) -> Autoscaler {
    serde_json::from_value(json!({
        "apiVersion": "ferroscale.dev/v1alpha1", "kind": "Autoscaler",
        "metadata": {"name": "web", "namespace": "ns", "uid": "uid-a", "generation": 2, "resourceVersion": "7"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
            "minReplicas": min, "maxReplicas": 10,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 30}}}]
        },
        "status": {"currentReplicas": 3, "desiredReplicas": 3, "recommendations": []}
    }))
    .unwrap()
}

fn pod(i: usize) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": format!("web-{i}"), "namespace": "ns", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}]},
        "status": {"phase": "Running", "startTime": "2025-01-01T00:00:00Z",
                   "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2025-01-01T00:00:00Z"}]}
    }))
    .unwrap()
}

fn scale_json(replicas: i32) -> Value {
    json!({"apiVersion": "autoscaling/v1", "kind": "Scale",
           "metadata": {"name": "web", "namespace": "ns", "resourceVersion": "12"},
           "spec": {"replicas": replicas}, "status": {"replicas": replicas, "selector": "app=web"}})
}

/// A cluster serving apps/v1 Deployments with a scale subresource; `refuse_scale` answers the
/// scale update with a conflict.
fn api(refuse_scale: bool) -> (kube::Client, Log) {
    fake_api(move |method, path, body| route(refuse_scale, method, path, body))
}

fn route(refuse_scale: bool, method: &str, path: &str, body: &Value) -> Answer {
    if let Some(answer) = events_route(method, path, body) {
        return answer;
    }
    {
        match (method, path) {
            ("GET", "/apis/apps/v1") => (
                200,
                json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "apps/v1", "resources": [
                    {"name": "deployments", "singularName": "deployment", "namespaced": true, "kind": "Deployment", "verbs": ["get", "list", "watch", "patch"]},
                    {"name": "deployments/scale", "singularName": "", "namespaced": true, "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]}
                ]}),
            ),
            ("GET", "/apis/apps/v1/namespaces/ns/deployments/web/scale") => (200, scale_json(3)),
            ("GET", "/apis/apps/v1/namespaces/ns/deployments/absent/scale") => {
                status_error(404, "NotFound", "deployments.apps \"absent\" not found")
            }
            ("PATCH", "/apis/apps/v1/namespaces/ns/deployments/web/scale") if refuse_scale => {
                status_error(409, "Conflict", "the object has been modified")
            }
            ("PATCH", "/apis/apps/v1/namespaces/ns/deployments/web/scale") => {
                (200, scale_json(body["spec"]["replicas"].as_i64().unwrap() as i32))
            }
            ("PATCH", "/apis/ferroscale.dev/v1alpha1/namespaces/ns/autoscalers/web/status") => {
                (200, serde_json::to_value(autoscaler("web", 1)).unwrap())
            }
            _ => status_error(404, "NotFound", "no route"),
        }
    }
}

/// Like [`api`], but the status write is refused with a conflict the first `conflicts` times,
/// and the Autoscaler then reads back as `current` (at resourceVersion 8).
fn api_with_status_conflict(conflicts: usize, current: Autoscaler) -> (kube::Client, Log) {
    let refused = std::sync::atomic::AtomicUsize::new(0);
    let mut current = serde_json::to_value(current).unwrap();
    current["metadata"]["resourceVersion"] = json!("8");
    let (client, log) = fake_api(move |method, path, body| match (method, path) {
        ("PATCH", "/apis/ferroscale.dev/v1alpha1/namespaces/ns/autoscalers/web/status")
            if refused.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < conflicts =>
        {
            status_error(409, "Conflict", "the object has been modified")
        }
        ("GET", "/apis/ferroscale.dev/v1alpha1/namespaces/ns/autoscalers/web/status") => (200, current.clone()),
        _ => route(false, method, path, body),
    });
    (client, log)
}

fn context(client: kube::Client, metrics: FakeMetrics) -> Arc<Context> {
    Arc::new(Context {
        readers: Readers {
            client: client.clone(),
            pods: PodCache::of((0..3).map(pod).collect()),
            targets: Targets::new(client.clone()),
            metrics: Arc::new(metrics),
            neighbours: Default::default(),
        },
        settings: Settings::default(),
        memory: Default::default(),
        fairness: ferroscale_controller::fairness::Fairness::new(4, 4),
        recorder: Recorder::new(
            client,
            Reporter {
                controller: "ferroscale".into(),
                instance: "test".into(),
            },
        ),
        backoff: Backoff::default(),
        telemetry: Arc::new(Telemetry::empty()),
        ownership: Default::default(),
    })
}

/// The status the last status write set.
fn status_of(log: &Log) -> Value {
    status_set(log.find("PATCH", "/autoscalers/web/status").last().unwrap())
}

fn condition(status: &Value, type_: &str) -> (String, String) {
    let c = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == type_)
        .unwrap();
    (
        c["status"].as_str().unwrap().into(),
        c["reason"].as_str().unwrap().into(),
    )
}

fn event_reasons(log: &Log) -> Vec<String> {
    log.events()
        .iter()
        .map(|e| e["reason"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn scales_the_target_through_its_scale_subresource() {
    let (client, log) = api(false);
    let ctx = context(client, FakeMetrics(Ok(vec![900, 900, 900])));
    let before = jiff::Timestamp::now().as_second();
    let action = reconcile(Arc::new(autoscaler("web", 1)), ctx.clone()).await.unwrap();
    let evaluated = ctx
        .telemetry
        .autoscalers
        .last_evaluation("ns", "web")
        .unwrap_or_default();
    assert!(evaluated >= before && evaluated <= jiff::Timestamp::now().as_second());
    assert_eq!(
        action,
        kube::runtime::controller::Action::requeue(Duration::from_secs(15))
    );
    assert_eq!(
        log.calls(),
        vec![
            "GET /apis/apps/v1",
            "GET /apis/apps/v1/namespaces/ns/deployments/web/scale",
            "PATCH /apis/apps/v1/namespaces/ns/deployments/web/scale",
            "PATCH /apis/ferroscale.dev/v1alpha1/namespaces/ns/autoscalers/web/status"
        ]
    );
    assert_eq!(
        log.find("GET", "/deployments/web/scale")[0].query,
        "resourceVersion=0",
        "the scale may come from the API server's watch cache"
    );
    assert_eq!(
        log.find("PATCH", "/deployments/web/scale")[0].body,
        json!({"metadata": {"resourceVersion": "12"}, "spec": {"replicas": 6}}),
        "9 proposed, doubled at most, on the scale read"
    );
    let status = status_of(&log);
    assert_eq!(
        (status["currentReplicas"].as_i64(), status["desiredReplicas"].as_i64()),
        (Some(3), Some(6))
    );
    assert_eq!(status["observedGeneration"], 2);
    assert_eq!(
        status["currentMetrics"][0]["resource"]["current"]["averageUtilization"],
        90
    );
    assert_eq!(status["targets"], "cpu: 90%/30%");
    assert_eq!(
        status["recommendations"].as_array().unwrap().len(),
        1,
        "the proposal is recorded"
    );
    assert_eq!(
        condition(&status, "AbleToScale"),
        ("True".into(), "SucceededRescale".into())
    );
    assert_eq!(
        condition(&status, "ScalingLimited"),
        ("True".into(), "ScaleUpLimit".into())
    );
    assert_eq!(event_reasons(&log), vec!["SuccessfulRescale"]);
}

#[tokio::test]
async fn a_missing_target_is_reported_and_nothing_changes() {
    let (client, log) = api(false);
    reconcile(
        Arc::new(autoscaler("absent", 1)),
        context(client, FakeMetrics(Ok(vec![900, 900, 900]))),
    )
    .await
    .unwrap();
    assert!(log.find("PATCH", "/scale").is_empty());
    let status = status_of(&log);
    assert_eq!(
        condition(&status, "AbleToScale"),
        ("False".into(), "FailedGetScale".into())
    );
    assert_eq!(status["desiredReplicas"], 3, "the rest of status is kept");
    assert_eq!(event_reasons(&log), vec!["FailedGetScale"]);
}

#[tokio::test]
async fn a_failed_metric_never_scales() {
    let (client, log) = api(false);
    reconcile(
        Arc::new(autoscaler("web", 1)),
        context(
            client,
            FakeMetrics(Err("no metrics returned from resource metrics API".into())),
        ),
    )
    .await
    .unwrap();
    assert!(log.find("PATCH", "/scale").is_empty());
    let status = status_of(&log);
    assert_eq!(
        condition(&status, "ScalingActive"),
        ("False".into(), "FailedGetResourceMetric".into())
    );
    assert_eq!(
        event_reasons(&log),
        vec!["FailedGetResourceMetric", "FailedComputeMetricsReplicas"]
    );
}

#[tokio::test]
async fn a_refused_rescale_is_reported_without_a_scale_event() {
    let (client, log) = api(true);
    let mut with_behavior = autoscaler("web", 1);
    with_behavior.spec.behavior = Some(Default::default());
    reconcile(
        Arc::new(with_behavior),
        context(client, FakeMetrics(Ok(vec![900, 900, 900]))),
    )
    .await
    .unwrap();
    let status = status_of(&log);
    assert_eq!(
        condition(&status, "AbleToScale"),
        ("False".into(), "FailedUpdateScale".into())
    );
    assert_eq!(status["desiredReplicas"], 3);
    assert_eq!(
        status["scaleUpEvents"],
        Value::Null,
        "no rescale happened, none is recorded"
    );
    assert_eq!(event_reasons(&log), vec!["FailedRescale"]);
}

#[tokio::test]
async fn an_invalid_spec_waits_for_a_change() {
    let (client, log) = api(false);
    let mut invalid = autoscaler("web", 1);
    invalid.spec.min_replicas = Some(0);
    let action = reconcile(Arc::new(invalid), context(client, FakeMetrics(Ok(vec![]))))
        .await
        .unwrap();
    assert_eq!(action, kube::runtime::controller::Action::await_change());
    assert!(log.find("GET", "/scale").is_empty());
    let status = status_of(&log);
    let (state, reason) = condition(&status, "ScalingActive");
    assert_eq!((state.as_str(), reason.as_str()), ("False", "InvalidSpec"));
    assert_eq!(event_reasons(&log), vec!["InvalidSpec"]);
}

#[tokio::test]
async fn a_steady_autoscaler_writes_its_status_once() {
    // 100% of a 30% target on 3 pods proposes 3 (the current count) every time.
    let (client, log) = api(false);
    let ctx = context(client, FakeMetrics(Ok(vec![300, 300, 300])));
    let mut object = autoscaler("web", 1);
    reconcile(Arc::new(object.clone()), ctx.clone()).await.unwrap();
    let writes = log.find("PATCH", "/autoscalers/web/status");
    assert_eq!(writes.len(), 1, "the first evaluation records its recommendation");
    object.status = Some(serde_json::from_value(status_of(&log)).unwrap());
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(1100)).await;
        reconcile(Arc::new(object.clone()), ctx.clone()).await.unwrap();
    }
    assert_eq!(
        log.find("PATCH", "/autoscalers/web/status").len(),
        1,
        "evaluations that change nothing write nothing"
    );
    assert!(log.find("PATCH", "/scale").is_empty());
}

#[tokio::test]
async fn history_written_is_not_lost_while_the_cache_lags_behind() {
    let (client, log) = api(false);
    let ctx = context(client, FakeMetrics(Ok(vec![300, 300, 300])));
    // The cache keeps showing the object as it was before the first write (same version).
    let stale = Arc::new(autoscaler("web", 1));
    reconcile(stale.clone(), ctx.clone()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    reconcile(stale.clone(), ctx.clone()).await.unwrap();
    assert_eq!(
        log.find("PATCH", "/autoscalers/web/status").len(),
        1,
        "the second evaluation starts from the status written, not the stale one"
    );
    // Once the cache shows a newer version, it is the truth again.
    let mut newer = autoscaler("web", 1);
    newer.metadata.resource_version = Some("8".into());
    reconcile(Arc::new(newer), ctx).await.unwrap();
    assert_eq!(log.find("PATCH", "/autoscalers/web/status").len(), 2);
}

#[tokio::test]
async fn each_autoscaler_is_requeued_after_its_own_sync_period() {
    let (client, _log) = api(false);
    let mut fast = autoscaler("web", 1);
    fast.spec.sync_period_seconds = Some(5);
    let action = reconcile(Arc::new(fast), context(client, FakeMetrics(Ok(vec![300, 300, 300]))))
        .await
        .unwrap();
    assert_eq!(
        action,
        kube::runtime::controller::Action::requeue(Duration::from_secs(5))
    );
}

/// The operations of the last status write other than setting `/status`.
fn preconditions(log: &Log) -> Vec<Value> {
    let write = log.find("PATCH", "/autoscalers/web/status").last().unwrap().clone();
    write
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|op| op["path"] != "/status")
        .cloned()
        .collect()
}

#[tokio::test]
async fn fields_the_core_cleared_leave_the_server_and_the_write_is_on_the_version_read() {
    // A recovered metric and a lifted pause: status must lose metricFailures and
    // pausedReplicas, which a merge patch would have kept.
    let mut object = autoscaler("web", 1);
    let status = object.status.as_mut().unwrap();
    status.paused_replicas = Some(1);
    status.metric_failures = Some(vec![ferroscale_api::MetricFailure {
        index: 0,
        since: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now()),
    }]);
    let (client, log) = api(false);
    reconcile(Arc::new(object), context(client, FakeMetrics(Ok(vec![300, 300, 300]))))
        .await
        .unwrap();
    let status = status_of(&log);
    assert!(status.get("pausedReplicas").is_none(), "{status}");
    assert!(status.get("metricFailures").is_none(), "{status}");
    assert_eq!(
        preconditions(&log),
        vec![json!({"op": "replace", "path": "/metadata/resourceVersion", "value": "7"})]
    );
}

#[tokio::test]
async fn a_conflict_from_a_change_outside_status_writes_again_on_the_new_version() {
    let unchanged = autoscaler("web", 1);
    let (client, log) = api_with_status_conflict(1, unchanged.clone());
    reconcile(
        Arc::new(unchanged),
        context(client, FakeMetrics(Ok(vec![900, 900, 900]))),
    )
    .await
    .unwrap();
    assert_eq!(log.find("PATCH", "/autoscalers/web/status").len(), 2);
    assert_eq!(
        preconditions(&log),
        vec![json!({"op": "replace", "path": "/metadata/resourceVersion", "value": "8"})]
    );
}

#[tokio::test]
async fn a_status_someone_else_wrote_since_the_read_drops_the_decision() {
    let mut newer = autoscaler("web", 1);
    newer.status.as_mut().unwrap().desired_replicas = 8;
    let (client, log) = api_with_status_conflict(1, newer);
    let result = reconcile(
        Arc::new(autoscaler("web", 1)),
        context(client, FakeMetrics(Ok(vec![900, 900, 900]))),
    )
    .await;
    assert!(
        matches!(result, Err(ferroscale_controller::autoscaler::Error::StaleStatus(_))),
        "{result:?}"
    );
    assert_eq!(
        log.find("PATCH", "/autoscalers/web/status").len(),
        1,
        "the newer status is not overwritten"
    );
}

#[tokio::test]
async fn a_replica_count_changed_since_the_read_is_not_overwritten() {
    // The scale write conflicts and the scale now says 5: the decision made from 3 is dropped.
    let reads = std::sync::atomic::AtomicUsize::new(0);
    let (client, log) = fake_api(move |method, path, body| match (method, path) {
        ("PATCH", "/apis/apps/v1/namespaces/ns/deployments/web/scale") => {
            status_error(409, "Conflict", "the object has been modified")
        }
        ("GET", "/apis/apps/v1/namespaces/ns/deployments/web/scale") => {
            let first = reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0;
            (200, scale_json(if first { 3 } else { 5 }))
        }
        _ => route(false, method, path, body),
    });
    reconcile(
        Arc::new(autoscaler("web", 1)),
        context(client, FakeMetrics(Ok(vec![900, 900, 900]))),
    )
    .await
    .unwrap();
    assert_eq!(log.find("PATCH", "/scale").len(), 1, "no second write");
    let status = status_of(&log);
    let (state, _) = condition(&status, "AbleToScale");
    assert_eq!(state, "False");
    let message = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "AbleToScale")
        .unwrap()["message"]
        .to_string();
    assert!(message.contains("changed from 3 to 5"), "{message}");
}

/// Per-pod CPU for namespace `fast`; a source that never answers (until a 5 s timeout) for
/// namespace `slow`.
struct HangingForOne;

impl MetricsSource for HangingForOne {
    fn gather<'a>(&'a self, namespace: &'a str, metrics: &'a [MetricSpec], s: &'a str) -> BoxFuture<'a, Vec<Fetched>> {
        Box::pin(async move {
            if namespace == "slow" {
                tokio::time::sleep(Duration::from_secs(5)).await;
                return metrics
                    .iter()
                    .map(|_| Fetched {
                        value: Err("Prometheus did not answer within 5s".into()),
                        elapsed: Duration::from_secs(5),
                        pod_usage: None,
                    })
                    .collect();
            }
            FakeMetrics(Ok(vec![300, 300, 300])).gather(namespace, metrics, s).await
        })
    }
}

#[tokio::test(start_paused = true)]
async fn autoscalers_on_a_hanging_source_take_only_their_namespaces_share() {
    // 10 Autoscalers of one tenant wait on a source that never answers; 100 of another keep
    // being evaluated at once with the slots left.
    let (client, _log) = fake_api(|method, path, body| {
        let path = path
            .replace("/namespaces/fast/", "/namespaces/ns/")
            .replace("/namespaces/slow/", "/namespaces/ns/");
        route(false, method, &path, body)
    });
    let mut ctx = Arc::try_unwrap(context(client, FakeMetrics(Ok(vec![])))).unwrap();
    ctx.readers.metrics = Arc::new(HangingForOne);
    ctx.readers.pods = PodCache::of(
        ["fast", "slow"]
            .iter()
            .flat_map(|ns| {
                (0..3).map(move |i| {
                    let mut p = pod(i);
                    p.metadata.namespace = Some(ns.to_string());
                    p
                })
            })
            .collect(),
    );
    // As many slots as the hanging tenant has Autoscalers: without a per-namespace share it
    // would take them all.
    ctx.fairness = ferroscale_controller::fairness::Fairness::new(10, 2);
    let ctx = Arc::new(ctx);
    let in_namespace = |ns: &str| {
        let mut a = autoscaler("web", 1);
        a.metadata.namespace = Some(ns.into());
        Arc::new(a)
    };
    let start = tokio::time::Instant::now();
    let slow: Vec<_> = (0..10)
        .map(|_| tokio::spawn(reconcile(in_namespace("slow"), ctx.clone())))
        .collect();
    tokio::task::yield_now().await;
    let fast: Vec<_> = (0..100)
        .map(|_| tokio::spawn(reconcile(in_namespace("fast"), ctx.clone())))
        .collect();
    for f in fast {
        f.await.unwrap().unwrap();
    }
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "the fast tenant waited {:?} behind the hanging one",
        start.elapsed()
    );
    for s in slow {
        s.await.unwrap().unwrap();
    }
    // 10 evaluations of 5 s, 2 at once: the slow tenant is bounded by its own share.
    assert!(start.elapsed() >= Duration::from_secs(25), "{:?}", start.elapsed());
}
