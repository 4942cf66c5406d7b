//! ferroscale's controllers, built on kube-runtime: [`autoscaler`] scales targets as the HPA
//! would, [`podset`] keeps PodSets' pods running.

pub mod autoscaler;
pub mod autoscaler_gauges;
pub mod backoff;
pub mod conditions;
pub mod events;
pub mod fairness;
pub mod interner;
pub mod labels;
pub mod leader;
pub mod pod_cache;
pub mod podset;
pub mod rbac;
pub mod shard;
pub mod slim;
pub mod status_patch;
pub mod telemetry;

/// Whether a write failed because the object changed since it was read (409 Conflict): what
/// every conditional write (status, scale, the Lease) checks for.
pub fn is_conflict(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 409)
}
