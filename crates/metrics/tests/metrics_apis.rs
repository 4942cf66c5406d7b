//! The Kubernetes metrics APIs against a fake API server: the paths and selectors requested,
//! the custom metrics version chosen by discovery, and the values read.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

#[path = "../../controller/tests/common/mod.rs"]
mod common;

use common::{fake_api, status_error};
use ferroscale_api::CrossVersionObjectReference;
use ferroscale_metrics::MetricsApis;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde_json::json;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(5);

fn cluster(custom_versions: &'static [&'static str]) -> (kube::Client, common::Log) {
    fake_api(move |_method, path, _body| match path {
        "/apis/metrics.k8s.io/v1beta1/namespaces/ns/pods" => (
            200,
            json!({"kind": "PodMetricsList", "apiVersion": "metrics.k8s.io/v1beta1", "metadata": {}, "items": [
                {"metadata": {"name": "web-0", "namespace": "ns"}, "timestamp": "2026-01-01T00:00:00Z", "window": "30s",
                 "containers": [{"name": "a", "usage": {"cpu": "250m", "memory": "1Mi"}}, {"name": "b", "usage": {"cpu": "50m"}}]}
            ]}),
        ),
        "/apis/custom.metrics.k8s.io" => (
            200,
            json!({"kind": "APIGroup", "apiVersion": "v1", "name": "custom.metrics.k8s.io",
            "versions": custom_versions.iter().map(|v| json!({"groupVersion": format!("custom.metrics.k8s.io/{v}"), "version": v})).collect::<Vec<_>>()}),
        ),
        "/apis/custom.metrics.k8s.io/v1beta1/namespaces/ns/pods/*/qps"
        | "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns/pods/*/qps" => (
            200,
            json!({"kind": "MetricValueList", "apiVersion": "custom.metrics.k8s.io/v1beta1", "metadata": {}, "items": [
                {"describedObject": {"kind": "Pod", "namespace": "ns", "name": "web-0", "apiVersion": "/v1"}, "metricName": "qps", "timestamp": "2026-01-01T00:00:00Z", "windowSeconds": 30, "value": "1500m"},
                {"describedObject": {"kind": "Pod", "namespace": "ns", "name": "web-1", "apiVersion": "/v1"}, "metricName": "qps", "timestamp": "2026-01-01T00:00:00Z", "value": "2"}
            ]}),
        ),
        "/apis/apps/v1" => (
            200,
            json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "apps/v1", "resources": [
                {"name": "deployments", "singularName": "deployment", "namespaced": true, "kind": "Deployment", "verbs": ["get"]}
            ]}),
        ),
        "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns/deployments/web/qps" => (
            200,
            json!({"kind": "MetricValueList", "apiVersion": "custom.metrics.k8s.io/v1beta2", "metadata": {}, "items": [
                {"describedObject": {"kind": "Deployment", "namespace": "ns", "name": "web", "apiVersion": "apps/v1"}, "metric": {"name": "qps"}, "timestamp": "2026-01-01T00:00:00Z", "value": "20"}
            ]}),
        ),
        "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns/metrics/qps" => (
            200,
            json!({"kind": "MetricValueList", "apiVersion": "custom.metrics.k8s.io/v1beta2", "metadata": {}, "items": [
                {"describedObject": {"kind": "Namespace", "name": "ns", "apiVersion": "/v1"}, "metric": {"name": "qps"}, "timestamp": "2026-01-01T00:00:00Z", "value": "7"}
            ]}),
        ),
        "/apis/external.metrics.k8s.io/v1beta1/namespaces/ns/queue" => (
            200,
            json!({"kind": "ExternalMetricValueList", "apiVersion": "external.metrics.k8s.io/v1beta1", "metadata": {}, "items": [
                {"metricName": "queue", "metricLabels": {"q": "orders"}, "timestamp": "2026-01-01T00:00:00Z", "value": "30"},
                {"metricName": "queue", "metricLabels": {"q": "orders"}, "timestamp": "2026-01-01T00:00:00Z", "value": "12"}
            ]}),
        ),
        // An adapter that answers with something else than a Status.
        "/apis/external.metrics.k8s.io/v1beta1/namespaces/ns/talkative" => {
            (500, json!({"credentials": "AKIA-from-an-internal-endpoint"}))
        }
        _ => status_error(404, "NotFound", "the server could not find the requested resource"),
    })
}

fn selector(key: &str, value: &str) -> LabelSelector {
    LabelSelector {
        match_labels: Some([(key.to_string(), value.to_string())].into()),
        match_expressions: None,
    }
}

#[tokio::test]
async fn pod_metrics_by_label_selector() {
    let (client, log) = cluster(&["v1beta2"]);
    let usage = MetricsApis::new(client, TIMEOUT)
        .pod_metrics("ns", "app=web")
        .await
        .unwrap();
    assert_eq!(usage[0].pod, "web-0");
    assert_eq!(usage[0].window, std::time::Duration::from_secs(30));
    assert_eq!(
        usage[0].containers[0].usage,
        vec![("cpu".to_string(), 250), ("memory".to_string(), 1_048_576_000)]
    );
    let request = &log.all()[0];
    assert_eq!(request.query, "labelSelector=app%3Dweb");
}

#[tokio::test]
async fn custom_metrics_use_the_version_discovery_offers() {
    let (client, log) = cluster(&["v1beta1"]);
    let apis = MetricsApis::new(client, TIMEOUT);
    let samples = apis
        .pods_metric("ns", "qps", "app=web", Some(&selector("verb", "GET")))
        .await
        .unwrap();
    assert_eq!(
        samples
            .iter()
            .map(|s| (s.pod.as_str(), s.value, s.window.as_secs()))
            .collect::<Vec<_>>(),
        vec![("web-0", 1500, 30), ("web-1", 2000, 60)]
    );
    let calls: Vec<String> = log.all().iter().map(|r| format!("{}?{}", r.path, r.query)).collect();
    assert_eq!(
        calls,
        vec![
            "/apis/custom.metrics.k8s.io?",
            "/apis/custom.metrics.k8s.io/v1beta1/namespaces/ns/pods/*/qps?labelSelector=app%3Dweb&metricLabelSelector=verb%3DGET"
        ]
    );
    // Discovery is remembered.
    apis.pods_metric("ns", "qps", "app=web", None).await.unwrap();
    assert_eq!(
        log.find("GET", "/apis/custom.metrics.k8s.io")
            .iter()
            .filter(|r| r.path == "/apis/custom.metrics.k8s.io")
            .count(),
        1
    );
}

#[tokio::test]
async fn object_metrics_resolve_the_resource_name() {
    let (client, log) = cluster(&["v1beta1", "v1beta2"]);
    let apis = MetricsApis::new(client, TIMEOUT);
    let deployment = CrossVersionObjectReference {
        api_version: Some("apps/v1".into()),
        kind: "Deployment".into(),
        name: "web".into(),
    };
    assert_eq!(
        apis.object_metric("ns", &deployment, "qps", None).await.unwrap(),
        20_000
    );
    assert!(
        log.all().iter().any(|r| r.path == "/apis/apps/v1"),
        "the plural comes from discovery"
    );
    let namespace = CrossVersionObjectReference {
        api_version: Some("v1".into()),
        kind: "Namespace".into(),
        name: "ns".into(),
    };
    assert_eq!(apis.object_metric("ns", &namespace, "qps", None).await.unwrap(), 7000);
}

#[tokio::test]
async fn external_metrics_and_their_errors() {
    let (client, log) = cluster(&["v1beta2"]);
    let apis = MetricsApis::new(client, TIMEOUT);
    assert_eq!(
        apis.external_metric("ns", "queue", Some(&selector("q", "orders")))
            .await
            .unwrap(),
        vec![30_000, 12_000]
    );
    assert_eq!(log.all()[0].query, "labelSelector=q%3Dorders");
    let err = apis.external_metric("ns", "absent", None).await.unwrap_err();
    assert!(
        err.starts_with("unable to fetch metrics from external metrics API")
            && err.ends_with("the server answered 404 NotFound"),
        "{err}"
    );
    let err = apis.external_metric("ns", "talkative", None).await.unwrap_err();
    assert!(err.contains("the server answered"), "{err}");
    assert!(!err.contains("AKIA"), "no part of the answer is repeated: {err}");
    let err = MetricsApis::new(cluster(&[]).0, TIMEOUT)
        .pods_metric("ns", "qps", "", None)
        .await
        .unwrap_err();
    assert!(err.contains("serves none of v1beta2, v1beta1"), "{err}");
}

#[tokio::test]
async fn an_unanswered_request_is_a_metric_error_within_the_timeout() {
    // A server that takes every request and never answers.
    let (service, mut handle) =
        tower_test::mock::pair::<http::Request<kube::client::Body>, http::Response<kube::client::Body>>();
    let held = tokio::spawn(async move {
        let mut pending = Vec::new();
        while let Some(request) = handle.next_request().await {
            pending.push(request);
        }
    });
    let apis = MetricsApis::new(kube::Client::new(service, "default"), Duration::from_millis(200));
    let started = std::time::Instant::now();
    let err = apis.pod_metrics("ns", "app=web").await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(
        err,
        "unable to fetch metrics from resource metrics API: no answer within 200ms"
    );
    held.abort();
}
