//! What other objects mean for one Autoscaler: other autoscalers that must not be fought
//! (another Autoscaler or an upstream HorizontalPodAutoscaler on the same target, or an
//! Autoscaler whose target's pods overlap), and which pods a target owns.
//!
//! Every Autoscaler is checked at every evaluation, so the checks are lookups in indexes kept
//! from the watches (by target, and by a label every selector requires), not scans of every
//! other autoscaler: with a scan, the cost of all evaluations grows with the square of their
//! number.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use ferroscale_api::{Autoscaler, CrossVersionObjectReference};
use ferroscale_autoscaler::hold::Conflict;
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler;
use kube::core::Selector;
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use tracing::warn;

use crate::labels::Query;
use crate::pod_cache::CachedPod;

/// How long a ReplicaSet's owner is remembered.
const OWNER_TTL: Duration = Duration::from_secs(300);

/// How long evaluations wait, from the first, for every watch feeding the checks to list once.
/// A watch that cannot list (no RBAC for HPAs, say) must not stop every evaluation.
const FIRST_LIST_DEADLINE: Duration = Duration::from_secs(30);

/// The group of an apiVersion (`apps/v1` → `apps`, `v1` → ``).
fn group(api_version: Option<&str>) -> &str {
    api_version.and_then(|v| v.split_once('/')).map_or("", |(g, _)| g)
}

/// A target as autoscalers name it, across versions of its API: namespace, group, kind, name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct TargetKey(String, String, String, String);

impl TargetKey {
    fn new(namespace: &str, api_version: Option<&str>, kind: &str, name: &str) -> Self {
        Self(
            namespace.to_string(),
            group(api_version).to_string(),
            kind.to_string(),
            name.to_string(),
        )
    }

    fn of(namespace: &str, target: &CrossVersionObjectReference) -> Self {
        Self::new(namespace, target.api_version.as_deref(), &target.kind, &target.name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ScalerKind {
    Autoscaler,
    HorizontalPodAutoscaler,
}

/// Another autoscaler, as far as the checks need it.
#[derive(Debug, Clone)]
struct Scaler {
    kind: ScalerKind,
    name: String,
    created: Option<Timestamp>,
    target: TargetKey,
    /// The watch it came from, so that a relist of that watch can drop what is gone.
    source: usize,
}

/// What of a scaling object the checks need: its uid and itself, unless it is being deleted
/// or names no target.
fn scaler_of(
    kind: ScalerKind,
    meta: &kube::core::ObjectMeta,
    target: Option<(Option<&str>, &str, &str)>,
    source: usize,
) -> Option<(String, Scaler)> {
    let (api_version, target_kind, target_name) = target?;
    if meta.deletion_timestamp.is_some() {
        return None;
    }
    let target = TargetKey::new(meta.namespace.as_deref()?, api_version, target_kind, target_name);
    Some((
        meta.uid.clone()?,
        Scaler {
            kind,
            name: meta.name.clone().unwrap_or_default(),
            created: meta.creation_timestamp.as_ref().map(|t| t.0),
            target,
            source,
        },
    ))
}

/// Autoscalers and HPAs by uid and by target, as their watches last said.
#[derive(Debug, Default)]
struct Scalers {
    by_uid: HashMap<String, Scaler>,
    /// Nearly always one uid a target: a list, not a set (an empty `BTreeSet` is free, but
    /// one of a single uid allocates a node for eleven).
    by_target: HashMap<TargetKey, Vec<String>>,
    /// The uids each relisting watch has listed so far.
    relisting: HashMap<usize, HashSet<String>>,
}

impl Scalers {
    fn remove(&mut self, uid: &str) {
        if let Some(old) = self.by_uid.remove(uid)
            && let Some(uids) = self.by_target.get_mut(&old.target)
        {
            uids.retain(|u| u != uid);
            if uids.is_empty() {
                self.by_target.remove(&old.target);
            }
        }
    }

    fn upsert(&mut self, uid: String, scaler: Scaler) {
        self.remove(&uid);
        self.by_target
            .entry(scaler.target.clone())
            .or_default()
            .push(uid.clone());
        self.by_uid.insert(uid, scaler);
    }

    /// Applies one watch event; `scaler` reads an object, `uid_of` names it. Returns the uids
    /// of the objects a relist found gone.
    fn apply<K>(
        &mut self,
        source: usize,
        event: &watcher::Event<K>,
        scaler: impl Fn(&K) -> Option<(String, Scaler)>,
        uid_of: impl Fn(&K) -> Option<String>,
    ) -> Vec<String> {
        match event {
            watcher::Event::Apply(object) | watcher::Event::InitApply(object) => {
                if let watcher::Event::InitApply(_) = event
                    && let Some(uid) = uid_of(object)
                {
                    self.relisting.entry(source).or_default().insert(uid);
                }
                match scaler(object) {
                    Some((uid, s)) => self.upsert(uid, s),
                    None => {
                        if let Some(uid) = uid_of(object) {
                            self.remove(&uid);
                        }
                    }
                }
            }
            watcher::Event::Delete(object) => {
                if let Some(uid) = uid_of(object) {
                    self.remove(&uid);
                }
            }
            watcher::Event::Init => {
                self.relisting.insert(source, HashSet::new());
            }
            watcher::Event::InitDone => {
                let listed = self.relisting.remove(&source).unwrap_or_default();
                let gone: Vec<String> = self
                    .by_uid
                    .iter()
                    .filter(|(uid, s)| s.source == source && !listed.contains(*uid))
                    .map(|(uid, _)| uid.clone())
                    .collect();
                for uid in &gone {
                    self.remove(uid);
                }
                return gone;
            }
        }
        Vec::new()
    }
}

/// An Autoscaler's target selector, as last evaluated.
#[derive(Debug, Clone)]
struct Remembered {
    namespace: String,
    name: String,
    target: TargetKey,
    selector: Selector,
    query: Query,
    /// The label it is indexed under: one that every pod it selects carries (None: no such
    /// label, so it is checked against every Autoscaler of the namespace).
    key: Option<(String, String)>,
}

/// Target selectors by uid, and indexed by namespace and required label.
#[derive(Debug, Default)]
struct Selectors {
    by_uid: HashMap<String, Remembered>,
    /// namespace → label key → value → uids (a list: nearly always one).
    by_label: HashMap<String, HashMap<String, HashMap<String, Vec<String>>>>,
    /// namespace → uids of selectors with no required label.
    unkeyed: HashMap<String, HashSet<String>>,
}

impl Selectors {
    fn remove(&mut self, uid: &str) {
        let Some(old) = self.by_uid.remove(uid) else { return };
        match &old.key {
            Some((k, v)) => {
                if let Some(values) = self.by_label.get_mut(&old.namespace).and_then(|keys| keys.get_mut(k))
                    && let Some(uids) = values.get_mut(v)
                {
                    uids.retain(|u| u != uid);
                    if uids.is_empty() {
                        values.remove(v);
                    }
                }
            }
            None => {
                if let Some(uids) = self.unkeyed.get_mut(&old.namespace) {
                    uids.remove(uid);
                }
            }
        }
    }

    fn insert(&mut self, uid: String, remembered: Remembered) {
        self.remove(&uid);
        let namespace = remembered.namespace.clone();
        match &remembered.key {
            Some((k, v)) => {
                self.by_label
                    .entry(namespace)
                    .or_default()
                    .entry(k.clone())
                    .or_default()
                    .entry(v.clone())
                    .or_default()
                    .push(uid.clone());
            }
            None => {
                self.unkeyed.entry(namespace).or_default().insert(uid.clone());
            }
        }
        self.by_uid.insert(uid, remembered);
    }

    /// The uids of the selectors that may match some of `pods`.
    fn candidates<'a>(&'a self, namespace: &str, pods: &'a [std::sync::Arc<CachedPod>]) -> BTreeSet<&'a str> {
        let mut found = BTreeSet::new();
        if let Some(keys) = self.by_label.get(namespace) {
            for pod in pods {
                for (k, v) in pod.labels.iter() {
                    if let Some(uids) = keys.get(k).and_then(|values| values.get(v)) {
                        found.extend(uids.iter().map(String::as_str));
                    }
                }
            }
        }
        if let Some(uids) = self.unkeyed.get(namespace) {
            found.extend(uids.iter().map(String::as_str));
        }
        found
    }
}

/// The indexes the checks read: the Autoscalers and HPAs of every watched namespace by target,
/// the target selectors of the Autoscalers evaluated so far, and ReplicaSets' owners.
#[derive(Default)]
pub struct Neighbours {
    scalers: Mutex<Scalers>,
    /// Watches feeding `scalers`, for their relists.
    sources: AtomicUsize,
    /// The watches that have completed their first list.
    listed: tokio::sync::watch::Sender<HashSet<usize>>,
    /// Until when evaluations wait for the first lists; set by the first that waits.
    first_list_deadline: OnceLock<tokio::time::Instant>,
    /// The deadline has passed with a watch unlisted (said once).
    gave_up_waiting: AtomicBool,
    selectors: Mutex<Selectors>,
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

fn uid_of<K: kube::Resource>(object: &K) -> Option<String> {
    object.meta().uid.clone()
}

impl Neighbours {
    /// A number for a new watch that feeds [`Self::autoscaler_event`] or [`Self::hpa_event`].
    pub fn source(&self) -> usize {
        self.sources.fetch_add(1, Ordering::Relaxed)
    }

    /// Notes a watch's first complete list.
    fn listed(&self, source: usize, event: &watcher::Event<impl Sized>) {
        if let watcher::Event::InitDone = event {
            self.listed.send_if_modified(|listed| listed.insert(source));
        }
    }

    /// Resolves once every watch from [`Self::source`] has listed once, or when the deadline
    /// set by the first caller passes. Until then, an Autoscaler could be evaluated before the
    /// HPA or the older Autoscaler on its target is known, and fight it.
    pub async fn wait_until_listed(&self) {
        let deadline = *self
            .first_list_deadline
            .get_or_init(|| tokio::time::Instant::now() + FIRST_LIST_DEADLINE);
        let mut listed = self.listed.subscribe();
        let all_listed = listed.wait_for(|listed| listed.len() >= self.sources.load(Ordering::Relaxed));
        if tokio::time::timeout_at(deadline, all_listed).await.is_err()
            && !self.gave_up_waiting.swap(true, Ordering::Relaxed)
        {
            warn!(
                "not every Autoscaler and HorizontalPodAutoscaler watch has listed after {FIRST_LIST_DEADLINE:?}; \
                 evaluating anyway, with conflicts checked against what is known"
            );
        }
    }

    /// One event of an Autoscaler watch (or one listed Autoscaler, as an `Apply`).
    pub fn autoscaler_event(&self, source: usize, event: &watcher::Event<Autoscaler>) {
        let scaler = |a: &Autoscaler| {
            let t = &a.spec.scale_target_ref;
            scaler_of(
                ScalerKind::Autoscaler,
                &a.metadata,
                Some((t.api_version.as_deref(), &t.kind, &t.name)),
                source,
            )
        };
        let gone = locked(&self.scalers).apply(source, event, scaler, uid_of);
        self.listed(source, event);
        let mut selectors = locked(&self.selectors);
        for uid in &gone {
            selectors.remove(uid);
        }
        if let watcher::Event::Delete(a) = event
            && let Some(uid) = a.uid()
        {
            selectors.remove(&uid);
        }
    }

    /// One event of a HorizontalPodAutoscaler watch (or one listed HPA, as an `Apply`).
    pub fn hpa_event(&self, source: usize, event: &watcher::Event<HorizontalPodAutoscaler>) {
        let scaler = |h: &HorizontalPodAutoscaler| {
            let t = &h.spec.as_ref()?.scale_target_ref;
            scaler_of(
                ScalerKind::HorizontalPodAutoscaler,
                &h.metadata,
                Some((t.api_version.as_deref(), &t.kind, &t.name)),
                source,
            )
        };
        locked(&self.scalers).apply(source, event, scaler, uid_of);
        self.listed(source, event);
    }

    /// Remembers an Autoscaler's target selector, for the overlap check of the others.
    pub fn remember_selector(&self, autoscaler: &Autoscaler, selector: &Selector) {
        let (Some(uid), Some(namespace)) = (autoscaler.uid(), autoscaler.namespace()) else {
            return;
        };
        let mut selectors = locked(&self.selectors);
        let target = TargetKey::of(&namespace, &autoscaler.spec.scale_target_ref);
        // The same as last time, nearly always: nothing to change.
        if selectors
            .by_uid
            .get(&uid)
            .is_some_and(|r| r.target == target && &r.selector == selector)
        {
            return;
        }
        let query = Query::new(selector);
        let remembered = Remembered {
            namespace,
            name: autoscaler.name_any(),
            target,
            key: query.required_label().map(|(k, v)| (k.to_string(), v.to_string())),
            selector: selector.clone(),
            query,
        };
        selectors.insert(uid, remembered);
    }

    /// The autoscaler `me` must not fight, if any: an upstream HPA on its target; an older
    /// Autoscaler on its target (the oldest keeps working); an Autoscaler of another target
    /// that selects some of the same pods.
    pub fn conflict(&self, me: &Autoscaler, selected: &[std::sync::Arc<CachedPod>]) -> Option<Conflict> {
        let namespace = me.namespace().unwrap_or_default();
        let uid = me.uid().unwrap_or_default();
        let target = TargetKey::of(&namespace, &me.spec.scale_target_ref);
        let describe = format!("{}/{}", target.2, target.3);
        {
            let scalers = locked(&self.scalers);
            let on_target: Vec<&Scaler> = scalers
                .by_target
                .get(&target)
                .into_iter()
                .flatten()
                .filter(|u| **u != uid)
                .filter_map(|u| scalers.by_uid.get(u))
                .collect();
            if let Some(hpa) = on_target
                .iter()
                .filter(|s| s.kind == ScalerKind::HorizontalPodAutoscaler)
                .min_by(|a, b| a.name.cmp(&b.name))
            {
                return Some(Conflict {
                    reason: "ConflictingAutoscaler",
                    message: format!(
                        "the HorizontalPodAutoscaler {namespace}/{} also scales {describe}; this Autoscaler takes over once it is deleted",
                        hpa.name
                    ),
                });
            }
            let mine = (me.metadata.creation_timestamp.as_ref().map(|t| t.0), me.name_any());
            if let Some(older) = on_target
                .iter()
                .filter(|s| s.kind == ScalerKind::Autoscaler)
                .map(|s| (s.created, s.name.clone()))
                .filter(|theirs| *theirs < mine)
                .min()
            {
                return Some(Conflict {
                    reason: "ConflictingAutoscaler",
                    message: format!(
                        "the older Autoscaler {namespace}/{} also scales {describe}; it keeps working, this one waits",
                        older.1
                    ),
                });
            }
        }
        let selectors = locked(&self.selectors);
        let mut others: Vec<&String> = selectors
            .candidates(&namespace, selected)
            .into_iter()
            .filter(|other| *other != uid)
            .filter_map(|other| selectors.by_uid.get(other))
            .filter(|r| r.target != target && selected.iter().any(|p| r.query.matches(&p.labels)))
            .map(|r| &r.name)
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
                .filter(|o| &*o.kind == "ReplicaSet")
                .filter(|o| known.get(&*o.uid).is_none_or(|(_, at)| at.elapsed() > OWNER_TTL))
                .map(|o| (o.uid.to_string(), o.name.to_string()))
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
        let target = |api_version: &str, kind: &str, name: &str| {
            TargetKey::of(
                "shop",
                &CrossVersionObjectReference {
                    api_version: Some(api_version.into()),
                    kind: kind.into(),
                    name: name.into(),
                },
            )
        };
        let web = target("apps/v1", "Deployment", "web");
        assert_eq!(web, target("apps/v1beta2", "Deployment", "web"));
        assert_ne!(web, target("apps/v1", "Deployment", "api"));
        assert_ne!(web, target("example.com/v1", "Deployment", "web"));
        assert_ne!(web, target("apps/v1", "StatefulSet", "web"));
    }

    #[test]
    fn selectors_are_indexed_by_a_label_they_require() {
        let required_label = |s: &str| {
            let query = Query::new(&ferroscale_autoscaler::selector::parse(s).unwrap());
            query.required_label().map(|(k, v)| (k.to_string(), v.to_string()))
        };
        assert_eq!(
            required_label("tier in (front),app=web"),
            Some(("tier".into(), "front".into()))
        );
        assert_eq!(required_label("tier in (front,back)"), None);
        assert_eq!(required_label("!canary"), None);
    }
}
