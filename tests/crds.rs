//! The CRDs on a real API server: installed by every path a user takes (kubectl create,
//! kubectl apply, kubectl apply --server-side, helm install), and invalid Autoscalers refused by
//! the server where it can check them (CEL rules, 1.25+) and reported by the controller always.
//! Runs only with FERROSCALE_E2E_KUBECONFIG set; needs kubectl (and helm for the chart path).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use ferroscale_api::Autoscaler;
use ferroscale_api::crd::{self, KubeVersion};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use serde_json::{Value, json};
use support::*;

const CEL: KubeVersion = KubeVersion::new(1, 25);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The checked-in CRD files for a server of `version`, as the README tells users to apply.
fn crd_dir(version: KubeVersion) -> PathBuf {
    if version >= CEL {
        root().join("crds")
    } else {
        root().join("crds").join(crd::PRE_CEL_DIR)
    }
}

/// Copies of the CRD files under a group of their own, so that installing and deleting them
/// never disturbs the real CRDs other tests use.
fn renamed_copies(dir: &Path, group: &str, into: &Path) -> Result<Vec<String>> {
    std::fs::create_dir_all(into)?;
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let mut crd: Value = serde_yaml::from_str(&std::fs::read_to_string(&path)?)?;
        let plural = crd["spec"]["names"]["plural"].as_str().context("plural")?.to_string();
        crd["spec"]["group"] = json!(group);
        crd["metadata"]["name"] = json!(format!("{plural}.{group}"));
        names.push(format!("{plural}.{group}"));
        std::fs::write(into.join(path.file_name().unwrap()), serde_yaml::to_string(&crd)?)?;
    }
    names.sort();
    Ok(names)
}

async fn established(crds: &Api<CustomResourceDefinition>, name: &str) -> Result<CustomResourceDefinition> {
    wait_for(
        &format!("CRD {name} to be established"),
        Duration::from_secs(60),
        || async {
            let crd = crds.get(name).await?;
            let ok = crd
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Established" && c.status == "True"));
            Ok(ok.then_some(crd))
        },
    )
    .await
}

fn rule_count(crd: &CustomResourceDefinition) -> usize {
    serde_json::to_string(crd)
        .unwrap_or_default()
        .matches("x-kubernetes-validations")
        .count()
}

async fn delete_crds(crds: &Api<CustomResourceDefinition>, names: &[String]) -> Result<()> {
    for name in names {
        crds.delete(name, &DeleteParams::default()).await?;
    }
    Ok(())
}

#[tokio::test]
async fn the_crds_install_by_every_path() -> Result<()> {
    let Some(kubeconfig) = kubeconfig_or_skip("the_crds_install_by_every_path") else {
        return Ok(());
    };
    let client = client(&kubeconfig).await?;
    let version = server_version(&client).await?;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let id = std::process::id();
    let scratch = std::env::temp_dir().join(format!("ferroscale-e2e-crds-{id}"));
    let paths: [(&str, &[&str]); 3] = [
        ("create", &["create", "-f"]),
        ("apply", &["apply", "-f"]),
        ("ssa", &["apply", "--server-side", "-f"]),
    ];
    for (path, command) in paths {
        let group = format!("{path}-{id}.e2e.ferroscale.dev");
        let dir = scratch.join(path);
        let names = renamed_copies(&crd_dir(version), &group, &dir)?;
        let mut args = command.to_vec();
        args.push(dir.to_str().unwrap());
        kubectl(&kubeconfig, &args).with_context(|| format!("Kubernetes {version}, kubectl {path}"))?;
        for name in &names {
            let stored = established(&crds, name).await?;
            if name.starts_with("autoscalers.") && version >= CEL {
                assert!(rule_count(&stored) > 0, "{path}: the server kept no CEL rule");
            }
        }
        delete_crds(&crds, &names).await?;
    }

    // The chart, with its CRDs under a group of their own too.
    let helm = std::env::var("HELM").unwrap_or_else(|_| "helm".into());
    if std::process::Command::new(&helm).arg("version").output().is_err() {
        println!("skipped the helm path: helm is not installed (.ci/install-helm installs it)");
        return Ok(());
    }
    let chart = scratch.join("chart");
    copy_dir(&root().join("charts/ferroscale"), &chart)?;
    let group = format!("helm-{id}.e2e.ferroscale.dev");
    let template = chart.join("templates/crds.yaml");
    let text = std::fs::read_to_string(&template)?.replace("ferroscale.dev", &group);
    std::fs::write(&template, text)?;
    let ns = TestNamespace::create(&client, &kubeconfig, "ferroscale-e2e-helm").await?;
    let release = format!("e2e-{id}");
    let install = std::process::Command::new(&helm)
        .args(["install", &release, chart.to_str().unwrap(), "--namespace", &ns.name])
        .args([
            "--set",
            "image.repository=example.invalid/ferroscale",
            "--set",
            "replicaCount=0",
        ])
        .env("KUBECONFIG", &kubeconfig)
        .output()?;
    assert!(
        install.status.success(),
        "helm install on Kubernetes {version}: {}",
        String::from_utf8_lossy(&install.stderr)
    );
    let names = [format!("autoscalers.{group}"), format!("podsets.{group}")];
    for name in &names {
        let stored = established(&crds, name).await?;
        assert_eq!(
            rule_count(&stored) > 0,
            name.starts_with("autoscalers.") && version >= CEL,
            "the chart picks the CRDs for Kubernetes {version}"
        );
    }
    let uninstall = std::process::Command::new(&helm)
        .args(["uninstall", &release, "--namespace", &ns.name])
        .env("KUBECONFIG", &kubeconfig)
        .output()?;
    assert!(
        uninstall.status.success(),
        "{}",
        String::from_utf8_lossy(&uninstall.stderr)
    );
    for name in &names {
        crds.get(name)
            .await
            .with_context(|| format!("{name} was not kept on uninstall"))?;
    }
    delete_crds(&crds, &names).await?;
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

fn autoscaler(name: &str, spec: Value) -> Autoscaler {
    serde_json::from_value(json!({
        "apiVersion": "ferroscale.dev/v1alpha1", "kind": "Autoscaler", "metadata": {"name": name}, "spec": spec
    }))
    .unwrap()
}

#[tokio::test]
async fn invalid_autoscalers_are_refused_or_reported() -> Result<()> {
    let Some(kubeconfig) = kubeconfig_or_skip("invalid_autoscalers_are_refused_or_reported") else {
        return Ok(());
    };
    let client = client(&kubeconfig).await?;
    install_crds(&client).await?;
    let version = server_version(&client).await?;
    let ns = TestNamespace::create(&client, &kubeconfig, "ferroscale-e2e-invalid").await?;
    let autoscalers: Api<Autoscaler> = Api::namespaced(client.clone(), &ns.name);
    let target = json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"});
    let cpu = json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]);

    // minReplicas above maxReplicas: a CEL rule on 1.25+, the controller's check before.
    let inverted = autoscaler(
        "inverted",
        json!({"scaleTargetRef": target, "minReplicas": 6, "maxReplicas": 5, "metrics": cpu}),
    );
    let created = autoscalers.create(&PostParams::default(), &inverted).await;
    // Zero replicas with only a CPU metric: a CEL rule on 1.25+, the controller's check before.
    let zero = autoscaler(
        "zero",
        json!({"scaleTargetRef": target, "minReplicas": 0, "maxReplicas": 5, "metrics": cpu}),
    );
    let zero_created = autoscalers.create(&PostParams::default(), &zero).await;
    // A negative activation threshold: no schema can say it (a quantity), the controller does.
    let negative = autoscaler(
        "negative",
        json!({"scaleTargetRef": target, "maxReplicas": 5, "metrics": [{"type": "External", "external": {
            "metric": {"name": "queue"}, "target": {"type": "Value", "value": "10"}, "activationThreshold": "-5"}}]}),
    );
    autoscalers.create(&PostParams::default(), &negative).await?;
    let mut reported = vec![("negative", "spec.metrics[0].external.activationThreshold")];
    if version >= CEL {
        for (name, result, message) in [
            (
                "inverted",
                created,
                "minReplicas must be less than or equal to maxReplicas",
            ),
            (
                "zero",
                zero_created,
                "minReplicas may be 0 only when at least one Object, External or Prometheus metric is configured",
            ),
        ] {
            let error = result.expect_err("a 1.25+ server refuses it").to_string();
            assert!(error.contains("spec") && error.contains(message), "{name}: {error}");
        }
        let no_member = autoscaler(
            "no-member",
            json!({"scaleTargetRef": target, "maxReplicas": 5, "metrics": [{"type": "External"}]}),
        );
        let message = autoscalers
            .create(&PostParams::default(), &no_member)
            .await
            .expect_err("a 1.25+ server refuses a metric without its member")
            .to_string();
        assert!(
            message.contains("external must be set when type is External"),
            "{message}"
        );
    } else {
        created.context("a server before 1.25 takes it; the controller reports it")?;
        zero_created.context("a server before 1.25 takes it; the controller reports it")?;
        reported.push(("inverted", "spec.maxReplicas"));
        reported.push(("zero", "spec.minReplicas"));
    }

    let _operator = Operator::start(&kubeconfig, &["--namespace", &ns.name, "--sync-period", "2s"])?;
    for (name, field) in reported {
        let condition = wait_for(
            &format!("{name}: ScalingActive=False InvalidSpec"),
            Duration::from_secs(60),
            || async {
                let status = autoscalers.get_status(name).await?.status.unwrap_or_default();
                Ok(status
                    .conditions
                    .unwrap_or_default()
                    .into_iter()
                    .find(|c| c.type_ == "ScalingActive" && c.reason.as_deref() == Some("InvalidSpec")))
            },
        )
        .await?;
        assert_eq!(condition.status, "False");
        let message = condition.message.unwrap_or_default();
        assert!(message.contains(field), "{name}: {message:?} should name {field}");
    }
    Ok(())
}
