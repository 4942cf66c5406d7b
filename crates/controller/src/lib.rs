//! ferroscale's controllers, built on kube-runtime: [`podset`] keeps PodSets' pods running.

pub mod backoff;
pub mod conditions;
pub mod pod_cache;
pub mod podset;
