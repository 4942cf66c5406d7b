//! The PodSet controller: keeps `spec.replicas` live pods matching the selector, whoever set
//! that number (`kubectl scale`, an autoscaler, a person), and publishes the selector for the
//! `scale` subresource.
//!
//! gather (pod cache) → decide ([`plan::plan`], pure) → apply (create, delete, adopt) → report
//! (status, events).

pub mod expectations;
pub mod plan;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::events::{EventType, Recorder};
use ferroscale_api::{PodSet, PodSetStatus};
use futures::{Stream, StreamExt};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use tracing::{info, instrument, warn};

use crate::backoff::Backoff;
use crate::conditions::set_condition;
use crate::pod_cache::{Changed, PodCache};
use crate::shard::{Ownership, Verdict};
use crate::status_patch;
use crate::telemetry::Telemetry;
use expectations::{Expectations, Seen};
use plan::{InvalidSpec, Plan, plan};

/// Why a reconcile failed. Failed pod writes are also reported in status and events.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("PodSet {0} has no namespace")]
    NoNamespace(String),
    #[error("creating a pod for {0} failed: {1}")]
    Create(String, #[source] kube::Error),
    #[error("deleting pod {0} failed: {1}")]
    Delete(String, #[source] kube::Error),
    #[error("adopting pod {0} failed: {1}")]
    Adopt(String, #[source] kube::Error),
    #[error("writing the status of {0} failed: {1}")]
    Status(String, #[source] kube::Error),
}

impl Error {
    /// A bounded label for logs and metrics.
    pub fn category(&self) -> &'static str {
        match self {
            Self::NoNamespace(_) => "invalid",
            Self::Create(..) => "create",
            Self::Delete(..) => "delete",
            Self::Adopt(..) => "adopt",
            Self::Status(..) => "status",
        }
    }
}

/// What reconciles share.
pub struct Context {
    pub client: Client,
    /// Every pod the operator can see, kept current by one watch.
    pub pods: PodCache,
    pub expectations: Expectations,
    pub recorder: Recorder,
    pub backoff: Backoff,
    pub telemetry: Arc<Telemetry>,
    /// Which PodSets this replica's shard runs.
    pub ownership: Arc<Ownership>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").finish_non_exhaustive()
    }
}

/// How often a settled PodSet is checked anyway, to adopt orphans and recover lost events.
const RESYNC: Duration = Duration::from_secs(300);
/// How long to wait for the cache to show this controller's own writes before looking again.
const CACHE_WAIT: Duration = Duration::from_secs(10);

/// PodSets reconciled at once. A pass waits only on the API server, never on a tenant's
/// source, so a bound costs no fairness; unbounded, a start with 10,000 PodSets puts all of
/// them in flight at once, and the controller's tables keep that size (8 MB) for good.
const CONCURRENCY: u16 = 64;

fn seen(pods: &PodCache, namespace: &str, name: &str) -> Seen {
    match pods.get(namespace, name) {
        None => Seen::Absent,
        Some(p) if p.deleting() => Seen::Terminating,
        Some(_) => Seen::Present,
    }
}

/// One pass over one PodSet.
#[instrument(skip_all, fields(podset = %podset.name_any(), namespace = podset.namespace().unwrap_or_default()))]
pub async fn reconcile(podset: Arc<PodSet>, ctx: Arc<Context>) -> Result<Action, Error> {
    let name = podset.name_any();
    let namespace = podset.namespace().ok_or_else(|| Error::NoNamespace(name.clone()))?;
    let key = format!("{namespace}/{name}");
    ctx.ownership.wait_until_ready().await;
    match ctx.ownership.verdict(&namespace, &name) {
        Verdict::Mine => {}
        // Another shard runs it: what this replica expected of it is stale by then.
        Verdict::Elsewhere => {
            ctx.expectations.forget(&key);
            return Ok(Action::await_change());
        }
        Verdict::HandedOver => {
            ctx.expectations.forget(&key);
            return Ok(Action::requeue(ctx.ownership.recheck_after()));
        }
    }
    let _timer = ctx.telemetry.reconcile_timer("podset");
    // Counting pods before the cache has listed them all would create a full set again.
    ctx.pods.wait_until_ready().await;
    // Every PodSet is a task waiting above at a start; the pass's state is allocated after.
    Box::pin(pass(&podset, &ctx, &namespace, &key)).await
}

/// The pass proper, once the pod cache has listed every pod.
async fn pass(podset: &PodSet, ctx: &Context, namespace: &str, key: &str) -> Result<Action, Error> {
    if podset.metadata.deletion_timestamp.is_some() {
        // Pods go with it through garbage collection (they carry its owner reference).
        ctx.expectations.forget(key);
        return Ok(Action::await_change());
    }
    // The plan reads only the pods the selector matches; an invalid selector matches none.
    let cached = match ferroscale_autoscaler::selector::from_label_selector(&podset.spec.selector) {
        Ok(selector) => ctx.pods.select(namespace, &selector),
        Err(_) => Vec::new(),
    };
    let in_namespace = cached.iter().map(|p| p.as_ref());
    let pending = ctx
        .expectations
        .pending(key, |pod| seen(&ctx.pods, namespace, pod), Instant::now());
    let result = match plan(podset, in_namespace, &pending) {
        Err(InvalidSpec(errors)) => {
            let message = errors.to_string();
            publish(ctx, podset, EventType::Warning, "InvalidSpec", &message).await;
            let mut status = podset.status.clone().unwrap_or_default();
            status.observed_generation = podset.metadata.generation;
            update_conditions(&mut status, podset, Some(("InvalidSpec", message)), false);
            write_status(ctx, podset, status).await?;
            // Nothing to do until the spec changes.
            return Ok(Action::await_change());
        }
        Ok(plan) => apply(ctx, podset, key, &plan).await.map(|failure| (plan, failure)),
    };
    let (plan, failure) = result?;
    let mut status = PodSetStatus {
        replicas: plan.replicas,
        ready_replicas: plan.ready_replicas,
        selector: Some(plan.selector.clone()),
        observed_generation: podset.metadata.generation,
        conditions: podset.status.as_ref().and_then(|s| s.conditions.clone()),
    };
    let failed = failure.as_ref().map(|(reason, error)| (*reason, error.to_string()));
    update_conditions(&mut status, podset, failed, plan.ready_replicas >= podset.spec.replicas);
    write_status(ctx, podset, status).await?;
    if let Some((_, error)) = failure {
        return Err(error);
    }
    ctx.backoff.reset(key);
    Ok(if plan.waiting_for_cache {
        Action::requeue(CACHE_WAIT)
    } else {
        Action::requeue(RESYNC)
    })
}

/// Makes the plan's writes. Stops at the first refused write, which it returns (with its
/// condition reason) so status and events can say why.
async fn apply(ctx: &Context, podset: &PodSet, key: &str, plan: &Plan) -> Result<Option<(&'static str, Error)>, Error> {
    let name = podset.name_any();
    let namespace = podset.namespace().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    if let Some(owner) = plan::controller_ref(podset) {
        for pod in &plan.adopt {
            let patch = json!({"metadata": {"ownerReferences": [owner]}});
            api.patch(pod, &PatchParams::default(), &Patch::Strategic(&patch))
                .await
                .map_err(|e| Error::Adopt(pod.clone(), e))?;
            info!(pod, "adopted orphan pod");
        }
    }
    let mut created = Vec::new();
    let mut failure = None;
    let template = plan::new_pod(podset);
    for _ in 0..plan.create {
        match api.create(&PostParams::default(), &template).await {
            Ok(pod) => created.push(pod.name_any()),
            Err(e) => {
                failure = Some(("FailedCreate", Error::Create(name.clone(), e)));
                break;
            }
        }
    }
    let now = Instant::now();
    if !created.is_empty() {
        ctx.expectations
            .record(key, |p| p.expect_creates(created.iter().cloned()), now);
        info!(count = created.len(), "created pods");
        // One event per batch, naming its pods.
        publish(
            ctx,
            podset,
            EventType::Normal,
            "SuccessfulCreate",
            &format!("Created {}: {}", pods_word(created.len()), created.join(", ")),
        )
        .await;
    }
    let mut deleted = Vec::new();
    if failure.is_none() {
        for pod in &plan.delete {
            match api.delete(pod, &DeleteParams::default()).await {
                Ok(_) => deleted.push(pod.clone()),
                // Already gone: the goal is reached.
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(e) => {
                    failure = Some(("FailedDelete", Error::Delete(pod.clone(), e)));
                    break;
                }
            }
        }
    }
    if !deleted.is_empty() {
        ctx.expectations
            .record(key, |p| p.expect_deletes(deleted.iter().cloned()), now);
        info!(count = deleted.len(), "deleted pods");
        publish(
            ctx,
            podset,
            EventType::Normal,
            "SuccessfulDelete",
            &format!("Deleted {}: {}", pods_word(deleted.len()), deleted.join(", ")),
        )
        .await;
    }
    if let Some((reason, error)) = &failure {
        warn!(%error, "pod write refused");
        publish(ctx, podset, EventType::Warning, reason, &error.to_string()).await;
    }
    Ok(failure)
}

fn pods_word(n: usize) -> String {
    if n == 1 { "pod".into() } else { format!("{n} pods") }
}

/// Sets ReplicaFailure (present only while something fails) and Available.
fn update_conditions(status: &mut PodSetStatus, podset: &PodSet, failure: Option<(&str, String)>, available: bool) {
    let now = Timestamp::now();
    let generation = podset.metadata.generation;
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    match failure {
        Some((reason, message)) => set_condition(conditions, "ReplicaFailure", true, reason, &message, generation, now),
        None => conditions.retain(|c| c.type_ != "ReplicaFailure"),
    }
    let (reason, message) = if available {
        ("MinimumReplicasAvailable", "every desired pod is ready")
    } else {
        ("MinimumReplicasUnavailable", "fewer pods are ready than desired")
    };
    set_condition(conditions, "Available", available, reason, message, generation, now);
}

/// Patches the status subresource when it changed.
async fn write_status(ctx: &Context, podset: &PodSet, status: PodSetStatus) -> Result<(), Error> {
    if podset.status.as_ref() == Some(&status) {
        return Ok(());
    }
    let api: Api<PodSet> = Api::namespaced(ctx.client.clone(), &podset.namespace().unwrap_or_default());
    let patch = status_patch::replace(&status, None)
        .map_err(|e| Error::Status(podset.name_any(), kube::Error::SerdeError(e)))?;
    api.patch_status(&podset.name_any(), &PatchParams::default(), &patch)
        .await
        .map_err(|e| Error::Status(podset.name_any(), e))?;
    Ok(())
}

async fn publish(ctx: &Context, podset: &PodSet, type_: EventType, reason: &str, note: &str) {
    ctx.recorder
        .publish(&podset.object_ref(&()), type_, "Reconcile", reason, note)
        .await;
}

/// Invalid specs wait for a change (reconcile returns Ok for them); failed writes back off
/// exponentially per PodSet.
pub fn error_policy(podset: Arc<PodSet>, error: &Error, ctx: Arc<Context>) -> Action {
    let key = format!("{}/{}", podset.namespace().unwrap_or_default(), podset.name_any());
    warn!(podset = key, category = error.category(), %error, "reconcile failed");
    ctx.telemetry.reconcile_failed("podset", error.category());
    match error {
        Error::NoNamespace(_) => Action::await_change(),
        _ => Action::requeue(ctx.backoff.next(&key)),
    }
}

/// Runs the controller until `shutdown` resolves. `pod_events` is a subscription to the
/// shared pod watch that keeps `ctx.pods` current: a changed pod reconciles its owner.
pub async fn run(
    api: Api<PodSet>,
    ctx: Arc<Context>,
    pod_events: impl Stream<Item = Changed> + Send + 'static,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let (reader, writer) = kube::runtime::reflector::store();
    let podsets = kube::runtime::watcher(api, watcher::Config::default().any_semantic())
        .default_backoff()
        .modify(crate::slim::metadata)
        .reflect(writer)
        .applied_objects();
    // A changed pod reconciles the PodSet that controls it.
    let owners = pod_events.filter_map(|changed| async move {
        let owner = changed
            .pod
            .owners
            .iter()
            .find(|o| o.controller && &*o.kind == "PodSet")?;
        Some(ObjectRef::<PodSet>::new(&owner.name).within(&changed.namespace))
    });
    Controller::for_stream(podsets, reader)
        .with_config(kube::runtime::controller::Config::default().concurrency(CONCURRENCY))
        .reconcile_on(owners)
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "podset controller event");
            }
        })
        .await;
}
