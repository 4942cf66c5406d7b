//! Leader election on a coordination.k8s.io Lease, with the leader counting its own renew
//! deadline. A leader cut off from the API server cannot learn that it lost the Lease; it must
//! stop on its own before anyone else may take over. So, as client-go does, it stops acting
//! once it has gone `renew_deadline` without a successful renewal, which is shorter than the
//! `lease_duration` a candidate waits, counted from when it last saw the Lease change.
//!
//! Times are measured on each process's monotonic clock, never compared across machines: a
//! candidate takes over a Lease whose record has not changed for `lease_duration` since it
//! first saw that record, and a leader's deadline runs from the start of its last successful
//! renewal, which is before the API server recorded it and so before any candidate saw it.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use tokio::time::Instant;
use tracing::{debug, info, warn};

/// How long each step of the election waits.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// How long a candidate waits after the Lease last changed before taking it over.
    pub lease_duration: Duration,
    /// How long a leader goes on without a successful renewal before it stops acting.
    pub renew_deadline: Duration,
    /// How often a leader renews and a candidate tries.
    pub retry_period: Duration,
}

impl Timing {
    /// The rule that makes the deadline safe; the error names the flags.
    pub fn check(&self) -> Result<(), String> {
        if self.retry_period.is_zero() || self.renew_deadline <= self.retry_period {
            return Err("--leader-election-renew-deadline must be longer than --leader-election-retry-period".into());
        }
        if self.lease_duration <= self.renew_deadline {
            return Err("--leader-election-lease-duration must be longer than --leader-election-renew-deadline".into());
        }
        if self.lease_duration.as_secs() < 1 {
            return Err("--leader-election-lease-duration must be at least 1s".into());
        }
        Ok(())
    }
}

/// One replica's part in the election.
pub struct Elector {
    api: Api<Lease>,
    name: String,
    identity: String,
    timing: Timing,
    /// The Lease as last read, and when (this process's clock) its record last changed.
    observed: Option<(LeaseSpec, Instant)>,
    /// Labels and annotations the holder writes on the Lease (the shard it runs).
    marks: (BTreeMap<String, String>, BTreeMap<String, String>),
}

impl std::fmt::Debug for Elector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Elector")
            .field("name", &self.name)
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

/// The fields that say who holds the Lease and that it is alive.
pub(crate) fn same_record(a: &LeaseSpec, b: &LeaseSpec) -> bool {
    a.holder_identity == b.holder_identity
        && a.renew_time == b.renew_time
        && a.acquire_time == b.acquire_time
        && a.lease_transitions == b.lease_transitions
        && a.lease_duration_seconds == b.lease_duration_seconds
}

impl Elector {
    pub fn new(client: Client, namespace: &str, name: &str, identity: String, timing: Timing) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            name: name.to_string(),
            identity,
            timing,
            observed: None,
            marks: Default::default(),
        }
    }

    /// Labels and annotations to write on the Lease whenever this replica takes or renews it.
    pub fn with_marks(mut self, labels: BTreeMap<String, String>, annotations: BTreeMap<String, String>) -> Self {
        self.marks = (labels, annotations);
        self
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// When this replica acquired the Lease it holds, as written in it.
    pub fn acquired_at(&self) -> Option<Timestamp> {
        self.observed
            .as_ref()
            .filter(|(spec, _)| spec.holder_identity.as_deref() == Some(self.identity.as_str()))
            .and_then(|(spec, _)| spec.acquire_time.as_ref())
            .map(|t| t.0)
    }

    /// `metadata` with this replica's marks added.
    fn marked(&self, mut metadata: ObjectMeta) -> ObjectMeta {
        let (labels, annotations) = &self.marks;
        if !labels.is_empty() {
            metadata
                .labels
                .get_or_insert_with(Default::default)
                .extend(labels.clone());
        }
        if !annotations.is_empty() {
            metadata
                .annotations
                .get_or_insert_with(Default::default)
                .extend(annotations.clone());
        }
        metadata
    }

    /// How long a leader may go on acting without renewing, counted from now: its renew
    /// deadline less two retry periods, since the last renewal may be up to one period old.
    pub fn acting_margin(&self) -> Duration {
        self.timing
            .renew_deadline
            .saturating_sub(self.timing.retry_period.saturating_mul(2))
    }

    fn record(&self, acquire_time: Option<MicroTime>, transitions: i32) -> LeaseSpec {
        let now = MicroTime(Timestamp::now());
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(i32::try_from(self.timing.lease_duration.as_secs()).unwrap_or(i32::MAX)),
            acquire_time: Some(acquire_time.unwrap_or_else(|| now.clone())),
            renew_time: Some(now),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    /// One attempt to take or keep the Lease: true when this replica holds it now.
    async fn try_acquire_or_renew(&mut self) -> Result<bool, kube::Error> {
        let current = match self.api.get_opt(&self.name).await? {
            Some(lease) => lease,
            None => {
                let lease = Lease {
                    metadata: self.marked(ObjectMeta {
                        name: Some(self.name.clone()),
                        ..ObjectMeta::default()
                    }),
                    spec: Some(self.record(None, 0)),
                };
                return match self.api.create(&PostParams::default(), &lease).await {
                    Ok(created) => {
                        self.observe(created.spec.unwrap_or_default());
                        Ok(true)
                    }
                    Err(error) if crate::is_conflict(&error) => Ok(false),
                    Err(error) => Err(error),
                };
            }
        };
        let spec = current.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let mine = holder == self.identity;
        self.observe(spec.clone());
        if !mine && !holder.is_empty() {
            let changed_at = self.observed.as_ref().map_or_else(Instant::now, |(_, at)| *at);
            let held_for = spec
                .lease_duration_seconds
                .and_then(|s| u64::try_from(s).ok())
                .map_or(self.timing.lease_duration, Duration::from_secs);
            if changed_at.elapsed() < held_for {
                return Ok(false);
            }
            info!(lease = %self.name, previous = %holder, "the Lease expired; taking it over");
        }
        let record = if mine {
            self.record(spec.acquire_time.clone(), spec.lease_transitions.unwrap_or(0))
        } else {
            self.record(None, spec.lease_transitions.unwrap_or(0).saturating_add(1))
        };
        // The replace carries the resourceVersion read: of two candidates, one wins.
        let replacement = Lease {
            metadata: self.marked(current.metadata.clone()),
            spec: Some(record),
        };
        match self.api.replace(&self.name, &PostParams::default(), &replacement).await {
            Ok(written) => {
                self.observe(written.spec.unwrap_or_default());
                Ok(true)
            }
            Err(error) if crate::is_conflict(&error) => Ok(false),
            Err(error) => Err(error),
        }
    }

    fn observe(&mut self, spec: LeaseSpec) {
        match &self.observed {
            Some((seen, _)) if same_record(seen, &spec) => {}
            _ => self.observed = Some((spec, Instant::now())),
        }
    }

    /// Waits until this replica holds the Lease.
    pub async fn acquire(&mut self) {
        loop {
            match self.try_acquire_or_renew().await {
                Ok(true) => {
                    info!(lease = %self.name, identity = %self.identity, "became the leader");
                    return;
                }
                Ok(false) => debug!(lease = %self.name, "another replica leads"),
                Err(error) => warn!(lease = %self.name, %error, "cannot read or take the Lease; trying again"),
            }
            tokio::time::sleep(self.timing.retry_period).await;
        }
    }

    /// Renews the Lease every retry period; returns when this replica must stop acting: it lost
    /// the Lease, or `renew_deadline` passed since the start of its last successful renewal.
    /// Call it right after [`Elector::acquire`].
    pub async fn hold(&mut self) {
        let mut renewed_at = Instant::now();
        loop {
            let deadline = renewed_at + self.timing.renew_deadline;
            tokio::time::sleep_until((Instant::now() + self.timing.retry_period).min(deadline)).await;
            let attempt = Instant::now();
            if attempt >= deadline {
                warn!(lease = %self.name, "no renewal within the renew deadline; stepping down");
                return;
            }
            match tokio::time::timeout_at(deadline, self.try_acquire_or_renew()).await {
                Ok(Ok(true)) => renewed_at = attempt,
                Ok(Ok(false)) => {
                    warn!(lease = %self.name, "another replica holds the Lease; stepping down");
                    return;
                }
                Ok(Err(error)) => warn!(lease = %self.name, %error, "cannot renew the Lease; trying again"),
                Err(_) => {
                    warn!(lease = %self.name, "no renewal within the renew deadline; stepping down");
                    return;
                }
            }
        }
    }

    /// Gives the Lease up at shutdown, so that a standby takes over at once rather than after
    /// the lease duration.
    pub async fn release(&mut self) {
        let Ok(Some(mut lease)) = self.api.get_opt(&self.name).await else {
            return;
        };
        let Some(spec) = lease.spec.as_mut() else { return };
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        match self.api.replace(&self.name, &PostParams::default(), &lease).await {
            Ok(_) => info!(lease = %self.name, "released the Lease"),
            Err(error) => warn!(lease = %self.name, %error, "could not release the Lease; it expires on its own"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_must_end_before_the_lease_can_be_taken() {
        let timing = |lease, renew, retry| Timing {
            lease_duration: Duration::from_secs(lease),
            renew_deadline: Duration::from_secs(renew),
            retry_period: Duration::from_secs(retry),
        };
        assert!(timing(15, 10, 2).check().is_ok());
        assert!(timing(10, 10, 2).check().unwrap_err().contains("lease-duration"));
        assert!(timing(15, 2, 2).check().unwrap_err().contains("renew-deadline"));
        assert!(timing(15, 10, 0).check().is_err());
    }
}
