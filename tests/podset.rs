//! PodSet end to end: the controller honours whatever replica count the scale subresource
//! sets, replaces deleted pods, and never runs more pods than requested.
//! Runs only with FERROSCALE_E2E_KUBECONFIG set; needs nothing of the cluster but an API server
//! and nodes that run the pause image.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use anyhow::Result;
use ferroscale_api::PodSet;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use serde_json::json;
use support::*;

const CONVERGE: Duration = Duration::from_secs(180);

fn live(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    pod.metadata.deletion_timestamp.is_none() && !matches!(phase, Some("Succeeded" | "Failed"))
}

async fn live_pods(pods: &Api<Pod>) -> Result<Vec<Pod>> {
    Ok(pods
        .list(&ListParams::default().labels("app=e2e-web"))
        .await?
        .items
        .into_iter()
        .filter(live)
        .collect())
}

/// Waits until exactly `n` live pods exist and the PodSet's status says so.
async fn converge(podsets: &Api<PodSet>, pods: &Api<Pod>, n: usize) -> Result<Vec<Pod>> {
    wait_for(&format!("{n} live pods and status.replicas {n}"), CONVERGE, || async {
        let live = live_pods(pods).await?;
        let status = podsets.get_status("web").await?.status.unwrap_or_default();
        Ok((live.len() == n && status.replicas == n as i32).then_some(live))
    })
    .await
}

#[tokio::test]
async fn podset_follows_the_scale_subresource() -> Result<()> {
    let Some(kubeconfig) = kubeconfig_or_skip("podset_follows_the_scale_subresource") else {
        return Ok(());
    };
    let client = client(&kubeconfig).await?;
    install_crds(&client).await?;
    let ns = TestNamespace::create(&client, &kubeconfig, "ferroscale-e2e-podset").await?;
    let _operator = Operator::start(&kubeconfig, &["--controllers", "podset", "--namespace", &ns.name])?;
    let podsets: Api<PodSet> = Api::namespaced(client.clone(), &ns.name);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);

    // Count live pods at every change the API server reports; `allowed` is the most the test
    // permits at that moment (it only drops once a scale-down has completed).
    let allowed = Arc::new(AtomicI32::new(2));
    let worst = Arc::new(AtomicI32::new(0));
    let watch = {
        let (pods, allowed, worst) = (pods.clone(), allowed.clone(), worst.clone());
        tokio::spawn(async move {
            let mut live_names = BTreeSet::new();
            let mut stream = watcher(pods, watcher::Config::default().labels("app=e2e-web"))
                .default_backoff()
                .touched_objects()
                .boxed();
            while let Some(Ok(pod)) = stream.next().await {
                if live(&pod) {
                    live_names.insert(pod.name_any())
                } else {
                    live_names.remove(&pod.name_any())
                };
                let over = live_names.len() as i32 - allowed.load(Ordering::SeqCst);
                worst.fetch_max(over, Ordering::SeqCst);
            }
        })
    };

    let podset: PodSet = serde_json::from_value(json!({
        "apiVersion": "ferroscale.dev/v1alpha1", "kind": "PodSet", "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "e2e-web"}},
            "template": {"metadata": {"labels": {"app": "e2e-web"}},
                         "spec": {"terminationGracePeriodSeconds": 0, "containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10"}]}}
        }
    }))?;
    podsets.create(&PostParams::default(), &podset).await?;
    converge(&podsets, &pods, 2).await?;

    allowed.store(5, Ordering::SeqCst);
    podsets
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 5}})),
        )
        .await?;
    converge(&podsets, &pods, 5).await?;
    let scale = podsets.get_scale("web").await?;
    assert_eq!(scale.spec.and_then(|s| s.replicas), Some(5));
    let status = scale.status.unwrap();
    assert_eq!((status.replicas, status.selector.as_deref()), (5, Some("app=e2e-web")));
    wait_for("5 ready pods", CONVERGE, || async {
        Ok((podsets
            .get_status("web")
            .await?
            .status
            .unwrap_or_default()
            .ready_replicas
            == 5)
            .then_some(()))
    })
    .await?;

    podsets
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 1}})),
        )
        .await?;
    let remaining = converge(&podsets, &pods, 1).await?;
    allowed.store(1, Ordering::SeqCst);

    let victim = remaining[0].name_any();
    pods.delete(&victim, &DeleteParams::default()).await?;
    let replaced = wait_for("the deleted pod to be replaced", CONVERGE, || async {
        let live = live_pods(&pods).await?;
        Ok((live.len() == 1 && live[0].name_any() != victim).then_some(()))
    })
    .await;
    replaced?;

    watch.abort();
    assert!(
        worst.load(Ordering::SeqCst) <= 0,
        "at some moment {} more live pods ran than requested",
        worst.load(Ordering::SeqCst)
    );
    Ok(())
}
