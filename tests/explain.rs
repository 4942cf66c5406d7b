//! End-to-end: `ferroscale explain NAMESPACE/NAME` against a real API server. It says what the
//! controller then does, writes nothing, saves a snapshot that replays offline to the same
//! decision, and works as the kubectl plugin `kubectl ferroscale`.
//!
//! Skipped unless FERROSCALE_E2E_KUBECONFIG and FERROSCALE_E2E_METRICS_FILE are set (see
//! tests/support).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use anyhow::{Result, bail};
use ferroscale_api::{Autoscaler, PodSet};
use kube::Api;
use kube::api::PostParams;
use serde_json::{Value, json};
use support::*;

const CONVERGE: Duration = Duration::from_secs(180);

fn ferroscale(kubeconfig: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferroscale"))
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .output()
        .unwrap()
}

fn succeeded(args: &[&str], out: Output) -> Result<(String, String)> {
    let (stdout, stderr) = (String::from_utf8(out.stdout)?, String::from_utf8(out.stderr)?);
    if !out.status.success() {
        bail!("ferroscale {}: {stderr}", args.join(" "));
    }
    Ok((stdout, stderr))
}

/// A PodSet `web` of two pods requesting 100m CPU each, and an Autoscaler `web` keeping them
/// at 50% between 2 and 4 replicas.
async fn create_workload(client: &kube::Client, namespace: &str) -> Result<()> {
    let podset: PodSet = serde_json::from_value(json!({
        "apiVersion": "ferroscale.dev/v1alpha1", "kind": "PodSet", "metadata": {"name": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "e2e-explain"}},
                 "template": {"metadata": {"labels": {"app": "e2e-explain"}},
                              "spec": {"terminationGracePeriodSeconds": 0, "containers": [{
                                  "name": "app", "image": "registry.k8s.io/pause:3.10",
                                  "resources": {"requests": {"cpu": "100m"}}}]}}}
    }))?;
    Api::<PodSet>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &podset)
        .await?;
    let autoscaler: Autoscaler = serde_json::from_value(json!({
        "apiVersion": "ferroscale.dev/v1alpha1", "kind": "Autoscaler", "metadata": {"name": "web"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "ferroscale.dev/v1alpha1", "kind": "PodSet", "name": "web"},
            "minReplicas": 2, "maxReplicas": 4,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]
        }
    }))?;
    Api::<Autoscaler>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &autoscaler)
        .await?;
    Ok(())
}

#[tokio::test]
async fn live_explain_says_what_the_controller_does_and_replays_offline() -> Result<()> {
    let test = "live_explain_says_what_the_controller_does_and_replays_offline";
    let (Some(kubeconfig), Some(file)) = (kubeconfig_or_skip(test), metrics_file_or_skip(test)) else {
        return Ok(());
    };
    let client = client(&kubeconfig).await?;
    install_crds(&client).await?;
    let ns = TestNamespace::create(&client, &kubeconfig, "ferroscale-e2e-explain").await?;
    let cpu = FakeCpu::new(&file, &ns.name);
    cpu.set(100)?; // 100m of 100m requested: 100% against 50%
    create_workload(&client, &ns.name).await?;
    let podsets: Api<PodSet> = Api::namespaced(client.clone(), &ns.name);
    let autoscalers: Api<Autoscaler> = Api::namespaced(client.clone(), &ns.name);

    // Only the PodSet controller runs: the pods exist, and nothing autoscales yet.
    let podset_only = Operator::start(&kubeconfig, &["--namespace", &ns.name, "--controllers", "podset"])?;
    wait_for("two ready pods", CONVERGE, || async {
        let ready = podsets.get_status("web").await?.status.map_or(0, |s| s.ready_replicas);
        Ok((ready == 2).then_some(()))
    })
    .await?;

    // Live: the controller would scale 2 → 4, and explain writes nothing.
    let target = format!("{}/web", ns.name);
    let dir = std::env::temp_dir().join(format!("ferroscale-e2e-explain-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let saved = dir.join("snapshot.yaml");
    let args = ["explain", &target, "-o", "json", "--save", saved.to_str().unwrap()];
    // New pods' CPU counts once they have been Ready for a metric window: until then the
    // controller could not compute the metric either.
    let (live, stderr) = wait_for("live explain to propose 4 replicas", CONVERGE, || async {
        let (stdout, stderr) = succeeded(&args, ferroscale(&kubeconfig, &args))?;
        let live: Value = serde_json::from_str(&stdout)?;
        Ok((live["desiredReplicas"] == 4).then_some((live, stderr)))
    })
    .await?;
    assert_eq!(live["currentReplicas"], 2, "{live:#}");
    assert_eq!(live["desiredReplicas"], 4, "{live:#}");
    assert_eq!(live["rescale"], true);
    assert_eq!(
        live["metrics"][0]["status"]["resource"]["current"]["averageUtilization"],
        100
    );
    assert_eq!(live["status"]["reference"], "PodSet/web");
    assert!(
        autoscalers.get_status("web").await?.status.is_none(),
        "explain wrote status"
    );
    assert_eq!(podsets.get_scale("web").await?.spec.unwrap().replicas, Some(2));

    // Offline: the saved snapshot replays to the same decision at the time it was taken.
    let now = stderr
        .split("--now ")
        .nth(1)
        .map(str::trim)
        .expect("explain --save says how to replay")
        .to_string();
    let args = ["explain", saved.to_str().unwrap(), "--now", &now, "-o", "json"];
    let (stdout, _) = succeeded(&args, ferroscale(&kubeconfig, &args))?;
    let replayed: Value = serde_json::from_str(&stdout)?;
    // Which shard evaluates it is read from the cluster's Leases: live only, not a decision.
    let mut decided = live.clone();
    if let Some(fields) = decided.as_object_mut() {
        fields.remove("shards");
    }
    assert_eq!(replayed, decided, "the replay differs from the live explanation");

    // The controller then does what explain said.
    drop(podset_only);
    let _operator = Operator::start(&kubeconfig, &["--namespace", &ns.name, "--sync-period", "2s"])?;
    wait_for("the PodSet to be scaled to 4, as explained", CONVERGE, || async {
        let replicas = podsets.get_scale("web").await?.spec.and_then(|s| s.replicas);
        Ok((replicas == Some(4)).then_some(()))
    })
    .await?;
    wait_for("the REFERENCE column to show PodSet/web", CONVERGE, || async {
        let table = kubectl(&kubeconfig, &["get", "autoscalers", "-n", &ns.name])?;
        Ok(table.contains("PodSet/web").then_some(table))
    })
    .await?;

    // The -n form, and the kubectl plugin: at 4 replicas and 100%, nothing more to do.
    let plugins = dir.join("bin");
    std::fs::create_dir_all(&plugins)?;
    let plugin = plugins.join("kubectl-ferroscale");
    let _ = std::fs::remove_file(&plugin);
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_ferroscale"), &plugin)?;
    let path = format!("{}:{}", plugins.display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new(std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into()))
        .args(["ferroscale", "explain", "-n", &ns.name, "web"])
        .env("KUBECONFIG", &kubeconfig)
        .env("PATH", &path)
        .output()?;
    let (text, _) = succeeded(&["(kubectl plugin) explain -n", &ns.name, "web"], out)?;
    assert!(text.contains("stays at 4 replicas"), "{text}");

    // Errors name what failed.
    let missing = format!("{}/absent", ns.name);
    let out = ferroscale(&kubeconfig, &["explain", &missing]);
    assert!(!out.status.success());
    let error = String::from_utf8(out.stderr)?;
    assert!(
        error.contains(&format!("Autoscaler {missing}")) && error.contains("not found"),
        "{error}"
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
