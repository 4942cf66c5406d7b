//! `ferroscale explain` end to end: the examples' golden outputs, and errors that name the problem.
//! Set UPDATE_GOLDEN=1 to rewrite the golden files after an intended change.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

#[path = "../../../tests/support/files.rs"]
mod files;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const NOW: &str = "2026-01-01T00:00:00Z";

fn ferroscale(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferroscale"))
        .args(args)
        .output()
        .unwrap()
}

fn examples() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/explain");
    files::files_ending(&dir, ".yaml").unwrap()
}

fn check_golden(path: &Path, actual: &str) {
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(path, actual).unwrap();
        return;
    }
    let expected =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", path.display()));
    assert!(
        expected == actual,
        "{} differs from the output:\n{actual}",
        path.display()
    );
}

#[test]
fn examples_match_their_golden_output() {
    let files = examples();
    assert!(files.len() >= 4, "examples/explain should hold at least four snapshots");
    for file in files {
        let f = file.to_str().unwrap();
        for (format, extension) in [("text", "txt"), ("json", "json")] {
            let out = ferroscale(&["explain", f, "--now", NOW, "-o", format]);
            assert!(out.status.success(), "{f}: {}", String::from_utf8_lossy(&out.stderr));
            assert!(
                out.stderr.is_empty(),
                "{f}: unexpected warnings: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            check_golden(
                &file.with_extension(format!("expected.{extension}")),
                &String::from_utf8(out.stdout).unwrap(),
            );
        }
    }
}

#[test]
fn json_output_has_the_documented_shape() {
    let file = examples()
        .into_iter()
        .find(|p| p.ends_with("cpu-scale-up.yaml"))
        .unwrap();
    let out = ferroscale(&["explain", file.to_str().unwrap(), "--now", NOW, "-o", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["currentReplicas"], 3);
    assert_eq!(json["desiredReplicas"], 5);
    assert_eq!(json["metrics"][0]["replicas"], 5);
    assert_eq!(json["metrics"][0]["error"], serde_json::Value::Null);
    assert_eq!(
        json["metrics"][0]["status"]["resource"]["current"]["averageUtilization"],
        90
    );
    assert_eq!(json["conditions"].as_array().unwrap().len(), 3);
    let recs = json["status"]["recommendations"].as_array().unwrap();
    assert!(
        recs.iter().any(|r| r["replicas"] == 5 && r["timestamp"] == NOW),
        "{recs:?}"
    );
}

fn failure(args: &[&str]) -> String {
    let out = ferroscale(args);
    assert!(!out.status.success(), "{args:?} should fail");
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn bad_input_exits_non_zero_naming_the_problem() {
    let dir = std::env::temp_dir().join(format!("ferroscale-explain-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    let missing = dir.join("absent.yaml");
    assert!(failure(&["explain", missing.to_str().unwrap()]).contains("cannot read"));

    let bad_yaml = write("bad.yaml", "kind: [unclosed\n");
    let err = failure(&["explain", &bad_yaml]);
    assert!(
        err.contains("bad.yaml") && err.contains("document 1: not valid YAML"),
        "{err}"
    );

    let no_scale = write(
        "no-scale.yaml",
        "apiVersion: ferroscale.dev/v1alpha1\nkind: Autoscaler\nmetadata: {name: a}\nspec:\n  scaleTargetRef: {kind: Deployment, name: web}\n  maxReplicas: 3\n",
    );
    let err = failure(&["explain", &no_scale]);
    assert!(err.contains("no-scale.yaml") && err.contains("no Scale"), "{err}");

    let bad_field = write(
        "bad-field.yaml",
        "apiVersion: ferroscale.dev/v1alpha1\nkind: Autoscaler\nmetadata: {name: a}\nspec:\n  scaleTargetRef: {kind: Deployment, name: web}\n  maxReplicas: many\n",
    );
    let err = failure(&["explain", &bad_field]);
    assert!(err.contains("document 1 (Autoscaler a) at spec.maxReplicas"), "{err}");

    let flag = failure(&["explain", &no_scale, "--tolerance", "lots"]);
    assert!(
        flag.contains("--tolerance") && flag.contains("invalid quantity"),
        "{flag}"
    );
    let flag = failure(&["explain", &no_scale, "--cpu-initialization-period", "5 minutes"]);
    assert!(flag.contains("--cpu-initialization-period"), "{flag}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn crds_prints_what_crds_holds() {
    let out = ferroscale(&["crds"]);
    assert!(out.status.success());
    let printed = String::from_utf8(out.stdout).unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../crds");
    let mut expected = String::new();
    for file in ["autoscalers.ferroscale.dev.yaml", "podsets.ferroscale.dev.yaml"] {
        expected.push_str("---\n");
        expected.push_str(&std::fs::read_to_string(dir.join(file)).unwrap());
    }
    assert_eq!(printed, expected);
}

#[test]
fn live_and_snapshot_flags_are_not_mixed() {
    let err = failure(&["explain", "shop/web", "--now", NOW]);
    assert!(err.contains("--now sets the time of a snapshot replay"), "{err}");
    let file = examples()
        .into_iter()
        .find(|p| p.ends_with("cpu-scale-up.yaml"))
        .unwrap();
    let err = failure(&["explain", file.to_str().unwrap(), "--save", "/tmp/never-written.yaml"]);
    assert!(err.contains("is a snapshot already"), "{err}");
    // A path that does not exist is read as a file when it looks like one.
    let err = failure(&["explain", "shop/web.yaml"]);
    assert!(err.contains("cannot read shop/web.yaml"), "{err}");
}

#[test]
fn an_invalid_spec_is_explained_as_the_controller_treats_it() {
    let dir = std::env::temp_dir().join(format!("ferroscale-explain-invalid-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("invalid.yaml");
    std::fs::write(
        &file,
        "apiVersion: ferroscale.dev/v1alpha1\nkind: Autoscaler\nmetadata: {name: web, namespace: shop}\nspec:\n  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}\n  minReplicas: 5\n  maxReplicas: 3\n---\napiVersion: autoscaling/v1\nkind: Scale\nmetadata: {name: web}\nspec: {replicas: 2}\nstatus: {replicas: 2, selector: app=web}\n",
    )
    .unwrap();
    let out = ferroscale(&["explain", file.to_str().unwrap(), "--now", NOW]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("reports InvalidSpec and scales nothing") && text.contains("spec.maxReplicas"),
        "{text}"
    );
    assert!(text.contains("no change: Deployment web stays at 2 replicas"), "{text}");
    assert!(!text.contains("the controller sets"), "{text}");
    assert!(text.contains("it evaluates again when the spec changes"), "{text}");
    let out = ferroscale(&["explain", file.to_str().unwrap(), "--now", NOW, "-o", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["rescale"], false);
    let active = json["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "ScalingActive")
        .unwrap();
    assert_eq!(active["reason"], "InvalidSpec");
    std::fs::remove_dir_all(&dir).unwrap();
}
