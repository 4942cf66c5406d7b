//! Real `autoscaling/v2` HorizontalPodAutoscalers become valid Autoscalers by changing
//! `apiVersion` and `kind` only, and survive a round trip without losing a field.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use ferroscale_api::Autoscaler;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use serde_json::Value;

fn fixtures() -> Vec<(String, Value)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/hpa");
    let mut files: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                serde_yaml::from_str(&text).unwrap(),
            )
        })
        .collect()
}

#[test]
fn the_fixtures_are_real_hpas() {
    let all = fixtures();
    assert!(all.len() >= 6, "want at least six HPAs, have {}", all.len());
    for (name, original) in all {
        let hpa: HorizontalPodAutoscaler =
            serde_json::from_value(original.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            serde_json::to_value(&hpa).unwrap(),
            original,
            "{name} is not exactly an autoscaling/v2 HPA"
        );
    }
}

#[test]
fn changing_api_version_and_kind_makes_an_autoscaler() {
    for (name, mut document) in fixtures() {
        document["apiVersion"] = "ferroscale.dev/v1alpha1".into();
        document["kind"] = "Autoscaler".into();
        let autoscaler: Autoscaler = serde_json::from_value(document.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            serde_json::to_value(&autoscaler).unwrap(),
            document,
            "{name} lost or changed a field"
        );
        if let Err(errors) = autoscaler.spec.validate() {
            panic!("{name} is valid as an HPA but not as an Autoscaler: {errors}");
        }
    }
}

#[test]
fn example_manifests_are_valid() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples");
    let read = |file: &str| -> Value {
        serde_yaml::from_str(&std::fs::read_to_string(format!("{dir}/{file}")).unwrap()).unwrap()
    };
    let podset: ferroscale_api::PodSet = serde_json::from_value(read("podset.yaml")).unwrap();
    podset.spec.validate().unwrap();
    let autoscaler: Autoscaler = serde_json::from_value(read("podset-autoscaler.yaml")).unwrap();
    autoscaler.spec.validate().unwrap();
    let hpa: HorizontalPodAutoscaler = serde_json::from_value(read("podset-hpa.yaml")).unwrap();
    assert_eq!(hpa.spec.unwrap().scale_target_ref.kind, "PodSet");
    let mut converted = read("podset-hpa.yaml");
    converted["apiVersion"] = "ferroscale.dev/v1alpha1".into();
    converted["kind"] = "Autoscaler".into();
    assert_eq!(
        converted,
        read("podset-autoscaler.yaml"),
        "the Autoscaler example differs from the HPA only in apiVersion and kind"
    );
}
