//! Shared pieces of the end-to-end tests: a client for the cluster named by
//! FERROSCALE_E2E_KUBECONFIG, CRD installation, a throw-away namespace, the operator as a
//! subprocess, and waiting on conditions with deadlines (never fixed sleeps).

#![allow(dead_code)] // each test file uses a different subset

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub mod prometheus;

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
        let name = format!(
            "{prefix}-{}",
            std::process::id() ^ (jiff::Timestamp::now().as_millisecond() as u32)
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
        let child = Command::new(env!("CARGO_BIN_EXE_ferroscale"))
            .arg("run")
            .args(args)
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

    /// Stops the operator as Kubernetes would (SIGTERM), waiting for it to exit.
    pub fn stop(mut self) -> Result<()> {
        #[cfg(unix)]
        {
            let pid = self.child.id().to_string();
            let _ = Command::new("kill").args(["-TERM", &pid]).status();
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("the operator did not stop within 30s of SIGTERM")
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
