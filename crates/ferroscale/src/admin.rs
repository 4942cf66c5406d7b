//! The admin server: `/metrics` (OpenMetrics), `/livez` and `/readyz`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use anyhow::{Context, Result};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tracing::{debug, info};

/// What the admin server reports.
pub struct Admin {
    pub registry: Registry,
    /// Set once the caches have synced (leader or not).
    pub ready: AtomicBool,
    /// The length of the last /metrics body: the next is allocated at about that size at
    /// once (9 MB at 10,000 Autoscalers) instead of growing through copies to twice that.
    pub last_metrics_len: AtomicUsize,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("ready", &self.ready)
            .finish_non_exhaustive()
    }
}

fn text(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = content_type.parse() {
        response.headers_mut().insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}

/// Answers one request.
pub fn respond(admin: &Admin, path: &str) -> Response<Full<Bytes>> {
    const PLAIN: &str = "text/plain; charset=utf-8";
    match path {
        "/livez" => text(StatusCode::OK, PLAIN, "ok\n".into()),
        "/readyz" if admin.ready.load(Ordering::SeqCst) => text(StatusCode::OK, PLAIN, "ok\n".into()),
        "/readyz" => text(
            StatusCode::SERVICE_UNAVAILABLE,
            PLAIN,
            "not ready: the pod cache has not synced\n".into(),
        ),
        "/metrics" => {
            let expected = admin.last_metrics_len.load(Ordering::Relaxed);
            let mut body = String::with_capacity(expected + expected / 16);
            match prometheus_client::encoding::text::encode(&mut body, &admin.registry) {
                Ok(()) => {
                    admin.last_metrics_len.store(body.len(), Ordering::Relaxed);
                    text(
                        StatusCode::OK,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        body,
                    )
                }
                Err(e) => text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    PLAIN,
                    format!("encoding metrics failed: {e}\n"),
                ),
            }
        }
        _ => text(
            StatusCode::NOT_FOUND,
            PLAIN,
            "not found: try /metrics, /livez or /readyz\n".into(),
        ),
    }
}

/// Binds `addr` (failing at once if it cannot) and serves until the task is dropped.
pub async fn bind(addr: SocketAddr, admin: Arc<Admin>) -> Result<impl std::future::Future<Output = ()> + Send> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("--admin-addr {addr}: cannot listen"))?;
    info!(%addr, "admin server listening (/metrics, /livez, /readyz)");
    Ok(async move {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                continue;
            };
            let admin = admin.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    let response = respond(&admin, request.uri().path());
                    async move { Ok::<_, Infallible>(response) }
                });
                if let Err(error) = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                {
                    debug!(%peer, %error, "admin connection ended with an error");
                }
            });
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body(r: Response<Full<Bytes>>) -> String {
        String::from_utf8(r.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
    }

    #[tokio::test]
    async fn health_and_metrics() {
        let mut registry = Registry::default();
        let telemetry = ferroscale_controller::telemetry::Telemetry::new(&mut registry);
        telemetry.reconcile_failed("autoscaler", "status");
        let admin = Admin {
            registry,
            ready: AtomicBool::new(false),
            last_metrics_len: AtomicUsize::new(0),
        };
        assert_eq!(respond(&admin, "/livez").status(), StatusCode::OK);
        assert_eq!(respond(&admin, "/readyz").status(), StatusCode::SERVICE_UNAVAILABLE);
        admin.ready.store(true, Ordering::SeqCst);
        assert_eq!(respond(&admin, "/readyz").status(), StatusCode::OK);
        let metrics = respond(&admin, "/metrics");
        assert_eq!(
            metrics.headers()[hyper::header::CONTENT_TYPE],
            "application/openmetrics-text; version=1.0.0; charset=utf-8"
        );
        assert!(
            body(metrics)
                .await
                .contains("ferroscale_reconcile_errors_total{controller=\"autoscaler\",category=\"status\"} 1")
        );
        assert_eq!(respond(&admin, "/other").status(), StatusCode::NOT_FOUND);
    }
}
