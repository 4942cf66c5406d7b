//! `ferroscale migrate` against a real API server: the fixtures' HPAs created in the newest
//! version it serves (autoscaling/v2, or v2beta2 before 1.23) come out as Autoscalers equal to
//! the server's own view of each HPA under ferroscale's apiVersion and kind; `kubectl apply` of
//! the output creates valid Autoscalers; `-A` finds them; HPAs created as autoscaling/v1 give
//! what converting their files gives; and a refused list names RBAC.
//! Runs only with FERROSCALE_E2E_KUBECONFIG set; needs kubectl.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Context, Result, bail};
use ferroscale_api::Autoscaler;
use ferroscale_api::crd::KubeVersion;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, PostParams};
use kube::{Api, Client};
use serde::Deserialize;
use serde_json::{Value, json};
use support::*;

/// ContainerResource metrics: behind a feature gate until 1.27 (beta, on by default).
const CONTAINER_RESOURCE: KubeVersion = KubeVersion::new(1, 27);
/// `behavior.*.tolerance`: new in 1.33 (alpha).
const TOLERANCE: KubeVersion = KubeVersion::new(1, 33);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn yaml_files(dir: &Path, suffix: &str) -> Result<Vec<PathBuf>> {
    files::files_ending(dir, suffix).with_context(|| format!("reading {}", dir.display()))
}

fn read_yaml(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_yaml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

fn hpa_resource(version: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("autoscaling", version, "HorizontalPodAutoscaler"),
        "horizontalpodautoscalers",
    )
}

/// Runs `ferroscale migrate` against the test cluster.
fn migrate(kubeconfig: &Path, args: &[&str]) -> Result<Output> {
    Command::new(env!("CARGO_BIN_EXE_ferroscale"))
        .arg("migrate")
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .output()
        .context("running ferroscale migrate")
}

/// The documents of a successful run, and its standard error.
fn migrated(kubeconfig: &Path, args: &[&str]) -> Result<(String, Vec<Value>, String)> {
    let out = migrate(kubeconfig, args)?;
    let stdout = String::from_utf8(out.stdout)?;
    let stderr = String::from_utf8(out.stderr)?;
    if !out.status.success() {
        bail!("ferroscale migrate {args:?} failed: {stderr}");
    }
    let mut documents = Vec::new();
    for document in serde_yaml::Deserializer::from_str(&stdout) {
        documents.push(Value::deserialize(document)?);
    }
    Ok((stdout, documents, stderr))
}

fn name(value: &Value) -> &str {
    value["metadata"]["name"].as_str().unwrap_or_default()
}

fn by_name(mut values: Vec<Value>) -> Vec<Value> {
    values.sort_by(|a, b| name(a).cmp(name(b)));
    values
}

/// JSON nulls are absent fields to Kubernetes; some servers print them.
fn without_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(without_nulls).collect()),
        other => other,
    }
}

/// The server's view of an HPA as the Autoscaler it should become: the same spec under
/// ferroscale's apiVersion and kind, with the metadata a user owns, and no status. One thing is
/// left out: servers that store HPAs as autoscaling/v1 (1.19) show an Object AverageValue target
/// with `value: "0"` beside its average value, a zero that fails validation and means nothing.
fn as_autoscaler(hpa: &DynamicObject) -> Result<Value> {
    let mut value = without_nulls(serde_json::to_value(hpa)?);
    for metric in value["spec"]["metrics"].as_array_mut().into_iter().flatten() {
        if let Some(target) = metric.pointer_mut("/object/target").and_then(Value::as_object_mut)
            && target.get("type") == Some(&json!("AverageValue"))
            && target.get("value") == Some(&json!("0"))
        {
            target.remove("value");
        }
    }
    let metadata = &value["metadata"];
    let mut kept = json!({"name": metadata["name"], "namespace": metadata["namespace"]});
    if let Some(labels) = metadata
        .get("labels")
        .filter(|l| l.as_object().is_some_and(|m| !m.is_empty()))
    {
        kept["labels"] = labels.clone();
    }
    let mut annotations = metadata.get("annotations").cloned().unwrap_or(json!({}));
    if let Some(map) = annotations.as_object_mut() {
        map.remove("kubectl.kubernetes.io/last-applied-configuration");
        if !map.is_empty() {
            kept["annotations"] = annotations;
        }
    }
    Ok(json!({
        "apiVersion": "ferroscale.dev/v1alpha1",
        "kind": "Autoscaler",
        "metadata": kept,
        "spec": value.get_mut("spec").map(Value::take).unwrap_or_default(),
    }))
}

struct Cluster {
    kubeconfig: PathBuf,
    client: Client,
    version: KubeVersion,
    /// v2 or v2beta2.
    hpa_version: &'static str,
}

async fn cluster(test: &str) -> Result<Option<Cluster>> {
    let Some(kubeconfig) = kubeconfig_or_skip(test) else {
        return Ok(None);
    };
    let client = client(&kubeconfig).await?;
    let version = server_version(&client).await?;
    let hpa_version = newest_hpa_version(&client).await?;
    // autoscaling/v2 is served from 1.23: migrate must read v2beta2 before that.
    assert_eq!(
        hpa_version == "v2",
        version >= KubeVersion::new(1, 23),
        "Kubernetes {version} serves autoscaling/{hpa_version}"
    );
    Ok(Some(Cluster {
        kubeconfig,
        client,
        version,
        hpa_version,
    }))
}

impl Cluster {
    /// Whether this server knows what the HPA uses.
    fn can_hold(&self, hpa: &Value) -> bool {
        self.version >= CONTAINER_RESOURCE || !hpa.to_string().contains("ContainerResource")
    }

    /// Creates `hpa` (any version: its apiVersion says which) in `namespace`.
    async fn create(&self, namespace: &str, mut hpa: Value) -> Result<()> {
        let api_version = hpa["apiVersion"].as_str().unwrap_or_default().to_string();
        let version = api_version.trim_start_matches("autoscaling/");
        hpa["metadata"]["namespace"] = json!(namespace);
        let object: DynamicObject = serde_json::from_value(hpa)?;
        let name = object.metadata.name.clone().unwrap_or_default();
        Api::<DynamicObject>::namespaced_with(self.client.clone(), namespace, &hpa_resource(version))
            .create(&PostParams::default(), &object)
            .await
            .with_context(|| format!("Kubernetes {}: creating {api_version} HPA {name}", self.version))?;
        Ok(())
    }

    /// Creates, as `shape` makes them, the HPAs of `files` that this server can hold, and
    /// returns those files; the others are named as skipped.
    async fn create_fixtures(
        &self,
        namespace: &str,
        files: Vec<PathBuf>,
        shape: impl Fn(Value) -> Value,
    ) -> Result<Vec<PathBuf>> {
        let mut created = Vec::new();
        for file in files {
            let hpa = read_yaml(&file)?;
            if !self.can_hold(&hpa) {
                println!(
                    "Kubernetes {}: {} skipped, no ContainerResource metrics",
                    self.version,
                    file.display()
                );
                continue;
            }
            self.create(namespace, shape(hpa)).await?;
            created.push(file);
        }
        Ok(created)
    }

    /// The server's view of every HPA of `namespace`, in the version migrate reads.
    async fn hpas(&self, namespace: &str) -> Result<Vec<DynamicObject>> {
        let api =
            Api::<DynamicObject>::namespaced_with(self.client.clone(), namespace, &hpa_resource(self.hpa_version));
        Ok(api.list(&Default::default()).await?.items)
    }

    /// The fixture as this server can hold it: in the newest version it serves, without the
    /// fields it does not know yet.
    fn for_server(&self, mut hpa: Value) -> Value {
        hpa["apiVersion"] = json!(format!("autoscaling/{}", self.hpa_version));
        if self.version < TOLERANCE || self.hpa_version != "v2" {
            for direction in ["scaleUp", "scaleDown"] {
                if let Some(rules) = hpa
                    .pointer_mut(&format!("/spec/behavior/{direction}"))
                    .and_then(Value::as_object_mut)
                {
                    rules.remove("tolerance");
                }
            }
        }
        hpa
    }
}

#[tokio::test]
async fn migrate_turns_the_clusters_hpas_into_equal_valid_autoscalers() -> Result<()> {
    let Some(c) = cluster("migrate_turns_the_clusters_hpas_into_equal_valid_autoscalers").await? else {
        return Ok(());
    };
    install_crds(&c.client).await?;
    let ns = TestNamespace::create(&c.client, &c.kubeconfig, "ferroscale-e2e-migrate").await?;
    let fixtures = yaml_files(&root().join("crates/api/tests/hpa"), ".yaml")?;
    let created = c
        .create_fixtures(&ns.name, fixtures, |hpa| c.for_server(hpa))
        .await?
        .len();
    assert!(created >= 6, "only {created} fixtures created");

    let (stdout, documents, stderr) = migrated(&c.kubeconfig, &["-n", &ns.name])?;
    assert!(
        stderr.is_empty(),
        "Kubernetes {}: warnings on the server's own HPAs: {stderr}",
        c.version
    );
    let expected: Vec<Value> = c
        .hpas(&ns.name)
        .await?
        .iter()
        .map(as_autoscaler)
        .collect::<Result<_>>()?;
    assert_eq!(expected.len(), created);
    assert_eq!(
        by_name(documents.clone()),
        by_name(expected),
        "Kubernetes {}: the Autoscalers differ from the server's autoscaling/{} view of the HPAs",
        c.version,
        c.hpa_version
    );

    // -A finds the same ones among the rest of the cluster's.
    let (_, everywhere, _) = migrated(&c.kubeconfig, &["-A"])?;
    let mine: Vec<Value> = everywhere
        .into_iter()
        .filter(|d| d["metadata"]["namespace"] == json!(ns.name))
        .collect();
    assert_eq!(by_name(mine), by_name(documents.clone()), "-A");

    // What a user does next: kubectl apply of the output creates valid Autoscalers, unchanged.
    let file = std::env::temp_dir().join(format!("{}.yaml", ns.name));
    std::fs::write(&file, &stdout)?;
    kubectl(&c.kubeconfig, &["apply", "-f", file.to_str().unwrap()])
        .with_context(|| format!("Kubernetes {}: kubectl apply of the output", c.version))?;
    std::fs::remove_file(&file)?;
    let autoscalers: Api<Autoscaler> = Api::namespaced(c.client.clone(), &ns.name);
    for document in &documents {
        let stored = autoscalers.get(name(document)).await?;
        if let Err(errors) = stored.spec.validate() {
            panic!("Autoscaler {} is invalid: {errors}", name(document));
        }
        assert_eq!(
            serde_json::to_value(&stored.spec)?,
            document["spec"],
            "Kubernetes {}: Autoscaler {} changed when applied",
            c.version,
            name(document)
        );
    }
    Ok(())
}

#[tokio::test]
async fn hpas_created_as_v1_migrate_as_their_files_do() -> Result<()> {
    let Some(c) = cluster("hpas_created_as_v1_migrate_as_their_files_do").await? else {
        return Ok(());
    };
    let ns = TestNamespace::create(&c.client, &c.kubeconfig, "ferroscale-e2e-migrate-v1").await?;
    let fixtures = yaml_files(&root().join("crates/ferroscale/tests/migrate"), ".v1.yaml")?;
    let files = c.create_fixtures(&ns.name, fixtures, |hpa| hpa).await?;
    assert!(files.len() >= 3, "only {} v1 fixtures created", files.len());
    let paths: Vec<&str> = files.iter().map(|f| f.to_str().unwrap()).collect();
    let (_, from_files, _) = migrated(&c.kubeconfig, &paths)?;
    let (_, from_server, stderr) = migrated(&c.kubeconfig, &["-n", &ns.name])?;
    assert!(stderr.is_empty(), "{stderr}");
    // The server fills in minReplicas; the namespace is the test's.
    let comparable = |mut document: Value| {
        let spec = &mut document["spec"];
        if spec.get("minReplicas").is_none() {
            spec["minReplicas"] = json!(1);
        }
        document["metadata"].as_object_mut().map(|m| m.remove("namespace"));
        document
    };
    let from_files: Vec<Value> = by_name(from_files).into_iter().map(comparable).collect();
    let from_server: Vec<Value> = by_name(from_server).into_iter().map(comparable).collect();
    assert_eq!(
        from_files, from_server,
        "Kubernetes {}: converting the autoscaling/v1 files differs from the server's conversion",
        c.version
    );
    Ok(())
}

#[tokio::test]
async fn a_list_rbac_refuses_names_the_permission() -> Result<()> {
    let Some(c) = cluster("a_list_rbac_refuses_names_the_permission").await? else {
        return Ok(());
    };
    let ns = TestNamespace::create(&c.client, &c.kubeconfig, "ferroscale-e2e-migrate-rbac").await?;
    // The test's kubeconfig, acting as a user nobody granted anything.
    let mut kubeconfig = read_yaml(&c.kubeconfig)?;
    for user in kubeconfig["users"].as_array_mut().context("kubeconfig has no users")? {
        user["user"]["as"] = json!("ferroscale-e2e-nobody");
    }
    let path = std::env::temp_dir().join(format!("{}.kubeconfig", ns.name));
    std::fs::write(&path, serde_yaml::to_string(&kubeconfig)?)?;
    let out = migrate(&path, &["-n", &ns.name])?;
    std::fs::remove_file(&path)?;
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8(out.stderr)?;
    assert!(
        stderr.starts_with(&format!(
            "error: listing HorizontalPodAutoscalers (autoscaling/{}) in namespace \"{}\": forbidden by RBAC (",
            c.hpa_version, ns.name
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("ferroscale migrate needs `list` on horizontalpodautoscalers.autoscaling"),
        "{stderr}"
    );
    Ok(())
}
