//! Writes the controller made that its pod cache has not shown yet, as the ReplicaSet
//! controller's "expectations": until the cache catches up, counting pods in it could create
//! or delete too many. Tracked by pod name, from the API's own responses.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// After this long an unseen write is assumed lost (a missed watch event), as upstream does.
pub const TIMEOUT: Duration = Duration::from_secs(300);

/// What the cache says of a pod name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    Absent,
    Present,
    Terminating,
}

/// The unseen writes of one PodSet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pending {
    creates: HashSet<String>,
    deletes: HashSet<String>,
}

impl Pending {
    /// No write is waiting to be seen.
    pub fn is_empty(&self) -> bool {
        self.creates.is_empty() && self.deletes.is_empty()
    }

    /// Pods just created, by the names the API server gave them.
    pub fn expect_creates(&mut self, names: impl IntoIterator<Item = String>) {
        self.creates.extend(names);
    }

    /// Pods just deleted.
    pub fn expect_deletes(&mut self, names: impl IntoIterator<Item = String>) {
        self.deletes.extend(names);
    }

    /// Forgets the writes the cache now reflects.
    fn observe(&mut self, seen: impl Fn(&str) -> Seen) {
        self.creates.retain(|name| seen(name) == Seen::Absent);
        self.deletes.retain(|name| seen(name) == Seen::Present);
    }
}

#[derive(Debug)]
struct Entry {
    pending: Pending,
    since: Instant,
}

/// Unseen writes of every PodSet, keyed by `namespace/name`.
#[derive(Debug, Default)]
pub struct Expectations {
    entries: Mutex<HashMap<String, Entry>>,
}

impl Expectations {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // A panic while holding the lock cannot leave the map inconsistent: entries are
        // replaced whole. Recover the guard rather than propagate the poison.
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The writes still unseen for `key`, after dropping those the cache shows and those
    /// older than [`TIMEOUT`].
    pub fn pending(&self, key: &str, seen: impl Fn(&str) -> Seen, now: Instant) -> Pending {
        let mut entries = self.lock();
        let Some(entry) = entries.get_mut(key) else {
            return Pending::default();
        };
        entry.pending.observe(seen);
        if entry.pending.is_empty() || now.duration_since(entry.since) >= TIMEOUT {
            entries.remove(key);
            return Pending::default();
        }
        entry.pending.clone()
    }

    /// Records writes just made for `key`.
    pub fn record(&self, key: &str, update: impl FnOnce(&mut Pending), now: Instant) {
        let mut entries = self.lock();
        let entry = entries.entry(key.to_string()).or_insert_with(|| Entry {
            pending: Pending::default(),
            since: now,
        });
        update(&mut entry.pending);
        entry.since = now;
    }

    /// Drops everything known of `key` (the PodSet is gone).
    pub fn forget(&self, key: &str) {
        self.lock().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_wait_until_the_cache_shows_them() {
        let e = Expectations::default();
        let t0 = Instant::now();
        e.record("ns/web", |p| p.expect_creates(["a".into(), "b".into()]), t0);
        let seen_a = |n: &str| if n == "a" { Seen::Present } else { Seen::Absent };
        assert!(!e.pending("ns/web", seen_a, t0).is_empty(), "b is not seen yet");
        assert!(e.pending("ns/web", |_| Seen::Present, t0).is_empty());
        assert!(e.pending("ns/other", |_| Seen::Absent, t0).is_empty());
    }

    #[test]
    fn deletes_are_seen_once_absent_or_terminating() {
        let e = Expectations::default();
        let t0 = Instant::now();
        e.record("ns/web", |p| p.expect_deletes(["a".into(), "b".into()]), t0);
        let seen = |n: &str| if n == "a" { Seen::Terminating } else { Seen::Present };
        assert!(!e.pending("ns/web", seen, t0).is_empty());
        assert!(e.pending("ns/web", |_| Seen::Absent, t0).is_empty());
    }

    #[test]
    fn unseen_writes_expire() {
        let e = Expectations::default();
        let t0 = Instant::now();
        e.record("ns/web", |p| p.expect_creates(["a".into()]), t0);
        assert!(e.pending("ns/web", |_| Seen::Absent, t0 + TIMEOUT).is_empty());
        e.record("ns/web", |p| p.expect_creates(["a".into()]), t0);
        e.forget("ns/web");
        assert!(e.pending("ns/web", |_| Seen::Absent, t0).is_empty());
    }
}
