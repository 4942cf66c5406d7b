//! The checked-in CRDs (crds/ and the Helm chart's copy) are exactly what the types generate.
//! Run `make crds` after changing the types.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::path::Path;

#[test]
fn checked_in_crds_match_the_types() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for dir in ["crds", "charts/ferroscale/crds"] {
        let dir = root.join(dir);
        if dir.ends_with("charts/ferroscale/crds") && !dir.exists() {
            continue;
        }
        for (file, generated) in ferroscale_api::crd_documents() {
            let path = dir.join(file);
            let on_disk =
                std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}; run `make crds`", path.display()));
            assert!(
                on_disk == generated,
                "{} differs from the types; run `make crds`",
                path.display()
            );
        }
    }
}

#[test]
fn podset_declares_the_scale_subresource() {
    let (_, podset) = ferroscale_api::crd_documents()
        .into_iter()
        .find(|(f, _)| f.starts_with("podsets"))
        .unwrap();
    let crd: serde_json::Value = serde_yaml::from_str(&podset).unwrap();
    let scale = &crd["spec"]["versions"][0]["subresources"]["scale"];
    assert_eq!(scale["specReplicasPath"], ".spec.replicas");
    assert_eq!(scale["statusReplicasPath"], ".status.replicas");
    assert_eq!(scale["labelSelectorPath"], ".status.selector");
}
