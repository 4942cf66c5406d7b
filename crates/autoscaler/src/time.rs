//! Timestamp arithmetic that saturates instead of failing: a decision never panics on a
//! far-fetched timestamp or duration in its input.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

fn signed(d: Duration) -> SignedDuration {
    SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX)
}

/// `t + d`, clamped to the representable range.
pub fn plus(t: Timestamp, d: Duration) -> Timestamp {
    t.checked_add(signed(d)).unwrap_or(Timestamp::MAX)
}

/// `t - d`, clamped to the representable range.
pub fn minus(t: Timestamp, d: Duration) -> Timestamp {
    t.checked_sub(signed(d)).unwrap_or(Timestamp::MIN)
}

/// `t - seconds`, for policy periods and stabilization windows given in seconds.
pub fn minus_seconds(t: Timestamp, seconds: i32) -> Timestamp {
    t.checked_sub(SignedDuration::from_secs(i64::from(seconds)))
        .unwrap_or(Timestamp::MIN)
}
