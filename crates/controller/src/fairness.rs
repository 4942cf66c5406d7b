//! How evaluations share the operator: at most `global` at once, and at most `per_namespace`
//! of one namespace. A tenant's Autoscalers that wait on a slow or hanging metric source hold
//! their namespace's share only, so the other namespaces' evaluations keep their period. An
//! evaluation waits for its namespace's permit before it takes a global one: one waiting on a
//! full namespace holds nothing the others need.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The operator's evaluation slots.
#[derive(Debug)]
pub struct Fairness {
    global: Arc<Semaphore>,
    per_namespace: usize,
    namespaces: Mutex<Namespaces>,
}

#[derive(Debug, Default)]
struct Namespaces {
    slots: HashMap<String, Arc<Semaphore>>,
    /// The number of entries after the last sweep: sweep again when it has doubled.
    swept_at: usize,
}

/// Held for the length of one evaluation.
#[derive(Debug)]
pub struct Permit {
    _namespace: OwnedSemaphorePermit,
    _global: OwnedSemaphorePermit,
}

impl Fairness {
    /// `global` evaluations at once, `per_namespace` of one namespace (both at least 1).
    pub fn new(global: usize, per_namespace: usize) -> Self {
        let global = global.max(1);
        Self {
            global: Arc::new(Semaphore::new(global)),
            per_namespace: per_namespace.clamp(1, global),
            namespaces: Mutex::default(),
        }
    }

    /// The default share of one namespace: half the slots, at least one. A tenant whose
    /// sources hang leaves the others half; an operator with one busy namespace keeps half
    /// its parallelism.
    pub fn default_per_namespace(global: usize) -> usize {
        (global / 2).max(1)
    }

    fn namespace(&self, namespace: &str) -> Arc<Semaphore> {
        let mut all = self.namespaces.lock().unwrap_or_else(|p| p.into_inner());
        if all.slots.len() >= 2 * all.swept_at.max(64) {
            // Namespaces with nothing in flight or waiting are forgotten.
            let full = self.per_namespace;
            all.slots
                .retain(|_, s| Arc::strong_count(s) > 1 || s.available_permits() < full);
            all.swept_at = all.slots.len();
        }
        all.slots
            .entry(namespace.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_namespace)))
            .clone()
    }

    /// Waits for a slot of `namespace`, then for a global one.
    pub async fn enter(&self, namespace: &str) -> Permit {
        let namespace = permit(self.namespace(namespace)).await;
        Permit {
            _namespace: namespace,
            _global: permit(self.global.clone()).await,
        }
    }
}

/// A permit of `slots`, which is never closed, so acquiring cannot fail.
async fn permit(slots: Arc<Semaphore>) -> OwnedSemaphorePermit {
    loop {
        if let Ok(permit) = slots.clone().acquire_owned().await {
            return permit;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn a_saturated_namespace_leaves_the_others_their_slots() {
        let fairness = Arc::new(Fairness::new(4, 2));
        // Two evaluations of "slow" hang; a third of "slow" waits without a global slot.
        let mut held = Vec::new();
        for _ in 0..2 {
            held.push(fairness.enter("slow").await);
        }
        let waiting = {
            let fairness = fairness.clone();
            tokio::spawn(async move { fairness.enter("slow").await })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!waiting.is_finished(), "the namespace's share is taken");
        // The others still get the remaining two global slots at once.
        let a = tokio::time::timeout(Duration::from_millis(1), fairness.enter("fast-a")).await;
        let b = tokio::time::timeout(Duration::from_millis(1), fairness.enter("fast-b")).await;
        assert!(a.is_ok() && b.is_ok());
        drop((a, b));
        drop(held.pop());
        let third = tokio::time::timeout(Duration::from_millis(1), waiting).await;
        assert!(third.is_ok(), "a freed slot of the namespace goes to its waiter");
    }

    #[test]
    fn shares_are_at_least_one_and_at_most_the_whole() {
        assert_eq!(Fairness::default_per_namespace(32), 16);
        assert_eq!(Fairness::default_per_namespace(2), 1);
        assert_eq!(Fairness::new(4, 10).per_namespace, 4);
        assert_eq!(Fairness::new(0, 0).per_namespace, 1);
    }
}
