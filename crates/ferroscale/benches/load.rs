//! Load benchmark of the whole operator against a real API server, beside the upstream HPA
//! controller run the same way on the same objects: N PodSets of P pods each (default 100
//! and 1,000 targets of 10 pods), all in one namespace, each scaled on CPU; first with metrics
//! held exactly on target, so that nothing scales and only evaluation is measured, then with
//! metrics that change every sync period (still inside the tolerance), so that every evaluation
//! has something new to write.
//!
//! Per size the PodSets and their pods are created once and an idle baseline is taken with
//! only the PodSet controller running (its rates are printed after the table). Then each
//! controller is measured in turn:
//! - `ferroscale`: N Autoscalers, and the operator started with `autoscaler,podset` (with
//!   FERROSCALE_LOAD_PODSETS_APART=1, with `autoscaler` alone while a PodSet-only operator keeps
//!   the pods, as for upstream); the Autoscalers are deleted afterwards (its conflict checks
//!   would flag an HPA on a target).
//! - `upstream`: N `autoscaling/v2beta2` (or v2) HorizontalPodAutoscalers with the same CPU
//!   target and bounds, evaluated by a kube-controller-manager of its own that runs only the
//!   HPA controller (`--kube-api-qps=200`, 15 s sync period) while a PodSet-only operator keeps
//!   the pods; the plane's own kube-controller-manager must not run the HPA controller.
//!
//! It reports, per size, controller and metric mode: the controller's CPU seconds per minute,
//! its RSS at the end of the window and its peak RSS since it started, and CPU per evaluation;
//! the share of autoscalers evaluated within the sync period; the time from the controller's
//! start until every autoscaler was evaluated once, and from its caches having synced
//! (ferroscale's /readyz turning ready; kube-controller-manager logging so), seen through a watch
//! of the autoscalers' status; ferroscale's reconcile p50/p99; writes to the API server per
//! evaluation (mutating requests on the resources the controllers write, from the API server's
//! own `apiserver_request_total`, over its idle rate); kube-apiserver's and etcd's CPU per
//! minute and per evaluation over the idle baseline; and the fake metrics API's CPU per
//! evaluation over idle (what metrics-server would cost).
//!
//! How evaluations are counted: ferroscale's from its own `ferroscale_reconciles_total`, and
//! its share evaluated within the period (+1 s) from
//! `ferroscale_autoscaler_last_evaluation_timestamp_seconds` (read every second, every 5 s
//! above 1,000). kube-controller-manager 1.19 exports no HPA metrics, and each HPA evaluation
//! reads its target's scale once, so upstream's evaluations are the API server's `GET`s of
//! `podsets/scale` over the window (over idle), and its share evaluated within the period is
//! estimated from that rate: evaluations / (N × window / 15 s), at most 100 % (shown for
//! ferroscale too, whose evaluations read the scale once as well: each window prints both
//! counts to stderr).
//!
//! Environment:
//! - FERROSCALE_E2E_KUBECONFIG: the cluster (required; without it the benchmark skips).
//! - FERROSCALE_E2E_METRICS_FILE: the fake metrics API's values file of the local control
//!   plane: Autoscalers then scale on CPU from metrics.k8s.io (as the HPA's users do); without
//!   it, on a Prometheus query (needs the `prometheus` binary; ferroscale only).
//! - FERROSCALE_LOAD_PIDS: the control plane's pid directory (e.g. /opt/k8s/run/pids), for the
//!   kube-apiserver, etcd and fake metrics API columns (n/a without it); `upstream` needs it:
//!   the plane's `run/controller-manager.kubeconfig` beside it, and its kube-controller-manager
//!   is checked.
//! - FERROSCALE_LOAD_SIZES (default `100,1000`), FERROSCALE_LOAD_PODS (pods per target,
//!   default 10), FERROSCALE_LOAD_MINUTES (per window, default 3),
//!   FERROSCALE_LOAD_IDLE_SECONDS (baseline, default 60).
//! - FERROSCALE_LOAD_MODES: `steady`, `changing` or both (default), comma-separated.
//! - FERROSCALE_LOAD_CONTROLLERS: `ferroscale`, `upstream` or both, measured in that order
//!   (default `ferroscale`).
//! - FERROSCALE_LOAD_KCM: the kube-controller-manager binary for `upstream` (default
//!   `/opt/k8s/bin/kube-controller-manager`); its log is `load-kcm-N.log` in the target
//!   directory.
//! - FERROSCALE_LOAD_PODSETS_APART=1: ferroscale's measured process runs the Autoscaler
//!   controller alone, its targets' pods kept by a PodSet-only operator beside it (as in a
//!   cluster whose targets are Deployments, and as upstream is measured).
//! - FERROSCALE_LOAD_PERF=1: `perf record` of the operator for 60 s of ferroscale's steady
//!   window (`load-perf-N.data` in the target directory), its top symbols printed at the end.

#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmark code: a failed unwrap is a failed run

#[path = "../../../tests/support/mod.rs"]
mod support;

use std::collections::HashSet;
use std::fmt::Debug;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use ferroscale_api::{Autoscaler, PodSet};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, PostParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use support::prometheus::{Exporter, PrometheusServer, free_port, prometheus_installed};
use support::*;

const SYNC_PERIOD: Duration = Duration::from_secs(15);
/// Resources the controllers write; their mutating requests are counted.
const WRITTEN: &[&str] = &["autoscalers", "horizontalpodautoscalers", "podsets", "pods", "events"];
/// Objects created at once, and how often creation reports its progress.
const CREATE_CONCURRENCY: usize = 16;
const PROGRESS_EVERY: usize = 1000;
/// Page size of every list: a whole list of 10,000 objects is one large response otherwise.
const PAGE: u32 = 500;
/// How long perf records the operator.
const PERF_SECONDS: u64 = 60;
/// The upstream controller's client limits, raised so that it can keep its 15 s promise.
const KCM_QPS: &str = "--kube-api-qps=200";
const KCM_BURST: &str = "--kube-api-burst=400";
/// What kube-controller-manager logs once the HPA controller's informers have synced.
const KCM_SYNCED: &str = "Caches are synced for HPA";

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).with_context(|| format!("process {pid}"))?;
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

/// A process's command line, one argument per element.
fn cmdline(pid: u32) -> Result<Vec<String>> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).with_context(|| format!("process {pid} is not running"))?;
    let args: Vec<String> = raw
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    if args.is_empty() {
        bail!("process {pid} has exited");
    }
    Ok(args)
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

/// The value of one label in a sample's label text.
fn label<'a>(labels: &'a str, name: &str) -> Option<&'a str> {
    labels
        .split(&format!("{name}=\""))
        .nth(1)
        .and_then(|v| v.split('"').next())
}

/// The autoscaler reconcile duration histogram on /metrics: (upper bound, cumulative count).
fn buckets(metrics: &str) -> Vec<(f64, f64)> {
    samples(metrics, "ferroscale_reconcile_duration_seconds_bucket")
        .into_iter()
        .filter(|(labels, _)| labels.contains("controller=\"autoscaler\""))
        .filter_map(|(labels, count)| {
            let le = label(labels, "le")?;
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

/// What the API server has served so far, from its own request counters.
#[derive(Debug, Clone, Copy, Default)]
struct Requests {
    /// Mutating requests on the resources the controllers write.
    writes: f64,
    /// GETs of a PodSet's scale: one per upstream HPA evaluation.
    scale_gets: f64,
}

async fn api_requests(client: &kube::Client) -> Result<Requests> {
    let request = http::Request::get("/metrics").body(Vec::new())?;
    let text = client
        .request_text(request)
        .await
        .context("reading the API server's /metrics")?;
    let mut requests = Requests::default();
    for (labels, value) in samples(&text, "apiserver_request_total") {
        let verb = label(labels, "verb");
        let resource = label(labels, "resource");
        let write = matches!(
            verb,
            Some("POST" | "PUT" | "PATCH" | "DELETE" | "APPLY" | "CREATE" | "UPDATE")
        );
        if write && resource.is_some_and(|r| WRITTEN.contains(&r)) {
            requests.writes += value;
        }
        if verb == Some("GET") && resource == Some("podsets") && label(labels, "subresource") == Some("scale") {
            requests.scale_gets += value;
        }
    }
    Ok(requests)
}

/// CPU seconds of the control plane's processes.
#[derive(Debug, Clone, Copy)]
struct PlaneCpu {
    apiserver: f64,
    etcd: f64,
    /// The fake metrics API, when its pid file is there.
    metrics: Option<f64>,
}

impl PlaneCpu {
    fn minus(self, start: PlaneCpu) -> PlaneCpu {
        PlaneCpu {
            apiserver: self.apiserver - start.apiserver,
            etcd: self.etcd - start.etcd,
            metrics: self.metrics.zip(start.metrics).map(|(a, b)| a - b),
        }
    }
}

/// The control plane processes whose CPU is reported, from the plane's pid files.
struct Plane {
    pids: PathBuf,
    apiserver: u32,
    etcd: u32,
    metrics: Option<u32>,
}

impl Plane {
    fn from_env() -> Result<Option<Self>> {
        let Some(dir) = std::env::var_os("FERROSCALE_LOAD_PIDS") else {
            return Ok(None);
        };
        let pids = PathBuf::from(dir);
        Ok(Some(Self {
            apiserver: pid_file(&pids, "kube-apiserver")?,
            etcd: pid_file(&pids, "etcd")?,
            metrics: pid_file(&pids, "fake-metrics-apiserver").ok(),
            pids,
        }))
    }

    fn cpu(&self) -> Result<PlaneCpu> {
        Ok(PlaneCpu {
            apiserver: cpu_seconds(self.apiserver)?,
            etcd: cpu_seconds(self.etcd)?,
            metrics: self.metrics.map(cpu_seconds).transpose()?,
        })
    }

    /// The plane's `run/` directory, beside its pid directory.
    fn run_dir(&self) -> PathBuf {
        self.pids.parent().unwrap_or(Path::new("/")).to_path_buf()
    }

    /// Fails unless the plane's own kube-controller-manager runs without the HPA controller
    /// (it would evaluate the benchmark's HPAs too) yet runs (its service-account token
    /// controller makes the credentials the benchmark's kube-controller-manager uses).
    fn check_own_kcm(&self) -> Result<()> {
        let pid = pid_file(&self.pids, "kube-controller-manager")
            .context("the plane's kube-controller-manager is not running (its pid file is missing)")?;
        let args = cmdline(pid).context("the plane's kube-controller-manager is not running")?;
        let controllers = args
            .iter()
            .enumerate()
            .find_map(|(i, a)| match a.strip_prefix("--controllers=") {
                Some(list) => Some(list.to_string()),
                None => (a == "--controllers").then(|| args.get(i + 1).cloned()).flatten(),
            })
            .unwrap_or_else(|| "*".into());
        let list: Vec<&str> = controllers.split(',').map(str::trim).collect();
        let hpa = list.contains(&"horizontalpodautoscaling")
            || (list.contains(&"*") && !list.contains(&"-horizontalpodautoscaling"));
        if hpa {
            bail!(
                "the plane's kube-controller-manager (pid {pid}) runs the HPA controller (--controllers={controllers}): \
                 it would evaluate the benchmark's HPAs beside the one measured. Restart the plane without it: \
                 /opt/k8s/down.sh; KCM_CONTROLLERS=serviceaccount-token,serviceaccount,namespace,deployment,replicaset,garbagecollector \
                 FAKE_METRICS_ARGS=--pod-cache /opt/k8s/up.sh"
            );
        }
        Ok(())
    }

    /// The fake metrics API's flags, as started.
    fn metrics_flags(&self) -> String {
        let Some(args) = self.metrics.and_then(|pid| cmdline(pid).ok()) else {
            return "not found".into();
        };
        let flags: Vec<&str> = args.iter().skip(2).map(String::as_str).collect();
        if flags.is_empty() {
            "no flags".into()
        } else {
            flags.join(" ")
        }
    }
}

fn pid_file(dir: &Path, name: &str) -> Result<u32> {
    let path = dir.join(format!("{name}.pid"));
    std::fs::read_to_string(&path)
        .with_context(|| path.display().to_string())?
        .trim()
        .parse()
        .with_context(|| path.display().to_string())
}

/// The controller measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Controller {
    Ferroscale,
    /// kube-controller-manager's HPA controller.
    Upstream,
}

impl Controller {
    fn parse(text: &str) -> Result<Self> {
        match text {
            "ferroscale" => Ok(Self::Ferroscale),
            "upstream" => Ok(Self::Upstream),
            _ => bail!("FERROSCALE_LOAD_CONTROLLERS: {text:?} is neither ferroscale nor upstream"),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Ferroscale => "ferroscale",
            Self::Upstream => "upstream HPA",
        }
    }
}

/// How the metric values behave over a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Exactly on target: nothing scales, nothing new to write.
    Steady,
    /// 6 % above and back every sync period: inside the tolerance, but a new status each time.
    Changing,
}

impl Mode {
    fn parse(text: &str) -> Result<Self> {
        match text {
            "steady" => Ok(Self::Steady),
            "changing" => Ok(Self::Changing),
            _ => bail!("FERROSCALE_LOAD_MODES: {text:?} is neither steady nor changing"),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Steady => "steady",
            Self::Changing => "changing every period",
        }
    }
}

/// What is measured over one window.
#[derive(Debug, Clone, Copy, Default)]
struct Window {
    /// Checks of Autoscalers evaluated within the sync period, and of all of them (ferroscale).
    fresh: usize,
    checked: usize,
    /// The controller's peak RSS since it started, and its RSS at the end of the window, MiB.
    rss: f64,
    rss_now: f64,
    /// Reconcile duration quantiles over the window (histogram bucket bounds; ferroscale).
    p50: Option<f64>,
    p99: Option<f64>,
    seconds: f64,
    cpu: f64,
    plane_cpu: Option<PlaneCpu>,
    requests: Requests,
    /// From ferroscale's own counter (0 for upstream: see `Requests::scale_gets`).
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

    /// The value that holds every target at its replicas, or one 6% above it (inside the
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
    cpu: f64,
    plane_cpu: Option<PlaneCpu>,
    requests: Requests,
    evaluations: f64,
    histogram: Vec<(f64, f64)>,
}

impl Counters {
    fn since(&self, start: &Counters) -> Window {
        Window {
            seconds: self.at.duration_since(start.at).as_secs_f64(),
            cpu: self.cpu - start.cpu,
            plane_cpu: self.plane_cpu.zip(start.plane_cpu).map(|(end, start)| end.minus(start)),
            requests: Requests {
                writes: self.requests.writes - start.requests.writes,
                scale_gets: self.requests.scale_gets - start.requests.scale_gets,
            },
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

/// The operator of one run, with its admin address.
struct Running {
    operator: Operator,
    admin: String,
}

/// A child process killed (and reaped) on drop, for the error paths; `stop` ends it gently.
struct Process {
    child: Child,
    what: &'static str,
}

impl Process {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM by pid, then SIGKILL if it has not exited within 30 s.
    fn stop(mut self) -> Result<()> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!(
            "{} (pid {}) did not stop within 30s of SIGTERM",
            self.what,
            self.child.id()
        )
    }

    /// Waits for the process to end by itself, at most `timeout`.
    async fn wait(&mut self, timeout: Duration) -> Result<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} (pid {}) still running after {timeout:?}",
                    self.what,
                    self.child.id()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // Ok without a signal when the child has already been reaped.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The controller under measurement.
#[derive(Clone, Copy)]
enum Subject<'a> {
    Ferroscale(&'a Running),
    Upstream(&'a Process),
}

impl Subject<'_> {
    fn pid(self) -> u32 {
        match self {
            Subject::Ferroscale(running) => running.operator.pid(),
            Subject::Upstream(kcm) => kcm.pid(),
        }
    }
}

/// From a controller's start until every autoscaler was evaluated once.
#[derive(Debug, Clone, Copy)]
struct FirstPass {
    from_start: Duration,
    /// From the controller's caches having synced: ferroscale's /readyz turning ready,
    /// kube-controller-manager logging "Caches are synced for HPA".
    from_synced: Option<Duration>,
}

/// The benchmark's settings, from the environment.
struct Settings {
    sizes: Vec<usize>,
    pods: i32,
    modes: Vec<Mode>,
    controllers: Vec<Controller>,
    minutes: u64,
    idle: Duration,
    kcm: PathBuf,
    perf: bool,
    /// ferroscale measured with the Autoscaler controller alone, a PodSet-only operator beside.
    podsets_apart: bool,
}

impl Settings {
    fn from_env() -> Result<Self> {
        let sizes = env_list("FERROSCALE_LOAD_SIZES", "100,1000")
            .iter()
            .map(|s| s.parse().with_context(|| format!("FERROSCALE_LOAD_SIZES: {s:?}")))
            .collect::<Result<_>>()?;
        let pods = env_number("FERROSCALE_LOAD_PODS", 10)?;
        if pods == 0 || pods > 1000 {
            bail!("FERROSCALE_LOAD_PODS={pods}: between 1 and 1000 pods per target");
        }
        let modes = env_list("FERROSCALE_LOAD_MODES", "steady,changing")
            .iter()
            .map(|m| Mode::parse(m))
            .collect::<Result<_>>()?;
        let controllers = env_list("FERROSCALE_LOAD_CONTROLLERS", "ferroscale")
            .iter()
            .map(|c| Controller::parse(c))
            .collect::<Result<_>>()?;
        let minutes = env_number("FERROSCALE_LOAD_MINUTES", 3)?;
        if minutes == 0 {
            bail!("FERROSCALE_LOAD_MINUTES=0: a window needs at least a minute");
        }
        Ok(Self {
            sizes,
            pods: pods as i32,
            modes,
            controllers,
            minutes,
            idle: Duration::from_secs(env_number("FERROSCALE_LOAD_IDLE_SECONDS", 60)?),
            kcm: std::env::var_os("FERROSCALE_LOAD_KCM")
                .map_or_else(|| PathBuf::from("/opt/k8s/bin/kube-controller-manager"), PathBuf::from),
            perf: env_flag("FERROSCALE_LOAD_PERF"),
            podsets_apart: env_flag("FERROSCALE_LOAD_PODSETS_APART"),
        })
    }

    fn window(&self) -> Duration {
        Duration::from_secs(self.minutes * 60)
    }
}

struct Bench {
    kubeconfig: PathBuf,
    client: kube::Client,
    plane: Option<Plane>,
    settings: Settings,
    source: Source,
    /// The HorizontalPodAutoscaler version created for `upstream` (v2 if served, else v2beta2).
    hpa: Option<ApiResource>,
    /// Where the kube-controller-manager log and perf data go.
    target: PathBuf,
}

/// Every how many seconds a window reads ferroscale's /metrics for its last-evaluation gauges:
/// every second up to 1,000 Autoscalers, every 5 s above (at 10,000 the page is about 9 MB,
/// and serving it every second would add over a CPU second per minute to the operator's cost).
fn freshness_interval(n: usize) -> u32 {
    if n <= 1000 { 1 } else { 5 }
}

/// Prints one progress line to stderr, stamped with the time since `since`.
fn progress(since: Instant, line: impl std::fmt::Display) {
    eprintln!("[{:>6.0} s] {line}", since.elapsed().as_secs_f64());
}

impl Bench {
    fn start_operator(&self, namespace: &str, controllers: &str) -> Result<Running> {
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
        args.extend(self.source.operator_args());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Ok(Running {
            operator: Operator::start(&self.kubeconfig, &args)?,
            admin,
        })
    }

    /// A kube-controller-manager that runs only the HPA controller, as the plane's own runs it
    /// (service-account credentials, so the HPA controller's own RBAC role), with the client
    /// limits raised. Its output goes to `log`.
    fn start_kcm(&self, log: &Path) -> Result<Process> {
        let plane = self.plane.as_ref().context("upstream needs FERROSCALE_LOAD_PIDS")?;
        let kubeconfig = plane.run_dir().join("controller-manager.kubeconfig");
        if !kubeconfig.exists() {
            bail!("{} is missing", kubeconfig.display());
        }
        let kubeconfig = kubeconfig.display().to_string();
        let out = std::fs::File::create(log).with_context(|| log.display().to_string())?;
        let child = Command::new(&self.settings.kcm)
            .args([
                format!("--kubeconfig={kubeconfig}"),
                format!("--authentication-kubeconfig={kubeconfig}"),
                format!("--authorization-kubeconfig={kubeconfig}"),
                "--bind-address=127.0.0.1".into(),
                format!("--secure-port={}", free_port()),
                "--port=0".into(),
                "--leader-elect=false".into(),
                "--controllers=horizontalpodautoscaling".into(),
                "--use-service-account-credentials=true".into(),
                format!("--horizontal-pod-autoscaler-sync-period={}s", SYNC_PERIOD.as_secs()),
                KCM_QPS.into(),
                KCM_BURST.into(),
                "--profiling=false".into(),
                "--v=2".into(),
            ])
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {}", self.settings.kcm.display()))?;
        Ok(Process {
            child,
            what: "kube-controller-manager",
        })
    }

    async fn counters(&self, subject: Subject<'_>) -> Result<Counters> {
        let (evaluations, histogram) = match subject {
            Subject::Ferroscale(running) => {
                let metrics = http_get(&format!("http://{}/metrics", running.admin)).await?;
                (evaluations(&metrics), buckets(&metrics))
            }
            Subject::Upstream(_) => (0.0, Vec::new()),
        };
        Ok(Counters {
            at: Instant::now(),
            cpu: cpu_seconds(subject.pid())?,
            plane_cpu: self.plane.as_ref().map(Plane::cpu).transpose()?,
            requests: api_requests(&self.client).await?,
            evaluations,
            histogram,
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

    fn hpa_api(&self, namespace: &str) -> Result<Api<DynamicObject>> {
        let resource = self.hpa.as_ref().context("no HorizontalPodAutoscaler version found")?;
        Ok(Api::namespaced_with(self.client.clone(), namespace, resource))
    }

    /// One size: PodSets and their pods created once, an idle baseline, then each controller.
    async fn run_size(&self, n: usize, notes: &mut Vec<String>) -> Result<()> {
        let since = Instant::now();
        let pods_per_target = self.settings.pods;
        let ns = TestNamespace::create(&self.client, &self.kubeconfig, "ferroscale-load").await?;
        progress(
            since,
            format_args!("{n} targets × {pods_per_target} pods in namespace {}", ns.name),
        );
        let load = Load::new(&self.source, &ns.name);
        load.set(false)?;
        let podsets: Api<PodSet> = Api::namespaced(self.client.clone(), &ns.name);
        create_all(since, "PodSets", n, &podsets, |name| {
            json!({
                "apiVersion": "ferroscale.dev/v1alpha1", "kind": "PodSet", "metadata": {"name": name},
                "spec": {"replicas": pods_per_target, "selector": {"matchLabels": {"app": name}},
                         "template": {"metadata": {"labels": {"app": name}}, "spec": {"terminationGracePeriodSeconds": 0, "containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10", "resources": {"requests": {"cpu": "100m", "memory": "4Mi"}}}]}}}
            })
        })
        .await?;

        // Pods first, with only the PodSet controller: the baseline has every pod in place.
        let mut podset_only = Some(self.start_operator(&ns.name, "podset")?);
        self.wait_for_pods(since, &podsets, n).await?;
        let idle = {
            let running = podset_only.as_ref().expect("started above");
            // The pods' last status writes, and the watchers catching up with them, are not idle.
            tokio::time::sleep(SYNC_PERIOD).await;
            let start = self.counters(Subject::Ferroscale(running)).await?;
            progress(since, format_args!("idle baseline: {:?}", self.settings.idle));
            tokio::time::sleep(self.settings.idle).await;
            self.counters(Subject::Ferroscale(running)).await?.since(&start)
        };
        let line = idle_line(n, &idle);
        progress(since, &line);
        notes.push(line);

        for controller in &self.settings.controllers {
            match controller {
                Controller::Ferroscale => {
                    let autoscalers: Api<Autoscaler> = Api::namespaced(self.client.clone(), &ns.name);
                    let metric = self.source.metric();
                    create_all(since, "Autoscalers", n, &autoscalers, |name| {
                        json!({
                            "apiVersion": "ferroscale.dev/v1alpha1", "kind": "Autoscaler", "metadata": {"name": name},
                            "spec": {"scaleTargetRef": {"apiVersion": "ferroscale.dev/v1alpha1", "kind": "PodSet", "name": name},
                                     "minReplicas": 1, "maxReplicas": 20, "metrics": [metric]}
                        })
                    })
                    .await?;
                    if !self.settings.podsets_apart
                        && let Some(running) = podset_only.take()
                    {
                        running.operator.stop()?;
                    }
                    let report = self.measure_ferroscale(since, n, &ns.name, &load, &idle).await?;
                    notes.extend(report);
                    // The pods stay, kept by a PodSet-only operator, for the next controller.
                    let restarted = match podset_only {
                        Some(_) => None,
                        None => Some((self.start_operator(&ns.name, "podset")?, Instant::now())),
                    };
                    delete_all(since, "Autoscalers", &autoscalers).await?;
                    if let Some((running, started)) = restarted {
                        // Its first lists are not the next controller's to pay for.
                        tokio::time::timeout(Duration::from_secs(600), ready_after(running.admin.clone(), started))
                            .await
                            .context("the PodSet-only operator was not ready within 10 minutes")?;
                        podset_only = Some(running);
                    }
                }
                Controller::Upstream => {
                    self.measure_upstream(since, n, &ns.name, &load, &idle).await?;
                }
            }
        }
        if let Some(running) = podset_only.take() {
            running.operator.stop()?;
        }
        drop(load);
        let name = ns.name.clone();
        drop(ns);
        wait_for_namespace_gone(since, &self.client, &name).await;
        progress(since, format_args!("size {n} done"));
        Ok(())
    }

    /// Waits until every PodSet reports all of its pods ready, listing them a page at a time,
    /// less often the more there are.
    async fn wait_for_pods(&self, since: Instant, podsets: &Api<PodSet>, n: usize) -> Result<()> {
        let pods = n as i64 * i64::from(self.settings.pods);
        let every = Duration::from_secs(if n <= 1000 { 1 } else { 10 });
        let deadline = Duration::from_secs(900) + Duration::from_millis(150) * pods as u32;
        let started = Instant::now();
        let mut reported = (0i64, Instant::now());
        loop {
            let ready: i64 = list_all(podsets)
                .await?
                .iter()
                .map(|p| i64::from(p.status.as_ref().map_or(0, |s| s.ready_replicas)))
                .sum();
            if ready >= pods {
                progress(
                    since,
                    format_args!(
                        "{ready} pods ready, {:.0} s after the PodSets",
                        started.elapsed().as_secs_f64()
                    ),
                );
                return Ok(());
            }
            if ready / PROGRESS_EVERY as i64 > reported.0 / PROGRESS_EVERY as i64
                || reported.1.elapsed() >= Duration::from_secs(30)
            {
                progress(since, format_args!("{ready} of {pods} pods ready"));
                reported = (ready, Instant::now());
            }
            if started.elapsed() >= deadline {
                bail!("timed out after {deadline:?} waiting for {pods} ready pods ({ready} ready)");
            }
            tokio::time::sleep(every).await;
        }
    }

    /// ferroscale's part of a size: the operator with both controllers on the Autoscalers,
    /// through each metric mode. Returns perf's report when asked for one.
    async fn measure_ferroscale(
        &self,
        since: Instant,
        n: usize,
        namespace: &str,
        load: &Load<'_>,
        idle: &Window,
    ) -> Result<Option<String>> {
        let autoscalers: Api<Autoscaler> = Api::namespaced(self.client.clone(), namespace);
        let controllers = if self.settings.podsets_apart {
            "autoscaler"
        } else {
            "autoscaler,podset"
        };
        let running = self.start_operator(namespace, controllers)?;
        let started = Instant::now();
        progress(since, format_args!("ferroscale started with {controllers}"));
        let ready = tokio::spawn(ready_after(running.admin.clone(), started));
        let from_start = first_pass(since, started, autoscalers, "Autoscalers", n, |a| {
            a.status.as_ref().is_some_and(|s| s.recommendations.is_some())
        })
        .await?;
        let ready = tokio::time::timeout(Duration::from_secs(5), ready)
            .await
            .context("ferroscale evaluated every Autoscaler but its /readyz is not ready")??;
        let first = FirstPass {
            from_start,
            from_synced: Some(from_start.saturating_sub(ready)),
        };
        progress(
            since,
            format_args!(
                "ferroscale ready {:.1} s after its start; every Autoscaler evaluated {:.1} s after its start",
                ready.as_secs_f64(),
                from_start.as_secs_f64()
            ),
        );
        // One more period, so that the first evaluations' writes are behind us.
        tokio::time::sleep(SYNC_PERIOD).await;

        let mut report = None;
        for &mode in &self.settings.modes {
            let perf =
                (self.settings.perf && mode == Mode::Steady).then(|| self.target.join(format!("load-perf-{n}.data")));
            let measured = self
                .window(since, Subject::Ferroscale(&running), n, mode, load, perf.as_deref())
                .await?;
            print_row(&row(n, Controller::Ferroscale, mode, &measured, idle, &first));
            if let Some(data) = perf {
                report = Some(perf_report(n, &data)?);
            }
        }
        running.operator.stop()?;
        Ok(report)
    }

    /// The upstream HPA controller's part of a size: HPAs on the same PodSets, evaluated by a
    /// kube-controller-manager of the benchmark's own, through each metric mode.
    async fn measure_upstream(
        &self,
        since: Instant,
        n: usize,
        namespace: &str,
        load: &Load<'_>,
        idle: &Window,
    ) -> Result<()> {
        let hpas = self.hpa_api(namespace)?;
        let api_version = self.hpa.as_ref().map(|r| r.api_version.clone()).unwrap_or_default();
        create_all(since, "HorizontalPodAutoscalers", n, &hpas, |name| {
            json!({
                "apiVersion": api_version, "kind": "HorizontalPodAutoscaler", "metadata": {"name": name},
                "spec": {"scaleTargetRef": {"apiVersion": "ferroscale.dev/v1alpha1", "kind": "PodSet", "name": name},
                         "minReplicas": 1, "maxReplicas": 20,
                         "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]}
            })
        })
        .await?;
        let log = self.target.join(format!("load-kcm-{n}.log"));
        let kcm = self.start_kcm(&log)?;
        let started = Instant::now();
        progress(
            since,
            format_args!(
                "kube-controller-manager started (pid {}, log {})",
                kcm.pid(),
                log.display()
            ),
        );
        // Its log says when its caches have synced: its /healthz does not.
        let synced = {
            let log = log.clone();
            tokio::spawn(async move {
                loop {
                    if std::fs::read_to_string(&log).is_ok_and(|text| text.contains(KCM_SYNCED)) {
                        return started.elapsed();
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        };
        let from_start = first_pass(since, started, hpas.clone(), "HorizontalPodAutoscalers", n, |hpa| {
            hpa.data["status"]["conditions"]
                .as_array()
                .is_some_and(|c| !c.is_empty())
        })
        .await?;
        let synced = tokio::time::timeout(Duration::from_secs(5), synced).await;
        let first = FirstPass {
            from_start,
            from_synced: match synced {
                Ok(Ok(synced)) => Some(from_start.saturating_sub(synced)),
                _ => {
                    eprintln!("warning: no \"{KCM_SYNCED}\" in {}", log.display());
                    None
                }
            },
        };
        progress(
            since,
            format_args!(
                "every HorizontalPodAutoscaler evaluated {:.1} s after kube-controller-manager's start ({})",
                from_start.as_secs_f64(),
                first
                    .from_synced
                    .map_or("caches synced: not logged".into(), |d| format!(
                        "{:.1} s after its caches synced",
                        d.as_secs_f64()
                    )),
            ),
        );
        tokio::time::sleep(SYNC_PERIOD).await;
        check_hpas(since, &hpas, n).await?;

        for &mode in &self.settings.modes {
            let measured = self.window(since, Subject::Upstream(&kcm), n, mode, load, None).await?;
            print_row(&row(n, Controller::Upstream, mode, &measured, idle, &first));
        }
        check_hpas(since, &hpas, n).await?;
        kcm.stop()?;
        progress(since, "kube-controller-manager stopped");
        delete_all(since, "HorizontalPodAutoscalers", &hpas).await?;
        Ok(())
    }

    /// One measured window of `mode`; with `perf`, the subject is recorded into that file for
    /// the window's first minute.
    async fn window(
        &self,
        since: Instant,
        subject: Subject<'_>,
        n: usize,
        mode: Mode,
        load: &Load<'_>,
        perf: Option<&Path>,
    ) -> Result<Window> {
        let window = self.settings.window();
        progress(since, format_args!("window: {}, {window:?}", mode.name()));
        let (mut fresh, mut checked) = (0usize, 0usize);
        let start = self.counters(subject).await?;
        let mut recording = perf.map(|data| start_perf(subject.pid(), data)).transpose()?;
        let mut flips = 0u32;
        let check_every = freshness_interval(n);
        let mut tick = 0u32;
        while start.at.elapsed() < window {
            if mode == Mode::Changing && start.at.elapsed() >= SYNC_PERIOD * flips {
                flips += 1;
                load.set(flips % 2 == 1)?;
            }
            if let Subject::Ferroscale(running) = subject
                && tick.is_multiple_of(check_every)
            {
                let (f, c) = self.fresh(running).await?;
                fresh += f;
                checked += c.max(n);
            }
            tick += 1;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let end = self.counters(subject).await?;
        let measured = Window {
            fresh,
            checked,
            rss: memory_mib(subject.pid(), "VmHWM")?,
            rss_now: memory_mib(subject.pid(), "VmRSS")?,
            ..end.since(&start)
        };
        load.set(false)?;
        let expected = n as f64 * measured.seconds / SYNC_PERIOD.as_secs_f64();
        progress(
            since,
            format_args!(
                "{}: {} {:.0} GETs of podsets/scale, {:.0} writes; one evaluation per autoscaler per period \
                 would be {expected:.0}",
                mode.name(),
                match subject {
                    Subject::Ferroscale(_) =>
                        format!("{:.0} evaluations by ferroscale's counter,", measured.evaluations),
                    Subject::Upstream(_) => "kube-controller-manager:".into(),
                },
                measured.requests.scale_gets,
                measured.requests.writes,
            ),
        );
        if let Some(recording) = recording.as_mut() {
            let status = recording.wait(Duration::from_secs(PERF_SECONDS + 60)).await?;
            if !status.success() {
                bail!("perf record failed: {status}");
            }
        }
        Ok(measured)
    }
}

/// Counts the HPAs that the upstream controller evaluated successfully (ScalingActive and a
/// current metric), one page at a time; fails when none is.
async fn check_hpas(since: Instant, hpas: &Api<DynamicObject>, n: usize) -> Result<()> {
    let all = list_all(hpas).await?;
    let condition = |hpa: &DynamicObject, kind: &str| -> Option<(String, String)> {
        hpa.data["status"]["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == kind)
            .map(|c| {
                (
                    c["status"].as_str().unwrap_or_default().to_string(),
                    format!(
                        "{}: {}",
                        c["reason"].as_str().unwrap_or_default(),
                        c["message"].as_str().unwrap_or_default()
                    ),
                )
            })
    };
    let healthy = all
        .iter()
        .filter(|hpa| {
            condition(hpa, "ScalingActive").is_some_and(|(status, _)| status == "True")
                && hpa.data["status"]["currentMetrics"]
                    .as_array()
                    .is_some_and(|m| !m.is_empty())
        })
        .count();
    let replicas: i64 = all
        .iter()
        .filter_map(|hpa| hpa.data["status"]["desiredReplicas"].as_i64())
        .sum();
    let sample = all.first().map(|hpa| {
        format!(
            "{}: currentMetrics {}, AbleToScale {:?}, ScalingActive {:?}",
            hpa.name_any(),
            hpa.data["status"]["currentMetrics"],
            condition(hpa, "AbleToScale"),
            condition(hpa, "ScalingActive"),
        )
    });
    progress(
        since,
        format_args!(
            "{healthy} of {n} HPAs ScalingActive with a current metric, {replicas} desired replicas in all; e.g. {}",
            sample.unwrap_or_default()
        ),
    );
    if healthy == 0 {
        bail!("no HorizontalPodAutoscaler was evaluated successfully (see above and the kube-controller-manager log)");
    }
    Ok(())
}

/// Every object of `api`, listed a page at a time.
async fn list_all<K>(api: &Api<K>) -> Result<Vec<K>>
where
    K: Clone + DeserializeOwned + Debug,
{
    let mut items = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut params = ListParams::default().limit(PAGE);
        if let Some(token) = &token {
            params = params.continue_token(token);
        }
        let page = api.list(&params).await?;
        items.extend(page.items);
        token = page.metadata.continue_.filter(|t| !t.is_empty());
        if token.is_none() {
            return Ok(items);
        }
    }
}

/// Creates `load-0` to `load-{n-1}` from `manifest(name)`, a bounded number at once, retrying
/// each a few times, with a progress line every thousand.
async fn create_all<K>(
    since: Instant,
    what: &str,
    n: usize,
    api: &Api<K>,
    manifest: impl Fn(&str) -> Value,
) -> Result<()>
where
    K: kube::Resource + Clone + Serialize + DeserializeOwned + Debug,
{
    let started = Instant::now();
    let objects = (0..n)
        .map(|i| serde_json::from_value::<K>(manifest(&format!("load-{i}"))).context(what.to_string()))
        .collect::<Result<Vec<K>>>()?;
    let mut creates = futures::stream::iter(objects)
        .map(|object| create(api, object))
        .buffer_unordered(CREATE_CONCURRENCY);
    let mut done = 0usize;
    while let Some(result) = creates.next().await {
        result?;
        done += 1;
        if done.is_multiple_of(PROGRESS_EVERY) || done == n {
            progress(
                since,
                format_args!(
                    "{done} of {n} {what} created in {:.0} s",
                    started.elapsed().as_secs_f64()
                ),
            );
        }
    }
    Ok(())
}

/// Creates one object: five tries of at most a minute each; one already there counts as
/// created (an earlier try whose answer was lost).
async fn create<K>(api: &Api<K>, object: K) -> Result<()>
where
    K: kube::Resource + Clone + Serialize + DeserializeOwned + Debug,
{
    const TRIES: u32 = 5;
    let name = object.name_any();
    for attempt in 1..=TRIES {
        let error =
            match tokio::time::timeout(Duration::from_secs(60), api.create(&PostParams::default(), &object)).await {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(kube::Error::Api(status))) if status.code == 409 => return Ok(()),
                Ok(Err(error)) => error.to_string(),
                Err(_) => "no answer within 60s".to_string(),
            };
        if attempt == TRIES {
            bail!("creating {name}: {error} ({TRIES} tries)");
        }
        eprintln!("creating {name} (try {attempt}): {error}; trying again");
        tokio::time::sleep(Duration::from_secs(u64::from(attempt))).await;
    }
    unreachable!("the last try returns")
}

/// Deletes every object of `api` and waits until they are gone. The delete is issued again
/// every 30 s while some are left: at 10,000 objects one request may outlive the API server's
/// 60 s request timeout and stop part way.
async fn delete_all<K>(since: Instant, what: &str, api: &Api<K>) -> Result<()>
where
    K: kube::Resource + Clone + DeserializeOwned + Debug,
{
    let started = Instant::now();
    let deadline = Duration::from_secs(600);
    loop {
        if let Err(error) = api
            .delete_collection(&DeleteParams::default(), &ListParams::default())
            .await
        {
            eprintln!("deleting the {what}: {error}; waiting, then trying again");
        }
        let round = Instant::now();
        while round.elapsed() < Duration::from_secs(30) {
            let left = api.list_metadata(&ListParams::default().limit(1)).await?;
            if left.items.is_empty() {
                progress(
                    since,
                    format_args!("{what} deleted in {:.0} s", started.elapsed().as_secs_f64()),
                );
                return Ok(());
            }
            if started.elapsed() >= deadline {
                bail!("timed out after {deadline:?} waiting for the {what} to be deleted");
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
}

/// Waits (at most half an hour) until a size's namespace is gone, so that its deletion does
/// not load the next size's measurements; a warning, not a failure, when it takes longer.
async fn wait_for_namespace_gone(since: Instant, client: &kube::Client, name: &str) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let started = Instant::now();
    let mut reported = Instant::now();
    while started.elapsed() < Duration::from_secs(1800) {
        match namespaces.get_opt(name).await {
            Ok(None) => {
                progress(
                    since,
                    format_args!("namespace {name} deleted in {:.0} s", started.elapsed().as_secs_f64()),
                );
                return;
            }
            Ok(Some(_)) if reported.elapsed() >= Duration::from_secs(30) => {
                progress(since, format_args!("namespace {name} still being deleted"));
                reported = Instant::now();
            }
            Ok(Some(_)) => {}
            Err(error) => eprintln!("reading namespace {name}: {error}"),
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    eprintln!("warning: namespace {name} still there after 30 min; going on");
}

/// Watches `api` until `n` of its objects have been seen `done`; the time since `started`.
/// A watch rather than a list every second: at 10,000 objects each list would be tens of
/// megabytes for the API server under test to serve, while the watch sends each status
/// write once, and stamps it as it happens.
async fn first_pass<K>(
    since: Instant,
    started: Instant,
    api: Api<K>,
    what: &str,
    n: usize,
    done: impl Fn(&K) -> bool,
) -> Result<Duration>
where
    K: kube::Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    let deadline = Duration::from_secs(300) + Duration::from_millis(100) * n as u32;
    let events = watcher(api, watcher::Config::default().page_size(PAGE)).default_backoff();
    let mut events = std::pin::pin!(events);
    let mut evaluated: HashSet<String> = HashSet::new();
    let mut reported = Instant::now();
    while evaluated.len() < n {
        let left = deadline.saturating_sub(started.elapsed());
        if left.is_zero() {
            bail!(
                "timed out after {deadline:?}: {} of {n} {what} evaluated once",
                evaluated.len()
            );
        }
        match tokio::time::timeout(left.min(Duration::from_secs(10)), events.try_next()).await {
            Ok(Ok(Some(watcher::Event::Apply(object) | watcher::Event::InitApply(object)))) => {
                if done(&object) {
                    evaluated.insert(object.name_any());
                }
            }
            Ok(Ok(Some(_))) | Err(_) => {}
            Ok(Ok(None)) => bail!("the watch of {what} ended"),
            Ok(Err(error)) => eprintln!("watching {what}: {error}; going on"),
        }
        if reported.elapsed() >= Duration::from_secs(10) && evaluated.len() < n {
            progress(
                since,
                format_args!(
                    "{} of {n} {what} evaluated once, {:.0} s after the start",
                    evaluated.len(),
                    started.elapsed().as_secs_f64()
                ),
            );
            reported = Instant::now();
        }
    }
    Ok(started.elapsed())
}

/// `perf record` of `pid` for a minute, with call graphs, into `data`.
fn start_perf(pid: u32, data: &Path) -> Result<Process> {
    let child = Command::new("perf")
        .args(["record", "-F", "99", "-g", "-p", &pid.to_string(), "-o"])
        .arg(data)
        .args(["--", "sleep", &PERF_SECONDS.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .context("starting perf (is it installed?)")?;
    Ok(Process { child, what: "perf" })
}

/// The top symbols of a perf recording, by self time: the symbol lines of `perf report`
/// (the release build keeps its symbol table but has no frame pointers, so the call chains
/// under each are not worth printing).
fn perf_report(n: usize, data: &Path) -> Result<String> {
    let out = Command::new("perf")
        .args(["report", "-i"])
        .arg(data)
        .args(["--no-children", "--sort", "symbol", "--stdio"])
        .stderr(Stdio::null())
        .output()
        .context("running perf report")?;
    if !out.status.success() {
        bail!("perf report -i {} failed: {}", data.display(), out.status);
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let samples = text
        .lines()
        .find_map(|l| l.strip_prefix("# Samples: ")?.split_whitespace().next())
        .unwrap_or("?");
    let top: Vec<&str> = text
        .lines()
        .filter(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit()) && l.contains('%'))
        // Without the IPC columns, empty ("-") on a virtual machine.
        .map(|l| l.trim_end_matches(['-', ' ']))
        .take(25)
        .collect();
    Ok(format!(
        "Top 25 symbols of the operator by self time, {n} Autoscalers, steady ({samples} samples, {}):\n{}",
        data.display(),
        top.join("\n")
    ))
}

/// The idle baseline's rates, printed after the table.
fn idle_line(n: usize, idle: &Window) -> String {
    let per_minute = |seconds: f64| seconds / (idle.seconds / 60.0);
    let plane = idle
        .plane_cpu
        .map_or("kube-apiserver, etcd, fake metrics API: n/a".into(), |cpu| {
            format!(
                "kube-apiserver {:.2}, etcd {:.2}, fake metrics API {} CPU s/min",
                per_minute(cpu.apiserver),
                per_minute(cpu.etcd),
                cpu.metrics.map_or("n/a".into(), |m| format!("{:.2}", per_minute(m))),
            )
        });
    format!(
        "Idle baseline at {n} ({:.0} s, PodSet controller only): {plane}; {:.1} writes and {:.1} GETs of podsets/scale per minute.",
        idle.seconds,
        per_minute(idle.requests.writes),
        per_minute(idle.requests.scale_gets),
    )
}

fn print_row(row: &str) {
    println!("{row}");
    let _ = std::io::stdout().flush();
}

fn row(n: usize, controller: Controller, mode: Mode, w: &Window, idle: &Window, first: &FirstPass) -> String {
    let per_minute = |seconds: f64| seconds / (w.seconds / 60.0);
    let over_idle = |busy: f64, base: f64| busy - base * (w.seconds / idle.seconds);
    let evaluations = match controller {
        Controller::Ferroscale => w.evaluations,
        Controller::Upstream => over_idle(w.requests.scale_gets, idle.requests.scale_gets),
    }
    .max(1.0);
    let per_eval_ms = |seconds: f64| 1000.0 * seconds / evaluations;
    // The estimate upstream has to make do with, shown for ferroscale too so that the two
    // compare like with like: evaluations stretched past the period count against it.
    let from_rate = (100.0 * evaluations / (n as f64 * w.seconds / SYNC_PERIOD.as_secs_f64())).min(100.0);
    let evaluated = match controller {
        Controller::Ferroscale => format!(
            "{:.1}% (≈ {from_rate:.1}% from the rate)",
            100.0 * w.fresh as f64 / w.checked.max(1) as f64
        ),
        Controller::Upstream => format!("≈ {from_rate:.1}% from the rate"),
    };
    let first_pass = match first.from_synced {
        Some(synced) => format!(
            "{:.1} s ({:.1} s after caches synced)",
            first.from_start.as_secs_f64(),
            synced.as_secs_f64()
        ),
        None => format!("{:.1} s", first.from_start.as_secs_f64()),
    };
    let (plane, metrics_api) = match (w.plane_cpu, idle.plane_cpu) {
        (Some(busy), Some(base)) => (
            format!(
                "{:.1} / {:.1} | {:.2} + {:.2} ms",
                per_minute(busy.apiserver),
                per_minute(busy.etcd),
                per_eval_ms(over_idle(busy.apiserver, base.apiserver)),
                per_eval_ms(over_idle(busy.etcd, base.etcd)),
            ),
            busy.metrics.zip(base.metrics).map_or("n/a".into(), |(busy, base)| {
                format!("{:.2} ms", per_eval_ms(over_idle(busy, base)))
            }),
        ),
        _ => ("n/a | n/a".into(), "n/a".into()),
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
        "| {n} | {} | {} | {:.2} | {:.0} / {:.0} | {:.2} ms | {evaluated} | {first_pass} | {} / {} | {:.2} | {plane} | {metrics_api} |",
        controller.name(),
        mode.name(),
        per_minute(w.cpu),
        w.rss_now,
        w.rss,
        per_eval_ms(w.cpu),
        ms(w.p50),
        ms(w.p99),
        over_idle(w.requests.writes, idle.requests.writes).max(0.0) / evaluations,
    )
}

/// Polls an operator's /readyz every 100 ms until it is ready (its pod cache synced); the time
/// since `started`.
async fn ready_after(admin: String, started: Instant) -> Duration {
    let readyz = format!("http://{admin}/readyz");
    loop {
        if http_get(&readyz).await.is_ok_and(|body| body.trim() == "ok") {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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

/// Whether `name` is set to `1`.
fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| v == "1")
}

/// A comma-separated list, trimmed, without empty items.
fn env_list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// The HorizontalPodAutoscaler version to create: v2 when served, else v2beta2.
async fn hpa_resource(client: &kube::Client) -> Result<ApiResource> {
    let version = newest_hpa_version(client).await?;
    Ok(ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("autoscaling", version, "HorizontalPodAutoscaler"),
        "horizontalpodautoscalers",
    ))
}

/// The cargo target directory this benchmark was built in (its binary is target/PROFILE/deps/…).
fn target_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("target"))
}

#[tokio::main]
async fn main() -> Result<()> {
    let Some(kubeconfig) = kubeconfig_or_skip("load benchmark") else {
        return Ok(());
    };
    let settings = Settings::from_env()?;
    let plane = Plane::from_env()?;
    let upstream = settings.controllers.contains(&Controller::Upstream);
    let source = match std::env::var_os("FERROSCALE_E2E_METRICS_FILE") {
        Some(file) => Source::Cpu(PathBuf::from(file)),
        None if upstream => {
            bail!("upstream needs FERROSCALE_E2E_METRICS_FILE: the HPA scales on CPU from metrics.k8s.io")
        }
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
    let hpa = if upstream {
        let plane = plane.as_ref().context(
            "upstream needs FERROSCALE_LOAD_PIDS (the plane's run/pids): its kube-controller-manager is checked, \
             and run/controller-manager.kubeconfig beside it is the one started",
        )?;
        plane.check_own_kcm()?;
        if !settings.kcm.exists() {
            bail!("FERROSCALE_LOAD_KCM: {} does not exist", settings.kcm.display());
        }
        Some(hpa_resource(&client).await?)
    } else {
        None
    };
    install_crds(&client).await?;
    let version = client.apiserver_version().await?;
    let bench = Bench {
        kubeconfig,
        client: client.clone(),
        settings,
        source,
        hpa,
        target: target_dir(),
        plane,
    };
    let s = &bench.settings;
    println!(
        "Kubernetes {}; metric: {}; {} min per window; sync period {SYNC_PERIOD:?}; {} pods per target; fake metrics API: {}.",
        version.git_version,
        bench.source.name(),
        s.minutes,
        s.pods,
        bench.plane.as_ref().map_or("n/a".into(), Plane::metrics_flags),
    );
    println!(
        "ferroscale: {}; evaluations from its reconcile counter, evaluated within one period (+1 s) from its last-evaluation gauges (read every second; every 5 s above 1,000 Autoscalers), \
         and in parentheses estimated from the rate as for upstream{}.",
        if s.podsets_apart {
            "the Autoscaler controller alone, the pods kept by a PodSet-only operator beside it"
        } else {
            "one process with the Autoscaler and PodSet controllers"
        },
        if s.perf {
            "; perf record running for a minute of its steady window"
        } else {
            ""
        }
    );
    if let Some(hpa) = &bench.hpa {
        println!(
            "upstream HPA: {} objects, kube-controller-manager --controllers=horizontalpodautoscaling {KCM_QPS} {KCM_BURST}; \
             evaluations are the API server's GETs of podsets/scale, and the share evaluated within one period is estimated \
             from their rate (evaluations / (N × window / 15 s), at most 100 %).",
            hpa.api_version
        );
    }
    println!(
        "| Autoscalers | controller | values | CPU s/min | RSS MiB at end / peak | CPU per evaluation | evaluated within one period | start until all evaluated once | reconcile p50 / p99 | writes per evaluation | kube-apiserver / etcd CPU s/min | kube-apiserver + etcd CPU per evaluation over idle | fake metrics API CPU per evaluation over idle |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    // Idle baselines and perf reports, after the table.
    let mut notes = Vec::new();
    for &n in &s.sizes {
        bench.run_size(n, &mut notes).await?;
    }
    for note in notes {
        println!("\n{note}");
    }
    Ok(())
}
