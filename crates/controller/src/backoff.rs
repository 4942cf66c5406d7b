//! Per-object exponential backoff for failed reconciles: 1 s, 2 s, 4 s … up to 5 minutes,
//! reset by the next success.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

const FIRST: Duration = Duration::from_secs(1);
const MAX: Duration = Duration::from_secs(300);

/// Failure counts by object key.
#[derive(Debug, Default)]
pub struct Backoff {
    failures: Mutex<HashMap<String, u32>>,
}

impl Backoff {
    /// The delay before retrying `key` after one more failure.
    pub fn next(&self, key: &str) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let n = failures.entry(key.to_string()).or_insert(0);
        let delay = FIRST.saturating_mul(1u32 << (*n).min(16)).min(MAX);
        *n = n.saturating_add(1);
        delay
    }

    /// Forgets the failures of `key` after a success.
    pub fn reset(&self, key: &str) {
        self.failures.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_a_ceiling_and_resets() {
        let b = Backoff::default();
        let delays: Vec<u64> = (0..12).map(|_| b.next("a").as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
        assert_eq!(b.next("b").as_secs(), 1, "per object");
        b.reset("a");
        assert_eq!(b.next("a").as_secs(), 1);
    }
}
