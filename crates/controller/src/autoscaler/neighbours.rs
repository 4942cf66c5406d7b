//! What other objects mean for one Autoscaler: other autoscalers that must not be fought
//! (another Autoscaler or an upstream HorizontalPodAutoscaler on the same target, or an
//! Autoscaler whose target's pods overlap), and which pods a target owns.

use std::collections::HashMap;
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use ferroscale_api::{Autoscaler, CrossVersionObjectReference};
use ferroscale_autoscaler::hold::Conflict;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler;
use kube::core::{Selector, SelectorExt};
use kube::runtime::reflector::Store;
use kube::{Api, Client, ResourceExt};

use crate::pod_cache::CachedPod;

/// How long a ReplicaSet's owner is remembered.
const OWNER_TTL: Duration = Duration::from_secs(300);

/// The group of an apiVersion (`apps/v1` → `apps`, `v1` → ``).
fn group(api_version: Option<&str>) -> &str {
    api_version.and_then(|v| v.split_once('/')).map_or("", |(g, _)| g)
}

fn same_target(a: &CrossVersionObjectReference, kind: &str, name: &str, api_version: Option<&str>) -> bool {
    a.kind == kind && a.name == name && group(a.api_version.as_deref()) == group(api_version)
}

/// The caches the checks read: every watched namespace's Autoscalers and HPAs, the target
/// selectors of the Autoscalers evaluated so far, and ReplicaSets' owners.
#[derive(Default)]
pub struct Neighbours {
    autoscalers: RwLock<Vec<Store<Autoscaler>>>,
    hpas: RwLock<Vec<Store<HorizontalPodAutoscaler>>>,
    /// uid → (namespace, name, target, the target's selector), as last evaluated.
    selectors: Mutex<HashMap<String, (String, String, CrossVersionObjectReference, Selector)>>,
    /// ReplicaSet uid → its controller's uid (None: it has none), and when that was read.
    replica_sets: Mutex<HashMap<String, (Option<String>, Instant)>>,
}

impl std::fmt::Debug for Neighbours {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Neighbours").finish_non_exhaustive()
    }
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Neighbours {
    pub fn add_autoscalers(&self, store: Store<Autoscaler>) {
        self.autoscalers.write().unwrap_or_else(|p| p.into_inner()).push(store);
    }

    pub fn add_hpas(&self, store: Store<HorizontalPodAutoscaler>) {
        self.hpas.write().unwrap_or_else(|p| p.into_inner()).push(store);
    }

    /// Remembers an Autoscaler's target selector, for the overlap check of the others.
    pub fn remember_selector(&self, autoscaler: &Autoscaler, selector: Selector) {
        if let (Some(uid), Some(namespace)) = (autoscaler.uid(), autoscaler.namespace()) {
            let target = autoscaler.spec.scale_target_ref.clone();
            locked(&self.selectors).insert(uid, (namespace, autoscaler.name_any(), target, selector));
        }
    }

    pub fn forget(&self, uid: &str) {
        locked(&self.selectors).remove(uid);
    }

    /// The autoscaler `me` must not fight, if any: an upstream HPA on its target; an older
    /// Autoscaler on its target (the oldest keeps working); an Autoscaler of another target
    /// that selects some of the same pods.
    pub fn conflict(&self, me: &Autoscaler, selected: &[std::sync::Arc<CachedPod>]) -> Option<Conflict> {
        let namespace = me.namespace().unwrap_or_default();
        let uid = me.uid().unwrap_or_default();
        let target = &me.spec.scale_target_ref;
        let describe = format!("{}/{}", target.kind, target.name);
        for store in self.hpas.read().unwrap_or_else(|p| p.into_inner()).iter() {
            for hpa in store.state() {
                let Some(spec) = &hpa.spec else { continue };
                let r = &spec.scale_target_ref;
                if hpa.namespace().as_deref() == Some(namespace.as_str())
                    && same_target(target, &r.kind, &r.name, r.api_version.as_deref())
                {
                    return Some(Conflict {
                        reason: "ConflictingAutoscaler",
                        message: format!(
                            "the HorizontalPodAutoscaler {namespace}/{} also scales {describe}; this Autoscaler takes over once it is deleted",
                            hpa.name_any()
                        ),
                    });
                }
            }
        }
        let mine = (me.metadata.creation_timestamp.as_ref().map(|t| t.0), me.name_any());
        for store in self.autoscalers.read().unwrap_or_else(|p| p.into_inner()).iter() {
            for other in store.state() {
                let theirs = (
                    other.metadata.creation_timestamp.as_ref().map(|t| t.0),
                    other.name_any(),
                );
                if other.uid().as_deref() != Some(uid.as_str())
                    && other.namespace().as_deref() == Some(namespace.as_str())
                    && other.metadata.deletion_timestamp.is_none()
                    && same_target(
                        target,
                        &other.spec.scale_target_ref.kind,
                        &other.spec.scale_target_ref.name,
                        other.spec.scale_target_ref.api_version.as_deref(),
                    )
                    && theirs < mine
                {
                    return Some(Conflict {
                        reason: "ConflictingAutoscaler",
                        message: format!(
                            "the older Autoscaler {namespace}/{} also scales {describe}; it keeps working, this one waits",
                            theirs.1
                        ),
                    });
                }
            }
        }
        let selectors = locked(&self.selectors);
        let mut others: Vec<&String> = selectors
            .iter()
            .filter(|(other_uid, (ns, _, other_target, selector))| {
                *other_uid != &uid
                    && *ns == namespace
                    && !same_target(
                        target,
                        &other_target.kind,
                        &other_target.name,
                        other_target.api_version.as_deref(),
                    )
                    && selected.iter().any(|p| selector.matches(&p.labels))
            })
            .map(|(_, (_, name, _, _))| name)
            .collect();
        others.sort();
        (!others.is_empty()).then(|| Conflict {
            reason: "AmbiguousSelector",
            message: format!(
                "pods selected by this Autoscaler are controlled by multiple autoscalers: {}",
                others
                    .iter()
                    .map(|n| format!("{namespace}/{n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
    }

    /// The pods of `selected` that the target `target_uid` owns, directly or through a
    /// ReplicaSet (read from the API server, remembered a while).
    pub async fn owned(
        &self,
        client: &Client,
        namespace: &str,
        target_uid: &str,
        selected: Vec<std::sync::Arc<CachedPod>>,
    ) -> Vec<std::sync::Arc<CachedPod>> {
        let controller = |pod: &CachedPod| pod.owners.iter().find(|o| o.controller).cloned();
        // Read the ReplicaSets not yet known.
        let unknown: Vec<(String, String)> = {
            let known = locked(&self.replica_sets);
            let mut unknown: Vec<(String, String)> = selected
                .iter()
                .filter_map(|p| controller(p))
                .filter(|o| o.kind == "ReplicaSet")
                .filter(|o| known.get(&o.uid).is_none_or(|(_, at)| at.elapsed() > OWNER_TTL))
                .map(|o| (o.uid, o.name))
                .collect();
            unknown.sort();
            unknown.dedup();
            unknown
        };
        let api: Api<ReplicaSet> = Api::namespaced(client.clone(), namespace);
        for (uid, name) in unknown {
            let owner = match api.get_metadata(&name).await {
                Ok(rs) => rs
                    .metadata
                    .owner_references
                    .unwrap_or_default()
                    .into_iter()
                    .find(|o| o.controller == Some(true))
                    .map(|o| o.uid),
                // Gone or unreadable: its pods belong to no one known.
                Err(_) => None,
            };
            locked(&self.replica_sets).insert(uid, (owner, Instant::now()));
        }
        let known = locked(&self.replica_sets);
        selected
            .into_iter()
            .filter(|pod| {
                let owner = controller(pod);
                let reference = owner.as_ref().map(|o| ferroscale_autoscaler::selection::OwnerRef {
                    kind: &o.kind,
                    name: &o.name,
                    uid: &o.uid,
                });
                ferroscale_autoscaler::selection::owned(reference.as_ref(), target_uid, |rs| {
                    known.get(rs.uid).and_then(|(owner, _)| owner.clone())
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_match_by_group_kind_and_name() {
        let target = CrossVersionObjectReference {
            api_version: Some("apps/v1".into()),
            kind: "Deployment".into(),
            name: "web".into(),
        };
        assert!(same_target(&target, "Deployment", "web", Some("apps/v1beta2")));
        assert!(!same_target(&target, "Deployment", "api", Some("apps/v1")));
        assert!(!same_target(&target, "Deployment", "web", Some("example.com/v1")));
        assert!(!same_target(&target, "StatefulSet", "web", Some("apps/v1")));
    }
}
