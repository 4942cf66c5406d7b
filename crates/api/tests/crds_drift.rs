//! The checked-in CRDs (crds/ and the Helm chart's copy) are exactly what the types generate.
//! Run `make crds` after changing the types.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::path::Path;

use ferroscale_api::crd;

fn assert_same(path: &Path, generated: &str) {
    let on_disk = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}; run `make crds`", path.display()));
    assert!(
        on_disk == generated,
        "{} differs from the types; run `make crds`",
        path.display()
    );
}

#[test]
fn checked_in_crds_match_the_types() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let sets = [
        (root.join("crds"), crd::crds()),
        (
            root.join("crds").join(crd::PRE_CEL_DIR),
            crd::for_kube_version(crd::PRE_CEL),
        ),
    ];
    for (dir, crds) in sets {
        for (file, generated) in crd::documents(&crds) {
            assert_same(&dir.join(file), &generated);
        }
    }
    assert_same(
        &root.join("charts/ferroscale/templates/crds.yaml"),
        &crd::helm_template(),
    );
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
