//! The Prometheus source against a real Prometheus (Debian's `prometheus`, which .ci/run
//! installs), started on 127.0.0.1 and scraping an exporter this test serves. Also the auth
//! headers and timeouts, against endpoints the test serves.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;
use std::time::Duration;

use ferroscale_api::{MetricTarget, MetricTargetType, PrometheusMetricSource, SecretRef};
use ferroscale_metrics::Prometheus;

#[path = "../../../tests/support/prometheus.rs"]
mod support;
use support::{Exporter, PrometheusServer, free_port, prometheus_installed, serve};

fn source(server: &str, query: &str) -> PrometheusMetricSource {
    PrometheusMetricSource {
        fallback: None,
        activation_threshold: None,
        server_address: Some(server.into()),
        query: query.into(),
        auth_secret_ref: None,
        target: MetricTarget {
            type_: MetricTargetType::Value,
            value: None,
            average_value: None,
            average_utilization: None,
        },
    }
}

#[tokio::test]
async fn reads_values_and_explains_bad_results_from_a_real_prometheus() {
    if !prometheus_installed() {
        return;
    }
    let exporter = Exporter::start(12.5).await;
    let server = PrometheusServer::start(exporter.port);
    let url = server.url.clone();
    let prometheus = Prometheus::new(None, Some(url.clone()), Duration::from_secs(5)).unwrap();

    // Wait (bounded) until Prometheus is up and has scraped the exporter once.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let first = loop {
        match prometheus.query("ns", &source(&url, "sum(e2e_load)")).await {
            Ok(v) => break v,
            Err(e) if tokio::time::Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => panic!("Prometheus never answered: {e}"),
        }
    };
    assert_eq!(first, 12_500);

    // The value follows the exporter.
    exporter.set(40.0);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let v = prometheus.query("ns", &source(&url, "sum(e2e_load)")).await.unwrap();
        if v == 40_000 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "value stuck at {v}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    let check = |query: &'static str| {
        let (p, url) = (&prometheus, url.clone());
        async move { p.query("ns", &source(&url, query)).await }
    };
    assert_eq!(
        check("scalar(sum(e2e_load)) * 2").await.unwrap(),
        80_000,
        "scalar results"
    );
    assert_eq!(check("vector(0.25)").await.unwrap(), 250);
    assert!(
        check("absent_metric_for_ferroscale")
            .await
            .unwrap_err()
            .contains("no series")
    );
    let many = check("pair").await.unwrap_err();
    assert!(many.contains("returned 2 series"), "{many}");
    let rejected = check("sum(").await.unwrap_err();
    assert!(
        rejected.contains("rejected the query") && rejected.contains("bad_data"),
        "{rejected}"
    );
    assert!(check("e2e_load[1m]").await.unwrap_err().contains("range vector"));
    assert!(
        check("vector(1) / 0")
            .await
            .unwrap_err()
            .contains("not a finite number")
    );
}

#[tokio::test]
async fn timeouts_and_unreachable_servers_are_named() {
    let silent = serve(|_| None).await;
    let prometheus = Prometheus::new(None, None, Duration::from_millis(500)).unwrap();
    let err = prometheus
        .query("ns", &source(&format!("http://127.0.0.1:{silent}"), "up"))
        .await
        .unwrap_err();
    assert!(err.contains("did not answer within"), "{err}");
    let closed = free_port();
    let err = prometheus
        .query("ns", &source(&format!("http://127.0.0.1:{closed}"), "up"))
        .await
        .unwrap_err();
    assert!(err.contains("cannot reach Prometheus"), "{err}");
    let mut no_address = source("http://x", "up");
    no_address.server_address = None;
    assert!(
        prometheus
            .query("ns", &no_address)
            .await
            .unwrap_err()
            .contains("--prometheus-url")
    );
}

#[tokio::test]
async fn credentials_come_from_the_secret() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let record = seen.clone();
    let port = serve(move |request| {
        let auth = request
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("authorization:"))
            .unwrap_or("")
            .to_string();
        record.lock().unwrap().push(auth);
        Some(r#"{"status":"success","data":{"resultType":"scalar","result":[0,"3"]}}"#.to_string())
    })
    .await;
    // A fake API server answering the Secret reads.
    let (service, mut handle) =
        tower_test::mock::pair::<http::Request<kube::client::Body>, http::Response<kube::client::Body>>();
    tokio::spawn(async move {
        while let Some((request, send)) = handle.next_request().await {
            let name = request.uri().path().rsplit('/').next().unwrap().to_string();
            let data = match name.as_str() {
                "bearer" => serde_json::json!({"token": "c2VjcmV0LXRva2Vu"}),
                "basic" => serde_json::json!({"username": "YWRtaW4=", "password": "cGFzcw=="}),
                // "not a certificate", base64-encoded.
                "bad-ca" => serde_json::json!({"token": "dA==", "ca.crt": "bm90IGEgY2VydGlmaWNhdGU="}),
                _ => serde_json::json!({}),
            };
            let body =
                serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "data": data});
            send.send_response(
                http::Response::builder()
                    .status(200)
                    .body(kube::client::Body::from(serde_json::to_vec(&body).unwrap()))
                    .unwrap(),
            );
        }
    });
    let client = kube::Client::new(service, "default");
    let prometheus = Prometheus::new(Some(client), None, Duration::from_secs(5)).unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let with = |secret: &str| PrometheusMetricSource {
        fallback: None,
        activation_threshold: None,
        auth_secret_ref: Some(SecretRef { name: secret.into() }),
        ..source(&url, "up")
    };
    assert_eq!(prometheus.query("ns", &with("bearer")).await.unwrap(), 3000);
    assert_eq!(prometheus.query("ns", &with("basic")).await.unwrap(), 3000);
    let err = prometheus.query("ns", &with("bad-ca")).await.unwrap_err();
    assert!(err.contains("ca.crt"), "{err}");
    let err = prometheus.query("ns", &with("empty")).await.unwrap_err();
    assert!(err.contains("Secret ns/empty has none of the keys"), "{err}");
    let headers = seen.lock().unwrap().clone();
    assert_eq!(headers[0].to_ascii_lowercase(), "authorization: bearer secret-token");
    assert_eq!(headers[1].to_ascii_lowercase(), "authorization: basic ywrtaw46cgfzcw==");
}
