//! A real Prometheus for tests (Debian's `prometheus`, which .ci/run installs), started on
//! 127.0.0.1 and scraping an exporter the test serves, whose value the test sets.
//! Shared by the metrics crate's tests and the end-to-end tests.

#![allow(dead_code)] // each test file uses a different subset

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether Prometheus is installed; under CI its absence is a failure, not a skip.
pub fn prometheus_installed() -> bool {
    let found = Command::new("prometheus")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "prometheus is not installed; .ci/run installs Debian's prometheus package"
        );
        println!("skipped: the prometheus binary is not installed (apt-get install prometheus)");
    }
    found
}

/// Serves `respond(request)` as an HTTP 200 on a local port; None accepts and never answers.
pub async fn serve(respond: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> u16 {
    serve_raw(move |request| {
        respond(request).map(|body| {
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .into_bytes()
        })
    })
    .await
}

/// Serves `respond(request)`, a whole HTTP response as bytes, on a local port; None accepts
/// and never answers.
pub async fn serve_raw(respond: impl Fn(&str) -> Option<Vec<u8>> + Send + Sync + 'static) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let respond = Arc::new(respond);
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let respond = respond.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let n = stream.read(&mut buf).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]).to_string();
                let Some(response) = respond(&request) else {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    return;
                };
                let _ = stream.write_all(&response).await;
            });
        }
    });
    port
}

/// An exporter of gauge `e2e_load` (and two series of `pair`) whose value the test sets.
#[derive(Clone)]
pub struct Exporter {
    value: Arc<AtomicU64>,
    pub port: u16,
}

impl Exporter {
    pub async fn start(initial: f64) -> Self {
        let value = Arc::new(AtomicU64::new(initial.to_bits()));
        let exported = value.clone();
        let port = serve(move |_| {
            let v = f64::from_bits(exported.load(Ordering::SeqCst));
            Some(format!(
                "# TYPE e2e_load gauge\ne2e_load {v}\n# TYPE pair gauge\npair{{n=\"1\"}} 1\npair{{n=\"2\"}} 2\n"
            ))
        })
        .await;
        Self { value, port }
    }

    pub fn set(&self, v: f64) {
        self.value.store(v.to_bits(), Ordering::SeqCst);
    }
}

/// A Prometheus scraping one target every second; killed and its data removed on drop.
pub struct PrometheusServer {
    child: Child,
    dir: std::path::PathBuf,
    pub url: String,
}

impl PrometheusServer {
    pub fn start(scrape_port: u16) -> Self {
        let dir = std::env::temp_dir().join(format!("ferroscale-prometheus-{}-{scrape_port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n- job_name: test\n  static_configs:\n  - targets: ['127.0.0.1:{scrape_port}']\n"
        );
        std::fs::write(dir.join("prometheus.yml"), config).unwrap();
        let port = free_port();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Self {
            child,
            dir,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
