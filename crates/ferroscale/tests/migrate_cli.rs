//! `ferroscale migrate` on files: every real HPA fixture becomes the same object as an
//! Autoscaler, from autoscaling/v2 and from its older forms (v2beta2, v2beta1, v1); warnings
//! and errors name the file, the document and the field.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

#[path = "../../../tests/support/files.rs"]
mod files;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde::Deserialize;
use serde_json::Value;

fn ferroscale(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferroscale"))
        .args(args)
        // Never a real cluster: the file tests must not depend on one.
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// The YAML documents of the output, each of which must start with `---`.
fn documents(stdout: &[u8]) -> Vec<Value> {
    let out = text(stdout);
    assert!(out.is_empty() || out.starts_with("---\n"), "{out}");
    serde_yaml::Deserializer::from_str(&out)
        .map(|d| Value::deserialize(d).unwrap())
        .collect()
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    files::files_ending(dir, ".yaml").unwrap()
}

fn hpa_fixtures() -> Vec<PathBuf> {
    yaml_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../api/tests/hpa"))
}

/// The fixture as an Autoscaler: the same object with ferroscale's apiVersion and kind.
fn as_autoscaler(hpa: &Path) -> Value {
    let mut value: Value = serde_yaml::from_str(&std::fs::read_to_string(hpa).unwrap()).unwrap();
    value["apiVersion"] = "ferroscale.dev/v1alpha1".into();
    value["kind"] = "Autoscaler".into();
    value
}

fn migrate_ok(args: &[&str]) -> Vec<Value> {
    let out = ferroscale(&["migrate"].iter().chain(args).copied().collect::<Vec<_>>(), "");
    assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    assert!(
        out.stderr.is_empty(),
        "{args:?}: unexpected warnings: {}",
        text(&out.stderr)
    );
    documents(&out.stdout)
}

#[test]
fn every_v2_fixture_becomes_the_same_object_as_an_autoscaler() {
    let fixtures = hpa_fixtures();
    assert!(fixtures.len() >= 7, "want every fixture of crates/api/tests/hpa");
    for fixture in &fixtures {
        let converted = migrate_ok(&[fixture.to_str().unwrap()]);
        assert_eq!(converted, [as_autoscaler(fixture)], "{}", fixture.display());
    }
    // All at once: one document each, in order.
    let args: Vec<&str> = fixtures.iter().map(|p| p.to_str().unwrap()).collect();
    let expected: Vec<Value> = fixtures.iter().map(|p| as_autoscaler(p)).collect();
    assert_eq!(migrate_ok(&args), expected);
}

#[test]
fn older_versions_of_the_fixtures_become_the_same_autoscalers() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/migrate");
    let older = yaml_files(&dir);
    let versions: Vec<&str> = older
        .iter()
        .map(|p| p.file_name().unwrap().to_str().unwrap().split('.').nth(1).unwrap())
        .collect();
    for version in ["v1", "v2beta1", "v2beta2"] {
        assert!(versions.contains(&version), "no {version} fixture in {}", dir.display());
    }
    let originals = hpa_fixtures();
    for file in &older {
        let prefix = file.file_name().unwrap().to_str().unwrap().split('.').next().unwrap();
        let original = originals
            .iter()
            .find(|p| p.file_stem().unwrap() == prefix)
            .unwrap_or_else(|| panic!("{}: no fixture {prefix}.yaml in crates/api/tests/hpa", file.display()));
        let converted = migrate_ok(&[file.to_str().unwrap()]);
        assert_eq!(converted, [as_autoscaler(original)], "{}", file.display());
    }
}

#[test]
fn stdin_lists_and_other_kinds() {
    let fixture = std::fs::read_to_string(&hpa_fixtures()[0]).unwrap();
    let list = "\
apiVersion: v1
kind: List
items:
- apiVersion: autoscaling/v1
  kind: HorizontalPodAutoscaler
  metadata: {name: listed, namespace: shop}
  spec:
    scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
    maxReplicas: 4
    targetCPUUtilizationPercentage: 60
- apiVersion: apps/v1
  kind: Deployment
  metadata: {name: web, namespace: shop}
";
    let out = ferroscale(&["migrate", "-"], &format!("{fixture}---\n{list}"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        "warning: <stdin> document 2 items[1] (shop/web): kind: Deployment (apps/v1) is not a HorizontalPodAutoscaler; skipped\n"
    );
    let converted = documents(&out.stdout);
    assert_eq!(converted.len(), 2);
    assert_eq!(converted[0], as_autoscaler(&hpa_fixtures()[0]));
    assert_eq!(converted[1]["metadata"]["name"], "listed");
    assert_eq!(
        converted[1]["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
        60
    );
}

#[test]
fn an_hpa_without_metrics_gets_the_default_written_out_and_a_warning() {
    let out = ferroscale(
        &["migrate", "-"],
        "apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web, namespace: shop}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  maxReplicas: 4
",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        "warning: <stdin> document 1 (shop/web): spec.metrics: not set: written out as the API server's default, \
         a Resource metric of 80% average CPU utilization\n"
    );
    let converted = documents(&out.stdout);
    assert_eq!(
        converted[0]["spec"]["metrics"],
        serde_json::json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}])
    );
}

#[test]
fn errors_name_file_document_and_field_and_print_nothing() {
    let dir = std::env::temp_dir().join(format!("ferroscale-migrate-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("broken.yaml");
    let fixture = std::fs::read_to_string(&hpa_fixtures()[0]).unwrap();
    std::fs::write(
        &file,
        format!(
            "{fixture}---\napiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {{name: bad, namespace: x}}\n\
             spec: {{scaleTargetRef: {{kind: Deployment, name: d}}, maxReplicas: many}}\n"
        ),
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let out = ferroscale(&["migrate", path], "");
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "printed despite an error: {}", text(&out.stdout));
    assert_eq!(
        text(&out.stderr),
        format!(
            "error: {path} document 2 (x/bad): spec.maxReplicas: invalid type: string \"many\", expected i32; \
             nothing was printed\n"
        )
    );

    // Several problems: each on its own line, then a summary.
    let missing = dir.join("missing.yaml");
    let out = ferroscale(&["migrate", path, missing.to_str().unwrap(), "-"], "a: [\n");
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 4, "{stderr}");
    assert!(lines[0].starts_with(&format!("error: {path} document 2 (x/bad): spec.maxReplicas: ")));
    assert!(
        lines[1].starts_with(&format!("error: cannot read {}: ", missing.display())),
        "{stderr}"
    );
    assert!(
        lines[2].starts_with("error: <stdin> document 1: invalid YAML: "),
        "{stderr}"
    );
    assert_eq!(lines[3], "error: 3 problems (above); nothing was printed");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn files_and_cluster_flags_do_not_mix_and_no_cluster_is_a_clear_error() {
    let fixture = hpa_fixtures()[0].to_str().unwrap().to_string();
    for flags in [&["-n", "shop"][..], &["-A"]] {
        let mut args = vec!["migrate", fixture.as_str()];
        args.extend(flags);
        let out = ferroscale(&args, "");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains("cannot be used with"),
            "{}",
            text(&out.stderr)
        );
    }
    let out = ferroscale(&["migrate", "-n", "shop", "-A"], "");
    assert_eq!(out.status.code(), Some(2));
    // With no file, the cluster: here there is none.
    let out = Command::new(env!("CARGO_BIN_EXE_ferroscale"))
        .args(["migrate", "-n", "shop"])
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env("HOME", "/nonexistent")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let stderr = text(&out.stderr);
    assert!(stderr.starts_with("error: cannot connect to a cluster: "), "{stderr}");
    assert!(stderr.contains("/nonexistent/kubeconfig"), "{stderr}");
}
