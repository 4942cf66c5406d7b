//! ferroscale's controllers, built on kube-runtime: [`autoscaler`] scales targets as the HPA
//! would, [`podset`] keeps PodSets' pods running.

pub mod autoscaler;
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
pub mod slim;
pub mod status_patch;
pub mod telemetry;
