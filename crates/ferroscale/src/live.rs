//! Live `explain`: reads one Autoscaler and everything its evaluation reads from the cluster,
//! through the controller's own observation step, and decides as the controller would now.
//! It never writes to the cluster.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Result, anyhow};
use ferroscale_api::{Autoscaler, AutoscalerStatus};
use ferroscale_autoscaler::compiled::Compiled;
use ferroscale_autoscaler::selector::scale_selector;
use ferroscale_autoscaler::{Scale, Settings, decide};
use ferroscale_controller::autoscaler::neighbours::Neighbours;
use ferroscale_controller::autoscaler::observe::{Observed, Readers, observe};
use ferroscale_controller::autoscaler::target::Targets;
use ferroscale_controller::pod_cache::PodCache;
use ferroscale_controller::shard;
use jiff::Timestamp;
use k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};

use crate::explain::{Replay, ShardOwner};
use crate::flags::SourceArgs;

/// What live explain found: a decision to explain, or why there is none.
pub enum Live {
    Decided(Box<Replay>),
    /// The target's scale could not be read: the controller reports FailedGetScale.
    NoScale {
        autoscaler: Box<Autoscaler>,
        error: String,
        /// The status the controller writes.
        status: Box<AutoscalerStatus>,
    },
}

/// Problems that did not stop the explanation, for stderr.
pub type Warnings = Vec<String>;

fn describe_error(what: &str, error: kube::Error) -> String {
    match error {
        kube::Error::Api(status) if status.code == 403 => {
            format!("{what}: forbidden by RBAC: {}", status.message)
        }
        kube::Error::Api(status) if status.code == 404 => format!("{what}: not found ({})", status.message),
        kube::Error::Api(status) => format!("{what}: {} ({})", status.message, status.code),
        other => format!("{what}: {other}"),
    }
}

/// All objects of a namespaced kind, or why not.
async fn list_all<K>(client: &Client, namespace: &str, params: &ListParams, what: &str) -> Result<Vec<K>, String>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    crate::cluster::list_pages(&api, params)
        .await
        .map_err(|e| describe_error(what, e))
}

/// Feeds `objects` to `apply` as the events of a watch that has just listed them.
fn listed<K>(objects: Vec<K>, apply: impl Fn(&watcher::Event<K>)) {
    apply(&watcher::Event::Init);
    for object in objects {
        apply(&watcher::Event::InitApply(object));
    }
    apply(&watcher::Event::InitDone);
}

/// Explains what the controller would decide now for `namespace/name`.
pub async fn explain(
    client: Client,
    namespace: &str,
    name: &str,
    settings: &Settings,
    sources: &SourceArgs,
    warnings: &mut Warnings,
) -> Result<Live> {
    let what = format!("Autoscaler {namespace}/{name}");
    let autoscalers: Api<Autoscaler> = Api::namespaced(client.clone(), namespace);
    let autoscaler = autoscalers
        .get(name)
        .await
        .map_err(|e| anyhow!(describe_error(&format!("cannot read {what}"), e)))?;
    let targets = Targets::new(client.clone());
    let reference = &autoscaler.spec.scale_target_ref;

    // The pods the target's selector matches, as the controller's cache holds them.
    let selector = match targets.get_scale(namespace, reference).await {
        Ok(scale) => scale_selector(&Scale::from(&scale)).ok(),
        Err(_) => None,
    };
    let pods = match &selector {
        Some(selector) => {
            let params = ListParams::default().labels_from(selector);
            match list_all::<Pod>(&client, namespace, &params, &format!("cannot list pods in {namespace}")).await {
                Ok(pods) => pods,
                Err(error) => {
                    warnings.push(format!("{error}; explaining as if the target had no pods"));
                    Vec::new()
                }
            }
        }
        None => Vec::new(),
    };

    // The neighbours the controller checks: upstream HPAs and other Autoscalers.
    let neighbours = Neighbours::default();
    let all = ListParams::default();
    match list_all::<HorizontalPodAutoscaler>(&client, namespace, &all, "cannot list HorizontalPodAutoscalers").await {
        Ok(hpas) => {
            let source = neighbours.source();
            listed(hpas, |event| neighbours.hpa_event(source, event));
        }
        Err(error) => warnings.push(format!("{error}; a conflict with one would not be shown")),
    }
    match list_all::<Autoscaler>(&client, namespace, &all, "cannot list Autoscalers").await {
        Ok(others) => {
            // Other targets' selectors, for the overlap check (the controller knows them from
            // evaluating those Autoscalers).
            for other in &others {
                let target = &other.spec.scale_target_ref;
                if other.uid() == autoscaler.uid() || target == reference {
                    continue;
                }
                if let Ok(scale) = targets.get_scale(namespace, target).await
                    && let Ok(selector) = scale_selector(&Scale::from(&scale))
                {
                    neighbours.remember_selector(other, &selector);
                }
            }
            let source = neighbours.source();
            listed(others, |event| neighbours.autoscaler_event(source, event));
        }
        Err(error) => warnings.push(format!("{error}; a conflict with one would not be shown")),
    }

    let readers = Readers {
        client: client.clone(),
        pods: PodCache::of(pods),
        targets,
        metrics: Arc::new(sources.sources(&client)?),
        neighbours,
    };
    // Status keeps whole seconds, as the controller decides.
    let now = Timestamp::from_second(Timestamp::now().as_second()).unwrap_or_else(|_| Timestamp::now());
    let status = autoscaler.status.as_ref();
    let compiled = Compiled::of(&autoscaler.spec);
    let observed = observe(
        &readers,
        &autoscaler,
        &compiled,
        status,
        now,
        ferroscale_autoscaler::settings::sync_period(&autoscaler.spec, settings),
    )
    .await;
    let observation = match observed {
        Observed::Read(observation) => observation,
        Observed::NoScale(error) => {
            let status = ferroscale_autoscaler::status::failed_get_scale(
                &autoscaler.spec,
                status,
                autoscaler.metadata.generation,
                &error,
                now,
            );
            return Ok(Live::NoScale {
                autoscaler: Box::new(autoscaler),
                error,
                status: Box::new(status),
            });
        }
        Observed::InvalidSpec => {
            // Nothing is read for an invalid spec; the scale only shows the current count.
            let scale = readers
                .targets
                .get_scale(namespace, reference)
                .await
                .unwrap_or_default();
            let snapshot = crate::snapshot::Complete {
                autoscaler,
                scale,
                rest: crate::snapshot::Snapshot::default(),
            };
            let mut replay = crate::explain::replay_snapshot(snapshot, now, settings);
            replay.shards = shard_owners(&client, namespace, name, now, warnings).await;
            return Ok(Live::Decided(Box::new(replay)));
        }
    };
    for (i, read) in observation.reads.iter().enumerate() {
        if let (Err(error), Some(_)) = (&read.value, read.elapsed) {
            warnings.push(format!("metric {i} could not be read: {error}"));
        }
    }
    // A new leader's view: nothing remembered beyond the status.
    let decision = decide(&observation.input(&autoscaler, &compiled, status, now, settings, None));
    let snapshot = crate::capture::snapshot(&autoscaler, &observation, now);
    Ok(Live::Decided(Box::new(Replay {
        snapshot,
        decision,
        metrics: observation.metrics.clone(),
        now,
        pods_left_out: observation.pods_left_out,
        shards: shard_owners(&client, namespace, name, now, warnings).await,
    })))
}

/// Which shard evaluates `namespace/name`, for each operator deployment whose shard Leases the
/// caller may list.
async fn shard_owners(
    client: &Client,
    namespace: &str,
    name: &str,
    now: Timestamp,
    warnings: &mut Warnings,
) -> Vec<ShardOwner> {
    let params = ListParams::default().labels(shard::GROUP_LABEL);
    let leases = match Api::<Lease>::all(client.clone()).list(&params).await {
        Ok(list) => list.items,
        Err(error) => {
            warnings.push(describe_error(
                "cannot list the operator's Leases; the shard is not shown",
                error,
            ));
            return Vec::new();
        }
    };
    let mut groups: BTreeMap<(String, String), Vec<shard::Claim>> = BTreeMap::new();
    for lease in &leases {
        let Some((group, claim)) = shard::read_lease(lease) else {
            continue;
        };
        let claims = groups
            .entry((lease.metadata.namespace.clone().unwrap_or_default(), group))
            .or_default();
        if let Some(claim) = claim.filter(|_| shard::live_at(lease, now)) {
            claims.push(claim);
        }
    }
    groups
        .into_iter()
        .map(|((lease_namespace, group), claims)| ShardOwner {
            claim: shard::owner(&claims, namespace, name).cloned(),
            group,
            namespace: lease_namespace,
        })
        .collect()
}

/// Splits `NAMESPACE/NAME`, or takes `NAME` in `namespace` (default: the kubeconfig's).
pub fn target(argument: &str, namespace: Option<&str>, client: &Client) -> Result<(String, String)> {
    match (argument.split_once('/'), namespace) {
        (Some((ns, name)), None) => Ok((ns.to_string(), name.to_string())),
        (Some((ns, name)), Some(flag)) if ns == flag => Ok((ns.to_string(), name.to_string())),
        (Some((ns, _)), Some(flag)) => Err(anyhow!(
            "{argument} names namespace {ns}, but -n says {flag}: give one of them"
        )),
        (None, Some(ns)) => Ok((ns.to_string(), argument.to_string())),
        (None, None) => Ok((client.default_namespace().to_string(), argument.to_string())),
    }
}
