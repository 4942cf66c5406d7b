//! What the decision needs to know of each pod the target's selector matches, and how the HPA
//! sorts pods into ready, unready, missing and ignored before averaging a metric.

use foldhash::{HashMap, HashMapExt};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Container, Pod};

use crate::samples::PodSample;
use crate::time::plus;

/// A pod's phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodPhase {
    Pending,
    Running,
    Succeeded,
    Failed,
    Unknown,
}

/// The status of a pod's Ready condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
}

/// The pod's Ready condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadyCondition {
    pub status: ConditionStatus,
    pub last_transition: Option<Timestamp>,
}

/// Resource requests of one container, in milli-units.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ContainerRequests {
    pub name: String,
    pub requests: Vec<(String, i64)>,
}

/// One pod, reduced to what the decision reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodInfo {
    /// Shared: the pod cache keys its index by the same string.
    pub name: Arc<str>,
    pub phase: PodPhase,
    /// The pod has a deletion timestamp.
    pub terminating: bool,
    pub start_time: Option<Timestamp>,
    pub ready: Option<ReadyCondition>,
    /// Regular containers, then restartable init containers (sidecars), whose requests count.
    /// Shared: the pods of one template request the same, and the pod cache keeps one copy.
    pub containers: Arc<[ContainerRequests]>,
    /// Pod-level `spec.resources.requests`, which take precedence when set.
    pub pod_requests: Vec<(String, i64)>,
}

impl PodInfo {
    /// A running, ready pod with the given containers: a convenience for tests and simulation.
    pub fn running(name: impl Into<Arc<str>>, start: Timestamp, containers: Vec<ContainerRequests>) -> Self {
        Self {
            name: name.into(),
            phase: PodPhase::Running,
            terminating: false,
            start_time: Some(start),
            ready: Some(ReadyCondition {
                status: ConditionStatus::True,
                last_transition: Some(start),
            }),
            containers: containers.into(),
            pod_requests: Vec::new(),
        }
    }

    /// Running and Ready, as the HPA counts ready pods for Object and External metrics.
    pub fn is_running_and_ready(&self) -> bool {
        self.phase == PodPhase::Running && self.ready.is_some_and(|r| r.status == ConditionStatus::True)
    }

    /// The pod's request for `resource`, in milli-units: the pod-level request when one is set
    /// (and no container is named), else the sum over its containers (or the named one).
    pub fn request(&self, resource: &str, container: Option<&str>) -> Result<i64, String> {
        if container.is_none() && !self.pod_requests.is_empty() {
            if let Some((_, v)) = self.pod_requests.iter().find(|(r, _)| r == resource) {
                return Ok(*v);
            }
            let summed: Vec<i64> = self
                .containers
                .iter()
                .filter_map(|c| lookup(&c.requests, resource))
                .collect();
            if summed.is_empty() {
                return Err(format!("missing pod-level request for {resource} in Pod {}", self.name));
            }
            return Ok(summed.iter().sum());
        }
        let mut total = 0i64;
        for c in self.containers.iter() {
            if container.is_none_or(|name| name == c.name) {
                let Some(request) = lookup(&c.requests, resource) else {
                    return Err(format!(
                        "missing request for {resource} in container {} of Pod {}",
                        c.name, self.name
                    ));
                };
                total = total.wrapping_add(request);
                if container.is_some() {
                    return Ok(total);
                }
            }
        }
        match container {
            Some(name) => Err(format!("container {name} not found in Pod {}", self.name)),
            None => Ok(total),
        }
    }
}

fn lookup(requests: &[(String, i64)], resource: &str) -> Option<i64> {
    requests.iter().find(|(r, _)| r == resource).map(|(_, v)| *v)
}

fn quantity_map(
    map: Option<&std::collections::BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
) -> Vec<(String, i64)> {
    map.into_iter()
        .flatten()
        .map(|(name, q)| (name.clone(), ferroscale_api::quantity::milli_value(&q.0).unwrap_or(0)))
        .collect()
}

fn container_requests(c: &Container) -> ContainerRequests {
    ContainerRequests {
        name: c.name.clone(),
        requests: quantity_map(c.resources.as_ref().and_then(|r| r.requests.as_ref())),
    }
}

impl From<&Pod> for PodInfo {
    fn from(pod: &Pod) -> Self {
        let status = pod.status.as_ref();
        let spec = pod.spec.as_ref();
        let phase = match status.and_then(|s| s.phase.as_deref()) {
            Some("Pending") => PodPhase::Pending,
            Some("Running") => PodPhase::Running,
            Some("Succeeded") => PodPhase::Succeeded,
            Some("Failed") => PodPhase::Failed,
            _ => PodPhase::Unknown,
        };
        let ready = status
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
            .map(|c| ReadyCondition {
                status: match c.status.as_str() {
                    "True" => ConditionStatus::True,
                    "False" => ConditionStatus::False,
                    _ => ConditionStatus::Unknown,
                },
                last_transition: c.last_transition_time.as_ref().map(|t| t.0),
            });
        let mut containers: Vec<ContainerRequests> = spec
            .map(|s| s.containers.iter().map(container_requests).collect())
            .unwrap_or_default();
        let sidecars = spec.and_then(|s| s.init_containers.as_ref()).into_iter().flatten();
        containers.extend(
            sidecars
                .filter(|c| c.restart_policy.as_deref() == Some("Always"))
                .map(container_requests),
        );
        Self {
            name: pod.metadata.name.as_deref().unwrap_or_default().into(),
            phase,
            terminating: pod.metadata.deletion_timestamp.is_some(),
            start_time: status.and_then(|s| s.start_time.as_ref()).map(|t| t.0),
            ready,
            containers: containers.into(),
            pod_requests: quantity_map(
                spec.and_then(|s| s.resources.as_ref())
                    .and_then(|r| r.requests.as_ref()),
            ),
        }
    }
}

/// How the HPA counts one pod in a per-pod metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// Its sample is trusted.
    Ready,
    /// Pending, or (for CPU) not yet ready or still warming up.
    Unready,
    /// No sample.
    Missing,
    /// Terminating or failed.
    Ignored,
}

/// A sample as the calculation reads it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub value: i64,
    pub timestamp: Timestamp,
    pub window: Duration,
}

/// Samples matched to the pods by name: `by_pod[i]` belongs to `pods[i]` (a later sample for
/// the same pod replaces an earlier one); samples naming no known pod are kept apart, since the
/// HPA still counts them in plain averages.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IndexedSamples {
    pub by_pod: Vec<Option<Sample>>,
    pub extraneous: Vec<i64>,
}

/// Matches samples to pods with one lookup table of pod names.
pub fn index_samples(pods: &[PodInfo], samples: &[PodSample]) -> IndexedSamples {
    let mut by_pod = vec![None; pods.len()];
    // A fast hasher with a random seed: pod names are chosen by cluster users.
    let mut position: HashMap<&str, usize> = HashMap::with_capacity(pods.len());
    for (i, pod) in pods.iter().enumerate() {
        position.insert(&*pod.name, i);
    }
    let mut extraneous: HashMap<&str, i64> = HashMap::new();
    for s in samples {
        let sample = Sample {
            value: s.value,
            timestamp: s.timestamp,
            window: s.window,
        };
        match position.get(s.pod.as_str()) {
            Some(&i) => by_pod[i] = Some(sample),
            None => {
                extraneous.insert(s.pod.as_str(), s.value);
            }
        }
    }
    IndexedSamples {
        by_pod,
        extraneous: extraneous.into_values().collect(),
    }
}

/// Timing knobs of the CPU readiness rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Readiness {
    pub cpu_initialization_period: Duration,
    pub initial_readiness_delay: Duration,
}

/// Sorts pods like the HPA's `groupPods`, one [`Group`] per pod. Readiness only matters for
/// CPU, whose usage spikes while a pod starts: a sample is distrusted while the pod is unready
/// within its initialization period, or when it was taken less than one window after
/// readiness changed.
pub fn group(
    pods: &[PodInfo],
    samples: &IndexedSamples,
    is_cpu: bool,
    now: Timestamp,
    timing: Readiness,
) -> Vec<Group> {
    pods.iter()
        .zip(&samples.by_pod)
        .map(|(pod, sample)| {
            if pod.terminating || pod.phase == PodPhase::Failed {
                return Group::Ignored;
            }
            if pod.phase == PodPhase::Pending {
                return Group::Unready;
            }
            let Some(sample) = sample else { return Group::Missing };
            if is_cpu && cpu_sample_untrusted(pod, sample, now, timing) {
                return Group::Unready;
            }
            Group::Ready
        })
        .collect()
}
fn cpu_sample_untrusted(pod: &PodInfo, sample: &Sample, now: Timestamp, timing: Readiness) -> bool {
    let (Some(ready), Some(start)) = (pod.ready, pod.start_time) else {
        return true;
    };
    let transition = ready.last_transition.unwrap_or(Timestamp::MIN);
    if plus(start, timing.cpu_initialization_period) > now {
        ready.status == ConditionStatus::False || sample.timestamp < plus(transition, sample.window)
    } else {
        ready.status == ConditionStatus::False && plus(start, timing.initial_readiness_delay) > transition
    }
}
