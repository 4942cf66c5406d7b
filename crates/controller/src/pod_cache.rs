//! One watch on pods shared by every controller: an index they query by namespace and label
//! selector (and by owner), and a stream of changed pods for the PodSet controller. Pods are
//! kept as [`CachedPod`]s, only what the controllers read, so the cache of a large cluster stays
//! small, and an
//! evaluation touches only the pods its selector can match instead of every pod of the
//! namespace.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, RwLock};

use ferroscale_autoscaler::PodInfo;
use ferroscale_autoscaler::pods::ContainerRequests;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::core::Selector;
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, watcher as watch_pods};
use kube::{Api, Client};
use tokio::sync::mpsc;
use tracing::warn;

use crate::interner::Interner;
use crate::labels::{Labels, Query};

/// Pods per page of a list.
const POD_PAGE: u32 = 100;

/// Changed pods a subscriber may lag behind before the watch waits for it.
const SUBSCRIBER_BUFFER: usize = 4096;

/// A pod's owner, as its owner reference names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub uid: Arc<str>,
    pub kind: Arc<str>,
    pub name: Arc<str>,
    /// The owner is the pod's managing controller.
    pub controller: bool,
}

/// A pod as the cache keeps it: only what the decisions and the PodSet controller read, with
/// the strings and requests that pods repeat shared through the cache's [`Pool`]. A full `Pod`
/// costs several kilobytes even when most of it is empty; this is a few hundred bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedPod {
    /// Name, phase, deletion, start time, Ready condition and resource requests.
    pub info: PodInfo,
    pub labels: Labels,
    pub owners: Box<[Owner]>,
    pub created: Option<jiff::Timestamp>,
    /// Bound to a node.
    pub scheduled: bool,
}

/// The shared copies cached pods point into.
#[derive(Debug, Default)]
pub struct Pool {
    strings: Interner<str>,
    containers: Interner<[ContainerRequests]>,
}

impl CachedPod {
    pub fn new(pod: &Pod, pool: &mut Pool) -> Self {
        let meta = &pod.metadata;
        let mut info = PodInfo::from(pod);
        // The name too: the index keys by it, and a pod updated later then keeps one copy.
        pool.strings.share(&mut info.name);
        pool.containers.share(&mut info.containers);
        Self {
            info,
            labels: meta
                .labels
                .as_ref()
                .map(|labels| Labels::new(labels, &mut pool.strings))
                .unwrap_or_default(),
            owners: meta
                .owner_references
                .iter()
                .flatten()
                .map(|r| Owner {
                    uid: pool.strings.get(&r.uid),
                    kind: pool.strings.get(&r.kind),
                    name: pool.strings.get(&r.name),
                    controller: r.controller == Some(true),
                })
                .collect(),
            created: meta.creation_timestamp.as_ref().map(|t| t.0),
            scheduled: pod.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some(),
        }
    }

    pub fn name(&self) -> &str {
        &self.info.name
    }

    /// Being deleted.
    pub fn deleting(&self) -> bool {
        self.info.terminating
    }
}

/// A pod on its own, sharing nothing: for tests and one-off conversions.
impl From<&Pod> for CachedPod {
    fn from(pod: &Pod) -> Self {
        Self::new(pod, &mut Pool::default())
    }
}

/// Names of pods, sharing the strings of the index's keys.
type Names = HashSet<Arc<str>>;

/// The future that drives one scope's watch.
pub type Driver = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// The pods of one namespace, with the postings that answer selector and owner queries.
#[derive(Debug, Default)]
struct Namespace {
    pods: HashMap<Arc<str>, Arc<CachedPod>>,
    /// label key → value → names of the pods carrying it.
    by_label: HashMap<Arc<str>, HashMap<Arc<str>, Names>>,
    /// owner uid → names of the pods it owns.
    by_owner: HashMap<Arc<str>, Names>,
}

fn owners(pod: &CachedPod) -> impl Iterator<Item = &Arc<str>> {
    pod.owners.iter().map(|o| &o.uid)
}

impl Namespace {
    fn insert(&mut self, pod: Arc<CachedPod>) {
        let name: Arc<str> = match self.pods.get_key_value(pod.name()) {
            Some((existing, old)) => {
                let existing = existing.clone();
                let old = old.clone();
                // The usual update (status) leaves labels and owners as they were.
                if old.labels == pod.labels && old.owners == pod.owners {
                    self.pods.insert(existing, pod);
                    return;
                }
                self.unlink(&existing, &old);
                existing
            }
            None => pod.info.name.clone(),
        };
        for (key, value) in pod.labels.shared() {
            self.by_label
                .entry(key.clone())
                .or_default()
                .entry(value.clone())
                .or_default()
                .insert(name.clone());
        }
        for owner in owners(&pod) {
            self.by_owner.entry(owner.clone()).or_default().insert(name.clone());
        }
        self.pods.insert(name, pod);
    }

    fn remove(&mut self, name: &str) {
        if let Some((name, old)) = self.pods.remove_entry(name) {
            self.unlink(&name, &old);
        }
    }

    /// Removes `old`'s postings, and postings left empty.
    fn unlink(&mut self, name: &str, old: &CachedPod) {
        for (key, value) in old.labels.iter() {
            if let Some(values) = self.by_label.get_mut(key) {
                if let Some(names) = values.get_mut(value) {
                    names.remove(name);
                    if names.is_empty() {
                        values.remove(value);
                    }
                }
                if values.is_empty() {
                    self.by_label.remove(key);
                }
            }
        }
        for owner in owners(old) {
            if let Some(names) = self.by_owner.get_mut(&**owner) {
                names.remove(name);
                if names.is_empty() {
                    self.by_owner.remove(&**owner);
                }
            }
        }
    }

    /// The names of the pods that can match `query`: the smallest set named by one of its
    /// `key=value` or `key in (...)` requirements; None when it has none (scan everything).
    fn candidates(&self, query: &Query) -> Option<Vec<&Arc<str>>> {
        let mut best: Option<Vec<&Arc<str>>> = None;
        for (key, values) in query.required() {
            let postings = self.by_label.get(key);
            let names: Vec<&Arc<str>> = values
                .iter()
                .filter_map(|v| postings.and_then(|p| p.get(*v)))
                .flatten()
                .collect();
            if best.as_ref().is_none_or(|b| names.len() < b.len()) {
                best = Some(names);
            }
        }
        best
    }

    fn select(&self, selector: &Selector) -> Vec<Arc<CachedPod>> {
        let query = Query::new(selector);
        let matches = |pod: &&Arc<CachedPod>| query.matches(&pod.labels);
        match self.candidates(&query) {
            Some(names) => names
                .into_iter()
                .filter_map(|n| self.pods.get(n))
                .filter(matches)
                .cloned()
                .collect(),
            None => self.pods.values().filter(matches).cloned().collect(),
        }
    }
}

/// Everything the watches have seen, by namespace.
#[derive(Debug, Default)]
struct Index {
    namespaces: HashMap<String, Namespace>,
    pool: Pool,
}

impl Index {
    fn apply(&mut self, namespace: &str, pod: Arc<CachedPod>) {
        match self.namespaces.get_mut(namespace) {
            Some(ns) => ns.insert(pod),
            None => self.namespaces.entry(namespace.to_string()).or_default().insert(pod),
        }
    }

    fn delete(&mut self, pod: &Pod) {
        let (Some(namespace), Some(name)) = (pod.metadata.namespace.as_deref(), pod.metadata.name.as_deref()) else {
            return;
        };
        if let Some(ns) = self.namespaces.get_mut(namespace) {
            ns.remove(name);
            if ns.pods.is_empty() {
                self.namespaces.remove(namespace);
            }
        }
    }

    /// Replaces every pod of `scope` (a namespace, or all) with a fresh list.
    fn replace(&mut self, scope: Option<&str>, pods: Vec<(String, Arc<CachedPod>)>) {
        match scope {
            None => self.namespaces.clear(),
            Some(namespace) => {
                self.namespaces.remove(namespace);
            }
        }
        for (namespace, pod) in pods {
            self.apply(&namespace, pod);
        }
    }
}

/// One watched scope: a namespace, or all of them.
#[derive(Debug)]
struct Scope {
    namespace: Option<String>,
    /// Pods of a re-list in progress (with their namespaces), swapped in whole when it
    /// completes.
    relist: Option<Vec<(String, Arc<CachedPod>)>>,
    listed: bool,
    subscriber: Option<mpsc::Sender<Changed>>,
}

#[derive(Debug)]
struct Shared {
    index: RwLock<Index>,
    scopes: Vec<std::sync::Mutex<Scope>>,
    /// How many scopes have completed their first list.
    listed: tokio::sync::watch::Sender<usize>,
}

/// The pods of the watched namespaces; clones share one index.
#[derive(Debug, Clone)]
pub struct PodCache {
    shared: Arc<Shared>,
}

impl PodCache {
    /// An empty cache over `namespaces` (None: all namespaces), each filled by [`Self::apply`].
    pub fn new(namespaces: Vec<Option<String>>) -> Self {
        let scopes = namespaces
            .into_iter()
            .map(|namespace| {
                std::sync::Mutex::new(Scope {
                    namespace,
                    relist: None,
                    listed: false,
                    subscriber: None,
                })
            })
            .collect();
        Self {
            shared: Arc::new(Shared {
                index: RwLock::new(Index::default()),
                scopes,
                listed: tokio::sync::watch::Sender::new(0),
            }),
        }
    }

    /// A cache of exactly these pods, listed: for tests, and for live `explain`, which lists
    /// once what the controller watches.
    pub fn of(pods: Vec<Pod>) -> Self {
        let cache = Self::new(vec![None]);
        let mut index = cache.write();
        for pod in pods {
            if let Some(namespace) = pod.metadata.namespace.as_deref() {
                let cached = Arc::new(CachedPod::new(&pod, &mut index.pool));
                index.apply(namespace, cached);
            }
        }
        drop(index);
        if let Some(mut scope) = cache.scope(0) {
            scope.listed = true;
        }
        cache.shared.listed.send_replace(1);
        cache
    }

    fn scope(&self, i: usize) -> Option<std::sync::MutexGuard<'_, Scope>> {
        let scope = self.shared.scopes.get(i)?;
        Some(scope.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        self.shared
            .index
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Index> {
        self.shared
            .index
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Changed pods of scope `i`, for one subscriber (the PodSet controller of that scope).
    pub fn subscribe(&self, scope: usize) -> Option<impl futures::Stream<Item = Changed> + Send + 'static> {
        let (sender, receiver) = mpsc::channel(SUBSCRIBER_BUFFER);
        self.scope(scope)?.subscriber = Some(sender);
        Some(tokio_stream_from(receiver))
    }

    /// Applies one watch event of scope `i`, then hands the changed pod to its subscriber.
    pub async fn apply(&self, i: usize, event: Event<Pod>) {
        let (changed, subscriber) = {
            let Some(mut scope) = self.scope(i) else { return };
            let cached = |pod: &Pod| {
                let namespace = pod.metadata.namespace.clone().unwrap_or_default();
                (namespace, Arc::new(CachedPod::new(pod, &mut self.write().pool)))
            };
            let changed = match event {
                Event::Init => {
                    scope.relist = Some(Vec::new());
                    None
                }
                Event::InitApply(pod) => {
                    let (namespace, pod) = cached(&pod);
                    scope
                        .relist
                        .get_or_insert_with(Vec::new)
                        .push((namespace.clone(), pod.clone()));
                    Some(Changed { namespace, pod })
                }
                Event::InitDone => {
                    let pods = scope.relist.take().unwrap_or_default();
                    self.write().replace(scope.namespace.as_deref(), pods);
                    if !scope.listed {
                        scope.listed = true;
                        self.shared.listed.send_modify(|n| *n += 1);
                    }
                    None
                }
                Event::Apply(pod) => {
                    let (namespace, pod) = cached(&pod);
                    self.write().apply(&namespace, pod.clone());
                    Some(Changed { namespace, pod })
                }
                Event::Delete(pod) => {
                    self.write().delete(&pod);
                    let (namespace, pod) = cached(&pod);
                    Some(Changed { namespace, pod })
                }
            };
            (changed, scope.subscriber.clone())
        };
        // Waiting for a lagging subscriber holds the watch back, as kube's shared stores do.
        if let (Some(pod), Some(subscriber)) = (changed, subscriber)
            && subscriber.send(pod).await.is_err()
            && let Some(mut scope) = self.scope(i)
        {
            scope.subscriber = None;
        }
    }

    /// The cached pods of `namespace` that `selector` matches.
    pub fn select(&self, namespace: &str, selector: &Selector) -> Vec<Arc<CachedPod>> {
        self.read()
            .namespaces
            .get(namespace)
            .map_or_else(Vec::new, |ns| ns.select(selector))
    }

    /// The cached pods of `namespace` that name `owner_uid` among their owners.
    pub fn owned_by(&self, namespace: &str, owner_uid: &str) -> Vec<Arc<CachedPod>> {
        let index = self.read();
        let Some(ns) = index.namespaces.get(namespace) else {
            return Vec::new();
        };
        ns.by_owner
            .get(owner_uid)
            .into_iter()
            .flatten()
            .filter_map(|name| ns.pods.get(name).cloned())
            .collect()
    }

    /// One cached pod.
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<CachedPod>> {
        self.read().namespaces.get(namespace)?.pods.get(name).cloned()
    }

    /// Resolves once every scope has listed its pods.
    pub async fn wait_until_ready(&self) {
        let scopes = self.shared.scopes.len();
        let mut listed = self.shared.listed.subscribe();
        // The sender lives as long as the cache, so waiting can only end by the count.
        let _ = listed.wait_for(|n| *n >= scopes).await;
    }
}

/// A pod the watch added, changed or deleted, and its namespace.
#[derive(Debug, Clone)]
pub struct Changed {
    pub namespace: String,
    pub pod: Arc<CachedPod>,
}

/// A stream of what `receiver` receives.
fn tokio_stream_from(mut receiver: mpsc::Receiver<Changed>) -> impl futures::Stream<Item = Changed> + Send + 'static {
    futures::stream::poll_fn(move |cx| receiver.poll_recv(cx))
}

/// The scopes watched for `namespaces`: each of them, or all namespaces when none is given.
pub fn scopes(namespaces: &[String]) -> Vec<Option<String>> {
    if namespaces.is_empty() {
        vec![None]
    } else {
        namespaces.iter().cloned().map(Some).collect()
    }
}

/// Watches pods in each of [`scopes`]: the cache, and one future per scope (in that order)
/// that drives its watch.
pub fn watch(client: Client, namespaces: &[String]) -> (PodCache, Vec<Driver>) {
    let scopes = scopes(namespaces);
    let cache = PodCache::new(scopes.clone());
    let drivers = scopes
        .into_iter()
        .enumerate()
        .map(|(i, namespace)| {
            let cache = cache.clone();
            // Paginated lists, not one answer holding every pod at once: a large namespace
            // would otherwise set the process's peak memory. A page of whole pods (managed
            // fields included) is about 3 KiB a pod as text and more once parsed, so pages
            // are kept small.
            let config = watcher::Config::default().page_size(POD_PAGE);
            let events = watch_pods(api(client.clone(), namespace.as_deref()), config).default_backoff();
            let driver = events.for_each(move |event| {
                let cache = cache.clone();
                async move {
                    match event {
                        Ok(event) => cache.apply(i, event).await,
                        Err(error) => warn!(%error, "pod watch error; retrying with backoff"),
                    }
                }
            });
            Box::pin(driver) as Driver
        })
        .collect();
    (cache, drivers)
}

/// Pods in every namespace, or in one.
pub fn api(client: Client, namespace: Option<&str>) -> Api<Pod> {
    match namespace {
        Some(ns) => Api::namespaced(client, ns),
        None => Api::all(client),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cached_pod_keeps_what_decisions_and_podsets_read() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "labels": {"app": "web"}, "annotations": {"big": "x"}, "managedFields": [{"manager": "kubectl"}],
                         "creationTimestamp": "2026-01-01T00:00:00Z",
                         "ownerReferences": [{"apiVersion": "v1", "kind": "PodSet", "name": "web", "uid": "u", "controller": true}]},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "nginx", "env": [{"name": "A", "value": "1"}],
                     "resources": {"requests": {"cpu": "100m"}, "limits": {"cpu": "1"}}}],
                     "initContainers": [{"name": "s", "image": "envoy", "restartPolicy": "Always", "resources": {"requests": {"cpu": "50m"}}}]},
            "status": {"phase": "Running", "startTime": "2026-01-01T00:00:00Z", "podIP": "10.0.0.1",
                       "conditions": [{"type": "Ready", "status": "True", "message": "m"}, {"type": "PodScheduled", "status": "True"}]}
        }))
        .unwrap();
        let cached = CachedPod::from(&pod);
        assert_eq!(
            cached.info.request("cpu", None).unwrap(),
            150,
            "container and sidecar requests"
        );
        assert!(cached.info.is_running_and_ready());
        assert_eq!(cached.labels.get("app"), Some("web"));
        assert_eq!(
            *cached.owners,
            [Owner {
                uid: "u".into(),
                kind: "PodSet".into(),
                name: "web".into(),
                controller: true
            }]
        );
        assert!(cached.scheduled && !cached.deleting());
        assert_eq!(cached.created, Some("2026-01-01T00:00:00Z".parse().unwrap()));
    }

    fn pod(namespace: &str, name: &str, labels: serde_json::Value, owner: Option<&str>) -> Pod {
        let owners =
            owner.map(|uid| vec![serde_json::json!({"apiVersion": "v1", "kind": "PodSet", "name": "o", "uid": uid})]);
        serde_json::from_value(serde_json::json!({"metadata": {
            "name": name, "namespace": namespace, "labels": labels, "ownerReferences": owners
        }}))
        .unwrap()
    }

    fn names(pods: Vec<Arc<CachedPod>>) -> Vec<String> {
        let mut names: Vec<String> = pods.iter().map(|p| p.name().to_string()).collect();
        names.sort();
        names
    }

    fn selector(text: &str) -> Selector {
        ferroscale_autoscaler::selector::parse(text).unwrap()
    }

    #[tokio::test]
    async fn selectors_find_their_pods_through_the_index() {
        let cache = PodCache::new(vec![None]);
        cache.apply(0, Event::Init).await;
        for (ns, name, labels) in [
            ("a", "web-1", serde_json::json!({"app": "web", "tier": "front"})),
            ("a", "web-2", serde_json::json!({"app": "web", "tier": "back"})),
            ("a", "api-1", serde_json::json!({"app": "api"})),
            ("b", "web-1", serde_json::json!({"app": "web"})),
        ] {
            cache.apply(0, Event::InitApply(pod(ns, name, labels, None))).await;
        }
        cache.apply(0, Event::InitDone).await;
        cache.wait_until_ready().await;
        assert_eq!(names(cache.select("a", &selector("app=web"))), ["web-1", "web-2"]);
        assert_eq!(names(cache.select("a", &selector("app=web,tier!=back"))), ["web-1"]);
        assert_eq!(
            names(cache.select("a", &selector("app in (web,api)"))),
            ["api-1", "web-1", "web-2"]
        );
        assert_eq!(
            names(cache.select("a", &selector("tier"))),
            ["web-1", "web-2"],
            "no equality: a scan"
        );
        assert_eq!(names(cache.select("a", &selector(""))), ["api-1", "web-1", "web-2"]);
        assert!(cache.select("a", &selector("app=none")).is_empty());
        assert!(cache.select("c", &selector("app=web")).is_empty());

        // A relabelled pod moves between postings; a deleted one leaves them.
        cache
            .apply(
                0,
                Event::Apply(pod("a", "web-2", serde_json::json!({"app": "api"}), None)),
            )
            .await;
        assert_eq!(names(cache.select("a", &selector("app=web"))), ["web-1"]);
        assert_eq!(names(cache.select("a", &selector("app=api"))), ["api-1", "web-2"]);
        cache
            .apply(
                0,
                Event::Delete(pod("a", "api-1", serde_json::json!({"app": "api"}), None)),
            )
            .await;
        assert_eq!(names(cache.select("a", &selector("app=api"))), ["web-2"]);
        let index = cache.read();
        assert!(
            index.namespaces["a"].by_label["app"]
                .get("api")
                .is_some_and(|n| n.len() == 1)
        );
    }

    #[test]
    fn pods_of_one_template_share_their_labels_owners_and_requests() {
        let pod = |name: &str| -> Pod {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": name, "namespace": "a", "labels": {"app": "web"},
                             "ownerReferences": [{"apiVersion": "v1", "kind": "PodSet", "name": "web", "uid": "u", "controller": true}]},
                "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "100m"}}}]}
            }))
            .unwrap()
        };
        let cache = PodCache::of(vec![pod("web-1"), pod("web-2")]);
        let (one, two) = (cache.get("a", "web-1").unwrap(), cache.get("a", "web-2").unwrap());
        assert!(Arc::ptr_eq(&one.info.containers, &two.info.containers));
        assert!(Arc::ptr_eq(&one.owners[0].uid, &two.owners[0].uid));
        let value = |p: &CachedPod| p.labels.shared().next().map(|(_, v)| v.clone()).unwrap();
        assert!(Arc::ptr_eq(&value(&one), &value(&two)));
        let keyed_by_its_name = |cache: &PodCache| {
            let pod = cache.get("a", "web-1").unwrap();
            let index = cache.read();
            let (key, _) = index.namespaces["a"].pods.get_key_value("web-1").unwrap();
            Arc::ptr_eq(key, &pod.info.name)
        };
        assert!(keyed_by_its_name(&cache), "the index keys by the pod's own name");
        let mut updated = pod("web-1");
        updated.status = Some(Default::default());
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(cache.apply(0, Event::Apply(updated)));
        assert!(keyed_by_its_name(&cache), "and still does once the pod is updated");
    }

    #[tokio::test]
    async fn owners_find_their_pods() {
        let cache = PodCache::of(vec![
            pod("a", "p1", serde_json::json!({"x": "1"}), Some("uid-1")),
            pod("a", "p2", serde_json::json!({"x": "2"}), Some("uid-1")),
            pod("a", "p3", serde_json::json!({"x": "1"}), Some("uid-2")),
        ]);
        assert_eq!(names(cache.owned_by("a", "uid-1")), ["p1", "p2"]);
        assert!(cache.owned_by("a", "uid-9").is_empty());
        assert!(cache.get("a", "p3").is_some());
    }

    #[tokio::test]
    async fn a_relist_replaces_only_its_scope_and_readiness_waits_for_every_scope() {
        let cache = PodCache::new(vec![Some("a".into()), Some("b".into())]);
        let list = |ns: &'static str, names: &'static [&'static str]| {
            let cache = cache.clone();
            let scope = usize::from(ns == "b");
            async move {
                cache.apply(scope, Event::Init).await;
                for name in names {
                    cache
                        .apply(
                            scope,
                            Event::InitApply(pod(ns, name, serde_json::json!({"app": "w"}), None)),
                        )
                        .await;
                }
                cache.apply(scope, Event::InitDone).await;
            }
        };
        list("a", &["p1", "p2"]).await;
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(50), cache.wait_until_ready()).await;
        assert!(waiting.is_err(), "b has not listed yet");
        list("b", &["q1"]).await;
        cache.wait_until_ready().await;
        list("a", &["p3"]).await;
        assert_eq!(
            names(cache.select("a", &selector("app=w"))),
            ["p3"],
            "the relist replaced a"
        );
        assert_eq!(names(cache.select("b", &selector("app=w"))), ["q1"], "and left b alone");
    }

    #[tokio::test]
    async fn every_reconcile_waiting_for_the_first_list_goes_on() {
        // kube's Store wakes only the last of many waiters; at start-up every reconcile waits.
        let cache = PodCache::new(vec![None]);
        let waiters: Vec<_> = (0..100)
            .map(|_| {
                let cache = cache.clone();
                tokio::spawn(async move { cache.wait_until_ready().await })
            })
            .collect();
        tokio::task::yield_now().await;
        cache.apply(0, Event::Init).await;
        cache.apply(0, Event::InitDone).await;
        for waiter in waiters {
            tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
                .await
                .expect("every waiter resumes")
                .unwrap();
        }
    }

    #[tokio::test]
    async fn subscribers_receive_changed_pods() {
        let cache = PodCache::new(vec![None]);
        let mut changes = Box::pin(cache.subscribe(0).unwrap());
        cache
            .apply(0, Event::Apply(pod("a", "p1", serde_json::json!({}), None)))
            .await;
        cache
            .apply(0, Event::Delete(pod("a", "p1", serde_json::json!({}), None)))
            .await;
        for _ in 0..2 {
            let changed = changes.next().await.unwrap();
            assert_eq!((changed.namespace.as_str(), changed.pod.name()), ("a", "p1"));
        }
    }
}
