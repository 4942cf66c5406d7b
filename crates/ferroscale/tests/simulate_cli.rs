//! `ferroscale simulate`: the built-in scenario's golden output, the example scenarios, the
//! plot, and errors that name the problem. UPDATE_GOLDEN=1 rewrites the golden files.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

#[path = "../../../tests/support/files.rs"]
mod files;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn ferroscale(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferroscale"))
        .args(args)
        .output()
        .unwrap()
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/simulate")
}

fn golden(name: &str, actual: &str) {
    let path = examples().join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", path.display()));
    assert!(
        expected == actual,
        "{} differs from the output:\n{actual}",
        path.display()
    );
}

#[test]
fn the_built_in_scenario_matches_its_golden_output() {
    for (format, file) in [("table", "built-in.expected.txt"), ("csv", "built-in.expected.csv")] {
        let out = ferroscale(&["simulate", "-o", format]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        golden(file, &String::from_utf8(out.stdout).unwrap());
    }
    // The built-in scenario is examples/simulate/built-in.yaml, byte for byte.
    let from_file = ferroscale(&[
        "simulate",
        "-o",
        "csv",
        examples().join("built-in.yaml").to_str().unwrap(),
    ]);
    assert_eq!(
        String::from_utf8(from_file.stdout).unwrap(),
        std::fs::read_to_string(examples().join("built-in.expected.csv")).unwrap()
    );
}

#[test]
fn the_built_in_scenario_shows_what_it_promises() {
    let out = ferroscale(&["simulate", "-o", "json"]);
    let run: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let reasons: Vec<&str> = run["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("scale up") && r.contains("ScaleUpLimit")),
        "a policy-limited scale-up"
    );
    assert!(
        reasons.iter().any(|r| r.starts_with("held by stabilization")),
        "a scale-down held by the window"
    );
    assert!(
        reasons.iter().any(|r| r.starts_with("scale down")),
        "then the scale-down"
    );
    let summary = &run["summary"];
    for key in [
        "replicaSeconds",
        "secondsOverTarget",
        "scaleUps",
        "scaleDowns",
        "secondsToFirstScaleUp",
        "maxReplicas",
    ] {
        assert!(summary.get(key).is_some(), "summary.{key}");
    }
}

#[test]
fn every_example_scenario_runs_and_plots() {
    let dir = std::env::temp_dir().join(format!("ferroscale-simulate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for path in files::files_ending(&examples(), ".yaml").unwrap() {
        let svg = dir.join(path.with_extension("svg").file_name().unwrap());
        let out = ferroscale(&[
            "simulate",
            path.to_str().unwrap(),
            "-o",
            "csv",
            "--plot",
            svg.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let rows = String::from_utf8(out.stdout).unwrap().lines().count();
        assert!(rows > 10, "{}: {rows} rows", path.display());
        let drawing = std::fs::read_to_string(&svg).unwrap();
        assert!(
            drawing.starts_with("<svg") && drawing.contains("<polyline") && drawing.trim_end().ends_with("</svg>"),
            "{}",
            svg.display()
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_scenarios_are_named() {
    let dir = std::env::temp_dir().join(format!("ferroscale-bad-simulate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let builtin = std::fs::read_to_string(examples().join("built-in.yaml")).unwrap();
    let cases = [
        (
            "typo.yaml",
            builtin.replace("podStartup", "podStartUp"),
            "unknown field `podStartUp`",
        ),
        (
            "duration.yaml",
            builtin.replace("duration: 30m", "duration: half an hour"),
            "spec.duration",
        ),
        (
            "invalid.yaml",
            builtin.replace("maxReplicas: 20", "maxReplicas: 1"),
            "spec.autoscaler.maxReplicas",
        ),
        (
            "kind.yaml",
            builtin.replace("kind: Simulation", "kind: Autoscaler"),
            "kind Simulation",
        ),
    ];
    for (file, text, fragment) in cases {
        let path = dir.join(file);
        std::fs::write(&path, text).unwrap();
        let out = ferroscale(&["simulate", path.to_str().unwrap()]);
        assert!(!out.status.success(), "{file} should fail");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains(file) && err.contains(fragment), "{file}: {err}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn prediction_halves_the_pressure_of_a_seasonal_load_for_at_most_a_tenth_more_cost() {
    for name in ["daily-sine.yaml", "business-day.yaml"] {
        let path = examples().join(name);
        let out = ferroscale(&["simulate", path.to_str().unwrap(), "-o", "json"]);
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        let run: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let figure = |summary: &str, key: &str| run[summary][key].as_f64().unwrap();
        let (pressure, reactive_pressure) = (
            figure("summary", "secondsOverTarget"),
            figure("reactiveSummary", "secondsOverTarget"),
        );
        let (cost, reactive_cost) = (
            figure("summary", "replicaSeconds"),
            figure("reactiveSummary", "replicaSeconds"),
        );
        assert!(
            pressure * 2.0 <= reactive_pressure,
            "{name}: pressure {pressure} s against {reactive_pressure} s reactive"
        );
        assert!(
            cost <= reactive_cost * 1.10,
            "{name}: cost {cost} against {reactive_cost} reactive"
        );
        // The warm-up is not reported: the timeline is the third day.
        let first = run["timeline"][0]["seconds"].as_u64().unwrap();
        assert_eq!(first, 48 * 3600, "{name}");
    }
}

#[test]
fn a_schedule_holds_its_minimum_in_the_simulation_too() {
    let dir = std::env::temp_dir().join(format!("ferroscale-schedule-simulate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // The simulated clock starts at 2026-01-01T00:00:00Z: a schedule from 00:10 to 00:20 UTC.
    let builtin = std::fs::read_to_string(examples().join("built-in.yaml")).unwrap();
    let scheduled = builtin.replace(
        "    minReplicas: 2\n",
        "    minReplicas: 2\n    schedules:\n    - {name: morning, start: 10 0 * * *, end: 10m, minReplicas: 12}\n",
    );
    assert_ne!(scheduled, builtin);
    let path = dir.join("scheduled.yaml");
    std::fs::write(&path, scheduled).unwrap();
    let out = ferroscale(&["simulate", path.to_str().unwrap(), "-o", "json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let run: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let desired = |seconds: u64| {
        run["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["seconds"] == seconds)
            .map(|r| r["desired"].as_i64().unwrap())
            .unwrap()
    };
    // Quiet at 150 requests/s, the spec's minimum of 2 would do: the schedule holds 12.
    assert!(desired(600) >= 12, "at 10:00: {}", desired(600));
    assert!(desired(1185) >= 12, "at 19:45: {}", desired(1185));
    assert!(desired(1785) < 12, "at 29:45, after the schedule: {}", desired(1785));
    std::fs::remove_dir_all(&dir).unwrap();
}
