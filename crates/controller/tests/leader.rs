//! Leader election against a fake Lease API, on paused time: a leader that cannot renew stops
//! within its renew deadline, before a standby may take over, and a standby takes over only a
//! lease duration after the Lease last changed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use ferroscale_controller::leader::{Elector, Timing};
use serde_json::{Value, json};
use tokio::time::Instant;

const LEASE: &str = "/apis/coordination.k8s.io/v1/namespaces/ns/leases/ferroscale";

const TIMING: Timing = Timing {
    lease_duration: Duration::from_secs(15),
    renew_deadline: Duration::from_secs(10),
    retry_period: Duration::from_secs(2),
};

/// One Lease held by the API server, with optimistic concurrency on resourceVersion; while
/// `cut` is set, no request is answered.
#[derive(Clone, Default)]
struct LeaseServer {
    lease: Arc<Mutex<Option<Value>>>,
    cut: Arc<AtomicBool>,
}

impl LeaseServer {
    fn client(&self) -> kube::Client {
        let server = self.clone();
        fake_api(move |method, path, body| server.answer(method, path, body)).0
    }

    fn answer(&self, method: &str, path: &str, body: &Value) -> Answer {
        if self.cut.load(Ordering::SeqCst) {
            return (NO_ANSWER, Value::Null);
        }
        let mut lease = self.lease.lock().unwrap();
        let version = |l: &Option<Value>| {
            l.as_ref().map_or(0, |l| {
                l["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap()
                    .parse::<u64>()
                    .unwrap()
            })
        };
        let store = |lease: &mut Option<Value>, mut new: Value, version: u64| {
            new["metadata"]["resourceVersion"] = json!((version + 1).to_string());
            *lease = Some(new.clone());
            new
        };
        match (method, path) {
            ("GET", LEASE) => match lease.as_ref() {
                Some(l) => (200, l.clone()),
                None => status_error(404, "NotFound", "not found"),
            },
            ("POST", "/apis/coordination.k8s.io/v1/namespaces/ns/leases") if lease.is_none() => {
                (201, store(&mut lease, body.clone(), 0))
            }
            ("POST", _) => status_error(409, "AlreadyExists", "exists"),
            ("PUT", LEASE) => {
                let current = version(&lease);
                if body["metadata"]["resourceVersion"] != json!(current.to_string()) {
                    return status_error(409, "Conflict", "the object has been modified");
                }
                (200, store(&mut lease, body.clone(), current))
            }
            _ => status_error(404, "NotFound", "no route"),
        }
    }

    fn holder(&self) -> Option<String> {
        self.lease.lock().unwrap().as_ref()?["spec"]["holderIdentity"]
            .as_str()
            .map(String::from)
    }
}

#[tokio::test(start_paused = true)]
async fn a_leader_that_cannot_renew_stops_before_a_standby_may_take_over() {
    let server = LeaseServer::default();
    let mut leader = Elector::new(server.client(), "ns", "ferroscale", "a".into(), TIMING);
    leader.acquire().await;
    assert_eq!(server.holder().as_deref(), Some("a"));

    // Renewals go through for a while; then the network is cut.
    let renewing = tokio::time::timeout(Duration::from_secs(30), leader.hold()).await;
    assert!(renewing.is_err(), "a leader that renews keeps leading");
    let last_renewal = Instant::now();
    server.cut.store(true, Ordering::SeqCst);
    leader.hold().await;
    let stopped_after = last_renewal.elapsed();
    assert!(
        stopped_after <= TIMING.renew_deadline + TIMING.retry_period,
        "stopped {stopped_after:?} after the cut"
    );

    // The standby's count starts when it first sees the last renewal: at the cut at the
    // earliest, so it cannot take over before the leader stopped.
    server.cut.store(false, Ordering::SeqCst);
    let mut standby = Elector::new(server.client(), "ns", "ferroscale", "b".into(), TIMING);
    let start = Instant::now();
    standby.acquire().await;
    assert!(
        start.elapsed() >= TIMING.lease_duration,
        "took over after {:?}",
        start.elapsed()
    );
    assert!(start.elapsed() <= TIMING.lease_duration + TIMING.retry_period);
    assert_eq!(server.holder().as_deref(), Some("b"));
}

#[tokio::test(start_paused = true)]
async fn a_leader_that_finds_another_holder_stops_at_once_and_a_released_lease_passes_on_at_once() {
    let server = LeaseServer::default();
    let mut a = Elector::new(server.client(), "ns", "ferroscale", "a".into(), TIMING);
    a.acquire().await;
    // Someone else writes the Lease (an operator with the same Lease name elsewhere).
    {
        let mut lease = server.lease.lock().unwrap();
        let l = lease.as_mut().unwrap();
        l["spec"]["holderIdentity"] = json!("intruder");
        let v: u64 = l["metadata"]["resourceVersion"].as_str().unwrap().parse().unwrap();
        l["metadata"]["resourceVersion"] = json!((v + 1).to_string());
    }
    let start = Instant::now();
    a.hold().await;
    assert!(start.elapsed() <= TIMING.retry_period, "{:?}", start.elapsed());

    // A leader that releases at shutdown hands over within a retry period.
    let server = LeaseServer::default();
    let mut a = Elector::new(server.client(), "ns", "ferroscale", "a".into(), TIMING);
    a.acquire().await;
    let mut b = Elector::new(server.client(), "ns", "ferroscale", "b".into(), TIMING);
    let waiting = tokio::time::timeout(Duration::from_secs(5), b.acquire()).await;
    assert!(waiting.is_err(), "the Lease is held");
    a.release().await;
    let start = Instant::now();
    b.acquire().await;
    assert!(
        start.elapsed() <= Duration::from_secs(1) + TIMING.retry_period,
        "{:?}",
        start.elapsed()
    );
    assert_eq!(server.holder().as_deref(), Some("b"));
}
