//! The custom resources of ferroscale (group `ferroscale.dev`, version `v1alpha1`):
//! [`Autoscaler`], a superset of `autoscaling/v2` HorizontalPodAutoscaler, and [`PodSet`], a
//! sample workload with a `scale` subresource.

pub mod autoscaler;
pub mod metrics_apis;
pub mod podset;
pub mod quantity;
pub mod validate;

pub use autoscaler::*;
pub use podset::{PodSet, PodSetSpec, PodSetStatus};
pub use validate::{FieldError, FieldErrors};

use kube::CustomResourceExt;

/// The CRD manifests in the order `ferroscale crds` prints them, as (file name, YAML).
pub fn crd_documents() -> Vec<(&'static str, String)> {
    [
        ("autoscalers.ferroscale.dev.yaml", Autoscaler::crd()),
        ("podsets.ferroscale.dev.yaml", PodSet::crd()),
    ]
    .into_iter()
    .map(|(file, crd)| {
        let yaml = serde_yaml::to_string(&crd).unwrap_or_else(|e| unreachable!("a CRD always serializes: {e}"));
        (file, yaml)
    })
    .collect()
}
