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

type Setup = Driven;

async fn setup(test: &str) -> Result<Option<Setup>> {
    Driven::setup(test, "ferroscale-e2e-autoscaler", 5.0).await
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
    // The controller writes the scale, then its status: the status may follow a moment later.
    let status = wait_for(
        "status to record the scale-down of 2",
        Duration::from_secs(10),
        || async {
            let status = autoscalers.get_status("web").await?.status.unwrap_or_default();
            let recorded = status
                .scale_down_events
                .as_deref()
                .unwrap_or_default()
                .iter()
                .any(|e| e.change == 2);
            Ok(recorded.then_some(status))
        },
    )
    .await?;
    assert!(status.last_scale_time.is_some());
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

/// A PodSet of `replicas` pods requesting 100m CPU each, and an Autoscaler holding them at 50%
/// average CPU utilization read from metrics.k8s.io, between `min` and `max` replicas.
async fn cpu_setup(client: &kube::Client, namespace: &str, replicas: i32, min: i32, max: i32) -> Result<()> {
    let podsets: Api<PodSet> = Api::namespaced(client.clone(), namespace);
    let mut template = pod_template("e2e-cpu");
    template["spec"]["containers"][0]["resources"] = json!({"requests": {"cpu": "100m"}});
    let podset: PodSet = serde_json::from_value(json!({
        "apiVersion": "ferroscale.dev/v1alpha1", "kind": "PodSet", "metadata": {"name": "web"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "e2e-cpu"}}, "template": template}
    }))?;
    podsets.create(&PostParams::default(), &podset).await?;
    let autoscaler: Autoscaler = serde_json::from_value(json!({
        "apiVersion": "ferroscale.dev/v1alpha1", "kind": "Autoscaler", "metadata": {"name": "web"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "ferroscale.dev/v1alpha1", "kind": "PodSet", "name": "web"},
            "minReplicas": min, "maxReplicas": max,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}}
        }
    }))?;
    Api::<Autoscaler>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &autoscaler)
        .await?;
    Ok(())
}

fn condition(a: &Autoscaler, type_: &str) -> Option<ferroscale_api::AutoscalerCondition> {
    a.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == type_).cloned())
}

#[tokio::test]
async fn a_podset_scales_on_cpu_from_metrics_k8s_io() -> Result<()> {
    let test = "a_podset_scales_on_cpu_from_metrics_k8s_io";
    let (Some(s), Some(file)) = (setup(test).await?, metrics_file_or_skip(test)) else {
        return Ok(());
    };
    let cpu = FakeCpu::new(&file, &s.ns.name);
    cpu.set(100)?; // 100m of 100m requested: 100% against 50%
    cpu_setup(&s.client, &s.ns.name, 2, 2, 4).await?;
    let podsets: Api<PodSet> = Api::namespaced(s.client.clone(), &s.ns.name);
    let _operator = s.operator()?;
    wait_for("the PodSet to be scaled to 4 on CPU", CONVERGE, || async {
        Ok((podset_replicas(&podsets).await? == 4).then_some(()))
    })
    .await?;
    let autoscalers: Api<Autoscaler> = Api::namespaced(s.client.clone(), &s.ns.name);
    wait_for(
        "status to report 100% CPU read from metrics.k8s.io",
        CONVERGE,
        || async {
            let status = autoscalers.get_status("web").await?.status.unwrap_or_default();
            let utilization = status
                .current_metrics
                .unwrap_or_default()
                .first()
                .and_then(|m| m.resource.as_ref())
                .and_then(|r| r.current.average_utilization);
            Ok((utilization == Some(100)).then_some(()))
        },
    )
    .await?;
    // 25%: half the pods are enough. The new pods' CPU does not count until they have been
    // Ready for a metric window, so upstream proposes 1 or 2 here; minReplicas makes it 2.
    cpu.set(25)?;
    wait_for("the PodSet to be scaled down to 2 on CPU", CONVERGE, || async {
        Ok((podset_replicas(&podsets).await? == 2).then_some(()))
    })
    .await?;
    Ok(())
}

/// Points the APIService of metrics.k8s.io at a port where nothing listens, so every request
/// to it answers 503 as when metrics-server is down; restored on drop.
struct MetricsApiOutage {
    kubeconfig: std::path::PathBuf,
    port: i64,
}

impl MetricsApiOutage {
    fn begin(kubeconfig: &std::path::Path) -> Result<Self> {
        let port: i64 = kubectl(
            kubeconfig,
            &[
                "get",
                "apiservice",
                "v1beta1.metrics.k8s.io",
                "-o",
                "jsonpath={.spec.service.port}",
            ],
        )?
        .trim()
        .parse()?;
        let outage = Self {
            kubeconfig: kubeconfig.to_path_buf(),
            port,
        };
        outage.point_at(support::prometheus::free_port().into())?;
        Ok(outage)
    }

    fn point_at(&self, port: i64) -> Result<()> {
        let patch = json!({"spec": {"service": {"port": port}}}).to_string();
        kubectl(
            &self.kubeconfig,
            &[
                "patch",
                "apiservice",
                "v1beta1.metrics.k8s.io",
                "--type",
                "merge",
                "-p",
                &patch,
            ],
        )?;
        Ok(())
    }
}

impl Drop for MetricsApiOutage {
    fn drop(&mut self) {
        let _ = self.point_at(self.port);
    }
}

#[tokio::test]
async fn an_unavailable_metrics_api_is_reported_at_once_and_scales_nothing() -> Result<()> {
    let test = "an_unavailable_metrics_api_is_reported_at_once_and_scales_nothing";
    let (Some(s), Some(file)) = (setup(test).await?, metrics_file_or_skip(test)) else {
        return Ok(());
    };
    let cpu = FakeCpu::new(&file, &s.ns.name);
    cpu_setup(&s.client, &s.ns.name, 2, 1, 4).await?;
    let autoscalers: Api<Autoscaler> = Api::namespaced(s.client.clone(), &s.ns.name);
    let podsets: Api<PodSet> = Api::namespaced(s.client.clone(), &s.ns.name);
    let _operator = s.operator()?;
    // First no values for these pods: one failure, with its own message.
    wait_for("FailedGetResourceMetric for missing values", CONVERGE, || async {
        let a = autoscalers.get_status("web").await?;
        Ok(condition(&a, "ScalingActive").filter(|c| c.reason.as_deref() == Some("FailedGetResourceMetric")))
    })
    .await?;
    cpu.set(50)?; // exactly on target
    wait_for("ValidMetricFound", CONVERGE, || async {
        let a = autoscalers.get_status("web").await?;
        Ok(condition(&a, "ScalingActive").filter(|c| c.reason.as_deref() == Some("ValidMetricFound")))
    })
    .await?;

    let outage = MetricsApiOutage::begin(&s.kubeconfig)?;
    let started = Instant::now();
    let reported = wait_for("the outage in status", Duration::from_secs(60), || async {
        let a = autoscalers.get_status("web").await?;
        Ok(condition(&a, "ScalingActive").filter(|c| c.status == "False"))
    })
    .await?;
    // The aggregator may take a moment to notice the APIService moved; then one sync period.
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(reported.reason.as_deref(), Some("FailedGetResourceMetric"));
    let message = reported.message.unwrap_or_default();
    assert!(message.contains("503") || message.contains("unavailable"), "{message}");

    // Each cause has its own event: the first occurrence's note is not reused.
    let notes = wait_for("an event naming the outage", Duration::from_secs(30), || async {
        let list = kubectl(
            &s.kubeconfig,
            &["get", "events.events.k8s.io", "-n", &s.ns.name, "-o", "json"],
        )?;
        let events: Value = serde_json::from_str(&list)?;
        let notes: Vec<String> = events["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["reason"] == "FailedGetResourceMetric")
            .filter_map(|e| e["note"].as_str().map(String::from))
            .collect();
        Ok(notes
            .iter()
            .any(|n| n.contains("503") || n.contains("unavailable"))
            .then_some(notes))
    })
    .await?;
    assert!(
        notes.iter().any(|n| n.contains("did not receive metrics")),
        "the earlier cause keeps its own event: {notes:?}"
    );
    assert_eq!(podset_replicas(&podsets).await?, 2, "an outage scales nothing");

    drop(outage);
    wait_for("ValidMetricFound again", Duration::from_secs(90), || async {
        let a = autoscalers.get_status("web").await?;
        Ok(condition(&a, "ScalingActive").filter(|c| c.reason.as_deref() == Some("ValidMetricFound")))
    })
    .await?;
    assert_eq!(podset_replicas(&podsets).await?, 2);
    Ok(())
}

#[tokio::test]
async fn a_standby_takes_over_mid_window_without_an_early_scale_down() -> Result<()> {
    let test = "a_standby_takes_over_mid_window_without_an_early_scale_down";
    let Some(s) = setup(test).await? else {
        return Ok(());
    };
    let podsets: Api<PodSet> = Api::namespaced(s.client.clone(), &s.ns.name);
    let autoscalers: Api<Autoscaler> = Api::namespaced(s.client.clone(), &s.ns.name);
    let podset: PodSet = serde_json::from_value(json!({
        "apiVersion": "ferroscale.dev/v1alpha1", "kind": "PodSet", "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "e2e-ha"}}, "template": pod_template("e2e-ha")}
    }))?;
    podsets.create(&PostParams::default(), &podset).await?;
    autoscalers
        .create(
            &PostParams::default(),
            &autoscaler("PodSet", "ferroscale.dev/v1alpha1", "web", WINDOW)?,
        )
        .await?;
    let elect = |s: &Setup| s.operator_with(&["--leader-elect", "--leader-election-namespace", &s.ns.name]);
    let first = elect(&s)?;
    let second = elect(&s)?;
    s.exporter.set(30.0);
    wait_for("the PodSet to be scaled to 3", CONVERGE, || async {
        Ok((podset_replicas(&podsets).await? == 3).then_some(()))
    })
    .await?;

    s.exporter.set(5.0);
    let dropped = Instant::now();
    wait_for("20s into the window", Duration::from_secs(30), || async {
        Ok((dropped.elapsed() >= Duration::from_secs(20)).then_some(()))
    })
    .await?;
    // Kill whichever holds the Lease, as a lost node would: it releases nothing.
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> = Api::namespaced(s.client.clone(), &s.ns.name);
    let holder = leases
        .get("ferroscale")
        .await?
        .spec
        .and_then(|l| l.holder_identity)
        .unwrap_or_default();
    let (leader, standby) = if holder == format!("ferroscale-{}", first.pid()) {
        (first, second)
    } else {
        assert_eq!(holder, format!("ferroscale-{}", second.pid()), "one of the two leads");
        (second, first)
    };
    let standby_identity = format!("ferroscale-{}", standby.pid());
    leader.kill()?;
    while dropped.elapsed() < WINDOW - Duration::from_secs(5) {
        assert_eq!(
            podset_replicas(&podsets).await?,
            3,
            "scaled down {:?} after the drop, inside the {WINDOW:?} window",
            dropped.elapsed()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    wait_for(
        "the standby to scale down after the window",
        Duration::from_secs(90),
        || async { Ok((podset_replicas(&podsets).await? == 1).then_some(())) },
    )
    .await?;
    let holder = leases.get("ferroscale").await?.spec.and_then(|l| l.holder_identity);
    assert_eq!(
        holder.as_deref(),
        Some(standby_identity.as_str()),
        "the standby took over"
    );
    assert!(
        dropped.elapsed() < Duration::from_secs(95),
        "the scale-down came {:?} after the drop: the decision was late or lost",
        dropped.elapsed()
    );
    drop(standby);
    Ok(())
}

#[tokio::test]
async fn a_podset_idles_to_zero_on_prometheus_and_wakes_on_a_burst() -> Result<()> {
    let Some(s) = setup("a_podset_idles_to_zero_on_prometheus_and_wakes_on_a_burst").await? else {
        return Ok(());
    };
    let podsets: Api<PodSet> = Api::namespaced(s.client.clone(), &s.ns.name);
    let autoscalers: Api<Autoscaler> = Api::namespaced(s.client.clone(), &s.ns.name);
    let podset: PodSet = serde_json::from_value(json!({
        "apiVersion": "ferroscale.dev/v1alpha1", "kind": "PodSet", "metadata": {"name": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "e2e-zero"}}, "template": pod_template("e2e-zero")}
    }))?;
    podsets.create(&PostParams::default(), &podset).await?;
    let mut zero = autoscaler("PodSet", "ferroscale.dev/v1alpha1", "web", Duration::from_secs(5))?;
    zero.spec.min_replicas = Some(0);
    autoscalers.create(&PostParams::default(), &zero).await?;
    s.exporter.set(0.0);
    let _operator = s.operator()?;
    wait_for("the PodSet to idle at zero", CONVERGE, || async {
        Ok((podset_replicas(&podsets).await? == 0).then_some(()))
    })
    .await?;
    let a = autoscalers.get_status("web").await?;
    let idle = condition(&a, "ScaledToZero").expect("ScaledToZero is set");
    assert_eq!(
        (idle.status.as_str(), idle.reason.as_deref()),
        ("True", Some("ScaledToZero"))
    );
    wait_for("the PodSet's pods to be gone", CONVERGE, || async {
        let status = podsets.get_status("web").await?.status.unwrap_or_default();
        Ok((status.replicas == 0).then_some(()))
    })
    .await?;

    // A burst: 25 against 10 per replica wakes it to 3.
    s.exporter.set(25.0);
    wait_for("the PodSet to wake to 3", CONVERGE, || async {
        Ok((podset_replicas(&podsets).await? == 3).then_some(()))
    })
    .await?;
    let a = autoscalers.get_status("web").await?;
    let woken = condition(&a, "ScaledToZero").expect("ScaledToZero is kept");
    assert_eq!(
        (woken.status.as_str(), woken.reason.as_deref()),
        ("False", Some("ScaledFromZero"))
    );
    Ok(())
}

#[tokio::test]
async fn a_stopped_metric_source_falls_back_after_its_failure_duration() -> Result<()> {
    let Some(s) = setup("a_stopped_metric_source_falls_back_after_its_failure_duration").await? else {
        return Ok(());
    };
    let podsets: Api<PodSet> = Api::namespaced(s.client.clone(), &s.ns.name);
    let autoscalers: Api<Autoscaler> = Api::namespaced(s.client.clone(), &s.ns.name);
    let podset: PodSet = serde_json::from_value(json!({
        "apiVersion": "ferroscale.dev/v1alpha1", "kind": "PodSet", "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "e2e-fallback"}}, "template": pod_template("e2e-fallback")}
    }))?;
    podsets.create(&PostParams::default(), &podset).await?;
    let mut with_fallback = autoscaler("PodSet", "ferroscale.dev/v1alpha1", "web", WINDOW)?;
    with_fallback.spec.metrics.as_mut().unwrap()[0]
        .prometheus
        .as_mut()
        .unwrap()
        .fallback = Some(ferroscale_api::Fallback {
        failure_duration_seconds: Some(20),
        replicas: 4,
    });
    autoscalers.create(&PostParams::default(), &with_fallback).await?;
    s.exporter.set(10.0);
    let _operator = s.operator()?;
    wait_for("a first evaluation on the metric", CONVERGE, || async {
        let a = autoscalers.get_status("web").await?;
        Ok(condition(&a, "ScalingActive").filter(|c| c.reason.as_deref() == Some("ValidMetricFound")))
    })
    .await?;

    // Prometheus goes away: the metric fails; 20 s later its fallback of 4 applies.
    drop(s.prometheus);
    let failing_since = wait_for("the failure in status", Duration::from_secs(60), || async {
        let status = autoscalers.get_status("web").await?.status.unwrap_or_default();
        Ok(status.metric_failures.and_then(|f| f.first().map(|f| f.since.0)))
    })
    .await?;
    assert_eq!(
        podset_replicas(&podsets).await?,
        1,
        "nothing scales before the failure duration"
    );
    wait_for("the fallback's 4 replicas", CONVERGE, || async {
        Ok((podset_replicas(&podsets).await? == 4).then_some(()))
    })
    .await?;
    let fell_back_after = jiff::Timestamp::now().duration_since(failing_since);
    assert!(
        fell_back_after >= jiff::SignedDuration::from_secs(20),
        "the fallback came {fell_back_after:?} after the first failure"
    );
    let a = autoscalers.get_status("web").await?;
    let active = condition(&a, "FallbackActive").expect("FallbackActive is set");
    assert_eq!(
        (active.status.as_str(), active.reason.as_deref()),
        ("True", Some("FallbackApplied"))
    );
    Ok(())
}

fn annotate(value: Value) -> Patch<Value> {
    Patch::Merge(json!({"metadata": {"annotations": value}}))
}

#[tokio::test]
async fn pause_holds_the_target_and_resuming_picks_up_from_status() -> Result<()> {
    let Some(s) = setup("pause_holds_the_target_and_resuming_picks_up_from_status").await? else {
        return Ok(());
    };
    let podsets: Api<PodSet> = Api::namespaced(s.client.clone(), &s.ns.name);
    let autoscalers: Api<Autoscaler> = Api::namespaced(s.client.clone(), &s.ns.name);
    let podset: PodSet = serde_json::from_value(json!({
        "apiVersion": "ferroscale.dev/v1alpha1", "kind": "PodSet", "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "e2e-pause"}}, "template": pod_template("e2e-pause")}
    }))?;
    podsets.create(&PostParams::default(), &podset).await?;
    autoscalers
        .create(
            &PostParams::default(),
            &autoscaler("PodSet", "ferroscale.dev/v1alpha1", "web", Duration::from_secs(0))?,
        )
        .await?;
    s.exporter.set(30.0);
    let _operator = s.operator()?;
    wait_for("the PodSet to be scaled to 3", CONVERGE, || async {
        Ok((podset_replicas(&podsets).await? == 3).then_some(()))
    })
    .await?;

    // Paused: the load doubles, nothing moves, status says why.
    autoscalers
        .patch(
            "web",
            &PatchParams::default(),
            &annotate(json!({"ferroscale.dev/paused": "true"})),
        )
        .await?;
    s.exporter.set(50.0);
    let paused = wait_for("ScalingActive=False Paused", CONVERGE, || async {
        let a = autoscalers.get_status("web").await?;
        Ok(condition(&a, "ScalingActive").filter(|c| c.reason.as_deref() == Some("Paused")))
    })
    .await?;
    assert!(paused.message.unwrap_or_default().contains("it would set 5 replicas"));
    let held_since = Instant::now();
    while held_since.elapsed() < Duration::from_secs(10) {
        assert_eq!(
            podset_replicas(&podsets).await?,
            3,
            "a paused Autoscaler wrote the scale"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    // paused-replicas: set once, then held even when someone else moves it.
    autoscalers
        .patch(
            "web",
            &PatchParams::default(),
            &annotate(json!({"ferroscale.dev/paused": null, "ferroscale.dev/paused-replicas": "1"})),
        )
        .await?;
    wait_for("the PodSet to be set to 1", CONVERGE, || async {
        Ok((podset_replicas(&podsets).await? == 1).then_some(()))
    })
    .await?;
    podsets
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 2}})),
        )
        .await?;
    let moved = Instant::now();
    while moved.elapsed() < Duration::from_secs(8) {
        assert_eq!(
            podset_replicas(&podsets).await?,
            2,
            "paused-replicas is set once, not enforced"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let status = autoscalers.get_status("web").await?.status.unwrap();
    assert_eq!(status.paused_replicas, Some(1));

    // Resumed: the decision follows the metrics again.
    autoscalers
        .patch(
            "web",
            &PatchParams::default(),
            &annotate(json!({"ferroscale.dev/paused-replicas": null})),
        )
        .await?;
    wait_for("the PodSet to follow the load to 5", CONVERGE, || async {
        Ok((podset_replicas(&podsets).await? == 5).then_some(()))
    })
    .await?;
    Ok(())
}

/// Distinct evaluation times of each Autoscaler, read from the operator's gauges.
fn evaluations(metrics: &str) -> std::collections::BTreeMap<String, i64> {
    last_evaluations(metrics)
        .into_iter()
        .map(|((_, name), at)| (name, at))
        .collect()
}

#[tokio::test]
async fn each_autoscaler_is_evaluated_on_its_own_period() -> Result<()> {
    let Some(s) = setup("each_autoscaler_is_evaluated_on_its_own_period").await? else {
        return Ok(());
    };
    let podsets: Api<PodSet> = Api::namespaced(s.client.clone(), &s.ns.name);
    let autoscalers: Api<Autoscaler> = Api::namespaced(s.client.clone(), &s.ns.name);
    for (name, period) in [("fast", 5), ("slow", 15)] {
        let app = format!("e2e-period-{name}");
        let podset: PodSet = serde_json::from_value(json!({
            "apiVersion": "ferroscale.dev/v1alpha1", "kind": "PodSet", "metadata": {"name": name},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": app}}, "template": pod_template(&app)}
        }))?;
        podsets.create(&PostParams::default(), &podset).await?;
        let mut a = autoscaler("PodSet", "ferroscale.dev/v1alpha1", name, WINDOW)?;
        a.metadata.name = Some(name.into());
        a.spec.sync_period_seconds = Some(period);
        autoscalers.create(&PostParams::default(), &a).await?;
    }
    let admin = format!("127.0.0.1:{}", support::prometheus::free_port());
    let _operator = Operator::start(
        &s.kubeconfig,
        &[
            "--namespace",
            &s.ns.name,
            "--sync-period",
            "15s",
            "--prometheus-url",
            &s.prometheus.url,
            "--admin-addr",
            &admin,
        ],
    )?;
    wait_for("both Autoscalers evaluated", CONVERGE, || async {
        let seen = http_get(&admin, "/metrics")
            .await
            .map(|m| evaluations(&m))
            .unwrap_or_default();
        Ok((seen.len() == 2).then_some(()))
    })
    .await?;
    let mut seen: std::collections::BTreeMap<String, std::collections::BTreeSet<i64>> = Default::default();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(31) {
        for (name, at) in evaluations(&http_get(&admin, "/metrics").await?) {
            seen.entry(name).or_default().insert(at);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (fast, slow) = (seen["fast"].len(), seen["slow"].len());
    assert!(fast >= 6, "the 5 s Autoscaler was evaluated {fast} times in 31 s");
    assert!(
        (2..=3).contains(&slow),
        "the 15 s Autoscaler was evaluated {slow} times in 31 s"
    );
    Ok(())
}

#[tokio::test]
async fn an_hpa_converted_to_an_autoscaler_waits_for_the_hpa_then_takes_over() -> Result<()> {
    let test = "an_hpa_converted_to_an_autoscaler_waits_for_the_hpa_then_takes_over";
    let (Some(s), Some(file)) = (setup(test).await?, metrics_file_or_skip(test)) else {
        return Ok(());
    };
    let cpu = FakeCpu::new(&file, &s.ns.name);
    cpu.set(50)?; // exactly the 50% target: neither controller has reason to move
    let podsets: Api<PodSet> = Api::namespaced(s.client.clone(), &s.ns.name);
    let mut template = pod_template("e2e-migrate");
    template["spec"]["containers"][0]["resources"] = json!({"requests": {"cpu": "100m"}});
    let podset: PodSet = serde_json::from_value(json!({
        "apiVersion": "ferroscale.dev/v1alpha1", "kind": "PodSet", "metadata": {"name": "web"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "e2e-migrate"}}, "template": template}
    }))?;
    podsets.create(&PostParams::default(), &podset).await?;
    let spec = json!({
        "scaleTargetRef": {"apiVersion": "ferroscale.dev/v1alpha1", "kind": "PodSet", "name": "web"},
        "minReplicas": 1, "maxReplicas": 6,
        "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]
    });
    // The HPA as the cluster serves it (autoscaling/v2 from 1.23, v2beta2 before).
    let version = server_version(&s.client).await?;
    let api_version = if version >= "1.23".parse().map_err(anyhow::Error::msg)? {
        "autoscaling/v2"
    } else {
        "autoscaling/v2beta2"
    };
    let hpa = json!({"apiVersion": api_version, "kind": "HorizontalPodAutoscaler",
                     "metadata": {"name": "web", "namespace": s.ns.name}, "spec": spec});
    let manifest = std::env::temp_dir().join(format!("ferroscale-e2e-hpa-{}.json", std::process::id()));
    std::fs::write(&manifest, hpa.to_string())?;
    kubectl(&s.kubeconfig, &["create", "-f", manifest.to_str().unwrap()])?;
    // The same spec, with apiVersion and kind changed.
    let converted: Autoscaler = serde_json::from_value(json!({
        "apiVersion": "ferroscale.dev/v1alpha1", "kind": "Autoscaler", "metadata": {"name": "web"}, "spec": spec
    }))?;
    let autoscalers: Api<Autoscaler> = Api::namespaced(s.client.clone(), &s.ns.name);
    autoscalers.create(&PostParams::default(), &converted).await?;
    let _operator = s.operator()?;
    let waiting = wait_for("ConflictingAutoscaler naming the HPA", CONVERGE, || async {
        let a = autoscalers.get_status("web").await?;
        Ok(condition(&a, "ScalingActive").filter(|c| c.reason.as_deref() == Some("ConflictingAutoscaler")))
    })
    .await?;
    assert!(waiting.message.unwrap_or_default().contains("HorizontalPodAutoscaler"));

    kubectl(&s.kubeconfig, &["delete", "-f", manifest.to_str().unwrap()])?;
    let _ = std::fs::remove_file(&manifest);
    wait_for("the Autoscaler to take over", CONVERGE, || async {
        let a = autoscalers.get_status("web").await?;
        Ok(condition(&a, "ScalingActive").filter(|c| c.reason.as_deref() == Some("ValidMetricFound")))
    })
    .await?;
    let took_over = Instant::now();
    while took_over.elapsed() < Duration::from_secs(10) {
        assert_eq!(
            podset_replicas(&podsets).await?,
            3,
            "no jump in replicas at the hand-over"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Ok(())
}

#[tokio::test]
async fn autoscalers_of_one_namespace_share_one_pod_metrics_list() -> Result<()> {
    let test = "autoscalers_of_one_namespace_share_one_pod_metrics_list";
    let (Some(s), Some(file)) = (setup(test).await?, metrics_file_or_skip(test)) else {
        return Ok(());
    };
    let cpu = FakeCpu::new(&file, &s.ns.name);
    cpu.set(100)?; // every pod at 100m of the 100m it requests: twice the 50% target
    let podsets: Api<PodSet> = Api::namespaced(s.client.clone(), &s.ns.name);
    let autoscalers: Api<Autoscaler> = Api::namespaced(s.client.clone(), &s.ns.name);
    let names = ["a", "b", "c"];
    for name in names {
        let mut template = pod_template(&format!("e2e-shared-{name}"));
        template["spec"]["containers"][0]["resources"] = json!({"requests": {"cpu": "100m"}});
        let podset: PodSet = serde_json::from_value(json!({
            "apiVersion": "ferroscale.dev/v1alpha1", "kind": "PodSet", "metadata": {"name": name},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": format!("e2e-shared-{name}")}}, "template": template}
        }))?;
        podsets.create(&PostParams::default(), &podset).await?;
        // Each target's own pods decide: b's maximum is 3, the others' 2.
        let a: Autoscaler = serde_json::from_value(json!({
            "apiVersion": "ferroscale.dev/v1alpha1", "kind": "Autoscaler", "metadata": {"name": name},
            "spec": {"scaleTargetRef": {"apiVersion": "ferroscale.dev/v1alpha1", "kind": "PodSet", "name": name},
                     "minReplicas": 1, "maxReplicas": if name == "b" { 3 } else { 2 },
                     "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]}
        }))?;
        autoscalers.create(&PostParams::default(), &a).await?;
    }
    let admin = format!("127.0.0.1:{}", support::prometheus::free_port());
    let _operator = s.operator_with(&["--pod-metrics-read", "namespace", "--admin-addr", &admin])?;
    for (name, want) in [("a", 2), ("b", 3), ("c", 2)] {
        wait_for(&format!("{name} scaled to {want}"), CONVERGE, || async {
            let replicas = podsets.get_scale(name).await?.spec.and_then(|s| s.replicas);
            Ok((replicas == Some(want)).then_some(()))
        })
        .await?;
    }
    let text = http_get(&admin, "/metrics").await?;
    let lists = |kind: &str| gauge(&text, &format!("ferroscale_pod_metrics_{kind}_lists_total"));
    assert_eq!(lists("selector"), Some(0.0), "no list per Autoscaler");
    let shared = lists("namespace").unwrap_or_default();
    let evaluations: f64 = text
        .lines()
        .filter(|l| l.starts_with("ferroscale_reconciles_total{controller=\"autoscaler\"}"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(
        shared >= 1.0 && shared < evaluations,
        "{shared} namespace lists for {evaluations} evaluations"
    );
    Ok(())
}
