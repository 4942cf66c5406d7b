//! What a PodSet needs: which pods to create, delete and adopt, and the status to report.
//! Pure: it reads the PodSet, the cached pods and the writes still in flight.

use std::cmp::Reverse;

use ferroscale_api::{FieldErrors, PodSet};
use ferroscale_autoscaler::pods::{ConditionStatus, PodPhase};
use ferroscale_autoscaler::selector::from_label_selector;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::{Resource, ResourceExt};

use super::expectations::Pending;
use crate::labels::Query;
use crate::pod_cache::CachedPod;

/// At most this many pods are created or deleted per reconcile, as the ReplicaSet controller
/// bounds its bursts; the rest follow on the next pass.
pub const BURST: usize = 500;

/// The controller reference of an owner: `controller: true` and, for garbage collection,
/// `blockOwnerDeletion: true`.
pub fn controller_ref(podset: &PodSet) -> Option<OwnerReference> {
    podset.controller_owner_ref(&())
}

fn controlled_by(pod: &CachedPod, uid: &str) -> bool {
    pod.owners.iter().any(|o| o.controller && &*o.uid == uid)
}

fn has_controller(pod: &CachedPod) -> bool {
    pod.owners.iter().any(|o| o.controller)
}

/// Live: not terminating, and not finished (Succeeded or Failed pods never come back).
pub fn is_live(pod: &CachedPod) -> bool {
    !pod.deleting() && !matches!(pod.info.phase, PodPhase::Succeeded | PodPhase::Failed)
}

/// The pod's Ready condition is True.
pub fn is_ready(pod: &CachedPod) -> bool {
    pod.info.ready.is_some_and(|r| r.status == ConditionStatus::True)
}

/// The order in which surplus pods go: unscheduled, then pending, then not ready, then the
/// newest; a pod that cost least to lose goes first.
fn deletion_rank(pod: &CachedPod) -> impl Ord + use<> {
    let phase = match pod.info.phase {
        PodPhase::Pending => 0,
        PodPhase::Running => 2,
        _ => 1,
    };
    (
        pod.scheduled,
        phase,
        is_ready(pod),
        Reverse(pod.created),
        pod.name().to_string(),
    )
}

/// What to do for one PodSet.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    /// How many pods to create now.
    pub create: usize,
    /// Pods to delete now, the first to go first.
    pub delete: Vec<String>,
    /// Matching pods with no controller, to take ownership of.
    pub adopt: Vec<String>,
    /// Live pods owned (or adopted).
    pub replicas: i32,
    pub ready_replicas: i32,
    /// `spec.selector` in string form, for the scale subresource.
    pub selector: String,
    /// Writes from an earlier pass are not yet visible in the cache, so counting now could
    /// overshoot: nothing is created or deleted until they are.
    pub waiting_for_cache: bool,
}

/// Why a PodSet cannot be acted upon.
#[derive(Debug, Clone, PartialEq)]
pub struct InvalidSpec(pub FieldErrors);

/// Decides what the PodSet needs, given the pods of its namespace.
pub fn plan<'a>(
    podset: &PodSet,
    pods_in_namespace: impl IntoIterator<Item = &'a CachedPod>,
    pending: &Pending,
) -> Result<Plan, InvalidSpec> {
    podset.spec.validate().map_err(InvalidSpec)?;
    let selector = from_label_selector(&podset.spec.selector).map_err(|e| {
        InvalidSpec(FieldErrors(vec![ferroscale_api::FieldError {
            path: "spec.selector".into(),
            message: e,
        }]))
    })?;
    let query = Query::new(&selector);
    let uid = podset.uid().unwrap_or_default();
    let mut owned: Vec<&CachedPod> = Vec::new();
    let mut adopt = Vec::new();
    for pod in pods_in_namespace {
        if !query.matches(&pod.labels) {
            continue;
        }
        if controlled_by(pod, &uid) {
            owned.push(pod);
        } else if !has_controller(pod) && is_live(pod) {
            adopt.push(pod.name().to_string());
            owned.push(pod);
        }
    }
    let live: Vec<&CachedPod> = owned.iter().copied().filter(|p| is_live(p)).collect();
    let mut plan = Plan {
        replicas: live.len() as i32,
        ready_replicas: live.iter().filter(|p| is_ready(p)).count() as i32,
        selector: selector.to_string(),
        adopt,
        ..Plan::default()
    };
    if !pending.is_empty() {
        plan.waiting_for_cache = true;
        return Ok(plan);
    }
    let wanted = podset.spec.replicas.max(0) as usize;
    if live.len() < wanted {
        plan.create = (wanted - live.len()).min(BURST);
    } else if live.len() > wanted {
        let mut surplus = live;
        surplus.sort_by_cached_key(|p| deletion_rank(p));
        plan.delete = surplus
            .into_iter()
            .take((plan.replicas as usize - wanted).min(BURST))
            .map(|p| p.name().to_string())
            .collect();
    }
    Ok(plan)
}

/// A new pod from the template: named after the PodSet with a generated suffix, labelled as
/// the template says, and owned by the PodSet.
pub fn new_pod(podset: &PodSet) -> Pod {
    let PodTemplateSpec { metadata, spec } = podset.spec.template.spec();
    let template = metadata.unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-", podset.name_any())),
            namespace: podset.namespace(),
            labels: template.labels,
            annotations: template.annotations,
            finalizers: template.finalizers,
            owner_references: controller_ref(podset).map(|r| vec![r]),
            ..ObjectMeta::default()
        },
        spec,
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::podset::expectations::Pending;
    use k8s_openapi::api::core::v1::{PodCondition, PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn podset(replicas: i32) -> PodSet {
        let mut ps: PodSet = serde_json::from_value(serde_json::json!({
            "apiVersion": "ferroscale.dev/v1alpha1", "kind": "PodSet",
            "metadata": {"name": "web", "namespace": "ns", "uid": "uid-web"},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web", "tier": "front"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
            }
        }))
        .unwrap();
        ps.spec.replicas = replicas;
        ps
    }

    struct P {
        name: &'static str,
        owner: Option<&'static str>,
        labels: &'static str,
        phase: &'static str,
        ready: bool,
        node: bool,
        age: i64,
        terminating: bool,
    }

    fn p(name: &'static str) -> P {
        P {
            name,
            owner: Some("uid-web"),
            labels: "web",
            phase: "Running",
            ready: true,
            node: true,
            age: 100,
            terminating: false,
        }
    }

    fn build(spec: P) -> Pod {
        let now: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        Pod {
            metadata: ObjectMeta {
                name: Some(spec.name.into()),
                namespace: Some("ns".into()),
                labels: Some([("app".to_string(), spec.labels.to_string())].into()),
                owner_references: spec.owner.map(|uid| {
                    vec![OwnerReference {
                        uid: uid.into(),
                        controller: Some(true),
                        name: "x".into(),
                        kind: "PodSet".into(),
                        api_version: "ferroscale.dev/v1alpha1".into(),
                        ..OwnerReference::default()
                    }]
                }),
                creation_timestamp: Some(Time(now - jiff::SignedDuration::from_secs(spec.age))),
                deletion_timestamp: spec.terminating.then_some(Time(now)),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                node_name: spec.node.then(|| "node-1".into()),
                ..PodSpec::default()
            }),
            status: Some(PodStatus {
                phase: Some(spec.phase.into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if spec.ready { "True" } else { "False" }.into(),
                    ..PodCondition::default()
                }]),
                ..PodStatus::default()
            }),
        }
    }

    fn run(replicas: i32, pods: Vec<P>) -> Plan {
        let pods: Vec<CachedPod> = pods.into_iter().map(|p| CachedPod::from(&build(p))).collect();
        plan(&podset(replicas), &pods, &Pending::default()).unwrap()
    }

    #[test]
    fn creates_and_deletes_to_match_replicas() {
        struct Case {
            name: &'static str,
            replicas: i32,
            pods: Vec<P>,
            create: usize,
            delete: Vec<&'static str>,
            adopt: Vec<&'static str>,
            live: i32,
            ready: i32,
        }
        let cases = vec![
            Case {
                name: "empty",
                replicas: 3,
                pods: vec![],
                create: 3,
                delete: vec![],
                adopt: vec![],
                live: 0,
                ready: 0,
            },
            Case {
                name: "steady",
                replicas: 2,
                pods: vec![p("a"), p("b")],
                create: 0,
                delete: vec![],
                adopt: vec![],
                live: 2,
                ready: 2,
            },
            Case {
                name: "terminating and finished pods do not count",
                replicas: 2,
                pods: vec![
                    p("a"),
                    P {
                        terminating: true,
                        ..p("b")
                    },
                    P {
                        phase: "Failed",
                        ..p("c")
                    },
                    P {
                        phase: "Succeeded",
                        ..p("d")
                    },
                ],
                create: 1,
                delete: vec![],
                adopt: vec![],
                live: 1,
                ready: 1,
            },
            Case {
                name: "other controllers' pods and other labels are not ours",
                replicas: 1,
                pods: vec![
                    P {
                        owner: Some("uid-other"),
                        ..p("a")
                    },
                    P {
                        labels: "api",
                        owner: None,
                        ..p("b")
                    },
                ],
                create: 1,
                delete: vec![],
                adopt: vec![],
                live: 0,
                ready: 0,
            },
            Case {
                name: "orphans matching the selector are adopted",
                replicas: 2,
                pods: vec![p("a"), P { owner: None, ..p("b") }],
                create: 0,
                delete: vec![],
                adopt: vec!["b"],
                live: 2,
                ready: 2,
            },
            Case {
                name: "not ready goes first, then the newest",
                replicas: 1,
                pods: vec![
                    P { age: 300, ..p("old") },
                    P { age: 10, ..p("new") },
                    P {
                        ready: false,
                        age: 500,
                        ..p("sick")
                    },
                ],
                create: 0,
                delete: vec!["sick", "new"],
                adopt: vec![],
                live: 3,
                ready: 2,
            },
            Case {
                name: "unscheduled and pending go before running",
                replicas: 1,
                pods: vec![
                    p("run"),
                    P {
                        phase: "Pending",
                        ready: false,
                        ..p("pend")
                    },
                    P {
                        node: false,
                        phase: "Pending",
                        ready: false,
                        ..p("unsched")
                    },
                ],
                create: 0,
                delete: vec!["unsched", "pend"],
                adopt: vec![],
                live: 3,
                ready: 1,
            },
            Case {
                name: "zero replicas deletes all",
                replicas: 0,
                pods: vec![p("a"), p("b")],
                create: 0,
                delete: vec!["a", "b"],
                adopt: vec![],
                live: 2,
                ready: 2,
            },
        ];
        for c in cases {
            let got = run(c.replicas, c.pods);
            assert_eq!(got.create, c.create, "{}: create", c.name);
            assert_eq!(got.delete, c.delete, "{}: delete", c.name);
            assert_eq!(got.adopt, c.adopt, "{}: adopt", c.name);
            assert_eq!(
                (got.replicas, got.ready_replicas),
                (c.live, c.ready),
                "{}: counts",
                c.name
            );
            assert_eq!(got.selector, "app=web", "{}", c.name);
        }
    }

    #[test]
    fn creation_is_bounded_per_pass() {
        assert_eq!(run(2000, vec![]).create, BURST);
    }

    #[test]
    fn nothing_is_written_while_earlier_writes_are_unseen() {
        let mut pending = Pending::default();
        pending.expect_creates(["web-x".to_string()]);
        let got = plan(&podset(5), &[], &pending).unwrap();
        assert!(got.waiting_for_cache);
        assert_eq!((got.create, got.delete.len()), (0, 0));
    }

    #[test]
    fn a_selector_that_misses_the_template_is_refused() {
        let mut ps = podset(2);
        ps.spec.selector.match_labels = Some([("app".to_string(), "api".to_string())].into());
        let err = plan(&ps, &[], &Pending::default()).unwrap_err();
        assert_eq!(err.0.0[0].path, "spec.template.metadata.labels");
    }

    #[test]
    fn new_pods_carry_the_template_and_an_owner() {
        let pod = new_pod(&podset(1));
        assert_eq!(pod.metadata.generate_name.as_deref(), Some("web-"));
        assert_eq!(pod.metadata.namespace.as_deref(), Some("ns"));
        assert_eq!(pod.labels().get("tier").map(String::as_str), Some("front"));
        let owner = &pod.metadata.owner_references.unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
            ("PodSet", "uid-web", Some(true))
        );
        assert_eq!(pod.spec.unwrap().containers[0].image.as_deref(), Some("nginx"));
    }
}
