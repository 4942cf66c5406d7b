//! Go's duration syntax (`30s`, `1m30s`, `1.5h`, `300ms`), as Kubernetes flags and the metrics
//! APIs' `window` write it. Parsed here rather than through kube's parser, which panics on a
//! value too large for a `Duration` ("99999999999999999999s"); a window comes from a metrics
//! server, and a panic there would stop every evaluation. Like Go, a duration longer than
//! about 292 years (i64 nanoseconds) is an error.

use std::time::Duration;

const NANOS_PER_SECOND: u128 = 1_000_000_000;
/// Go's limit: an i64 of nanoseconds.
const MAX_NANOS: u128 = i64::MAX as u128;

fn unit_nanos(unit: &str) -> Option<u128> {
    Some(match unit {
        "ns" => 1,
        "us" | "µs" | "μs" => 1_000,
        "ms" => 1_000_000,
        "s" => NANOS_PER_SECOND,
        "m" => 60 * NANOS_PER_SECOND,
        "h" => 3600 * NANOS_PER_SECOND,
        _ => return None,
    })
}

/// Parses a non-negative Go duration; the error says what is wrong, in the caller's words
/// around it.
pub fn parse(text: &str) -> Result<Duration, String> {
    let unsigned = text.strip_prefix('+').unwrap_or(text);
    if let Some(magnitude) = unsigned.strip_prefix('-') {
        return match parse(magnitude) {
            Ok(d) if d.is_zero() => Ok(d),
            Ok(_) => Err(format!("{text:?} is negative")),
            Err(e) => Err(e),
        };
    }
    if unsigned == "0" {
        return Ok(Duration::ZERO);
    }
    if unsigned.is_empty() {
        return Err(format!("{text:?} is not a duration"));
    }
    let too_long = || format!("{text:?} is longer than a duration can be");
    let mut rest = unsigned;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let digits_end = |s: &str| s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let whole_end = digits_end(rest);
        let whole = &rest[..whole_end];
        rest = &rest[whole_end..];
        let mut fraction = "";
        if let Some(after_point) = rest.strip_prefix('.') {
            let end = digits_end(after_point);
            fraction = &after_point[..end];
            rest = &after_point[end..];
        }
        if whole.is_empty() && fraction.is_empty() {
            return Err(format!("{text:?} is not a duration: a number is missing"));
        }
        let unit_end = rest
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        rest = &rest[unit_end..];
        let per = unit_nanos(unit).ok_or_else(|| {
            if unit.is_empty() {
                format!("{text:?} is not a duration: a unit (ns, us, ms, s, m, h) is missing")
            } else {
                format!("{text:?} is not a duration: unknown unit {unit:?}")
            }
        })?;
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| too_long())?
        };
        let mut nanos = whole.checked_mul(per).ok_or_else(too_long)?;
        // Digits past the 30th cannot change a count of nanoseconds of any unit.
        let fraction = &fraction[..fraction.len().min(30)];
        if !fraction.is_empty() {
            let scale = 10u128.pow(u32::try_from(fraction.len()).unwrap_or(30));
            let digits: u128 = fraction.parse().map_err(|_| too_long())?;
            nanos = nanos
                .checked_add(digits.saturating_mul(per) / scale)
                .ok_or_else(too_long)?;
        }
        total = total.checked_add(nanos).ok_or_else(too_long)?;
        if total > MAX_NANOS {
            return Err(too_long());
        }
    }
    let seconds = u64::try_from(total / NANOS_PER_SECOND).map_err(|_| too_long())?;
    let nanos = u32::try_from(total % NANOS_PER_SECOND).map_err(|_| too_long())?;
    Ok(Duration::new(seconds, nanos))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn go_durations_parse_as_go_parses_them() {
        for (text, want) in [
            ("0", Duration::ZERO),
            ("-0", Duration::ZERO),
            ("30s", Duration::from_secs(30)),
            ("1m0s", Duration::from_secs(60)),
            ("1m30s", Duration::from_secs(90)),
            ("1.5h", Duration::from_secs(5400)),
            ("300ms", Duration::from_millis(300)),
            ("10us", Duration::from_micros(10)),
            ("10µs", Duration::from_micros(10)),
            ("1ns", Duration::from_nanos(1)),
            (".5s", Duration::from_millis(500)),
            ("1.s", Duration::from_secs(1)),
            ("+5m", Duration::from_secs(300)),
            ("2h45m0.5s", Duration::from_millis(9_900_500)),
            ("0.000000001s", Duration::from_nanos(1)),
            ("2562047h", Duration::from_secs(2_562_047 * 3600)),
        ] {
            assert_eq!(parse(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn what_go_refuses_is_an_error_never_a_panic() {
        for (text, why) in [
            ("", "not a duration"),
            ("s", "number is missing"),
            (".s", "number is missing"),
            ("30", "unit"),
            ("1d", "unknown unit"),
            ("1m30", "unit"),
            ("-5s", "negative"),
            ("99999999999999999999s", "longer"),
            ("2562048h", "longer"),
            ("9999999999999999999999999999999999999999h", "longer"),
            ("1e3s", "unknown unit"),
            (" 5s", "number is missing"),
        ] {
            let error = parse(text).unwrap_err();
            assert!(error.contains(why), "{text}: {error}");
        }
    }
}
