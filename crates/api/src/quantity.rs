//! Kubernetes resource quantities (`500m`, `1.5Gi`, `2e3`), parsed exactly.
//!
//! The autoscaler works in milli-units as the HPA does (`Quantity.MilliValue()`, which rounds
//! up), so this module offers exactly that, an approximate float, and the canonical decimal
//! form the HPA writes into status (`resource.NewMilliQuantity(v, DecimalSI)`).

use std::fmt;

/// A quantity that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuantityError {
    /// The text that was given.
    pub input: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl fmt::Display for QuantityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid quantity {:?}: {}", self.input, self.reason)
    }
}

impl std::error::Error for QuantityError {}

/// An exact parsed quantity: `sign × mantissa × 10^exp10 × 2^exp2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedQuantity {
    negative: bool,
    mantissa: u128,
    exp10: i32,
    exp2: u32,
}

const BINARY_SUFFIXES: [(&str, u32); 6] = [("Ki", 10), ("Mi", 20), ("Gi", 30), ("Ti", 40), ("Pi", 50), ("Ei", 60)];

fn decimal_suffix_exponent(suffix: &str) -> Option<i32> {
    Some(match suffix {
        "n" => -9,
        "u" => -6,
        "m" => -3,
        "" => 0,
        "k" => 3,
        "M" => 6,
        "G" => 9,
        "T" => 12,
        "P" => 15,
        "E" => 18,
        _ => return None,
    })
}

impl ParsedQuantity {
    /// Parses the Kubernetes quantity syntax: an optionally signed decimal number followed by
    /// a binary suffix (Ki…Ei), a decimal suffix (n, u, m, k, M, G, T, P, E) or an exponent.
    pub fn parse(input: &str) -> Result<Self, QuantityError> {
        let err = |reason| QuantityError {
            input: input.to_string(),
            reason,
        };
        let text = input.trim();
        if text.is_empty() {
            return Err(err("it is empty"));
        }
        let (negative, unsigned) = match text.as_bytes()[0] {
            b'-' => (true, &text[1..]),
            b'+' => (false, &text[1..]),
            _ => (false, text),
        };
        let number_len = unsigned
            .bytes()
            .take_while(|b| b.is_ascii_digit() || *b == b'.')
            .count();
        let (number, suffix) = unsigned.split_at(number_len);
        if number.is_empty() || number == "." {
            return Err(err("it does not start with a number"));
        }
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if fraction.contains('.') {
            return Err(err("it has more than one decimal point"));
        }
        let mut exp10: i32 = 0;
        let mut exp2: u32 = 0;
        if let Some((_, bits)) = BINARY_SUFFIXES.iter().find(|(s, _)| *s == suffix) {
            exp2 = *bits;
        } else if let Some(e) = decimal_suffix_exponent(suffix) {
            exp10 = e;
        } else if let Some(exponent) = suffix.strip_prefix(['e', 'E']) {
            exp10 = exponent
                .parse::<i32>()
                .map_err(|_| err("its exponent is not a whole number"))?;
            if exp10.abs() > 1000 {
                return Err(err("its exponent is out of range"));
            }
        } else {
            return Err(err(
                "its suffix is not one of n, u, m, k, M, G, T, P, E, Ki, Mi, Gi, Ti, Pi, Ei or an exponent",
            ));
        }
        let digits = format!("{whole}{fraction}");
        let significant = digits.trim_start_matches('0');
        let trimmed = significant.trim_end_matches('0');
        let trailing_zeros = (significant.len() - trimmed.len()) as i32;
        if trimmed.len() > 38 {
            return Err(err("it has more than 38 significant digits"));
        }
        let mantissa = if trimmed.is_empty() {
            0
        } else {
            trimmed.parse::<u128>().map_err(|_| err("it is not a number"))?
        };
        exp10 += trailing_zeros - fraction.len() as i32;
        Ok(Self {
            negative: negative && mantissa != 0,
            mantissa,
            exp10,
            exp2,
        })
    }

    /// The value in thousandths, rounded up (towards positive infinity) as Go's
    /// `Quantity.MilliValue()` does, saturating at the bounds of i64.
    pub fn milli_value(&self) -> i64 {
        let Some(scaled) = self
            .mantissa
            .checked_mul(1u128 << self.exp2.min(127))
            .filter(|_| self.exp2 < 127)
        else {
            return self.saturated();
        };
        let exp = self.exp10 + 3;
        let magnitude: u128 = if exp >= 0 {
            match 10u128.checked_pow(exp as u32).and_then(|p| scaled.checked_mul(p)) {
                Some(v) => v,
                None if scaled == 0 => 0,
                None => return self.saturated(),
            }
        } else {
            let divisor = 10u128.checked_pow((-exp) as u32);
            match divisor {
                // Rounding towards +inf: up for positive values, truncation for negative ones.
                Some(d) if self.negative => scaled / d,
                Some(d) => scaled.div_ceil(d),
                None if self.negative || scaled == 0 => 0,
                None => 1,
            }
        };
        if self.negative {
            if magnitude > i64::MAX as u128 + 1 {
                i64::MIN
            } else {
                (magnitude as i128).wrapping_neg() as i64
            }
        } else {
            i64::try_from(magnitude).unwrap_or(i64::MAX)
        }
    }

    fn saturated(&self) -> i64 {
        if self.negative { i64::MIN } else { i64::MAX }
    }

    /// The value as a float, as Go's `Quantity.AsApproximateFloat64()`.
    pub fn as_f64(&self) -> f64 {
        let v = self.mantissa as f64 * 10f64.powi(self.exp10) * 2f64.powi(self.exp2 as i32);
        if self.negative { -v } else { v }
    }

    /// Whether the value is below zero.
    pub fn is_negative(&self) -> bool {
        self.negative
    }

    /// Whether the value is exactly zero.
    pub fn is_zero(&self) -> bool {
        self.mantissa == 0
    }
}

/// Thousandths of a quantity, rounded up, or an error naming the bad text.
pub fn milli_value(quantity: &str) -> Result<i64, QuantityError> {
    ParsedQuantity::parse(quantity).map(|q| q.milli_value())
}

/// The canonical decimal form of `milli` thousandths, as Kubernetes prints
/// `resource.NewMilliQuantity(milli, resource.DecimalSI)`: `1500m`, `20`, `3k`.
/// A number in milli-units, rounded, saturating at the range of an i64.
pub fn to_milli(value: f64) -> i64 {
    (value * 1000.0).round() as i64
}

/// A number (a formula's result, a forecast) as a quantity, to the milli.
pub fn format_f64(value: f64) -> String {
    format_milli(to_milli(value))
}

pub fn format_milli(milli: i64) -> String {
    if milli == 0 {
        return "0".to_string();
    }
    let mut mantissa = milli as i128;
    let mut exponent = -3;
    while mantissa % 1000 == 0 && exponent < 18 {
        mantissa /= 1000;
        exponent += 3;
    }
    let suffix = match exponent {
        -3 => "m",
        0 => "",
        3 => "k",
        6 => "M",
        9 => "G",
        12 => "T",
        15 => "P",
        _ => "E",
    };
    format!("{mantissa}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milli_values_match_kubernetes() {
        let cases = [
            ("1", 1000),
            ("300m", 300),
            ("1.5", 1500),
            ("2150m", 2150),
            ("8600m", 8600),
            ("512Ki", 524_288_000),
            ("1Gi", 1_073_741_824_000),
            ("1e3", 1_000_000),
            ("12E-2", 120),
            ("100u", 1),
            ("1n", 1),
            ("-1n", 0),
            ("-1.5", -1500),
            ("0.0001", 1),
            ("+5", 5000),
            ("0", 0),
            ("9E", i64::MAX),
            ("-9E", i64::MIN),
            ("1k", 1_000_000),
            (".5", 500),
        ];
        for (text, want) in cases {
            assert_eq!(milli_value(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn rejects_malformed_quantities_with_a_reason() {
        for bad in ["", "abc", "1.2.3", "5x", "1e", "--1", "m"] {
            let err = milli_value(bad).unwrap_err();
            assert!(err.to_string().contains("invalid quantity"), "{bad}: {err}");
        }
    }

    #[test]
    fn approximate_floats() {
        assert_eq!(ParsedQuantity::parse("100m").unwrap().as_f64(), 0.1);
        assert_eq!(ParsedQuantity::parse("2").unwrap().as_f64(), 2.0);
        assert_eq!(ParsedQuantity::parse("0.05").unwrap().as_f64(), 0.05);
        assert_eq!(ParsedQuantity::parse("1Ki").unwrap().as_f64(), 1024.0);
    }

    #[test]
    fn canonical_decimal_form() {
        assert_eq!(format_milli(1500), "1500m");
        assert_eq!(format_milli(20_000), "20");
        assert_eq!(format_milli(6667), "6667m");
        assert_eq!(format_milli(3_000_000), "3k");
        assert_eq!(format_milli(-2000), "-2");
        assert_eq!(format_milli(0), "0");
    }
}
