//! Load benchmark of the whole operator against a real API server: N Autoscalers (100, then
//! 1,000) on PodSets of 10 pods each, their metric served through the Prometheus source (an
//! exporter this benchmark serves, scraped by a real Prometheus on 127.0.0.1). It reports, for
//! the operator process: reconcile latency p50/p99, the fraction of Autoscalers evaluated
//! within their sync period, peak RSS, and CPU seconds per minute.
//!
//! Runs only with FERROSCALE_E2E_KUBECONFIG set (and Prometheus installed). Sizes:
//! FERROSCALE_LOAD_SIZES (default `100,1000`); measured window: FERROSCALE_LOAD_MINUTES
//! (default 2).

#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmark code: a failed unwrap is a failed run

#[path = "../../../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use ferroscale_api::{Autoscaler, PodSet};
use futures::StreamExt;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;
use support::prometheus::{Exporter, PrometheusServer, free_port, prometheus_installed};
use support::*;

const SYNC_PERIOD: Duration = Duration::from_secs(15);
const PODS_PER_TARGET: i32 = 10;

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    Ok(ticks / 100.0)
}

/// Peak resident set size, in MiB.
fn peak_rss_mib(pid: u32) -> Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .context("no VmHWM")?
        .split_whitespace()
        .nth(1)
        .context("VmHWM")?
        .parse()?;
    Ok(kib / 1024.0)
}

/// A quantile of the autoscaler reconcile duration histogram on /metrics, from its buckets.
fn quantile(metrics: &str, q: f64) -> Option<f64> {
    let buckets: Vec<(f64, f64)> = metrics
        .lines()
        .filter(|l| {
            l.starts_with("ferroscale_reconcile_duration_seconds_bucket{") && l.contains("controller=\"autoscaler\"")
        })
        .filter_map(|l| {
            let le = l.split("le=\"").nth(1)?.split('"').next()?;
            let le = if le == "+Inf" { f64::INFINITY } else { le.parse().ok()? };
            Some((le, l.rsplit(' ').next()?.parse().ok()?))
        })
        .collect();
    let total = buckets.last()?.1;
    buckets.iter().find(|(_, count)| *count >= q * total).map(|(le, _)| *le)
}

async fn run_size(kubeconfig: &std::path::Path, client: &kube::Client, n: usize, minutes: u64) -> Result<String> {
    let ns = TestNamespace::create(client, kubeconfig, "ferroscale-load").await?;
    let exporter = Exporter::start(100.0).await;
    let prometheus = PrometheusServer::start(exporter.port);
    let podsets: Api<PodSet> = Api::namespaced(client.clone(), &ns.name);
    let autoscalers: Api<Autoscaler> = Api::namespaced(client.clone(), &ns.name);
    let creates = futures::stream::iter(0..n).map(|i| {
        let (podsets, autoscalers) = (podsets.clone(), autoscalers.clone());
        async move {
            let name = format!("load-{i}");
            let podset: PodSet = serde_json::from_value(json!({
                "apiVersion": "ferroscale.dev/v1alpha1", "kind": "PodSet", "metadata": {"name": name},
                "spec": {"replicas": PODS_PER_TARGET, "selector": {"matchLabels": {"app": name}},
                         "template": {"metadata": {"labels": {"app": name}}, "spec": {"terminationGracePeriodSeconds": 0, "containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10", "resources": {"requests": {"cpu": "1m", "memory": "4Mi"}}}]}}}
            }))?;
            podsets.create(&PostParams::default(), &podset).await?;
            // 100 against 10 per replica keeps every target at 10 replicas.
            let autoscaler: Autoscaler = serde_json::from_value(json!({
                "apiVersion": "ferroscale.dev/v1alpha1", "kind": "Autoscaler", "metadata": {"name": name},
                "spec": {"scaleTargetRef": {"apiVersion": "ferroscale.dev/v1alpha1", "kind": "PodSet", "name": name},
                         "minReplicas": 1, "maxReplicas": 20,
                         "metrics": [{"type": "Prometheus", "prometheus": {"query": "sum(e2e_load)", "target": {"type": "AverageValue", "averageValue": "10"}}}]}
            }))?;
            autoscalers.create(&PostParams::default(), &autoscaler).await?;
            anyhow::Ok(())
        }
    });
    let results: Vec<Result<()>> = creates.buffer_unordered(32).collect().await;
    results.into_iter().collect::<Result<Vec<()>>>()?;

    let admin_port = free_port();
    let admin = format!("127.0.0.1:{admin_port}");
    let operator = Operator::start(
        kubeconfig,
        &[
            "--namespace",
            &ns.name,
            "--sync-period",
            "15s",
            "--prometheus-url",
            &prometheus.url,
            "--admin-addr",
            &admin,
            "--log-filter",
            "warn",
        ],
    )?;
    let pid = operator.pid();
    // Warm-up: every Autoscaler evaluated once.
    wait_for("every Autoscaler evaluated once", Duration::from_secs(600), || async {
        let list = autoscalers.list(&Default::default()).await?;
        Ok(list
            .items
            .iter()
            .all(|a| {
                a.status
                    .as_ref()
                    .is_some_and(|s| s.recommendations.as_ref().is_some_and(|r| !r.is_empty()))
            })
            .then_some(()))
    })
    .await?;

    let cpu_start = cpu_seconds(pid)?;
    let started = Instant::now();
    let (mut checks, mut on_time) = (0usize, 0usize);
    while started.elapsed() < Duration::from_secs(60 * minutes) {
        let now = jiff::Timestamp::now();
        for a in autoscalers.list(&Default::default()).await?.items {
            let last = a
                .status
                .and_then(|s| s.recommendations)
                .and_then(|r| r.iter().map(|r| r.timestamp.0).max());
            checks += 1;
            if last.is_some_and(|t| {
                now.duration_since(t) <= jiff::SignedDuration::try_from(SYNC_PERIOD + Duration::from_secs(1)).unwrap()
            }) {
                on_time += 1;
            }
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    let cpu_per_minute = (cpu_seconds(pid)? - cpu_start) / (started.elapsed().as_secs_f64() / 60.0);
    let rss = peak_rss_mib(pid)?;
    let metrics = http_get(&format!("http://{admin}/metrics")).await?;
    let (p50, p99) = (quantile(&metrics, 0.5), quantile(&metrics, 0.99));
    operator.stop()?;
    let ms = |v: Option<f64>| {
        v.map_or("n/a".into(), |s| {
            if s.is_finite() {
                format!("≤ {:.0} ms", s * 1000.0)
            } else {
                "> 10 s".into()
            }
        })
    };
    Ok(format!(
        "| {n} | {} | {} | {:.1}% | {rss:.1} MiB | {:.2} s ({:.3} CPU) |",
        ms(p50),
        ms(p99),
        100.0 * on_time as f64 / checks.max(1) as f64,
        cpu_per_minute,
        cpu_per_minute / 60.0
    ))
}

/// A plain HTTP GET of the admin server (no client library needed for one request).
async fn http_get(url: &str) -> Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").context("http URL")?;
    let (host, path) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .unwrap_or((rest, "/".into()));
    let mut stream = tokio::net::TcpStream::connect(host).await?;
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes())
        .await?;
    let mut body = String::new();
    stream.read_to_string(&mut body).await?;
    Ok(body
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default())
}

#[tokio::main]
async fn main() -> Result<()> {
    let Some(kubeconfig) = kubeconfig_or_skip("load benchmark") else {
        return Ok(());
    };
    if !prometheus_installed() {
        return Ok(());
    }
    let sizes: Vec<usize> = std::env::var("FERROSCALE_LOAD_SIZES")
        .unwrap_or_else(|_| "100,1000".into())
        .split(',')
        .map(|s| s.trim().parse())
        .collect::<Result<_, _>>()?;
    let minutes: u64 = std::env::var("FERROSCALE_LOAD_MINUTES")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(2);
    let client = client(&kubeconfig).await?;
    install_crds(&client).await?;
    println!("| Autoscalers | reconcile p50 | reconcile p99 | evaluated within 15 s | peak RSS | CPU per minute |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for n in sizes {
        println!("{}", run_size(&kubeconfig, &client, n, minutes).await?);
    }
    Ok(())
}
