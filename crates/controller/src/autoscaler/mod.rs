//! The Autoscaler controller: every sync period, and at once when an Autoscaler's spec
//! changes, read the target's scale, gather the metrics, decide with the core, resize the
//! target through `scale` when the core says so, and write status (history included) and events.

pub mod neighbours;
pub mod observe;
pub mod target;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ferroscale_api::{Autoscaler, AutoscalerStatus};
use ferroscale_autoscaler::compiled::Compiled;
use ferroscale_autoscaler::history::Remembered;
use ferroscale_autoscaler::settings::sync_period;
use ferroscale_autoscaler::status::failed_get_scale;
use ferroscale_autoscaler::{Decision, Settings, decide};
use futures::{StreamExt, TryStreamExt};
use jiff::Timestamp;
use kube::api::{Api, PatchParams};
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector;
use kube::runtime::{WatchStreamExt, predicates, watcher};
use kube::{Resource, ResourceExt};
use tracing::{info, instrument, warn};

use crate::backoff::Backoff;
use crate::events::{EventType, Recorder};
use crate::fairness::Fairness;
use crate::shard::{Ownership, Verdict};
use crate::status_patch;
use crate::telemetry::Telemetry;
use observe::{Observed, Readers, invalid_spec_input, observe};

/// Why a reconcile failed (other than through the Autoscaler's own conditions).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Autoscaler {0} has no namespace")]
    NoNamespace(String),
    #[error("writing the status of {0} failed: {1}")]
    Status(String, #[source] kube::Error),
    /// Someone else wrote the status since it was read: this decision was made from stale data.
    #[error("the status of {0} changed since it was read; the decision is dropped and made again")]
    StaleStatus(String),
}

impl Error {
    /// A bounded label for logs and metrics.
    pub fn category(&self) -> &'static str {
        match self {
            Self::NoNamespace(_) => "invalid",
            Self::Status(..) => "status",
            Self::StaleStatus(..) => "conflict",
        }
    }
}

/// What reconciles share.
pub struct Context {
    /// What evaluations read from: the client, caches and metric sources.
    pub readers: Readers,
    /// The decision's settings; `sync_period` is how often each Autoscaler is evaluated.
    pub settings: Settings,
    pub recorder: Recorder,
    pub backoff: Backoff,
    pub telemetry: Arc<Telemetry>,
    /// What the controller keeps of each Autoscaler between evaluations, by uid.
    pub memory: Mutex<HashMap<String, Memory>>,
    /// How many Autoscalers are evaluated at once, in all and of one namespace.
    pub fairness: Fairness,
    /// Which Autoscalers this replica's shard evaluates.
    pub ownership: Arc<Ownership>,
}

/// What the controller keeps of one Autoscaler between evaluations.
#[derive(Debug, Clone, Default)]
pub struct Memory {
    /// When the current recommendation in status was last made: a steady Autoscaler's status
    /// does not change, so it does not say.
    recommendation: Option<Remembered>,
    /// The status last written. While the cache still shows the version it was computed from,
    /// the write is not visible there yet, and deciding from the cached status would lose the
    /// history just written. Boxed: it is there only until the cache catches up, and inline
    /// it would make every Autoscaler's entry a status larger.
    written: Option<Box<Written>>,
    /// The spec checked and parsed, for the generation it was parsed from: a formula and
    /// cron expressions are parsed once per spec change.
    compiled: Option<(i64, Arc<Compiled>)>,
}

/// A status write that landed.
#[derive(Debug, Clone)]
struct Written {
    /// The resourceVersion of the object the status was computed from.
    read: String,
    status: AutoscalerStatus,
    /// The resourceVersion the write produced: the next write is conditional on it.
    version: Option<String>,
}

impl Memory {
    /// Forgets the written status once the cache shows a version other than the one it was
    /// computed from: the cache then holds what was written.
    fn catch_up(&mut self, autoscaler: &Autoscaler) {
        if self
            .written
            .as_ref()
            .is_some_and(|w| autoscaler.metadata.resource_version.as_ref() != Some(&w.read))
        {
            self.written = None;
        }
    }

    /// The status to decide from, and the resourceVersion a write of the next status is
    /// conditional on: the one last written while the cache lags behind it.
    fn status<'a>(&'a self, autoscaler: &'a Autoscaler) -> (Option<&'a AutoscalerStatus>, Option<&'a str>) {
        match &self.written {
            Some(written) if autoscaler.metadata.resource_version.as_ref() == Some(&written.read) => {
                (Some(&written.status), written.version.as_deref())
            }
            _ => (
                autoscaler.status.as_ref(),
                autoscaler.metadata.resource_version.as_deref(),
            ),
        }
    }
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Context {
    fn memory(&self) -> std::sync::MutexGuard<'_, HashMap<String, Memory>> {
        self.memory.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Forgets the written status of an Autoscaler the watch has just delivered, if that holds
    /// the write: as it arrives, not at the next evaluation a period later. After a start every
    /// Autoscaler writes its first status at once, and all the copies were held together.
    fn cache_caught_up(&self, autoscaler: &Autoscaler) {
        if let Some(uid) = autoscaler.metadata.uid.as_ref()
            && let Some(memory) = self.memory().get_mut(uid)
        {
            memory.catch_up(autoscaler);
        }
    }

    /// Forgets an Autoscaler this replica no longer evaluates (deleted, or now another shard's),
    /// with its gauges: only the shard that evaluates an Autoscaler exports them.
    fn let_go(&self, autoscaler: &Autoscaler) {
        let Some(uid) = autoscaler.uid() else { return };
        let mut memory = self.memory();
        if memory.remove(&uid).is_some() {
            self.telemetry.forget(autoscaler);
        }
        self.telemetry
            .owned
            .set(i64::try_from(memory.len()).unwrap_or(i64::MAX));
    }

    /// Writes `status` whole unless it is what `previous` already says, and remembers it.
    /// The write is conditional on `version`, the resourceVersion `previous` was read at. When
    /// the object changed since but its status did not (a label, an annotation, the spec), the
    /// write goes through on the new version; when the status changed, someone else wrote it
    /// and this decision is dropped.
    async fn write_status(
        &self,
        autoscaler: &Autoscaler,
        previous: Option<&AutoscalerStatus>,
        version: Option<&str>,
        status: &AutoscalerStatus,
    ) -> Result<(), Error> {
        if previous == Some(status) {
            return Ok(());
        }
        let name = autoscaler.name_any();
        let api: Api<Autoscaler> =
            Api::namespaced(self.readers.client.clone(), &autoscaler.namespace().unwrap_or_default());
        let patch = |version: Option<&str>| {
            status_patch::replace(status, version).map_err(|e| Error::Status(name.clone(), kube::Error::SerdeError(e)))
        };
        let written = match api.patch_status(&name, &PatchParams::default(), &patch(version)?).await {
            Err(error) if crate::is_conflict(&error) => {
                let current = api
                    .get_status(&name)
                    .await
                    .map_err(|e| Error::Status(name.clone(), e))?;
                if current.status.as_ref() != previous {
                    return Err(Error::StaleStatus(name));
                }
                let current_version = current.resource_version();
                api.patch_status(&name, &PatchParams::default(), &patch(current_version.as_deref())?)
                    .await
            }
            other => other,
        }
        .map_err(|e| Error::Status(name.clone(), e))?;
        if let (Some(uid), Some(read)) = (autoscaler.uid(), autoscaler.resource_version()) {
            self.memory().entry(uid).or_default().written = Some(Box::new(Written {
                read,
                status: status.clone(),
                version: written.resource_version(),
            }));
        }
        Ok(())
    }
}

/// One evaluation of one Autoscaler.
#[instrument(skip_all, fields(autoscaler = %autoscaler.name_any(), namespace = autoscaler.namespace().unwrap_or_default()))]
pub async fn reconcile(autoscaler: Arc<Autoscaler>, ctx: Arc<Context>) -> Result<Action, Error> {
    let name = autoscaler.name_any();
    let namespace = autoscaler.namespace().ok_or_else(|| Error::NoNamespace(name.clone()))?;
    let key = format!("{namespace}/{name}");
    ctx.ownership.wait_until_ready().await;
    match ctx.ownership.verdict(&namespace, &name) {
        Verdict::Mine => {}
        // Never this replica's while it runs: it looks again only when the spec changes.
        Verdict::Elsewhere => {
            ctx.let_go(&autoscaler);
            return Ok(Action::await_change());
        }
        Verdict::HandedOver => {
            ctx.let_go(&autoscaler);
            return Ok(Action::requeue(ctx.ownership.recheck_after()));
        }
    }
    let _timer = ctx.telemetry.reconcile_timer("autoscaler");
    ctx.readers.pods.wait_until_ready().await;
    ctx.readers.neighbours.wait_until_listed().await;
    let _slot = ctx.fairness.enter(&namespace).await;
    // Every due Autoscaler is a task waiting above (10,000 at a start); the evaluation's
    // state is several kilobytes, so it is allocated only once the slot is taken.
    Box::pin(evaluate(&autoscaler, &ctx, &namespace, &key)).await
}

/// The evaluation proper, in the slot [`reconcile`] took.
async fn evaluate(autoscaler: &Autoscaler, ctx: &Context, namespace: &str, key: &str) -> Result<Action, Error> {
    // Status keeps whole seconds: deciding on whole seconds makes what is remembered between
    // evaluations equal to what is read back.
    let now = Timestamp::from_second(Timestamp::now().as_second()).unwrap_or_else(|_| Timestamp::now());
    let generation = autoscaler.metadata.generation;
    let uid = autoscaler.uid().unwrap_or_default();
    let memory = {
        let mut all = ctx.memory();
        if !all.contains_key(&uid) {
            ctx.telemetry
                .owned
                .set(i64::try_from(all.len() + 1).unwrap_or(i64::MAX));
        }
        let memory = all.entry(uid.clone()).or_default();
        // Where the watch delivered the write before it was remembered.
        memory.catch_up(autoscaler);
        let compiled = match (&memory.compiled, generation) {
            (Some((parsed, compiled)), Some(generation)) if *parsed == generation => compiled.clone(),
            _ => {
                let compiled = Arc::new(Compiled::of(&autoscaler.spec));
                memory.compiled = generation.map(|g| (g, compiled.clone()));
                compiled
            }
        };
        (memory.clone(), compiled)
    };
    let (memory, compiled) = memory;
    let (previous, version) = memory.status(autoscaler);
    let observation = match observe(
        &ctx.readers,
        autoscaler,
        &compiled,
        previous,
        now,
        sync_period(&autoscaler.spec, &ctx.settings),
    )
    .await
    {
        // An invalid spec is the core's first gate: the decision says why and scales nothing.
        Observed::InvalidSpec => {
            let decision = decide(&invalid_spec_input(autoscaler, &compiled, previous, now, &ctx.settings));
            for event in &decision.events {
                publish(ctx, autoscaler, event.warning, &event.reason, &event.message).await;
            }
            ctx.write_status(autoscaler, previous, version, &decision.status)
                .await?;
            return Ok(Action::await_change());
        }
        Observed::NoScale(error) => {
            warn!(%error, "cannot read the target's scale");
            publish(ctx, autoscaler, true, "FailedGetScale", &error).await;
            ctx.write_status(
                autoscaler,
                previous,
                version,
                &failed_get_scale(&autoscaler.spec, previous, generation, &error, now),
            )
            .await?;
            return Ok(Action::requeue(sync_period(&autoscaler.spec, &ctx.settings)));
        }
        Observed::Read(observation) => observation,
    };
    for (spec, read) in observation.metrics.iter().zip(&observation.reads) {
        if let Some(elapsed) = read.elapsed {
            ctx.telemetry.metric_fetched(spec.type_, elapsed, read.value.is_ok());
        }
    }
    let input = observation.input(
        autoscaler,
        &compiled,
        previous,
        now,
        &ctx.settings,
        memory.recommendation,
    );
    let mut decision: Decision = decide(&input);
    ctx.memory().entry(uid).or_default().recommendation =
        Remembered::after(decision.proposal.is_some(), &decision.status, now);
    if decision.rescale {
        match ctx
            .readers
            .targets
            .set_replicas(
                namespace,
                &autoscaler.spec.scale_target_ref,
                &observation.scale_object,
                decision.desired_replicas,
            )
            .await
        {
            Ok(()) => info!(
                from = decision.current_replicas,
                to = decision.desired_replicas,
                reason = decision.reason.as_deref().unwrap_or(""),
                "rescaled"
            ),
            Err(error) => {
                warn!(%error, "rescale failed");
                decision.rescale_failed(previous, &error, Timestamp::now());
            }
        }
    }
    ctx.telemetry.decided(autoscaler, &observation.metrics, &decision, now);
    for event in &decision.events {
        publish(ctx, autoscaler, event.warning, &event.reason, &event.message).await;
    }
    ctx.write_status(autoscaler, previous, version, &decision.status)
        .await?;
    ctx.backoff.reset(key);
    Ok(Action::requeue(sync_period(&autoscaler.spec, &ctx.settings)))
}

async fn publish(ctx: &Context, autoscaler: &Autoscaler, warning: bool, reason: &str, note: &str) {
    let type_ = if warning { EventType::Warning } else { EventType::Normal };
    ctx.recorder
        .publish(&autoscaler.object_ref(&()), type_, "Autoscale", reason, note)
        .await;
}

/// Failed status writes back off per Autoscaler, never longer than its sync period, so that
/// an Autoscaler is evaluated again within one period of the API server coming back;
/// conditions carry every other failure.
pub fn error_policy(autoscaler: Arc<Autoscaler>, error: &Error, ctx: Arc<Context>) -> Action {
    let key = format!(
        "{}/{}",
        autoscaler.namespace().unwrap_or_default(),
        autoscaler.name_any()
    );
    warn!(autoscaler = key, category = error.category(), %error, "reconcile failed");
    ctx.telemetry.reconcile_failed("autoscaler", error.category());
    match error {
        Error::NoNamespace(_) => Action::await_change(),
        _ => Action::requeue(ctx.backoff.next(&key).min(sync_period(&autoscaler.spec, &ctx.settings))),
    }
}

/// Runs the controller until `shutdown` resolves. Only spec changes (a new generation) trigger
/// a reconcile at once; the controller's own status writes do not, and every Autoscaler is
/// evaluated again one sync period after the last evaluation.
///
/// `source` numbers the watch for the conflict checks ([`neighbours::Neighbours::source`]);
/// the caller takes it before any reconcile can run, so that reconciles wait for its list.
pub async fn run(
    api: Api<Autoscaler>,
    ctx: Arc<Context>,
    source: usize,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let (reader, writer) = reflector::store();
    let telemetry = ctx.telemetry.clone();
    let forget = ctx.clone();
    let changes = watcher(api, watcher::Config::default().any_semantic())
        .default_backoff()
        .modify(crate::slim::metadata)
        .reflect(writer)
        .inspect_ok(move |event| {
            forget.readers.neighbours.autoscaler_event(source, event);
            match event {
                watcher::Event::Apply(a) | watcher::Event::InitApply(a) => forget.cache_caught_up(a),
                // A deleted Autoscaler is never reconciled again: drop its gauges here.
                watcher::Event::Delete(a) => {
                    telemetry.forget(a);
                    forget.let_go(a);
                }
                watcher::Event::Init | watcher::Event::InitDone => {}
            }
        })
        .applied_objects()
        .predicate_filter(predicates::generation, Default::default());
    // The controller runs every due reconcile; each waits for its slot in `ctx.fairness`.
    Controller::for_stream(changes, reader)
        .with_config(controller::Config::default())
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "autoscaler controller event");
            }
        })
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_written_status_is_kept_until_the_cache_shows_another_version() {
        let at = |version: &str| {
            serde_json::from_value::<Autoscaler>(serde_json::json!({
                "apiVersion": "ferroscale.dev/v1alpha1", "kind": "Autoscaler",
                "metadata": {"name": "web", "namespace": "ns", "uid": "u1", "resourceVersion": version},
                "spec": {"scaleTargetRef": {"kind": "PodSet", "name": "web"}, "maxReplicas": 3}
            }))
            .unwrap_or_else(|e| panic!("{e}"))
        };
        let written = AutoscalerStatus {
            desired_replicas: 2,
            ..AutoscalerStatus::default()
        };
        let mut memory = Memory {
            written: Some(Box::new(Written {
                read: "7".into(),
                status: written.clone(),
                version: Some("8".into()),
            })),
            ..Memory::default()
        };
        let stale = at("7");
        memory.catch_up(&stale);
        assert_eq!(memory.status(&stale), (Some(&written), Some("8")), "the cache lags");
        let newer = at("8");
        memory.catch_up(&newer);
        assert!(memory.written.is_none(), "the cache holds the write");
        assert_eq!(memory.status(&newer), (None, Some("8")));
    }
}
