//! Shards on a real API server: 2 shards × 2 replicas each evaluate only their own
//! Autoscalers; killing one shard's leader stops only that shard's, for at most a lease
//! duration; going from 2 shards to 3 hands Autoscalers over without any being evaluated by two
//! operators at once. Who evaluated what is read from each operator's last-evaluation gauges,
//! scraped four times a second.
//! Runs only with FERROSCALE_E2E_KUBECONFIG set (and Prometheus installed).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use ferroscale_api::{Autoscaler, PodSet};
use ferroscale_controller::shard::Shard;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;
use support::*;

const AUTOSCALERS: usize = 12;
const SYNC: Duration = Duration::from_secs(2);
const LEASE: Duration = Duration::from_secs(6);

/// One operator process: its shard configuration and admin address.
struct Replica {
    operator: Operator,
    shard: Shard,
    admin: String,
    identity: String,
}

/// Every evaluation seen: for each Autoscaler, (operator identity, Unix second) in order.
type Seen = Arc<Mutex<BTreeMap<String, Vec<(String, i64)>>>>;

fn start(s: &Driven, shard: Shard) -> Result<Replica> {
    let admin = format!("127.0.0.1:{}", support::prometheus::free_port());
    let (shards, index) = (shard.count.to_string(), shard.index.to_string());
    // The operator evaluates every 2 s (Driven's sync period).
    let operator = s.operator_with(&[
        "--admin-addr",
        &admin,
        "--leader-elect",
        "--leader-election-namespace",
        &s.ns.name,
        "--leader-election-lease-duration",
        "6s",
        "--leader-election-renew-deadline",
        "4s",
        "--leader-election-retry-period",
        "1s",
        "--shards",
        &shards,
        "--shard-index",
        &index,
    ])?;
    let identity = format!("ferroscale-{}", operator.pid());
    Ok(Replica {
        operator,
        shard,
        admin,
        identity,
    })
}

/// Scrapes every replica's gauges until `stop` is set, recording each new evaluation.
fn watch(replicas: Arc<Mutex<Vec<(String, String)>>>, seen: Seen, stop: Arc<std::sync::atomic::AtomicBool>) {
    tokio::spawn(async move {
        let mut last: BTreeMap<(String, String), i64> = BTreeMap::new();
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            let targets = replicas.lock().unwrap().clone();
            for (identity, admin) in targets {
                let Ok(text) = http_get(&admin, "/metrics").await else {
                    continue;
                };
                for ((_, name), at) in last_evaluations(&text) {
                    let key = (identity.clone(), name.clone());
                    if last.get(&key) != Some(&at) {
                        last.insert(key, at);
                        seen.lock()
                            .unwrap()
                            .entry(name)
                            .or_default()
                            .push((identity.clone(), at));
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    });
}

/// The evaluations of each Autoscaler after `since` (Unix seconds).
fn evaluations_since(seen: &Seen, since: i64) -> BTreeMap<String, Vec<(String, i64)>> {
    seen.lock()
        .unwrap()
        .iter()
        .map(|(name, evals)| {
            let mut after: Vec<(String, i64)> = evals.iter().filter(|(_, at)| *at >= since).cloned().collect();
            after.sort_by_key(|(_, at)| *at);
            (name.clone(), after)
        })
        .collect()
}

/// The longest time between two evaluations of `evals` (sorted), from `since` on.
fn longest_gap(evals: &[(String, i64)], since: i64) -> i64 {
    let mut previous = since;
    let mut longest = 0;
    for (_, at) in evals {
        longest = longest.max(at - previous);
        previous = *at;
    }
    longest
}

/// No two operators' evaluations of one Autoscaler interleave: each operator's first-to-last
/// stretch ends before the next one's begins (the same second allowed: stamps are whole seconds).
fn assert_one_at_a_time(all: &BTreeMap<String, Vec<(String, i64)>>) {
    for (name, evals) in all {
        let mut stretches: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
        for (identity, at) in evals {
            let stretch = stretches.entry(identity).or_insert((*at, *at));
            stretch.0 = stretch.0.min(*at);
            stretch.1 = stretch.1.max(*at);
        }
        let mut ordered: Vec<(&str, (i64, i64))> = stretches.into_iter().collect();
        ordered.sort_by_key(|(_, (first, _))| *first);
        for pair in ordered.windows(2) {
            let ((a, (_, a_last)), (b, (b_first, _))) = (pair[0], pair[1]);
            assert!(
                a_last <= b_first,
                "{name} was evaluated by {a} until {a_last} and by {b} from {b_first}: two shards at once ({evals:?})"
            );
        }
    }
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

#[tokio::test]
async fn shards_split_the_autoscalers_survive_a_leader_loss_and_reshard_without_double_evaluation() -> Result<()> {
    let test = "shards_split_the_autoscalers_survive_a_leader_loss_and_reshard_without_double_evaluation";
    // 20 against 10 per replica holds every 2-replica target where it is: nothing scales.
    let Some(s) = Driven::setup(test, "ferroscale-e2e-shards", 20.0).await? else {
        return Ok(());
    };
    let ns = s.ns.name.clone();
    let podsets: Api<PodSet> = Api::namespaced(s.client.clone(), &ns);
    let autoscalers: Api<Autoscaler> = Api::namespaced(s.client.clone(), &ns);
    let names: Vec<String> = (0..AUTOSCALERS).map(|i| format!("web-{i}")).collect();
    for name in &names {
        podsets.create(&PostParams::default(), &pause_podset(name, 2)?).await?;
        let autoscaler: Autoscaler = serde_json::from_value(json!({
            "apiVersion": "ferroscale.dev/v1alpha1", "kind": "Autoscaler", "metadata": {"name": name},
            "spec": {"scaleTargetRef": {"apiVersion": "ferroscale.dev/v1alpha1", "kind": "PodSet", "name": name},
                     "minReplicas": 1, "maxReplicas": 5,
                     "metrics": [{"type": "Prometheus", "prometheus": {"query": "sum(e2e_load)", "target": {"type": "AverageValue", "averageValue": "10"}}}]}
        }))?;
        autoscalers.create(&PostParams::default(), &autoscaler).await?;
    }
    let of = |count: u32, name: &str| Shard::index_of(&ns, name, count);
    assert!(
        (0..2).all(|i| names.iter().any(|n| of(2, n) == i)),
        "both shards own some Autoscaler"
    );

    // 2 shards × 2 replicas.
    let mut replicas: Vec<Replica> = Vec::new();
    for index in [0, 0, 1, 1] {
        replicas.push(start(&s, Shard::new(2, index).map_err(anyhow::Error::msg)?)?);
    }
    let scraped = Arc::new(Mutex::new(
        replicas
            .iter()
            .map(|r| (r.identity.clone(), r.admin.clone()))
            .collect::<Vec<_>>(),
    ));
    let seen: Seen = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    watch(scraped.clone(), seen.clone(), stop.clone());
    wait_for("every Autoscaler evaluated", Duration::from_secs(120), || async {
        let seen = seen.lock().unwrap();
        Ok(names.iter().all(|n| seen.contains_key(n)).then_some(()))
    })
    .await?;
    let steady = now();
    tokio::time::sleep(SYNC * 5).await;
    let leases: Api<Lease> = Api::namespaced(s.client.clone(), &ns);
    let holder = |lease: &'static str| {
        let leases = leases.clone();
        async move {
            anyhow::Ok(
                leases
                    .get(lease)
                    .await?
                    .spec
                    .and_then(|s| s.holder_identity)
                    .unwrap_or_default(),
            )
        }
    };
    let leaders = [holder("ferroscale-0").await?, holder("ferroscale-1").await?];
    for (name, evals) in evaluations_since(&seen, steady) {
        let by: BTreeSet<&str> = evals.iter().map(|(who, _)| who.as_str()).collect();
        let shard = of(2, &name) as usize;
        assert_eq!(
            by,
            BTreeSet::from([leaders[shard].as_str()]),
            "{name} (shard {shard}) must be evaluated by its shard's leader alone"
        );
        assert!(evals.len() >= 3, "{name} was evaluated {} times in 10 s", evals.len());
    }
    // Each replica says which shard it runs and how many Autoscalers it evaluates.
    for replica in &replicas {
        let text = http_get(&replica.admin, "/metrics").await?;
        assert_eq!(gauge(&text, "ferroscale_shards"), Some(2.0));
        assert_eq!(
            gauge(&text, "ferroscale_shard_index"),
            Some(f64::from(replica.shard.index))
        );
        let owned = names.iter().filter(|n| of(2, n) == replica.shard.index).count() as f64;
        let leads = leaders.contains(&replica.identity);
        assert_eq!(
            gauge(&text, "ferroscale_shard_owned_autoscalers"),
            Some(if leads { owned } else { 0.0 }),
            "{} (leader: {leads})",
            replica.identity
        );
    }

    // Kill shard 0's leader: shard 1 goes on as if nothing happened, shard 0 resumes on its
    // standby within the lease duration.
    let killed_at = now();
    let position = replicas.iter().position(|r| r.identity == leaders[0]).unwrap();
    replicas.remove(position).operator.kill()?;
    let dead_leader = leaders[0].clone();
    tokio::time::sleep(LEASE + SYNC * 5).await;
    for (name, evals) in evaluations_since(&seen, killed_at) {
        let gap = longest_gap(&evals, killed_at);
        if of(2, &name) == 1 {
            assert!(
                gap <= SYNC.as_secs() as i64 + 2,
                "{name} of shard 1 waited {gap} s while shard 0 lost its leader: {evals:?}"
            );
        } else {
            assert!(
                gap <= (SYNC + LEASE).as_secs() as i64 + 2,
                "{name} of shard 0 waited {gap} s: more than the lease duration past its period ({evals:?})"
            );
            let last = &evals.last().expect("evaluated after the kill").0;
            assert_ne!(last, &dead_leader, "{name} is evaluated by shard 0's standby now");
        }
    }

    // Reshard, 2 → 3: one replica per new shard, then the old replicas are stopped as a rolling
    // update stops them, one after another.
    let reshard_at = now();
    let mut new: Vec<Replica> = Vec::new();
    for index in 0..3 {
        new.push(start(&s, Shard::new(3, index).map_err(anyhow::Error::msg)?)?);
    }
    scraped
        .lock()
        .unwrap()
        .extend(new.iter().map(|r| (r.identity.clone(), r.admin.clone())));
    tokio::time::sleep(SYNC * 4).await;
    for old in replicas.drain(..) {
        old.operator.stop()?;
        tokio::time::sleep(SYNC * 2).await;
    }
    tokio::time::sleep(LEASE + SYNC * 4).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let all = evaluations_since(&seen, steady);
    assert_one_at_a_time(&all);
    let after = evaluations_since(&seen, reshard_at);
    let settled = now() - (SYNC * 3).as_secs() as i64;
    for name in &names {
        let evals = &after[name];
        let gap = longest_gap(evals, reshard_at);
        assert!(
            gap <= (SYNC + LEASE).as_secs() as i64 + 2,
            "{name} waited {gap} s during the reshard ({evals:?})"
        );
        let owner = &new[of(3, name) as usize].identity;
        let recent: BTreeSet<&str> = evals
            .iter()
            .filter(|(_, at)| *at >= settled)
            .map(|(who, _)| who.as_str())
            .collect();
        assert_eq!(
            recent,
            BTreeSet::from([owner.as_str()]),
            "{name} ends on shard {} of 3",
            of(3, name)
        );
    }

    // explain names the shard that evaluates an Autoscaler.
    let name = &names[0];
    let explained = std::process::Command::new(env!("CARGO_BIN_EXE_ferroscale"))
        .args(["explain", &format!("{ns}/{name}")])
        .env("KUBECONFIG", &s.kubeconfig)
        .output()?;
    let text = String::from_utf8_lossy(&explained.stdout);
    let expected = format!(
        "Evaluated by shard {} of 3 (Lease {ns}/ferroscale-{}",
        of(3, name),
        of(3, name)
    );
    assert!(text.contains(&expected), "explain says:\n{text}");
    for replica in new {
        replica.operator.stop()?;
    }
    Ok(())
}
