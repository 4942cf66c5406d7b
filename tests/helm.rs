//! The user's path, for real: the image of `make image` running in containers on a real node,
//! installed with `helm install`, scaling real CPU burners on real metrics (Debian's Prometheus
//! scraping the kubelet's `/metrics/resource` and the operator's `/metrics`).
//!
//! Needs the 1.28 plane with the real node of hack/local-node (see its README), run on the node's
//! own host (the test starts Prometheus on the node's address and makes the burners burn through
//! a hostPath directory):
//!
//! ```sh
//! make image && hack/local-node/up.sh
//! FERROSCALE_E2E_KUBECONFIG=/opt/k8s128/kubeconfig FERROSCALE_E2E_NODE=local-node make e2e-node
//! ```
//!
//! Without both variables it says it was skipped. It installs releases and CRDs cluster-wide, so
//! it runs alone (`make e2e-node`), never beside the other end-to-end tests.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use ferroscale_api::{Autoscaler, PodSet};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, ListParams, LogParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use support::*;

const NODE_VAR: &str = "FERROSCALE_E2E_NODE";
const RELEASE: &str = "ferroscale";
const IMAGE: &str = "ghcr.io/ferroscale/ferroscale";
const BURNER_IMAGE: &str = "localhost/ferroscale-burner:local";
/// The chart's leader-election lease duration (the operator's default).
const LEASE_DURATION: Duration = Duration::from_secs(15);
/// The Autoscaler's own sync period and scale-down window.
const SYNC: Duration = Duration::from_secs(5);
const WINDOW: Duration = Duration::from_secs(60);
const CRDS: [&str; 2] = ["autoscalers.ferroscale.dev", "podsets.ferroscale.dev"];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// Runs helm against the test cluster: its stdout, or an error carrying its stderr.
fn helm(kubeconfig: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new(std::env::var("HELM").unwrap_or_else(|_| "helm".into()))
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .current_dir(repo())
        .output()
        .context("running helm")?;
    if !out.status.success() {
        bail!(
            "helm {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The values a user changes to install from the local image: the image, and (this cluster has a
/// fake node beside the real one) where the pods go.
fn image_values(node: &str) -> Vec<String> {
    vec![
        "--set".into(),
        format!("image.repository={IMAGE}"),
        "--set".into(),
        format!("image.tag={}", version()),
        "--set".into(),
        "image.pullPolicy=Never".into(),
        "--set-string".into(),
        format!("nodeSelector.kubernetes\\.io/hostname={node}"),
    ]
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Debian's Prometheus on the node's address (the operator's pods query it there), scraping the
/// real kubelet's /metrics/resource and the operator pods' /metrics. Debian builds Prometheus
/// without Kubernetes service discovery, so the test discovers the pods (by the chart's labels,
/// on its `admin` port) and keeps a file_sd file up to date. Killed, data removed, on drop.
struct Prometheus {
    child: Child,
    dir: PathBuf,
    addr: String,
    discovery: tokio::task::JoinHandle<()>,
}

impl Prometheus {
    fn start(node_ip: &str, pods: Api<Pod>) -> Result<Self> {
        let dir = std::env::temp_dir().join(format!("ferroscale-e2e-node-prometheus-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let config = format!(
            r#"global: {{scrape_interval: 2s, evaluation_interval: 2s}}
scrape_configs:
- job_name: kubelet
  scheme: https
  metrics_path: /metrics/resource
  tls_config: {{insecure_skip_verify: true}}
  static_configs: [{{targets: ['{node_ip}:10250']}}]
- job_name: ferroscale
  file_sd_configs: [{{files: ['{targets}'], refresh_interval: 2s}}]
"#,
            targets = dir.join("ferroscale-targets.json").display()
        );
        std::fs::write(dir.join("prometheus.yml"), config)?;
        let port = {
            let l = std::net::TcpListener::bind(format!("{node_ip}:0"))?;
            l.local_addr()?.port()
        };
        let addr = format!("{node_ip}:{port}");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("prometheus.log"))?)
            .spawn()
            .context("starting prometheus")?;
        let targets = dir.join("ferroscale-targets.json");
        std::fs::write(&targets, "[]")?;
        let discovery = tokio::spawn(async move {
            loop {
                if let Ok(list) = operator_pods(&pods).await {
                    let found: Vec<Value> = list
                        .iter()
                        .filter(|p| !p.1.is_empty())
                        .map(|p| json!({"targets": [format!("{}:8080", p.1)], "labels": {"pod": p.0}}))
                        .collect();
                    let tmp = targets.with_extension("tmp");
                    if std::fs::write(&tmp, Value::Array(found).to_string()).is_ok() {
                        let _ = std::fs::rename(&tmp, &targets);
                    }
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        Ok(Self {
            child,
            dir,
            addr,
            discovery,
        })
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The result vector of an instant query (empty when nothing matches).
    async fn query(&self, promql: &str) -> Result<Vec<Value>> {
        let body = http_get(&self.addr, &format!("/api/v1/query?query={}", url_encode(promql))).await?;
        let v: Value = serde_json::from_str(&body)?;
        ensure!(v["status"] == "success", "query {promql}: {body}");
        Ok(v["data"]["result"].as_array().cloned().unwrap_or_default())
    }

    /// The result matrix of a range query from `start` to `end` (Unix seconds).
    async fn query_range(&self, promql: &str, start: f64, end: f64, step: f64) -> Result<Vec<Value>> {
        let path = format!(
            "/api/v1/query_range?query={}&start={start:.3}&end={end:.3}&step={step}",
            url_encode(promql)
        );
        let body = http_get(&self.addr, &path).await?;
        let v: Value = serde_json::from_str(&body)?;
        ensure!(v["status"] == "success", "range query {promql}: {body}");
        Ok(v["data"]["result"].as_array().cloned().unwrap_or_default())
    }

    async fn scalar(&self, promql: &str) -> Result<Option<f64>> {
        Ok(self
            .query(promql)
            .await?
            .first()
            .and_then(|r| r["value"][1].as_str().and_then(|s| s.parse().ok())))
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        self.discovery.abort();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The operator's pods of the release: name, pod IP, ready, deleting.
async fn operator_pods(pods: &Api<Pod>) -> Result<Vec<(String, String, bool, bool)>> {
    let list = pods
        .list(&ListParams::default().labels("app.kubernetes.io/name=ferroscale"))
        .await?;
    Ok(list
        .items
        .into_iter()
        .map(|p| {
            let status = p.status.unwrap_or_default();
            let ready = status
                .conditions
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            (
                p.metadata.name.unwrap_or_default(),
                status.pod_ip.unwrap_or_default(),
                ready,
                p.metadata.deletion_timestamp.is_some(),
            )
        })
        .collect())
}

/// Every operator pod's log so far, kept by pod name (the longest read wins), so that pods
/// deleted later still count.
async fn collect_logs(pods: &Api<Pod>, logs: &mut BTreeMap<String, String>) -> Result<()> {
    for (name, ..) in operator_pods(pods).await? {
        if let Ok(text) = pods.logs(&name, &LogParams::default()).await {
            let entry = logs.entry(name).or_default();
            if text.len() > entry.len() {
                *entry = text;
            }
        }
    }
    Ok(())
}

async fn lease_holder(leases: &Api<Lease>) -> Result<Option<String>> {
    Ok(leases
        .get_opt(RELEASE)
        .await?
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
        .filter(|h| !h.is_empty()))
}

/// The newest evaluation of the Autoscaler `ns/name` any operator pod reports on /metrics.
async fn last_evaluation(pods: &Api<Pod>, ns: &str, name: &str) -> Option<f64> {
    let mut newest = None::<f64>;
    for (_, ip, ..) in operator_pods(pods).await.ok()? {
        if ip.is_empty() {
            continue;
        }
        let Ok(body) = http_get(&format!("{ip}:8080"), "/metrics").await else {
            continue;
        };
        for line in body.lines() {
            if line.starts_with("ferroscale_autoscaler_last_evaluation_timestamp_seconds{")
                && line.contains(&format!("namespace=\"{ns}\""))
                && line.contains(&format!("autoscaler=\"{name}\""))
                && let Some(v) = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok())
            {
                newest = Some(newest.map_or(v, |n| n.max(v)));
            }
        }
    }
    newest
}

async fn podset_replicas(podsets: &Api<PodSet>, name: &str) -> Result<i32> {
    Ok(podsets
        .get_scale(name)
        .await?
        .spec
        .and_then(|s| s.replicas)
        .unwrap_or(0))
}

/// Waits until the Deployment has rolled out: every replica updated, ready, and no old pod left.
async fn rolled_out(deployments: &Api<Deployment>, pods: &Api<Pod>) -> Result<Option<()>> {
    let d = deployments.get(RELEASE).await?;
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let st = d.status.unwrap_or_default();
    let done = st.observed_generation == d.metadata.generation
        && st.updated_replicas == Some(want)
        && st.ready_replicas == Some(want)
        && st.replicas == Some(want)
        && operator_pods(pods).await?.len() == want as usize;
    Ok(done.then_some(()))
}

/// The CRDs as `kubectl apply -f crds/` leaves them: created from the checked-in files, with no
/// Helm ownership.
async fn apply_crds_as_kubectl_would(client: &Client) -> Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for file in files::files_ending(&repo().join("crds"), ".yaml")? {
        let crd: CustomResourceDefinition = serde_yaml::from_str(&std::fs::read_to_string(&file)?)?;
        let name = crd.metadata.name.clone().unwrap_or_default();
        api.patch(&name, &PatchParams::apply("kubectl").force(), &Patch::Apply(&crd))
            .await
            .with_context(|| format!("applying {}", file.display()))?;
        // What an earlier Helm release left (the chart keeps CRDs on uninstall) goes: this is
        // the state of a cluster that never had the chart.
        let strip = json!({"metadata": {
            "labels": {"app.kubernetes.io/managed-by": null},
            "annotations": {"meta.helm.sh/release-name": null, "meta.helm.sh/release-namespace": null}}});
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&strip)).await?;
    }
    Ok(())
}

/// What the README says to run before `helm install` on such CRDs: let Helm adopt them.
async fn adopt_crds(client: &Client, release_ns: &str) -> Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for name in CRDS {
        let adopt = json!({"metadata": {
            "labels": {"app.kubernetes.io/managed-by": "Helm"},
            "annotations": {"meta.helm.sh/release-name": RELEASE, "meta.helm.sh/release-namespace": release_ns}}});
        api.patch(name, &PatchParams::default(), &Patch::Merge(&adopt)).await?;
    }
    Ok(())
}

fn burner_podset(name: &str, node: &str, control: &Path) -> Result<PodSet> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "ferroscale.dev/v1alpha1", "kind": "PodSet", "metadata": {"name": name},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}}, "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {
                "nodeSelector": {"kubernetes.io/hostname": node},
                "terminationGracePeriodSeconds": 2,
                "containers": [{"name": "burner", "image": BURNER_IMAGE, "imagePullPolicy": "Never",
                    "args": ["/control/burn"],
                    "resources": {"requests": {"cpu": "50m", "memory": "8Mi"}, "limits": {"cpu": "100m", "memory": "16Mi"}},
                    "securityContext": {"runAsNonRoot": true, "runAsUser": 65532, "allowPrivilegeEscalation": false,
                                        "readOnlyRootFilesystem": true, "capabilities": {"drop": ["ALL"]}},
                    "volumeMounts": [{"name": "control", "mountPath": "/control", "readOnly": true}]}],
                "volumes": [{"name": "control", "hostPath": {"path": control.display().to_string(), "type": "Directory"}}]
            }}}
    }))?)
}

/// The burners' CPU, as the Autoscaler asks Prometheus for it: cores used by all its pods.
fn cpu_query(ns: &str) -> String {
    format!("sum(rate(container_cpu_usage_seconds_total{{namespace=\"{ns}\",container=\"burner\"}}[20s]))")
}

fn burner_autoscaler(name: &str, ns: &str) -> Result<Autoscaler> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "ferroscale.dev/v1alpha1", "kind": "Autoscaler", "metadata": {"name": name},
        "spec": {
            "scaleTargetRef": {"apiVersion": "ferroscale.dev/v1alpha1", "kind": "PodSet", "name": name},
            "minReplicas": 1, "maxReplicas": 3, "syncPeriodSeconds": SYNC.as_secs(),
            // A burning pod uses its 100m limit: 2.5 times the 40m target, so 1 -> 3 at once.
            "metrics": [{"type": "Prometheus", "prometheus": {"query": cpu_query(ns),
                "target": {"type": "AverageValue", "averageValue": "40m"}}}],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": WINDOW.as_secs()}}
        }
    }))?)
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The dashboard's panels drawn from Prometheus over `start..end`, as one SVG: what Grafana
/// would show, for the README (FERROSCALE_E2E_DASHBOARD_SVG names the file to write).
async fn dashboard_svg(dashboard: &Value, prom: &Prometheus, start: f64, end: f64) -> Result<String> {
    const COLORS: [&str; 8] = [
        "#3274d9", "#e0752d", "#56a64b", "#c4162a", "#8f3bb8", "#f2cc0c", "#1f9d9d", "#8a8a8a",
    ];
    let (w, h, cols) = (560.0, 220.0, 2usize);
    let panels = dashboard["panels"].as_array().context("no panels")?;
    let rows = panels.len().div_ceil(cols);
    let (width, height) = (cols as f64 * (w + 20.0) + 20.0, rows as f64 * (h + 20.0) + 60.0);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"11\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"#111217\"/>\n\
         <text x=\"20\" y=\"32\" fill=\"#ccccdc\" font-size=\"18\">{} (make e2e-node on the real node, {:.0} s)</text>\n",
        xml_escape(dashboard["title"].as_str().unwrap_or("dashboard")),
        end - start
    );
    for (i, panel) in panels.iter().enumerate() {
        let (px, py) = (
            20.0 + (i % cols) as f64 * (w + 20.0),
            50.0 + (i / cols) as f64 * (h + 20.0),
        );
        let mut series = Vec::new();
        for target in panel["targets"].as_array().context("no targets")? {
            let expr = target["expr"]
                .as_str()
                .unwrap_or_default()
                .replace("$__rate_interval", "10s");
            let legend = target["legendFormat"].as_str().unwrap_or_default();
            for result in prom.query_range(&expr, start, end, 2.0).await? {
                let mut label = legend.to_string();
                if let Some(metric) = result["metric"].as_object() {
                    for (k, v) in metric {
                        label = label.replace(&format!("{{{{{k}}}}}"), v.as_str().unwrap_or_default());
                    }
                }
                let points: Vec<(f64, f64)> = result["values"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|p| Some((p[0].as_f64()?, p[1].as_str()?.parse::<f64>().ok()?)))
                    .filter(|(_, v)| v.is_finite())
                    .collect();
                series.push((label, points));
            }
        }
        let values = series.iter().flat_map(|(_, p)| p.iter().map(|(_, v)| *v));
        let (lo, hi) = values.fold((0.0f64, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
        let hi = if hi <= lo { lo + 1.0 } else { hi * 1.1 };
        let (ax, ay, aw, ah) = (px + 50.0, py + 40.0, w - 60.0, h - 60.0);
        svg += &format!(
            "<rect x=\"{px}\" y=\"{py}\" width=\"{w}\" height=\"{h}\" fill=\"#181b1f\" stroke=\"#2c3235\"/>\n\
             <text x=\"{}\" y=\"{}\" fill=\"#ccccdc\" font-size=\"13\">{}</text>\n\
             <line x1=\"{ax}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#2c3235\"/>\n\
             <text x=\"{}\" y=\"{}\" fill=\"#8e8e8e\" text-anchor=\"end\">{}</text>\n\
             <text x=\"{}\" y=\"{}\" fill=\"#8e8e8e\" text-anchor=\"end\">{}</text>\n\
             <text x=\"{ax}\" y=\"{}\" fill=\"#8e8e8e\">0 s</text>\n\
             <text x=\"{}\" y=\"{}\" fill=\"#8e8e8e\" text-anchor=\"end\">{:.0} s</text>\n",
            px + 8.0,
            py + 18.0,
            xml_escape(panel["title"].as_str().unwrap_or_default()),
            ay + ah,
            ax + aw,
            ay + ah,
            ax - 4.0,
            ay + 8.0,
            format_value(hi),
            ax - 4.0,
            ay + ah,
            format_value(lo),
            ay + ah + 14.0,
            ax + aw,
            ay + ah + 14.0,
            end - start
        );
        for (n, (label, points)) in series.iter().enumerate() {
            let color = COLORS[n % COLORS.len()];
            // A new line wherever the series has a gap (a pod gone, a rate not yet defined).
            let mut lines: Vec<Vec<(f64, f64)>> = Vec::new();
            for &(t, v) in points {
                match lines.last_mut() {
                    Some(line) if line.last().is_some_and(|(lt, _)| t - lt <= 6.0) => line.push((t, v)),
                    _ => lines.push(vec![(t, v)]),
                }
            }
            for line in lines {
                let coords: Vec<String> = line
                    .iter()
                    .map(|(t, v)| {
                        format!(
                            "{:.1},{:.1}",
                            ax + (t - start) / (end - start) * aw,
                            ay + ah - (v - lo) / (hi - lo) * ah
                        )
                    })
                    .collect();
                svg += &format!(
                    "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"1.5\" points=\"{}\"/>\n",
                    coords.join(" ")
                );
            }
            if n < 4 {
                svg += &format!(
                    "<text x=\"{}\" y=\"{}\" fill=\"{color}\" text-anchor=\"end\">{}</text>\n",
                    px + w - 8.0,
                    py + 18.0 + n as f64 * 12.0,
                    xml_escape(&label.chars().take(60).collect::<String>())
                );
            }
        }
    }
    svg += "</svg>\n";
    Ok(svg)
}

fn format_value(v: f64) -> String {
    if v.abs() >= 100.0 || v == 0.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

/// A directory the burners see as /control: they burn while `burn` exists in it.
struct Control(PathBuf);

impl Control {
    fn new() -> Result<Self> {
        let dir = std::env::temp_dir().join(format!("ferroscale-e2e-burn-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(Self(dir))
    }
    fn burn(&self, on: bool) -> Result<()> {
        let flag = self.0.join("burn");
        if on {
            std::fs::write(flag, b"")?;
        } else if flag.exists() {
            std::fs::remove_file(flag)?;
        }
        Ok(())
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Uninstalls the release when the test ends, however it ends: its cluster-scoped objects would
/// otherwise block the next run's install.
struct Release<'a> {
    kubeconfig: &'a Path,
    namespace: String,
}

impl Drop for Release<'_> {
    fn drop(&mut self) {
        let _ = helm(
            self.kubeconfig,
            &["uninstall", RELEASE, "--namespace", &self.namespace, "--wait"],
        );
    }
}

fn say(start: Instant, what: &str) {
    println!("[{:>6.1}s] {what}", start.elapsed().as_secs_f64());
}

#[tokio::test]
async fn helm_install_scale_on_real_cpu_fail_over_upgrade_and_uninstall_on_a_real_node() -> Result<()> {
    let test = "helm_install_scale_on_real_cpu_fail_over_upgrade_and_uninstall_on_a_real_node";
    let Some(kubeconfig) = kubeconfig_or_skip(test) else {
        return Ok(());
    };
    let Some(node_name) = std::env::var(NODE_VAR).ok().filter(|n| !n.is_empty()) else {
        println!("skipped {test}: set {NODE_VAR} to the real node's name (hack/local-node)");
        return Ok(());
    };
    if !prometheus::prometheus_installed() {
        return Ok(());
    }
    let t0 = Instant::now();
    let run_started = unix_now();
    let client = client(&kubeconfig).await?;

    // The node: Ready, and holding the operator's and the burner's images (nothing is pulled).
    let node = Api::<Node>::all(client.clone()).get(&node_name).await?;
    let status = node.status.clone().unwrap_or_default();
    let node_ip = status
        .addresses
        .unwrap_or_default()
        .into_iter()
        .find(|a| a.type_ == "InternalIP")
        .map(|a| a.address)
        .context("the node has no InternalIP")?;
    let images: Vec<String> = status
        .images
        .unwrap_or_default()
        .into_iter()
        .flat_map(|i| i.names.unwrap_or_default())
        .collect();
    for image in [format!("{IMAGE}:{}", version()), BURNER_IMAGE.to_string()] {
        ensure!(
            images.iter().any(|i| i.ends_with(&image)),
            "node {node_name} lacks {image}: make image, then hack/local-node/up.sh (or load.sh)"
        );
    }

    let release_ns = TestNamespace::create(&client, &kubeconfig, "ferroscale-e2e-release").await?;
    let work_ns = TestNamespace::create(&client, &kubeconfig, "ferroscale-e2e-burn").await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &release_ns.name);
    let leases: Api<Lease> = Api::namespaced(client.clone(), &release_ns.name);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &release_ns.name);
    let podsets: Api<PodSet> = Api::namespaced(client.clone(), &work_ns.name);
    let autoscalers: Api<Autoscaler> = Api::namespaced(client.clone(), &work_ns.name);
    let mut logs = BTreeMap::new();
    let ns_flag = ["--namespace", release_ns.name.as_str()];
    let _release = Release {
        kubeconfig: &kubeconfig,
        namespace: release_ns.name.clone(),
    };

    // (6) CRDs from `kubectl apply -f crds/`: helm refuses them until they are adopted.
    apply_crds_as_kubectl_would(&client).await?;
    let mut install: Vec<String> = ["install", RELEASE, "charts/ferroscale", "--namespace", &release_ns.name]
        .map(String::from)
        .to_vec();
    install.extend(image_values(&node_name));
    let install: Vec<&str> = install.iter().map(String::as_str).collect();
    let refused = helm(&kubeconfig, &install).expect_err("helm install over kubectl's CRDs");
    ensure!(
        refused.to_string().contains("invalid ownership metadata"),
        "helm refused for another reason: {refused}"
    );
    say(
        t0,
        "helm install refused the CRDs of kubectl apply (invalid ownership metadata), as expected",
    );
    let _ = helm(&kubeconfig, &["uninstall", RELEASE, ns_flag[0], ns_flag[1]]);
    adopt_crds(&client, &release_ns.name).await?;

    // (1) helm install: both pods Running and Ready within 60 s, on the in-cluster configuration.
    let installed = Instant::now();
    helm(&kubeconfig, &install)?;
    wait_for("both operator pods Ready", Duration::from_secs(60), || async {
        let p = operator_pods(&pods).await?;
        Ok((p.len() == 2 && p.iter().all(|(_, _, ready, _)| *ready)).then_some(()))
    })
    .await?;
    say(
        t0,
        &format!(
            "helm install: both pods Ready {:.1}s after install",
            installed.elapsed().as_secs_f64()
        ),
    );
    let names: Vec<String> = operator_pods(&pods).await?.into_iter().map(|p| p.0).collect();
    let holder = wait_for("a leader", Duration::from_secs(30), || lease_holder(&leases)).await?;
    ensure!(
        names.contains(&holder),
        "the Lease is held by {holder}, not one of {names:?}"
    );
    for pod in pods
        .list(&ListParams::default().labels("app.kubernetes.io/name=ferroscale"))
        .await?
    {
        let c = &pod.spec.unwrap().containers[0];
        ensure!(
            !c.env.clone().unwrap_or_default().iter().any(|e| e.name == "KUBECONFIG"),
            "the operator must use the in-cluster configuration"
        );
    }

    // Real metrics: Prometheus on the node's address; the operator gets its URL by helm upgrade.
    let prom = Prometheus::start(&node_ip, pods.clone())?;
    wait_for(
        "Prometheus scraping the kubelet and both operator pods",
        Duration::from_secs(60),
        || async {
            let kubelet = prom.scalar("sum(up{job=\"kubelet\"})").await.ok().flatten();
            let operators = prom.scalar("sum(up{job=\"ferroscale\"})").await.ok().flatten();
            Ok((kubelet == Some(1.0) && operators == Some(2.0)).then_some(()))
        },
    )
    .await?;
    say(
        t0,
        &format!(
            "Prometheus {} scrapes the kubelet's /metrics/resource and both operators",
            prom.url()
        ),
    );
    collect_logs(&pods, &mut logs).await?;
    let prometheus_url = format!("prometheus.url={}", prom.url());
    helm(
        &kubeconfig,
        &[
            "upgrade",
            RELEASE,
            "charts/ferroscale",
            ns_flag[0],
            ns_flag[1],
            "--reuse-values",
            "--set",
            &prometheus_url,
            "--set",
            "grafanaDashboard.enabled=true",
        ],
    )?;
    wait_for("the rollout with prometheus.url", Duration::from_secs(120), || {
        rolled_out(&deployments, &pods)
    })
    .await?;
    say(
        t0,
        "helm upgrade --set prometheus.url=... --set grafanaDashboard.enabled=true: rolled out",
    );

    // (2) Real CPU: burners scale up while they burn.
    let control = Control::new()?;
    podsets
        .create(
            &PostParams::default(),
            &burner_podset("burner", &node_name, &control.0)?,
        )
        .await?;
    autoscalers
        .create(&PostParams::default(), &burner_autoscaler("burner", &work_ns.name)?)
        .await?;
    wait_for("the burner pod Running", Duration::from_secs(60), || async {
        Ok((podsets
            .get_status("burner")
            .await?
            .status
            .unwrap_or_default()
            .ready_replicas
            == 1)
            .then_some(()))
    })
    .await?;
    control.burn(true)?;
    let burning = Instant::now();
    wait_for("scale-up to 3 while burning", Duration::from_secs(180), || async {
        Ok((podset_replicas(&podsets, "burner").await? == 3).then_some(()))
    })
    .await?;
    let cpu = prom.scalar(&cpu_query(&work_ns.name)).await?;
    say(
        t0,
        &format!(
            "scaled 1 -> 3 {:.1}s after the burn started (burners' CPU {cpu:?} cores)",
            burning.elapsed().as_secs_f64()
        ),
    );
    wait_for("3 ready burners", Duration::from_secs(60), || async {
        Ok((podsets
            .get_status("burner")
            .await?
            .status
            .unwrap_or_default()
            .ready_replicas
            == 3)
            .then_some(()))
    })
    .await?;

    // (3) Stop burning and delete the leader: another replica takes the Lease, and the window
    // holds. The leader releases the Lease on SIGTERM, so the standby and the Deployment's
    // replacement pod race for it; either is a correct new leader, the deleted pod is not.
    collect_logs(&pods, &mut logs).await?;
    tokio::time::sleep(Duration::from_secs(10)).await; // a few evaluations at 3 with every pod burning
    control.burn(false)?;
    let stopped = Instant::now();
    let leader = lease_holder(&leases).await?.context("no leader")?;
    let standby = operator_pods(&pods)
        .await?
        .into_iter()
        .map(|p| p.0)
        .find(|n| *n != leader)
        .context("no standby")?;
    pods.delete(&leader, &DeleteParams::default()).await?;
    let deleted = Instant::now();
    let new_leader = wait_for(
        "another replica to take the Lease",
        LEASE_DURATION + Duration::from_secs(10),
        || async { Ok(lease_holder(&leases).await?.filter(|h| *h != leader)) },
    )
    .await?;
    let took = deleted.elapsed();
    let live = operator_pods(&pods).await?;
    ensure!(
        live.iter()
            .any(|(name, _, _, deleting)| *name == new_leader && !*deleting),
        "the Lease went to {new_leader}, which is not a live operator pod: {live:?}"
    );
    say(
        t0,
        &format!(
            "leader {leader} deleted: {new_leader} ({}) took the Lease after {:.1}s",
            if new_leader == standby {
                "the standby"
            } else {
                "the replacement pod"
            },
            took.as_secs_f64()
        ),
    );
    while stopped.elapsed() < WINDOW - Duration::from_secs(2) {
        let n = podset_replicas(&podsets, "burner").await?;
        ensure!(
            n == 3,
            "scaled to {n} {:?} after the burn stopped, inside the {WINDOW:?} window",
            stopped.elapsed()
        );
        collect_logs(&pods, &mut logs).await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    wait_for("the scale-down after the window", Duration::from_secs(120), || async {
        Ok((podset_replicas(&podsets, "burner").await? == 1).then_some(()))
    })
    .await?;
    say(
        t0,
        &format!(
            "scaled 3 -> 1 {:.1}s after the burn stopped (window {WINDOW:?}), none earlier",
            stopped.elapsed().as_secs_f64()
        ),
    );

    // Every operator is scraped whole (a label value the exposition got wrong once made
    // Prometheus drop the acting replica's every sample).
    let down = prom.query("up{job=\"ferroscale\"} == 0").await?;
    ensure!(down.is_empty(), "Prometheus cannot scrape an operator: {down:?}");

    // The chart's Grafana dashboard: every query of every panel returns something here.
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &release_ns.name);
    let dashboard = configmaps.get(&format!("{RELEASE}-dashboard")).await?;
    let dashboard: Value = serde_json::from_str(
        dashboard
            .data
            .unwrap_or_default()
            .get("ferroscale.json")
            .context("the dashboard ConfigMap has no ferroscale.json")?,
    )?;
    let mut queries = 0;
    for panel in dashboard["panels"].as_array().context("no panels")? {
        for target in panel["targets"].as_array().context("no targets")? {
            let expr = target["expr"]
                .as_str()
                .context("no expr")?
                .replace("$__rate_interval", "1m");
            let result = prom.query(&expr).await?;
            ensure!(!result.is_empty(), "panel {}: {expr} returns nothing", panel["title"]);
            queries += 1;
        }
    }
    say(
        t0,
        &format!("dashboard: all {queries} queries of its panels return data"),
    );

    // (4) helm upgrade with a changed value: the operator rolls, evaluations go on.
    wait_for("2 ready operators", Duration::from_secs(60), || async {
        let p = operator_pods(&pods).await?;
        Ok((p.len() == 2 && p.iter().all(|(_, _, r, d)| *r && !*d)).then_some(()))
    })
    .await?;
    collect_logs(&pods, &mut logs).await?;
    let mut evaluations = Vec::new();
    let upgrade_started = Instant::now();
    helm(
        &kubeconfig,
        &[
            "upgrade",
            RELEASE,
            "charts/ferroscale",
            ns_flag[0],
            ns_flag[1],
            "--reuse-values",
            "--set",
            "syncPeriod=10s",
        ],
    )?;
    let mut rolled_at = None;
    while rolled_at.is_none_or(|t: Instant| t.elapsed() < Duration::from_secs(20)) {
        ensure!(
            upgrade_started.elapsed() < Duration::from_secs(180),
            "the rollout and 20 s after it took over 180 s"
        );
        if let Some(at) = last_evaluation(&pods, &work_ns.name, "burner").await
            && evaluations.last() != Some(&at)
        {
            evaluations.push(at);
        }
        if rolled_at.is_none() && rolled_out(&deployments, &pods).await?.is_some() {
            rolled_at = Some(Instant::now());
        }
        collect_logs(&pods, &mut logs).await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    evaluations.sort_by(f64::total_cmp);
    let gap = evaluations.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
    ensure!(
        evaluations.len() >= 3,
        "too few evaluations seen over the upgrade: {evaluations:?}"
    );
    ensure!(
        gap <= (SYNC + LEASE_DURATION).as_secs_f64(),
        "evaluations stopped for {gap:.1}s during the upgrade (sync {SYNC:?} + lease {LEASE_DURATION:?} allowed)"
    );
    say(
        t0,
        &format!(
            "helm upgrade --set syncPeriod=10s: rolled out in {:.1}s; longest gap between evaluations {gap:.1}s ({} seen)",
            (rolled_at.unwrap() - upgrade_started).as_secs_f64(),
            evaluations.len()
        ),
    );

    // (5) No call of the operator was refused by the chart's RBAC, over the whole run.
    collect_logs(&pods, &mut logs).await?;
    let forbidden: Vec<&str> = logs
        .values()
        .flat_map(|l| l.lines())
        .filter(|l| l.contains("Forbidden"))
        .collect();
    ensure!(forbidden.is_empty(), "the operator was refused: {forbidden:#?}");
    say(
        t0,
        &format!(
            "logs of {} operator pods, {} lines: no Forbidden",
            logs.len(),
            logs.values().map(|l| l.lines().count()).sum::<usize>()
        ),
    );

    if let Some(path) = std::env::var_os("FERROSCALE_E2E_DASHBOARD_SVG") {
        let svg = dashboard_svg(&dashboard, &prom, run_started, unix_now()).await?;
        std::fs::write(&path, svg)?;
        say(t0, &format!("dashboard drawn into {}", PathBuf::from(path).display()));
    }

    // (4) helm uninstall keeps the CRDs and the Autoscalers.
    helm(&kubeconfig, &["uninstall", RELEASE, ns_flag[0], ns_flag[1], "--wait"])?;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for name in CRDS {
        ensure!(crds.get_opt(name).await?.is_some(), "helm uninstall deleted CRD {name}");
    }
    ensure!(
        autoscalers.get_opt("burner").await?.is_some(),
        "helm uninstall deleted the Autoscaler"
    );
    say(t0, "helm uninstall: CRDs and the Autoscaler kept");
    Ok(())
}
