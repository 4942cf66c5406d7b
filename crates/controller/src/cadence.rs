//! When an Autoscaler is evaluated next. Requeueing one sync period after each evaluation keeps
//! every Autoscaler that started together in one bunch for as long as the operator runs: at a
//! start all of them are due at once, and so again one period later. Each Autoscaler instead
//! gets its own phase within the period, from a stable hash of its namespace and name, and is
//! requeued to the next instant of that phase on the wall clock: the evaluations spread evenly
//! over the period, and the phase survives restarts and a handover between shards.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::shard::object_key;

/// How long until `namespace/name` is due again: at most one `period`, so no Autoscaler waits
/// longer than its period; shorter only right after an evaluation out of phase (a start, a
/// spec change, a retry).
pub fn until_next(namespace: &str, name: &str, period: Duration, now: SystemTime) -> Duration {
    let period_ms = u64::try_from(period.as_millis()).unwrap_or(u64::MAX);
    if period_ms == 0 {
        return period;
    }
    let phase = spread(object_key(namespace, name)) % period_ms;
    let now_ms = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let into_period = (now_ms % period_ms + period_ms - phase) % period_ms;
    Duration::from_millis(period_ms - into_period)
}

/// SplitMix64's finalizer: FNV's low bits follow the last bytes of the name closely (web-1,
/// web-2, ... would get phases a few milliseconds apart), and the shard takes the same key.
fn spread(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PERIOD: Duration = Duration::from_secs(15);

    fn at(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(ms)
    }

    #[test]
    fn the_wait_is_never_longer_than_a_period_nor_zero() {
        for ms in (1_700_000_000_000..1_700_000_000_000 + 31_000).step_by(7) {
            let wait = until_next("default", "web", PERIOD, at(ms));
            assert!(wait > Duration::ZERO && wait <= PERIOD, "{wait:?} at {ms}");
        }
    }

    #[test]
    fn evaluated_at_its_phase_it_comes_back_one_period_later() {
        let start = at(1_700_000_000_000);
        let due = start + until_next("default", "web", PERIOD, start);
        assert_eq!(until_next("default", "web", PERIOD, due), PERIOD);
        // Finishing 40 ms after its instant shortens the wait by as much: the phase holds.
        let late = due + Duration::from_millis(40);
        assert_eq!(
            until_next("default", "web", PERIOD, late),
            PERIOD - Duration::from_millis(40)
        );
    }

    #[test]
    fn ten_thousand_autoscalers_due_together_spread_over_the_period() {
        let now = at(1_700_000_000_000);
        let mut per_second = [0_u32; 15];
        for i in 0..10_000 {
            let wait = until_next("load", &format!("load-{i}"), PERIOD, now);
            let second = usize::try_from(wait.as_secs()).unwrap_or(15).min(14);
            per_second[second] += 1;
        }
        // 667 per second if even; a bunch would put thousands in one second.
        assert!(per_second.iter().all(|&n| (560..=780).contains(&n)), "{per_second:?}");
    }

    #[test]
    fn a_zero_period_and_a_clock_before_1970_do_not_panic() {
        assert_eq!(until_next("a", "b", Duration::ZERO, at(5)), Duration::ZERO);
        let wait = until_next("a", "b", PERIOD, UNIX_EPOCH - Duration::from_secs(1));
        assert!(wait > Duration::ZERO && wait <= PERIOD);
    }
}
