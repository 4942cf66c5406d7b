//! The custom resources of ferroscale (group `ferroscale.dev`, version `v1alpha1`):
//! [`Autoscaler`], a superset of `autoscaling/v2` HorizontalPodAutoscaler, and [`PodSet`], a
//! sample workload with a `scale` subresource.

pub mod autoscaler;
pub mod crd;
pub mod duration;
pub mod metrics_apis;
pub mod podset;
pub mod quantity;
pub mod structural;
pub mod validate;

pub use autoscaler::*;
pub use podset::{PodSet, PodSetSpec, PodSetStatus, PodTemplate};
pub use validate::{FieldError, FieldErrors};

/// The CRD manifests in the order `ferroscale crds` prints them, as (file name, YAML), with
/// every schema field kept (what `crds/` holds).
pub fn crd_documents() -> Vec<(String, String)> {
    crd::documents(&crd::crds())
}
