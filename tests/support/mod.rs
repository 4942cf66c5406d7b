//! Shared pieces of the end-to-end tests: a client for the cluster named by
//! FERROSCALE_E2E_KUBECONFIG, CRD installation, a throw-away namespace, the operator as a
//! subprocess, and waiting on conditions with deadlines (never fixed sleeps).

#![allow(dead_code)] // each test file uses a different subset

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub mod files;
pub mod prometheus;
pub mod proxy;

use anyhow::{Context, Result, bail};
use ferroscale_api::crd::KubeVersion;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};

pub const KUBECONFIG_VAR: &str = "FERROSCALE_E2E_KUBECONFIG";

/// The kubeconfig to use, or None after printing the one line that says the test is skipped.
pub fn kubeconfig_or_skip(test: &str) -> Option<PathBuf> {
    match std::env::var_os(KUBECONFIG_VAR) {
        Some(path) => Some(PathBuf::from(path)),
        None => {
            println!("skipped {test}: set {KUBECONFIG_VAR} to a kubeconfig to run the end-to-end tests");
            None
        }
    }
}

pub async fn client(kubeconfig: &Path) -> Result<Client> {
    let kc = Kubeconfig::read_from(kubeconfig).with_context(|| format!("reading {}", kubeconfig.display()))?;
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?;
    Ok(Client::try_from(config)?)
}

/// Polls `check` until it returns Some, or fails after `deadline` naming `what`.
pub async fn wait_for<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let give_up = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(value) = check().await? {
            return Ok(value);
        }
        if tokio::time::Instant::now() >= give_up {
            bail!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The API server's Kubernetes version.
pub async fn server_version(client: &Client) -> Result<KubeVersion> {
    let info = client
        .apiserver_version()
        .await
        .context("reading the server's /version")?;
    format!("{}.{}", info.major, info.minor)
        .parse()
        .map_err(anyhow::Error::msg)
}

/// Applies ferroscale's CRDs (server-side, as `ferroscale crds --kube-version` renders them for
/// this server) and waits until the API server serves them.
pub async fn install_crds(client: &Client) -> Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in ferroscale_api::crd::for_kube_version(server_version(client).await?) {
        let name = crd.metadata.name.clone().unwrap_or_default();
        api.patch(
            &name,
            &PatchParams::apply("ferroscale-e2e").force(),
            &Patch::Apply(&crd),
        )
        .await
        .with_context(|| format!("applying CRD {name}"))?;
        wait_for(
            &format!("CRD {name} to be established"),
            Duration::from_secs(60),
            || {
                let api = api.clone();
                let name = name.clone();
                async move {
                    let crd = api.get(&name).await?;
                    let established = crd
                        .status
                        .and_then(|s| s.conditions)
                        .unwrap_or_default()
                        .iter()
                        .any(|c| c.type_ == "Established" && c.status == "True");
                    Ok(established.then_some(()))
                }
            },
        )
        .await?;
    }
    Ok(())
}

/// A namespace deleted when the test ends, however it ends.
pub struct TestNamespace {
    pub name: String,
    kubeconfig: PathBuf,
}

impl TestNamespace {
    pub async fn create(client: &Client, kubeconfig: &Path, prefix: &str) -> Result<Self> {
        // Unique among tests running at once: the process id (nextest runs each test in its
        // own process), a counter (tests sharing a process), and the time (earlier runs).
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!(
            "{prefix}-{}-{n}-{}",
            std::process::id(),
            jiff::Timestamp::now().as_millisecond() % 100_000
        );
        let api: Api<Namespace> = Api::all(client.clone());
        let ns: Namespace = serde_json::from_value(
            serde_json::json!({"metadata": {"name": name, "labels": {"ferroscale.dev/e2e": "true"}}}),
        )?;
        api.create(&PostParams::default(), &ns)
            .await
            .with_context(|| format!("creating namespace {name}"))?;
        Ok(Self {
            name,
            kubeconfig: kubeconfig.to_path_buf(),
        })
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        let (name, kubeconfig) = (self.name.clone(), self.kubeconfig.clone());
        // Drop cannot await: delete from a short-lived runtime of its own.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Runtime::new() else { return };
            rt.block_on(async {
                if let Ok(client) = client(&kubeconfig).await {
                    let _ = Api::<Namespace>::all(client)
                        .delete(&name, &DeleteParams::background())
                        .await;
                }
            });
        })
        .join();
    }
}

/// The operator, run from this build as a subprocess against the test cluster; killed on drop.
pub struct Operator {
    child: Child,
}

impl Operator {
    pub fn start(kubeconfig: &Path, args: &[&str]) -> Result<Self> {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ferroscale"));
        command.arg("run").args(args);
        // Operators of tests running side by side must not compete for one admin port.
        if !args.contains(&"--admin-addr") {
            command.args(["--admin-addr", "127.0.0.1:0"]);
        }
        let child = command
            .env("KUBECONFIG", kubeconfig)
            .env("FERROSCALE_LOG_FILTER", "info,ferroscale_controller=debug")
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting ferroscale run")?;
        Ok(Self { child })
    }

    /// The operator's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the operator is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Stops the operator as Kubernetes would (SIGTERM), waiting for it to exit.
    pub fn stop(self) -> Result<()> {
        self.signal("TERM")
    }

    /// Kills the operator (SIGKILL), as a crashed node would: nothing is released.
    pub fn kill(self) -> Result<()> {
        self.signal("KILL")
    }

    fn signal(mut self, signal: &str) -> Result<()> {
        #[cfg(unix)]
        {
            let pid = self.child.id().to_string();
            let _ = Command::new("kill").args([&format!("-{signal}"), &pid]).status();
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("the operator did not stop within 30s of SIG{signal}")
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs kubectl against the test cluster; the output, or an error carrying its stderr.
pub fn kubectl(kubeconfig: &Path, args: &[&str]) -> Result<String> {
    let kubectl = std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into());
    let out = Command::new(&kubectl)
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .output()
        .with_context(|| format!("running {kubectl}"))?;
    if !out.status.success() {
        bail!(
            "kubectl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The fake metrics API's values file (the local control plane's `run/metrics.json`), named
/// by FERROSCALE_E2E_METRICS_FILE; None after printing why the test is skipped.
pub fn metrics_file_or_skip(test: &str) -> Option<PathBuf> {
    match std::env::var_os("FERROSCALE_E2E_METRICS_FILE") {
        Some(path) => Some(PathBuf::from(path)),
        None => {
            println!(
                "skipped {test}: set FERROSCALE_E2E_METRICS_FILE to the values file of the fake metrics API \
                 (e.g. /opt/k8s/run/metrics.json of ../shared/controlplane)"
            );
            None
        }
    }
}

/// The CPU usage the fake metrics API reports for every pod of one namespace; the entry is
/// removed on drop.
pub struct FakeCpu {
    file: PathBuf,
    namespace: String,
}

impl FakeCpu {
    pub fn new(file: &Path, namespace: &str) -> Self {
        Self {
            file: file.to_path_buf(),
            namespace: namespace.to_string(),
        }
    }

    /// Every pod of the namespace uses `millicores`.
    pub fn set(&self, millicores: u32) -> Result<()> {
        self.edit(|pods| {
            pods.insert(self.namespace.clone(), serde_json::json!({"*": {"cpu": millicores}}));
        })
    }

    fn edit(&self, change: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>)) -> Result<()> {
        // Tests of several processes may edit the file: take a lock file while changing it.
        let lock = self.file.with_extension("lock");
        let give_up = std::time::Instant::now() + Duration::from_secs(30);
        while std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&lock)
            .is_err()
        {
            if std::time::Instant::now() > give_up {
                bail!("{} stayed locked for 30s", lock.display());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let result = (|| {
            let text =
                std::fs::read_to_string(&self.file).with_context(|| format!("reading {}", self.file.display()))?;
            let mut doc: serde_json::Value = serde_json::from_str(&text)?;
            let root = doc.as_object_mut().context("metrics file is not a JSON object")?;
            let pods = root
                .entry("pods")
                .or_insert_with(|| serde_json::json!({}))
                .as_object_mut()
                .context("pods is not an object")?;
            change(pods);
            let temporary = self.file.with_extension(format!("tmp{}", std::process::id()));
            std::fs::write(&temporary, serde_json::to_vec(&doc)?)?;
            std::fs::rename(&temporary, &self.file)?;
            anyhow::Ok(())
        })();
        let _ = std::fs::remove_file(&lock);
        result
    }
}

impl Drop for FakeCpu {
    fn drop(&mut self) {
        let _ = self.edit(|pods| {
            pods.remove(&self.namespace);
        });
    }
}

/// A throw-away namespace on the test cluster, with the CRDs installed and a real Prometheus
/// scraping an exporter whose value the test sets: how the scaling tests drive the operator.
pub struct Driven {
    pub kubeconfig: PathBuf,
    pub client: Client,
    pub ns: TestNamespace,
    pub exporter: prometheus::Exporter,
    pub prometheus: prometheus::PrometheusServer,
}

impl Driven {
    /// The operator of this build, on the test's namespace, evaluating every 2 s and querying
    /// the test's Prometheus, with `extra` flags.
    pub fn operator_with(&self, extra: &[&str]) -> Result<Operator> {
        let mut args = vec![
            "--namespace",
            &self.ns.name,
            "--sync-period",
            "2s",
            "--prometheus-url",
            &self.prometheus.url,
        ];
        args.extend_from_slice(extra);
        Operator::start(&self.kubeconfig, &args)
    }

    /// [`Self::operator_with`] with no extra flags.
    pub fn operator(&self) -> Result<Operator> {
        self.operator_with(&[])
    }

    /// None (the test skips) without a cluster or without Prometheus; the exporter starts at
    /// `initial`.
    pub async fn setup(test: &str, prefix: &str, initial: f64) -> Result<Option<Self>> {
        let Some(kubeconfig) = kubeconfig_or_skip(test) else {
            return Ok(None);
        };
        if !prometheus::prometheus_installed() {
            return Ok(None);
        }
        let client = client(&kubeconfig).await?;
        install_crds(&client).await?;
        let ns = TestNamespace::create(&client, &kubeconfig, prefix).await?;
        let exporter = prometheus::Exporter::start(initial).await;
        let prometheus = prometheus::PrometheusServer::start(exporter.port);
        Ok(Some(Self {
            kubeconfig,
            client,
            ns,
            exporter,
            prometheus,
        }))
    }
}

/// A GET over plain HTTP/1.0 (an operator's admin server, a Prometheus); the body, or an error.
pub async fn http_get(addr: &str, path: &str) -> Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::time::timeout(Duration::from_secs(3), tokio::net::TcpStream::connect(addr))
        .await
        .with_context(|| format!("connecting to {addr}"))??;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await?;
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut response)).await??;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    anyhow::ensure!(
        head.starts_with("HTTP/1.") && head.contains(" 200 "),
        "GET {addr}{path}: {head}"
    );
    Ok(body.to_string())
}

/// The last-evaluation gauges on an operator's /metrics: (namespace, name) and Unix seconds.
pub fn last_evaluations(metrics: &str) -> Vec<((String, String), i64)> {
    metrics
        .lines()
        .filter_map(|l| l.strip_prefix("ferroscale_autoscaler_last_evaluation_timestamp_seconds{"))
        .filter_map(|l| {
            let label = |key: &str| Some(l.split(&format!("{key}=\"")).nth(1)?.split('"').next()?.to_string());
            let at = l.rsplit(' ').next()?.trim().parse::<f64>().ok()? as i64;
            Some(((label("namespace")?, label("autoscaler")?), at))
        })
        .collect()
}

/// The value of an unlabelled gauge on an operator's /metrics.
pub fn gauge(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// A PodSet of `replicas` pause pods labelled `app: NAME`, for the fake kubelet to run.
pub fn pause_podset(name: &str, replicas: i32) -> Result<ferroscale_api::PodSet> {
    Ok(serde_json::from_value(serde_json::json!({
        "apiVersion": "ferroscale.dev/v1alpha1", "kind": "PodSet", "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"terminationGracePeriodSeconds": 0, "containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10"}]}}}
    }))?)
}

/// The HorizontalPodAutoscaler version to use: autoscaling/v2 when served, else v2beta2.
pub async fn newest_hpa_version(client: &Client) -> Result<&'static str> {
    let groups = client.list_api_groups().await?;
    let served: Vec<String> = groups
        .groups
        .iter()
        .filter(|g| g.name == "autoscaling")
        .flat_map(|g| g.versions.iter().map(|v| v.version.clone()))
        .collect();
    ["v2", "v2beta2"]
        .into_iter()
        .find(|v| served.iter().any(|s| s == v))
        .with_context(|| format!("the server serves neither autoscaling/v2 nor autoscaling/v2beta2 (only {served:?})"))
}
