//! Load benchmark of the whole operator against a real API server: N Autoscalers (100, then
//! 1,000) on PodSets of 10 pods each, all in one namespace, with metrics held exactly on
//! target so that nothing scales and only evaluation is measured; then with metrics that
//! change every sync period (still inside the tolerance), so that every evaluation has
//! something new to write.
//!
//! It reports, per size and metric mode: the operator's CPU seconds per minute, its RSS at the
//! end of the window and its peak RSS since it started, and CPU per evaluation; the share of
//! Autoscalers evaluated within the sync period (+1 s), read
//! from `ferroscale_autoscaler_last_evaluation_timestamp_seconds`; reconcile p50/p99; writes
//! to the API server per evaluation (mutating requests on the operator's resources, from the
//! API server's own `apiserver_request_total`, over its idle rate); and kube-apiserver's and
//! etcd's CPU per minute and per evaluation over their idle baseline, measured first with
//! every object in place and the Autoscaler controller stopped.
//!
//! Environment:
//! - FERROSCALE_E2E_KUBECONFIG: the cluster (required; without it the benchmark skips).
//! - FERROSCALE_E2E_METRICS_FILE: the fake metrics API's values file of the local control
//!   plane: Autoscalers then scale on CPU from metrics.k8s.io (as the HPA's users do); without
//!   it, on a Prometheus query (needs the `prometheus` binary).
//! - FERROSCALE_LOAD_PIDS: the control plane's pid directory (e.g. /opt/k8s/run/pids), for the
//!   kube-apiserver and etcd columns; without it they read n/a.
//! - FERROSCALE_LOAD_SIZES (default `100,1000`), FERROSCALE_LOAD_MINUTES (per window,
//!   default 3), FERROSCALE_LOAD_IDLE_SECONDS (baseline, default 60).

#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmark code: a failed unwrap is a failed run

#[path = "../../../tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use ferroscale_api::{Autoscaler, PodSet};
use futures::StreamExt;
use kube::Api;
use kube::api::PostParams;
use serde_json::{Value, json};
use support::prometheus::{Exporter, PrometheusServer, free_port, prometheus_installed};
use support::*;

const SYNC_PERIOD: Duration = Duration::from_secs(15);
const PODS_PER_TARGET: i32 = 10;
/// Resources the operator writes; their mutating requests are counted.
const WRITTEN: &[&str] = &["autoscalers", "podsets", "pods", "events"];

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    Ok(ticks / 100.0)
}

/// A size line of /proc/PID/status (`VmHWM`: peak resident set, `VmRSS`: resident now), in MiB.
fn memory_mib(pid: u32, field: &str) -> Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .with_context(|| format!("no {field}"))?
        .split_whitespace()
        .next()
        .with_context(|| format!("{field} has no value"))?
        .parse()?;
    Ok(kib / 1024.0)
}

/// The value of each sample of `name` in a Prometheus text exposition, by its label text.
fn samples<'a>(text: &'a str, name: &str) -> Vec<(&'a str, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            let (labels, value) = match rest.strip_prefix('{') {
                Some(r) => r.split_once("} ")?,
                None => ("", rest.strip_prefix(' ')?),
            };
            Some((labels, value.trim().parse().ok()?))
        })
        .collect()
}

/// The autoscaler reconcile duration histogram on /metrics: (upper bound, cumulative count).
fn buckets(metrics: &str) -> Vec<(f64, f64)> {
    samples(metrics, "ferroscale_reconcile_duration_seconds_bucket")
        .into_iter()
        .filter(|(labels, _)| labels.contains("controller=\"autoscaler\""))
        .filter_map(|(labels, count)| {
            let le = labels.split("le=\"").nth(1)?.split('"').next()?;
            let le = if le == "+Inf" { f64::INFINITY } else { le.parse().ok()? };
            Some((le, count))
        })
        .collect()
}

/// A quantile of the reconciles between two histograms (start and end of a window).
fn quantile(start: &[(f64, f64)], end: &[(f64, f64)], q: f64) -> Option<f64> {
    let window: Vec<(f64, f64)> = end
        .iter()
        .map(|(le, count)| {
            let before = start.iter().find(|(l, _)| l == le).map_or(0.0, |(_, c)| *c);
            (*le, count - before)
        })
        .collect();
    let total = window.last()?.1;
    window.iter().find(|(_, count)| *count >= q * total).map(|(le, _)| *le)
}

fn evaluations(metrics: &str) -> f64 {
    samples(metrics, "ferroscale_reconciles_total")
        .into_iter()
        .filter(|(labels, _)| labels.contains("controller=\"autoscaler\""))
        .map(|(_, v)| v)
        .sum()
}

/// Mutating requests the API server has served on the resources the operator writes.
async fn api_writes(client: &kube::Client) -> Result<f64> {
    let request = http::Request::get("/metrics").body(Vec::new())?;
    let text = client
        .request_text(request)
        .await
        .context("reading the API server's /metrics")?;
    Ok(samples(&text, "apiserver_request_total")
        .into_iter()
        .filter(|(labels, _)| {
            let verb = labels.split("verb=\"").nth(1).and_then(|v| v.split('"').next());
            let resource = labels.split("resource=\"").nth(1).and_then(|v| v.split('"').next());
            matches!(
                verb,
                Some("POST" | "PUT" | "PATCH" | "DELETE" | "APPLY" | "CREATE" | "UPDATE")
            ) && resource.is_some_and(|r| WRITTEN.contains(&r))
        })
        .map(|(_, v)| v)
        .sum())
}

/// The control plane processes whose CPU is reported, from the plane's pid files.
struct Plane {
    apiserver: u32,
    etcd: u32,
}

impl Plane {
    fn from_env() -> Result<Option<Self>> {
        let Some(dir) = std::env::var_os("FERROSCALE_LOAD_PIDS") else {
            return Ok(None);
        };
        let pid = |name: &str| -> Result<u32> {
            let path = Path::new(&dir).join(format!("{name}.pid"));
            Ok(std::fs::read_to_string(&path)
                .with_context(|| path.display().to_string())?
                .trim()
                .parse()?)
        };
        Ok(Some(Self {
            apiserver: pid("kube-apiserver")?,
            etcd: pid("etcd")?,
        }))
    }

    fn cpu(&self) -> Result<(f64, f64)> {
        Ok((cpu_seconds(self.apiserver)?, cpu_seconds(self.etcd)?))
    }
}

/// What is measured over one window.
#[derive(Debug, Clone, Copy, Default)]
struct Window {
    /// Checks of Autoscalers evaluated within the sync period, and of all of them.
    fresh: usize,
    checked: usize,
    /// The operator's peak RSS since it started, and its RSS at the end of the window, MiB.
    rss: f64,
    rss_now: f64,
    /// Reconcile duration quantiles over the window (histogram bucket bounds).
    p50: Option<f64>,
    p99: Option<f64>,
    seconds: f64,
    operator_cpu: f64,
    plane_cpu: Option<(f64, f64)>,
    writes: f64,
    evaluations: f64,
}

/// What drives the metric values: the fake metrics API's CPU, or a Prometheus exporter.
enum Source {
    Cpu(PathBuf),
    Prometheus {
        exporter: Exporter,
        prometheus: PrometheusServer,
    },
}

impl Source {
    fn metric(&self) -> Value {
        match self {
            Source::Cpu(_) => {
                json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}})
            }
            Source::Prometheus { .. } => {
                json!({"type": "Prometheus", "prometheus": {"query": "sum(e2e_load)", "target": {"type": "AverageValue", "averageValue": "10"}}})
            }
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Source::Cpu(_) => "CPU (metrics.k8s.io)",
            Source::Prometheus { .. } => "Prometheus",
        }
    }

    fn operator_args(&self) -> Vec<String> {
        match self {
            Source::Cpu(_) => Vec::new(),
            Source::Prometheus { prometheus, .. } => vec!["--prometheus-url".into(), prometheus.url.clone()],
        }
    }
}

/// The metric values of one size's namespace.
struct Load<'a> {
    source: &'a Source,
    cpu: Option<FakeCpu>,
}

impl<'a> Load<'a> {
    fn new(source: &'a Source, namespace: &str) -> Self {
        let cpu = match source {
            Source::Cpu(file) => Some(FakeCpu::new(file, namespace)),
            Source::Prometheus { .. } => None,
        };
        Self { source, cpu }
    }

    /// The value that holds every target at 10 replicas, or one 6% above it (inside the
    /// tolerance, so nothing scales, but every evaluation reads a new value).
    fn set(&self, high: bool) -> Result<()> {
        match (&self.cpu, self.source) {
            // 50m of 100m requested against a 50% target; 53m is a ratio of 1.06.
            (Some(cpu), _) => cpu.set(if high { 53 } else { 50 }),
            // 100 against 10 per replica; 106 likewise.
            (None, Source::Prometheus { exporter, .. }) => {
                exporter.set(if high { 106.0 } else { 100.0 });
                Ok(())
            }
            (None, Source::Cpu(_)) => unreachable!("a CPU source always has its values file"),
        }
    }
}

/// Counters read at the start and the end of a window.
#[derive(Debug, Clone)]
struct Counters {
    at: Instant,
    operator_cpu: f64,
    plane_cpu: Option<(f64, f64)>,
    writes: f64,
    evaluations: f64,
    histogram: Vec<(f64, f64)>,
}

impl Counters {
    fn since(&self, start: &Counters) -> Window {
        Window {
            seconds: self.at.duration_since(start.at).as_secs_f64(),
            operator_cpu: self.operator_cpu - start.operator_cpu,
            plane_cpu: match (self.plane_cpu, start.plane_cpu) {
                (Some((a, e)), Some((a0, e0))) => Some((a - a0, e - e0)),
                _ => None,
            },
            writes: self.writes - start.writes,
            evaluations: self.evaluations - start.evaluations,
            fresh: 0,
            checked: 0,
            rss: 0.0,
            rss_now: 0.0,
            p50: quantile(&start.histogram, &self.histogram, 0.5),
            p99: quantile(&start.histogram, &self.histogram, 0.99),
        }
    }
}

struct Bench {
    kubeconfig: PathBuf,
    client: kube::Client,
    plane: Option<Plane>,
    minutes: u64,
    idle: Duration,
}

/// The operator of one run, with its admin address.
struct Running {
    operator: Operator,
    admin: String,
}

impl Bench {
    fn start_operator(&self, namespace: &str, controllers: &str, source: &Source) -> Result<Running> {
        let admin = format!("127.0.0.1:{}", free_port());
        let mut args: Vec<String> = [
            "--namespace",
            namespace,
            "--controllers",
            controllers,
            "--sync-period",
            "15s",
            "--admin-addr",
            &admin,
            "--log-filter",
            "warn",
        ]
        .map(String::from)
        .to_vec();
        args.extend(source.operator_args());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Ok(Running {
            operator: Operator::start(&self.kubeconfig, &args)?,
            admin,
        })
    }

    async fn create_objects(&self, namespace: &str, n: usize, source: &Source) -> Result<()> {
        let podsets: Api<PodSet> = Api::namespaced(self.client.clone(), namespace);
        let autoscalers: Api<Autoscaler> = Api::namespaced(self.client.clone(), namespace);
        let metric = source.metric();
        let creates = futures::stream::iter(0..n).map(|i| {
            let (podsets, autoscalers, metric) = (podsets.clone(), autoscalers.clone(), metric.clone());
            async move {
                let name = format!("load-{i}");
                let podset: PodSet = serde_json::from_value(json!({
                    "apiVersion": "ferroscale.dev/v1alpha1", "kind": "PodSet", "metadata": {"name": name},
                    "spec": {"replicas": PODS_PER_TARGET, "selector": {"matchLabels": {"app": name}},
                             "template": {"metadata": {"labels": {"app": name}}, "spec": {"terminationGracePeriodSeconds": 0, "containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10", "resources": {"requests": {"cpu": "100m", "memory": "4Mi"}}}]}}}
                }))?;
                podsets.create(&PostParams::default(), &podset).await?;
                let autoscaler: Autoscaler = serde_json::from_value(json!({
                    "apiVersion": "ferroscale.dev/v1alpha1", "kind": "Autoscaler", "metadata": {"name": name},
                    "spec": {"scaleTargetRef": {"apiVersion": "ferroscale.dev/v1alpha1", "kind": "PodSet", "name": name},
                             "minReplicas": 1, "maxReplicas": 20, "metrics": [metric]}
                }))?;
                autoscalers.create(&PostParams::default(), &autoscaler).await?;
                anyhow::Ok(())
            }
        });
        let results: Vec<Result<()>> = creates.buffer_unordered(16).collect().await;
        results.into_iter().collect::<Result<Vec<()>>>()?;
        Ok(())
    }

    async fn counters(&self, running: &Running) -> Result<Counters> {
        let metrics = http_get(&format!("http://{}/metrics", running.admin)).await?;
        Ok(Counters {
            at: Instant::now(),
            operator_cpu: cpu_seconds(running.operator.pid())?,
            plane_cpu: self.plane.as_ref().map(Plane::cpu).transpose()?,
            writes: api_writes(&self.client).await?,
            evaluations: evaluations(&metrics),
            histogram: buckets(&metrics),
        })
    }

    /// The share of Autoscalers whose last evaluation is at most one sync period (+1 s) old.
    async fn fresh(&self, running: &Running) -> Result<(usize, usize)> {
        let text = http_get(&format!("http://{}/metrics", running.admin)).await?;
        let now = jiff::Timestamp::now().as_second() as f64;
        let last = samples(&text, "ferroscale_autoscaler_last_evaluation_timestamp_seconds");
        let fresh = last
            .iter()
            .filter(|(_, t)| now - t <= SYNC_PERIOD.as_secs_f64() + 1.0)
            .count();
        Ok((fresh, last.len()))
    }

    /// One size: objects created, pods running, an idle baseline, then the two metric modes.
    async fn run_size(&self, n: usize, source: &Source) -> Result<()> {
        let ns = TestNamespace::create(&self.client, &self.kubeconfig, "ferroscale-load").await?;
        let load = Load::new(source, &ns.name);
        load.set(false)?;
        self.create_objects(&ns.name, n, source).await?;
        let podsets: Api<PodSet> = Api::namespaced(self.client.clone(), &ns.name);
        let autoscalers: Api<Autoscaler> = Api::namespaced(self.client.clone(), &ns.name);

        // Pods first, with only the PodSet controller: the baseline has every pod in place.
        let podset_only = self.start_operator(&ns.name, "podset", source)?;
        let pods = n as i32 * PODS_PER_TARGET;
        wait_for(&format!("{pods} ready pods"), Duration::from_secs(1800), || async {
            let ready: i32 = podsets
                .list(&Default::default())
                .await?
                .items
                .iter()
                .map(|p| p.status.as_ref().map_or(0, |s| s.ready_replicas))
                .sum();
            Ok((ready == pods).then_some(()))
        })
        .await?;
        let start = self.counters(&podset_only).await?;
        tokio::time::sleep(self.idle).await;
        let idle = self.counters(&podset_only).await?.since(&start);
        podset_only.operator.stop()?;

        let running = self.start_operator(&ns.name, "autoscaler,podset", source)?;
        wait_for("every Autoscaler evaluated once", Duration::from_secs(900), || async {
            let list = autoscalers.list(&Default::default()).await?;
            Ok(list
                .items
                .iter()
                .all(|a| a.status.as_ref().is_some_and(|s| s.recommendations.is_some()))
                .then_some(()))
        })
        .await?;
        // One more period, so that the first evaluations' writes are behind us.
        tokio::time::sleep(SYNC_PERIOD).await;

        let window = Duration::from_secs(self.minutes * 60);
        for changing in [false, true] {
            let (mut fresh, mut checked) = (0usize, 0usize);
            let start = self.counters(&running).await?;
            let mut flips = 0u32;
            while start.at.elapsed() < window {
                if changing && start.at.elapsed() >= SYNC_PERIOD * flips {
                    flips += 1;
                    load.set(flips % 2 == 1)?;
                }
                let (f, c) = self.fresh(&running).await?;
                fresh += f;
                checked += c.max(n);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            let measured = Window {
                fresh,
                checked,
                rss: memory_mib(running.operator.pid(), "VmHWM")?,
                rss_now: memory_mib(running.operator.pid(), "VmRSS")?,
                ..self.counters(&running).await?.since(&start)
            };
            println!("{}", row(n, source, changing, &measured, &idle));
            load.set(false)?;
        }
        running.operator.stop()?;
        Ok(())
    }
}

fn row(n: usize, source: &Source, changing: bool, w: &Window, idle: &Window) -> String {
    let per_minute = |seconds: f64| seconds / (w.seconds / 60.0);
    let per_eval_ms = |seconds: f64| 1000.0 * seconds / w.evaluations.max(1.0);
    let idle_rate = |busy: f64, base: f64| busy - base * (w.seconds / idle.seconds);
    let plane = match (w.plane_cpu, idle.plane_cpu) {
        (Some((a, e)), Some((ia, ie))) => format!(
            "{:.1} / {:.1} | {:.2} + {:.2} ms",
            per_minute(a),
            per_minute(e),
            per_eval_ms(idle_rate(a, ia)),
            per_eval_ms(idle_rate(e, ie)),
        ),
        _ => "n/a | n/a".into(),
    };
    let ms = |v: Option<f64>| {
        v.map_or("n/a".into(), |s| {
            if s.is_finite() {
                format!("≤ {:.0} ms", s * 1000.0)
            } else {
                "> 10 s".into()
            }
        })
    };
    format!(
        "| {n} | {} | {} | {:.2} | {:.0} / {:.0} | {:.2} ms | {:.1}% | {} / {} | {:.2} | {plane} |",
        source.name(),
        if changing { "every period" } else { "steady" },
        per_minute(w.operator_cpu),
        w.rss_now,
        w.rss,
        per_eval_ms(w.operator_cpu),
        100.0 * w.fresh as f64 / w.checked.max(1) as f64,
        ms(w.p50),
        ms(w.p99),
        idle_rate(w.writes, idle.writes).max(0.0) / w.evaluations.max(1.0),
    )
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

fn env_number(name: &str, default: u64) -> Result<u64> {
    match std::env::var(name) {
        Ok(text) => text.trim().parse().with_context(|| format!("{name}={text:?}")),
        Err(_) => Ok(default),
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let Some(kubeconfig) = kubeconfig_or_skip("load benchmark") else {
        return Ok(());
    };
    let sizes: Vec<usize> = std::env::var("FERROSCALE_LOAD_SIZES")
        .unwrap_or_else(|_| "100,1000".into())
        .split(',')
        .map(|s| s.trim().parse())
        .collect::<Result<_, _>>()
        .context("FERROSCALE_LOAD_SIZES")?;
    let source = match std::env::var_os("FERROSCALE_E2E_METRICS_FILE") {
        Some(file) => Source::Cpu(PathBuf::from(file)),
        None => {
            if !prometheus_installed() {
                bail!("neither FERROSCALE_E2E_METRICS_FILE nor a prometheus binary: no metric to drive");
            }
            let exporter = Exporter::start(100.0).await;
            let prometheus = PrometheusServer::start(exporter.port);
            Source::Prometheus { exporter, prometheus }
        }
    };
    let client = client(&kubeconfig).await?;
    install_crds(&client).await?;
    let bench = Bench {
        plane: Plane::from_env()?,
        kubeconfig,
        client: client.clone(),
        minutes: env_number("FERROSCALE_LOAD_MINUTES", 3)?,
        idle: Duration::from_secs(env_number("FERROSCALE_LOAD_IDLE_SECONDS", 60)?),
    };
    let version = client.apiserver_version().await?;
    println!(
        "Kubernetes {}; {} min per window, sync period {SYNC_PERIOD:?}, {PODS_PER_TARGET} pods per target",
        version.git_version, bench.minutes
    );
    println!(
        "| Autoscalers | metric | values | operator CPU s/min | RSS MiB at end / peak | operator CPU per evaluation | evaluated within 16 s | reconcile p50 / p99 | writes per evaluation | kube-apiserver / etcd CPU s/min | kube-apiserver + etcd CPU per evaluation over idle |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for n in sizes {
        bench.run_size(n, &source).await?;
    }
    Ok(())
}
