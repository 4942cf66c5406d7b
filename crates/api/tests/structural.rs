//! Every CRD ferroscale generates passes the checks an API server makes before it accepts a
//! CRD, for every supported server version: the full CRDs (`crds/`, the chart) on servers that
//! know every field they use, and `ferroscale crds --kube-version` output on each older one.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use ferroscale_api::crd::{self, KubeVersion, OLDEST_SUPPORTED};
use ferroscale_api::structural::check;

/// The newest minor release this test speaks for.
const NEWEST: KubeVersion = KubeVersion::new(1, 35);

fn supported() -> impl Iterator<Item = KubeVersion> {
    (OLDEST_SUPPORTED.minor..=NEWEST.minor).map(|minor| KubeVersion::new(1, minor))
}

#[test]
fn the_crds_for_each_server_version_are_structural_and_known_to_it() {
    for version in supported() {
        for crd in crd::for_kube_version(version) {
            let problems = check(&serde_json::to_value(&crd).unwrap(), version);
            assert!(
                problems.is_empty(),
                "for Kubernetes {version}:\n{}",
                problems.join("\n")
            );
        }
    }
}

#[test]
fn the_full_crds_are_structural_on_every_server_that_knows_their_fields() {
    let crds = crd::crds();
    let first_taking_all = supported()
        .find(|v| {
            crds.iter()
                .all(|crd| check(&serde_json::to_value(crd).unwrap(), *v).is_empty())
        })
        .expect("some supported version takes the full CRDs");
    assert_eq!(
        first_taking_all,
        KubeVersion::new(1, 25),
        "the README says crds/ is for Kubernetes 1.25 and newer"
    );
    // Older servers object only to fields they do not know, which create and client-side
    // apply drop; nothing else may be wrong.
    for crd in &crds {
        for problem in check(&serde_json::to_value(crd).unwrap(), OLDEST_SUPPORTED) {
            assert!(problem.contains(" is unknown to Kubernetes 1.19"), "{problem}");
        }
    }
}
