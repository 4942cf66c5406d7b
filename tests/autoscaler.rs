//! Autoscaler end to end, driven deterministically through a Prometheus metric: the test
//! serves an exporter whose value it sets, a real Prometheus on 127.0.0.1 scrapes it, and the
//! operator (this build, as a subprocess) queries that Prometheus.
//! Runs only with FERROSCALE_E2E_KUBECONFIG set.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod support;

use std::time::{Duration, Instant};

use anyhow::Result;
use ferroscale_api::{Autoscaler, PodSet};
use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use support::prometheus::{Exporter, PrometheusServer, prometheus_installed};
use support::*;

const CONVERGE: Duration = Duration::from_secs(180);
/// The scale-down stabilization window the test's Autoscalers use.
const WINDOW: Duration = Duration::from_secs(60);

fn autoscaler(kind: &str, api_version: &str, target: &str, window: Duration) -> Result<Autoscaler> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "ferroscale.dev/v1alpha1", "kind": "Autoscaler", "metadata": {"name": target},
        "spec": {
            "scaleTargetRef": {"apiVersion": api_version, "kind": kind, "name": target},
            "minReplicas": 1, "maxReplicas": 5,
            "metrics": [{"type": "Prometheus", "prometheus": {"query": "sum(e2e_load)", "target": {"type": "AverageValue", "averageValue": "10"}}}],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": window.as_secs()}}
        }
    }))?)
}

fn pod_template(app: &str) -> Value {
    json!({"metadata": {"labels": {"app": app}},
           "spec": {"terminationGracePeriodSeconds": 0, "containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10"}]}})
}

struct Setup {
    kubeconfig: std::path::PathBuf,
    client: kube::Client,
    ns: TestNamespace,
    exporter: Exporter,
    prometheus: PrometheusServer,
}

async fn setup(test: &str) -> Result<Option<Setup>> {
    let Some(kubeconfig) = kubeconfig_or_skip(test) else {
        return Ok(None);
    };
    if !prometheus_installed() {
        return Ok(None);
    }
    let client = client(&kubeconfig).await?;
    install_crds(&client).await?;
    let ns = TestNamespace::create(&client, &kubeconfig, "ferroscale-e2e-autoscaler").await?;
    let exporter = Exporter::start(5.0).await;
    let prometheus = PrometheusServer::start(exporter.port);
    Ok(Some(Setup {
        kubeconfig,
        client,
        ns,
        exporter,
        prometheus,
    }))
}

impl Setup {
    fn operator(&self) -> Result<Operator> {
        Operator::start(
            &self.kubeconfig,
            &[
                "--namespace",
                &self.ns.name,
                "--sync-period",
                "2s",
                "--prometheus-url",
                &self.prometheus.url,
            ],
        )
    }
}

async fn podset_replicas(podsets: &Api<PodSet>) -> Result<i32> {
    Ok(podsets
        .get_scale("web")
        .await?
        .spec
        .and_then(|s| s.replicas)
        .unwrap_or(0))
}

#[tokio::test]
async fn a_podset_scales_on_a_prometheus_metric_and_history_survives_a_restart() -> Result<()> {
    let Some(s) = setup("a_podset_scales_on_a_prometheus_metric_and_history_survives_a_restart").await? else {
        return Ok(());
    };
    let podsets: Api<PodSet> = Api::namespaced(s.client.clone(), &s.ns.name);
    let autoscalers: Api<Autoscaler> = Api::namespaced(s.client.clone(), &s.ns.name);
    let podset: PodSet = serde_json::from_value(json!({
        "apiVersion": "ferroscale.dev/v1alpha1", "kind": "PodSet", "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "e2e-web"}}, "template": pod_template("e2e-web")}
    }))?;
    podsets.create(&PostParams::default(), &podset).await?;
    let operator = s.operator()?;
    autoscalers
        .create(
            &PostParams::default(),
            &autoscaler("PodSet", "ferroscale.dev/v1alpha1", "web", WINDOW)?,
        )
        .await?;

    // 30 against 10 per replica: three replicas.
    s.exporter.set(30.0);
    wait_for("the PodSet to be scaled to 3", CONVERGE, || async {
        Ok((podset_replicas(&podsets).await? == 3).then_some(()))
    })
    .await?;
    wait_for("3 ready pods", CONVERGE, || async {
        Ok((podsets
            .get_status("web")
            .await?
            .status
            .unwrap_or_default()
            .ready_replicas
            == 3)
            .then_some(()))
    })
    .await?;
    let status = autoscalers.get_status("web").await?.status.unwrap();
    assert!(
        status.targets.as_deref().unwrap_or("").contains("/10 (avg)"),
        "{:?}",
        status.targets
    );

    // Load drops: the proposal is 1, but the window holds 3 for 60s after the last proposal of 3.
    s.exporter.set(5.0);
    let dropped = Instant::now();
    // Restart the operator in the middle of the window: the history is in status.
    wait_for("20s into the window", Duration::from_secs(30), || async {
        Ok((dropped.elapsed() >= Duration::from_secs(20)).then_some(()))
    })
    .await?;
    operator.stop()?;
    let _operator = s.operator()?;
    while dropped.elapsed() < WINDOW - Duration::from_secs(5) {
        assert_eq!(
            podset_replicas(&podsets).await?,
            3,
            "scaled down {:?} after the drop, inside the {WINDOW:?} window",
            dropped.elapsed()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    wait_for("the scale-down after the window", Duration::from_secs(60), || async {
        Ok((podset_replicas(&podsets).await? == 1).then_some(()))
    })
    .await?;
    // Forgotten history would restart the window at the restart (20s in), so no scale-down
    // before 80s; with history in status it comes one window after the last proposal of 3.
    assert!(
        dropped.elapsed() < Duration::from_secs(78),
        "the scale-down came {:?} after the drop: the restart lengthened the window",
        dropped.elapsed()
    );
    let status = autoscalers.get_status("web").await?.status.unwrap();
    assert!(status.last_scale_time.is_some());
    assert!(
        status
            .scale_down_events
            .unwrap_or_default()
            .iter()
            .any(|e| e.change == 2)
    );
    Ok(())
}

#[tokio::test]
async fn a_missing_target_is_reported_and_nothing_changes() -> Result<()> {
    let Some(s) = setup("a_missing_target_is_reported_and_nothing_changes").await? else {
        return Ok(());
    };
    let autoscalers: Api<Autoscaler> = Api::namespaced(s.client.clone(), &s.ns.name);
    let _operator = s.operator()?;
    autoscalers
        .create(
            &PostParams::default(),
            &autoscaler("PodSet", "ferroscale.dev/v1alpha1", "absent", WINDOW)?,
        )
        .await?;
    let condition = wait_for("AbleToScale=False", CONVERGE, || async {
        let status = autoscalers.get_status("absent").await?.status.unwrap_or_default();
        Ok(status
            .conditions
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.type_ == "AbleToScale" && c.status == "False"))
    })
    .await?;
    assert_eq!(condition.reason.as_deref(), Some("FailedGetScale"));
    let podsets: Api<PodSet> = Api::namespaced(s.client.clone(), &s.ns.name);
    assert!(
        podsets.list(&Default::default()).await?.items.is_empty(),
        "nothing was created"
    );
    Ok(())
}

#[tokio::test]
async fn a_deployment_scales_the_same_way() -> Result<()> {
    let Some(s) = setup("a_deployment_scales_the_same_way").await? else {
        return Ok(());
    };
    let deployments: Api<Deployment> = Api::namespaced(s.client.clone(), &s.ns.name);
    let deployment: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "dep"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "e2e-dep"}}, "template": pod_template("e2e-dep")}
    }))?;
    deployments.create(&PostParams::default(), &deployment).await?;
    let autoscalers: Api<Autoscaler> = Api::namespaced(s.client.clone(), &s.ns.name);
    let _operator = s.operator()?;
    autoscalers
        .create(
            &PostParams::default(),
            &autoscaler("Deployment", "apps/v1", "dep", Duration::from_secs(0))?,
        )
        .await?;
    s.exporter.set(40.0);
    wait_for("the Deployment to be scaled to 4", CONVERGE, || async {
        Ok((deployments.get_scale("dep").await?.spec.and_then(|s| s.replicas) == Some(4)).then_some(()))
    })
    .await?;
    // Someone else scaling the target is taken as the new current count, as with the HPA.
    deployments
        .patch_scale(
            "dep",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 2}})),
        )
        .await?;
    wait_for("the Deployment to be scaled back to 4", CONVERGE, || async {
        Ok((deployments.get_scale("dep").await?.spec.and_then(|s| s.replicas) == Some(4)).then_some(()))
    })
    .await?;
    Ok(())
}
