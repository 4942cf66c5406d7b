//! The Prometheus source against a real Prometheus (Debian's `prometheus`, which .ci/run
//! installs), started on 127.0.0.1 and scraping an exporter this test serves. Also the auth
//! headers and timeouts, against endpoints the test serves.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;
use std::time::Duration;

use ferroscale_api::{MetricTarget, MetricTargetType, PrometheusMetricSource, SecretRef};
use ferroscale_autoscaler::predict::Range;
use ferroscale_metrics::Prometheus;

#[path = "../../../tests/support/prometheus.rs"]
mod support;
use support::{Exporter, PrometheusServer, free_port, prometheus_installed, serve, serve_raw};

fn source(server: &str, query: &str) -> PrometheusMetricSource {
    PrometheusMetricSource {
        predictive: None,
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
    let prometheus = Prometheus::new(None, Some(url.clone()), &[], Duration::from_secs(5)).unwrap();

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

    // The same query over its history: points a second apart, the newest 40 once Prometheus
    // evaluates a step after that scrape.
    let range = |back: i64| {
        let now = jiff::Timestamp::now().as_second() + 1;
        Range {
            start: jiff::Timestamp::from_second(now - back).unwrap(),
            end: jiff::Timestamp::from_second(now).unwrap(),
            step: Duration::from_secs(1),
        }
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let history = loop {
        let history = prometheus
            .query_range("ns", &source(&url, "sum(e2e_load)"), &range(60))
            .await
            .unwrap();
        if history.points.last().map(|p| p.1) == Some(40.0) && history.points.len() >= 2 {
            break history;
        }
        assert!(tokio::time::Instant::now() < deadline, "{history:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(history.points.windows(2).all(|w| w[0].0 < w[1].0));
    assert!(
        history.points.iter().any(|p| p.1 == 12.5),
        "the older value is in the history"
    );
    let many = prometheus
        .query_range("ns", &source(&url, "pair"), &range(20))
        .await
        .unwrap_err();
    assert!(many.contains("returned 2 series"), "{many}");

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
        rejected.contains("refused the query") && rejected.contains("bad_data"),
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
    let closed = free_port();
    let prometheus = Prometheus::new(
        None,
        None,
        &[
            format!("http://127.0.0.1:{silent}"),
            format!("http://127.0.0.1:{closed}"),
        ],
        Duration::from_millis(500),
    )
    .unwrap();
    let err = error_at(&prometheus, silent).await;
    assert!(err.contains("did not answer within"), "{err}");
    let err = error_at(&prometheus, closed).await;
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
    let bound_here = format!("http://127.0.0.1:{port}/");
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
            // Secrets bound to one server by annotation: this test's, or another.
            let annotations = match name.as_str() {
                "bound-here" => serde_json::json!({"ferroscale.dev/prometheus-url": bound_here}),
                "bound-elsewhere" => {
                    serde_json::json!({"ferroscale.dev/prometheus-url": "http://prometheus.other:9090"})
                }
                "bound-badly" => serde_json::json!({"ferroscale.dev/prometheus-url": "http://x:9090/#"}),
                _ => serde_json::json!({}),
            };
            let data = if name.starts_with("bound") {
                serde_json::json!({"token": "Ym91bmQ="})
            } else {
                data
            };
            let body = serde_json::json!({"apiVersion": "v1", "kind": "Secret",
                                          "metadata": {"name": name, "annotations": annotations}, "data": data});
            send.send_response(
                http::Response::builder()
                    .status(200)
                    .body(kube::client::Body::from(serde_json::to_vec(&body).unwrap()))
                    .unwrap(),
            );
        }
    });
    let client = kube::Client::new(service, "default");
    let url = format!("http://127.0.0.1:{port}");
    let prometheus = Prometheus::new(Some(client), None, std::slice::from_ref(&url), Duration::from_secs(5)).unwrap();
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
    assert_eq!(prometheus.query("ns", &with("bound-here")).await.unwrap(), 3000);
    let err = prometheus.query("ns", &with("bound-elsewhere")).await.unwrap_err();
    assert!(
        err.starts_with("ForbiddenMetricSource") && err.contains("bound to another Prometheus server"),
        "{err}"
    );
    let err = prometheus.query("ns", &with("bound-badly")).await.unwrap_err();
    assert!(err.contains("annotation ferroscale.dev/prometheus-url"), "{err}");
    let headers = seen.lock().unwrap().clone();
    assert_eq!(headers.len(), 3, "a bound Secret goes nowhere else: {headers:?}");
    assert_eq!(headers[0].to_ascii_lowercase(), "authorization: bearer secret-token");
    assert_eq!(headers[1].to_ascii_lowercase(), "authorization: basic ywrtaw46cgfzcw==");
    assert_eq!(headers[2].to_ascii_lowercase(), "authorization: bearer bound");
}

/// A response with this status line, content type and body.
fn respond(status: &str, content_type: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Counts the requests a server answered with `response`.
async fn counting(response: Vec<u8>) -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = hits.clone();
    let port = serve_raw(move |_| {
        seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Some(response.clone())
    })
    .await;
    (port, hits)
}

/// The error of querying `up` on the local server at `port`.
async fn error_at(prometheus: &Prometheus, port: u16) -> String {
    prometheus
        .query("ns", &source(&format!("http://127.0.0.1:{port}"), "up"))
        .await
        .unwrap_err()
}

fn allowing(ports: &[u16]) -> Prometheus {
    let urls: Vec<String> = ports.iter().map(|p| format!("http://127.0.0.1:{p}")).collect();
    Prometheus::new(None, None, &urls, Duration::from_secs(5)).unwrap()
}

#[tokio::test]
async fn what_a_server_answers_is_described_never_repeated() {
    const SECRET: &str = "AKIA-internal-credentials";
    let (page, _) = counting(respond("200 OK", "text/html", &format!("<html>{SECRET}</html>"))).await;
    let (refusal, _) = counting(respond(
        "400 Bad Request",
        "application/json",
        &format!(r#"{{"status":"error","errorType":"{SECRET}","error":"{SECRET}"}}"#),
    ))
    .await;
    let (odd_type, _) = counting(respond("200 OK", &format!("text/{SECRET}"), SECRET)).await;
    let prometheus = allowing(&[page, refusal, odd_type]);

    let err = error_at(&prometheus, page).await;
    assert!(
        err.contains("answered 200 OK with text/html (38 bytes), not Prometheus' JSON"),
        "{err}"
    );
    assert!(!err.contains(SECRET), "{err}");

    let err = error_at(&prometheus, refusal).await;
    assert!(
        err.contains("refused the query (400 Bad Request, an unknown error type)"),
        "{err}"
    );
    assert!(!err.contains(SECRET), "{err}");

    let err = error_at(&prometheus, odd_type).await;
    assert!(!err.contains(SECRET), "{err}");
}

#[tokio::test]
async fn refused_addresses_and_redirects_send_nothing_further() {
    let (target, target_hits) = counting(respond("200 OK", "text/plain", "metadata credentials")).await;
    let (redirecting, _) = counting(
        format!("HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{target}/x\r\nContent-Length: 0\r\n\r\n")
            .into_bytes(),
    )
    .await;
    let prometheus = allowing(&[redirecting]);
    for address in [
        format!("http://127.0.0.1:{target}/internal/credentials#"),
        format!("http://127.0.0.1:{target}"),
        format!("http://127.0.0.1:{redirecting}@127.0.0.1:{target}"),
    ] {
        let err = prometheus.query("ns", &source(&address, "up")).await.unwrap_err();
        assert!(
            err.starts_with("ForbiddenMetricSource: prometheus.serverAddress"),
            "{err}"
        );
    }
    let err = error_at(&prometheus, redirecting).await;
    assert!(
        err.contains("302 Found, a redirect; redirects are not followed"),
        "{err}"
    );
    assert_eq!(target_hits.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[tokio::test]
async fn an_answer_over_the_bound_is_refused_unread() {
    // One that says its length, and one sent in chunks that never says it.
    let (declared, _) = counting(
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{{",
            64 << 20
        )
        .into_bytes(),
    )
    .await;
    let chunk = "x".repeat(64 * 1024);
    let mut chunked =
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..40 {
        chunked.extend_from_slice(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes());
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let (streamed, _) = counting(chunked).await;
    let prometheus = allowing(&[declared, streamed]);
    for port in [declared, streamed] {
        let err = error_at(&prometheus, port).await;
        assert!(err.contains("an answer over 1048576 bytes; it was not read"), "{err}");
    }
}

#[tokio::test]
async fn a_long_history_is_read_in_requests_under_prometheus_limit() {
    let body = r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1000,"1"],[1001,"2.5"]]}]}}"#;
    let (port, hits) = counting(respond("200 OK", "application/json", body)).await;
    let prometheus = allowing(&[port]);
    let range = Range {
        start: jiff::Timestamp::from_second(1_000).unwrap(),
        end: jiff::Timestamp::from_second(1_000 + 25_000).unwrap(),
        step: Duration::from_secs(1),
    };
    let history = prometheus
        .query_range("ns", &source(&format!("http://127.0.0.1:{port}"), "up"), &range)
        .await
        .unwrap();
    // 25,001 points in requests of at most 10,000: three requests.
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 3);
    // The same two points came back each time: kept once.
    assert_eq!(history.points.len(), 2);
    assert_eq!(history.points[1].1, 2.5);
}
