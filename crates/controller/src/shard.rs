//! Shards: which operator replica evaluates an Autoscaler (and runs a PodSet) when the work is
//! split. An object belongs to the shard a stable hash of its namespace and name picks; each
//! shard elects its leader on a Lease of its own, which records the shard count and index its
//! holder runs with.
//!
//! While the shard count changes, replicas of two configurations run at once and an object may
//! be covered by one shard of each. The Leases decide between them: of the live Leases whose
//! holder's configuration covers the object, the one acquired first owns it. So a new shard
//! starts evaluating an object only once the old shard's leader has given up its Lease (at
//! shutdown, after its last reconcile) or let it expire (after the lease duration): never two
//! at once, and never a gap longer than a lease duration. Liveness is judged as the election
//! judges it, on this process's own clock: a Lease is live until its record has not changed for
//! its lease duration since this process saw it change.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use kube::runtime::watcher;
use tokio::time::Instant;

use crate::leader::same_record;

/// The label that marks the Leases of one operator deployment (its value: the base Lease name).
pub const GROUP_LABEL: &str = "ferroscale.dev/shard-group";
/// The shard count of a Lease's holder.
pub const SHARDS_ANNOTATION: &str = "ferroscale.dev/shards";
/// The shard index of a Lease's holder.
pub const INDEX_ANNOTATION: &str = "ferroscale.dev/shard-index";

/// One shard of a configuration: `index` of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Default for Shard {
    /// Everything in one shard.
    fn default() -> Self {
        Self { index: 0, count: 1 }
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} of {}", self.index, self.count)
    }
}

impl Shard {
    /// The shard `index` of `count`; the error names the flags.
    pub fn new(count: u32, index: u32) -> Result<Self, String> {
        if count == 0 {
            return Err("--shards must be at least 1".into());
        }
        if index >= count {
            return Err(format!(
                "--shard-index {index} is out of range: with --shards {count} it must be below {count}"
            ));
        }
        Ok(Self { index, count })
    }

    /// The shard index of `namespace/name` among `count` shards.
    pub fn index_of(namespace: &str, name: &str, count: u32) -> u32 {
        jump_hash(object_key(namespace, name), count)
    }

    /// Whether the hash puts `namespace/name` in this shard.
    pub fn covers(&self, namespace: &str, name: &str) -> bool {
        self.count <= 1 || Self::index_of(namespace, name, self.count) == self.index
    }

    /// The Lease this shard elects its leader on: the base name alone without sharding, so that
    /// an unsharded deployment keeps the Lease it always had.
    pub fn lease_name(&self, base: &str) -> String {
        if self.count <= 1 {
            base.to_string()
        } else {
            format!("{base}-{}", self.index)
        }
    }

    /// The labels and annotations a holder writes on its Lease, so that every replica knows
    /// which objects the holder evaluates.
    pub fn lease_marks(&self, group: &str) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
        let labels = BTreeMap::from([(GROUP_LABEL.to_string(), group.to_string())]);
        let annotations = BTreeMap::from([
            (SHARDS_ANNOTATION.to_string(), self.count.to_string()),
            (INDEX_ANNOTATION.to_string(), self.index.to_string()),
        ]);
        (labels, annotations)
    }
}

/// FNV-1a (64 bits) of `namespace/name`: stable across processes, versions and platforms,
/// unlike the standard library's randomly seeded hasher.
fn object_key(namespace: &str, name: &str) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    for byte in namespace.bytes().chain(std::iter::once(b'/')).chain(name.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(PRIME);
    }
    hash
}

/// Lamping and Veach's jump consistent hash: going from n to n + 1 buckets moves only the keys
/// that land in the new bucket (1/(n + 1) of them), so a reshard hands over as few objects as
/// possible.
fn jump_hash(mut key: u64, buckets: u32) -> u32 {
    if buckets <= 1 {
        return 0;
    }
    let (mut bucket, mut next) = (-1i64, 0i64);
    while next < i64::from(buckets) {
        bucket = next;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        // The top 31 bits of the key as a fraction in (0, 1].
        let fraction = ((key >> 33) + 1) as f64;
        next = ((bucket + 1) as f64 * (f64::from(1u32 << 31) / fraction)) as i64;
    }
    u32::try_from(bucket).unwrap_or(0)
}

/// A live Lease's holder and what it evaluates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub lease: String,
    pub holder: String,
    pub shard: Shard,
    /// When the holder acquired the Lease (the holder's clock); None reads as oldest.
    pub acquired: Option<Timestamp>,
}

impl Claim {
    fn covers(&self, namespace: &str, name: &str) -> bool {
        self.shard.covers(namespace, name)
    }

    /// Of two claims on one object, the earlier acquired wins; the Lease name breaks a tie. A
    /// claim that does not say when it was acquired reads as the oldest.
    fn precedes(&self, other: &Claim) -> bool {
        (self.acquired, &self.lease) < (other.acquired, &other.lease)
    }
}

/// The claim among `claims` that owns `namespace/name`: the first acquired of those covering it.
pub fn owner<'a>(claims: &'a [Claim], namespace: &str, name: &str) -> Option<&'a Claim> {
    claims
        .iter()
        .filter(|c| c.covers(namespace, name))
        .reduce(|best, c| if c.precedes(best) { c } else { best })
}

/// The group a Lease belongs to, and its holder's claim (None without a holder or without a
/// valid shard); None for a Lease of no group.
pub fn read_lease(lease: &Lease) -> Option<(String, Option<Claim>)> {
    let name = lease.metadata.name.clone()?;
    let group = lease.metadata.labels.as_ref()?.get(GROUP_LABEL)?.clone();
    let spec = lease.spec.as_ref();
    let holder = spec.and_then(|s| s.holder_identity.clone()).filter(|h| !h.is_empty());
    let annotation = |key: &str| {
        lease
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(key))
            .and_then(|v| v.parse::<u32>().ok())
    };
    let shard = match (annotation(SHARDS_ANNOTATION), annotation(INDEX_ANNOTATION)) {
        (Some(count), Some(index)) => Shard::new(count, index).ok(),
        _ => None,
    };
    let claim = match (holder, shard) {
        (Some(holder), Some(shard)) => Some(Claim {
            lease: name,
            holder,
            shard,
            acquired: spec.and_then(|s| s.acquire_time.as_ref()).map(|t| t.0),
        }),
        _ => None,
    };
    Some((group, claim))
}

/// Whether a Lease read once is live by the wall clock: renewed within its lease duration.
/// For a one-off look such as `explain`; the controllers judge on their own monotonic clock.
pub fn live_at(lease: &Lease, now: Timestamp) -> bool {
    let Some(spec) = &lease.spec else { return false };
    let (Some(renewed), Some(seconds)) = (&spec.renew_time, spec.lease_duration_seconds) else {
        return false;
    };
    renewed.0.as_second().saturating_add(i64::from(seconds)) >= now.as_second()
}

/// A Lease of the group as last seen, and when its record last changed on this process's clock.
#[derive(Debug)]
struct Seen {
    claim: Option<Claim>,
    record: LeaseSpec,
    changed: Instant,
    duration: Duration,
}

/// The Leases of one group, as a watch on the Lease namespace delivers them.
#[derive(Debug)]
pub struct Claims {
    group: String,
    /// The election's lease duration: how long a Lease that states none stays live.
    default_duration: Duration,
    leases: Mutex<HashMap<String, Seen>>,
    listed: tokio::sync::watch::Sender<bool>,
}

impl Claims {
    pub fn new(group: &str, default_duration: Duration) -> Self {
        Self {
            group: group.to_string(),
            default_duration,
            leases: Mutex::default(),
            listed: tokio::sync::watch::channel(false).0,
        }
    }

    fn leases(&self) -> std::sync::MutexGuard<'_, HashMap<String, Seen>> {
        self.leases.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes in one event of the Lease watch.
    pub fn apply(&self, event: &watcher::Event<Lease>) {
        match event {
            watcher::Event::Apply(lease) | watcher::Event::InitApply(lease) => self.seen(lease),
            watcher::Event::Delete(lease) => {
                if let Some(name) = &lease.metadata.name {
                    self.leases().remove(name);
                }
            }
            watcher::Event::Init => {}
            watcher::Event::InitDone => {
                self.listed.send_replace(true);
            }
        }
    }

    fn seen(&self, lease: &Lease) {
        let Some(name) = lease.metadata.name.clone() else {
            return;
        };
        let Some((_, claim)) = read_lease(lease).filter(|(group, _)| *group == self.group) else {
            self.leases().remove(&name);
            return;
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let duration = spec
            .lease_duration_seconds
            .and_then(|s| u64::try_from(s).ok())
            .map_or(self.default_duration, Duration::from_secs);
        let mut leases = self.leases();
        match leases.get_mut(&name) {
            Some(seen) if same_record(&seen.record, &spec) => seen.claim = claim,
            _ => {
                leases.insert(
                    name,
                    Seen {
                        claim,
                        record: spec,
                        changed: Instant::now(),
                        duration,
                    },
                );
            }
        }
    }

    /// The claims of the Leases whose record changed within their lease duration.
    pub fn live(&self) -> Vec<Claim> {
        self.leases()
            .values()
            .filter(|seen| seen.changed.elapsed() < seen.duration)
            .filter_map(|seen| seen.claim.clone())
            .collect()
    }

    /// Waits until the watch has listed the Leases once.
    pub async fn wait_until_listed(&self) {
        let mut listed = self.listed.subscribe();
        let _ = listed.wait_for(|listed| *listed).await;
    }
}

/// What this replica does with an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// This shard evaluates it.
    Mine,
    /// Another shard of this configuration does: never this one while this process runs.
    Elsewhere,
    /// The hash gives it to this shard, but a shard of another configuration, whose Lease was
    /// acquired first, still evaluates it: wait until that Lease is released or expires.
    HandedOver,
}

/// This replica's shard and, with leader election, its view of every shard's Lease.
#[derive(Debug, Default)]
pub struct Ownership {
    pub shard: Shard,
    /// With leader election: the Leases of the group, this replica's Lease name, and when it
    /// acquired it (set at the start of each term).
    elected: Option<Elected>,
}

#[derive(Debug)]
struct Elected {
    claims: std::sync::Arc<Claims>,
    lease: String,
    acquired: Mutex<Option<Timestamp>>,
    /// How often an object waiting for an older Lease is looked at again.
    recheck: Duration,
}

impl Ownership {
    /// Ownership by the hash alone: without leader election no Lease says who runs.
    pub fn by_hash(shard: Shard) -> Self {
        Self { shard, elected: None }
    }

    /// Ownership that defers to older Leases of other configurations; an object waiting for
    /// one is looked at again every `recheck` (the election's retry period).
    pub fn elected(shard: Shard, claims: std::sync::Arc<Claims>, lease: String, recheck: Duration) -> Self {
        Self {
            shard,
            elected: Some(Elected {
                claims,
                lease,
                acquired: Mutex::new(None),
                recheck,
            }),
        }
    }

    /// When to look again at an object handed over to this shard but still held elsewhere.
    pub fn recheck_after(&self) -> Duration {
        self.elected.as_ref().map_or(Duration::from_secs(1), |e| e.recheck)
    }

    /// Records when this replica acquired its Lease, at the start of a term.
    pub fn acquired(&self, at: Option<Timestamp>) {
        if let Some(elected) = &self.elected {
            *elected.acquired.lock().unwrap_or_else(|p| p.into_inner()) = at;
        }
    }

    /// Waits until the verdicts can be trusted: the Leases have been listed once.
    pub async fn wait_until_ready(&self) {
        if let Some(elected) = &self.elected {
            elected.claims.wait_until_listed().await;
        }
    }

    /// Whether this replica evaluates `namespace/name` now.
    pub fn verdict(&self, namespace: &str, name: &str) -> Verdict {
        if !self.shard.covers(namespace, name) {
            return Verdict::Elsewhere;
        }
        let Some(elected) = &self.elected else {
            return Verdict::Mine;
        };
        let mine = Claim {
            lease: elected.lease.clone(),
            holder: String::new(),
            shard: self.shard,
            acquired: *elected.acquired.lock().unwrap_or_else(|p| p.into_inner()),
        };
        // This replica's own Lease is left out: it holds it, whatever the watch still shows. Not
        // knowing when it acquired it, it defers to every other.
        let older_elsewhere = elected
            .claims
            .live()
            .iter()
            .filter(|c| c.lease != elected.lease)
            .any(|c| c.covers(namespace, name) && (mine.acquired.is_none() || c.precedes(&mine)));
        if older_elsewhere {
            Verdict::HandedOver
        } else {
            Verdict::Mine
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
    use kube::api::ObjectMeta;

    #[test]
    fn the_hash_is_stable_and_spreads_evenly() {
        // Fixed values: a change of the hash would move every object at an upgrade.
        // FNV-1a and jump hash as published (checked against an independent implementation).
        assert_eq!(object_key("default", "web"), 0x9d2b_a508_24d6_34bb);
        let indexes: Vec<u32> = (1..=7).map(|n| Shard::index_of("default", "web", n)).collect();
        assert_eq!(indexes, [0, 1, 2, 3, 3, 3, 3]);
        let mut counts = [0u32; 4];
        for i in 0..4000 {
            counts[Shard::index_of("ns", &format!("load-{i}"), 4) as usize] += 1;
        }
        assert!(counts.iter().all(|&c| (850..=1150).contains(&c)), "{counts:?}");
    }

    #[test]
    fn adding_a_shard_moves_only_what_lands_in_it() {
        let names: Vec<String> = (0..3000).map(|i| format!("a-{i}")).collect();
        let mut moved = 0;
        for name in &names {
            let (two, three) = (Shard::index_of("ns", name, 2), Shard::index_of("ns", name, 3));
            if two != three {
                assert_eq!(three, 2, "{name} moved between old shards");
                moved += 1;
            }
        }
        assert!((800..=1200).contains(&moved), "{moved} of 3000 moved");
    }

    #[test]
    fn flags_out_of_range_are_refused() {
        assert!(Shard::new(0, 0).unwrap_err().contains("--shards"));
        assert!(Shard::new(2, 2).unwrap_err().contains("--shard-index 2"));
        assert_eq!(Shard::new(3, 1).unwrap().lease_name("ferroscale"), "ferroscale-1");
        assert_eq!(Shard::default().lease_name("ferroscale"), "ferroscale");
    }

    fn lease(name: &str, holder: Option<&str>, shard: Shard, acquired: &str) -> Lease {
        let (labels, annotations) = shard.lease_marks("ferroscale");
        let time = MicroTime(acquired.parse().unwrap());
        Lease {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some(labels),
                annotations: Some(annotations),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: holder.map(String::from),
                acquire_time: Some(time.clone()),
                renew_time: Some(time),
                lease_duration_seconds: Some(15),
                ..LeaseSpec::default()
            }),
        }
    }

    /// The names that shard `index` of 2 and 3 both cover: the handover cases.
    fn moved_to(index: u32) -> (String, u32) {
        (0..)
            .map(|i| format!("a-{i}"))
            .find_map(|name| {
                let old = Shard::index_of("ns", &name, 2);
                (Shard::index_of("ns", &name, 3) == index && old != index).then_some((name, old))
            })
            .unwrap()
    }

    #[test]
    fn a_new_shard_waits_for_the_older_lease_that_covers_an_object() {
        let claims = std::sync::Arc::new(Claims::new("ferroscale", Duration::from_secs(15)));
        let old = |i| Shard::new(2, i).unwrap();
        for i in 0..2 {
            claims.apply(&watcher::Event::Apply(lease(
                &format!("ferroscale-{i}"),
                Some("old"),
                old(i),
                "2026-12-03T10:00:00Z",
            )));
        }
        let new = Shard::new(3, 2).unwrap();
        let ownership = Ownership::elected(new, claims.clone(), "ferroscale-2".into(), Duration::from_secs(2));
        ownership.acquired(Some("2026-12-03T11:00:00Z".parse().unwrap()));
        let (name, old_index) = moved_to(2);
        assert_eq!(ownership.verdict("ns", &name), Verdict::HandedOver);
        // The old shard's leader gives its Lease up at shutdown: the new shard takes over.
        claims.apply(&watcher::Event::Apply(lease(
            &format!("ferroscale-{old_index}"),
            None,
            old(old_index),
            "2026-12-03T10:00:00Z",
        )));
        assert_eq!(ownership.verdict("ns", &name), Verdict::Mine);
        // And the old configuration, seeing the new Lease, would not take it back.
        let claims_now = claims.live();
        let mut all = claims_now.clone();
        all.push(Claim {
            lease: "ferroscale-2".into(),
            holder: "new".into(),
            shard: new,
            acquired: Some("2026-12-03T11:00:00Z".parse().unwrap()),
        });
        assert_eq!(owner(&all, "ns", &name).unwrap().lease, "ferroscale-2");
        // Objects the hash gives to another shard are never this one's.
        let elsewhere = (0..)
            .map(|i| format!("b-{i}"))
            .find(|n| Shard::index_of("ns", n, 3) != 2)
            .unwrap();
        assert_eq!(ownership.verdict("ns", &elsewhere), Verdict::Elsewhere);
    }

    #[test]
    fn an_expired_lease_stops_claiming() {
        let claims = Claims::new("ferroscale", Duration::from_secs(15));
        let mut short = lease(
            "ferroscale-0",
            Some("old"),
            Shard::new(2, 0).unwrap(),
            "2026-12-03T10:00:00Z",
        );
        short.spec.as_mut().unwrap().lease_duration_seconds = Some(0);
        claims.apply(&watcher::Event::Apply(short));
        assert!(claims.live().is_empty());
        // A Lease of another group, or without a holder's shard, claims nothing.
        let mut foreign = lease("other", Some("x"), Shard::default(), "2026-12-03T10:00:00Z");
        foreign.metadata.labels = None;
        claims.apply(&watcher::Event::Apply(foreign));
        assert!(claims.live().is_empty());
    }

    #[test]
    fn without_leader_election_the_hash_decides() {
        let ownership = Ownership::by_hash(Shard::new(2, 0).unwrap());
        let mine = (0..)
            .map(|i| format!("c-{i}"))
            .find(|n| Shard::index_of("ns", n, 2) == 0)
            .unwrap();
        assert_eq!(ownership.verdict("ns", &mine), Verdict::Mine);
    }
}
