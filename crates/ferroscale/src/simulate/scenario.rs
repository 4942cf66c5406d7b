//! The scenario file of `ferroscale simulate`: a modelled workload and the Autoscaler to try
//! on it.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use ferroscale_api::AutoscalerSpec;
use serde::{Deserialize, Deserializer};

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    crate::flags::parse_duration(&text).map_err(serde::de::Error::custom)
}

fn optional_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    Option::<String>::deserialize(d)?
        .map(|t| crate::flags::parse_duration(&t).map_err(serde::de::Error::custom))
        .transpose()
}

/// A scenario document (`kind: Simulation`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scenario {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: Option<serde_json::Value>,
    pub spec: ScenarioSpec,
}

/// The modelled world.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScenarioSpec {
    /// How long to simulate (Go duration).
    #[serde(deserialize_with = "duration")]
    pub duration: Duration,
    /// How often the autoscaler evaluates (the operator's --sync-period).
    #[serde(deserialize_with = "duration", default = "default_sync")]
    pub sync_period: Duration,
    /// From a pod's creation until it is Ready and takes load.
    #[serde(deserialize_with = "duration", default = "default_startup")]
    pub pod_startup: Duration,
    /// How old the load a metric reports is (collection window and pipeline delay).
    #[serde(deserialize_with = "duration", default = "default_lag")]
    pub metric_lag: Duration,
    /// Replicas at the start, all Ready.
    pub initial_replicas: u32,
    /// The load one pod serves at 100% of its CPU request.
    pub pod_capacity: f64,
    /// Each pod's CPU request (a quantity).
    #[serde(default = "default_request")]
    pub cpu_request: String,
    /// The load over time.
    pub load: Load,
    /// Spans during which every metric fails to be read, as when its source is down (to try
    /// `fallback`).
    #[serde(default)]
    pub metric_outages: Vec<Outage>,
    /// The run before this time only builds the metrics' history (what Prometheus would have
    /// recorded, for predictive metrics); it is left out of the rows and the figures.
    #[serde(default, deserialize_with = "optional_duration")]
    pub report_from: Option<Duration>,
    /// The Autoscaler under test (its spec, as in an Autoscaler manifest).
    pub autoscaler: AutoscalerSpec,
}

fn default_sync() -> Duration {
    Duration::from_secs(15)
}
fn default_startup() -> Duration {
    Duration::from_secs(30)
}
fn default_lag() -> Duration {
    Duration::from_secs(30)
}
fn default_request() -> String {
    "500m".into()
}

/// Load as a base plus shapes; negative totals count as zero.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Load {
    #[serde(default)]
    pub base: f64,
    /// Points joined by straight lines (flat before the first and after the last).
    #[serde(default)]
    pub points: Vec<Point>,
    /// Repeat `points` with this period (a day recorded once, played every day).
    #[serde(default, deserialize_with = "optional_duration")]
    pub repeat_every: Option<Duration>,
    #[serde(default)]
    pub shapes: Vec<Shape>,
}

/// A span of time, from `from` until `to`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outage {
    #[serde(deserialize_with = "duration")]
    pub from: Duration,
    #[serde(deserialize_with = "duration")]
    pub to: Duration,
}

impl Outage {
    pub fn covers(&self, t: Duration) -> bool {
        self.from <= t && t < self.to
    }
}

/// A load value at a time.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Point {
    #[serde(deserialize_with = "duration")]
    pub at: Duration,
    pub value: f64,
}

/// A shape added to the load.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum Shape {
    /// Adds `value` from `at` on (until `until`, if given).
    Step {
        #[serde(deserialize_with = "duration")]
        at: Duration,
        #[serde(default, deserialize_with = "optional_duration")]
        until: Option<Duration>,
        value: f64,
    },
    /// Adds from 0 at `from` rising linearly to `value` at `to`, and `value` after.
    Ramp {
        #[serde(deserialize_with = "duration")]
        from: Duration,
        #[serde(deserialize_with = "duration")]
        to: Duration,
        value: f64,
    },
    /// Adds `value` for `for` from `at`.
    Spike {
        #[serde(deserialize_with = "duration")]
        at: Duration,
        #[serde(rename = "for", deserialize_with = "duration")]
        length: Duration,
        value: f64,
    },
    /// Adds `amplitude × sin(2π t / period)`.
    Sine {
        #[serde(deserialize_with = "duration")]
        period: Duration,
        amplitude: f64,
    },
    /// Adds a value drawn uniformly from [-amplitude, amplitude], a new one every `every`,
    /// from a generator seeded with `seed`: the same scenario gives the same noise.
    Noise {
        amplitude: f64,
        #[serde(deserialize_with = "duration")]
        every: Duration,
        #[serde(default)]
        seed: u64,
    },
}

/// A uniform draw in [-1, 1] for slot `slot` of the noise seeded with `seed` (splitmix64: no
/// state to carry, so the load at any time is a pure function of it).
fn noise(seed: u64, slot: u64) -> f64 {
    let mut z = seed
        .wrapping_add(slot.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
}

impl Load {
    /// The load at `t` after the start.
    pub fn at(&self, t: Duration) -> f64 {
        let s = t.as_secs_f64();
        let played = match self.repeat_every {
            Some(period) if !period.is_zero() => s % period.as_secs_f64(),
            _ => s,
        };
        let mut total = self.base + interpolate(&self.points, played);
        for shape in &self.shapes {
            total += match shape {
                Shape::Step { at, until, value } => {
                    if s >= at.as_secs_f64() && until.is_none_or(|u| s < u.as_secs_f64()) {
                        *value
                    } else {
                        0.0
                    }
                }
                Shape::Ramp { from, to, value } => {
                    let (a, b) = (from.as_secs_f64(), to.as_secs_f64());
                    if s <= a {
                        0.0
                    } else if s >= b || b <= a {
                        *value
                    } else {
                        value * (s - a) / (b - a)
                    }
                }
                Shape::Spike { at, length, value } => {
                    let a = at.as_secs_f64();
                    if s >= a && s < a + length.as_secs_f64() {
                        *value
                    } else {
                        0.0
                    }
                }
                Shape::Sine { period, amplitude } => {
                    amplitude * (std::f64::consts::TAU * s / period.as_secs_f64().max(1.0)).sin()
                }
                Shape::Noise { amplitude, every, seed } => {
                    amplitude * noise(*seed, (s / every.as_secs_f64().max(1.0)) as u64)
                }
            };
        }
        total.max(0.0)
    }
}

fn interpolate(points: &[Point], s: f64) -> f64 {
    let Some(first) = points.first() else { return 0.0 };
    if s <= first.at.as_secs_f64() {
        return first.value;
    }
    for pair in points.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let (ta, tb) = (a.at.as_secs_f64(), b.at.as_secs_f64());
        if s <= tb {
            return if tb <= ta {
                b.value
            } else {
                a.value + (b.value - a.value) * (s - ta) / (tb - ta)
            };
        }
    }
    points.last().map_or(0.0, |p| p.value)
}

impl Scenario {
    /// Parses and checks a scenario; errors name the file and the field.
    pub fn parse(text: &str, origin: &str) -> Result<Self> {
        let value: serde_json::Value =
            serde_yaml::from_str(text).with_context(|| format!("{origin}: not valid YAML"))?;
        let scenario: Scenario = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            anyhow::anyhow!("{origin}: at {path}: {}", e.into_inner())
        })?;
        if scenario.kind != "Simulation" || !scenario.api_version.starts_with("ferroscale.dev/") {
            bail!(
                "{origin}: expected apiVersion ferroscale.dev/v1alpha1 and kind Simulation, found {} {}",
                scenario.api_version,
                scenario.kind
            );
        }
        let spec = &scenario.spec;
        if spec.sync_period.is_zero() {
            bail!("{origin}: spec.syncPeriod must be longer than 0s");
        }
        if spec.duration.as_secs() / spec.sync_period.as_secs().max(1) > 100_000 {
            bail!("{origin}: spec.duration is more than 100000 sync periods");
        }
        if spec.report_from.is_some_and(|r| r >= spec.duration) {
            bail!("{origin}: spec.reportFrom must be shorter than spec.duration, or nothing is reported");
        }
        // NaN fails too: a capacity must be a positive number.
        if spec.pod_capacity.is_nan() || spec.pod_capacity <= 0.0 {
            bail!("{origin}: spec.podCapacity must be greater than 0");
        }
        ferroscale_api::quantity::milli_value(&spec.cpu_request)
            .with_context(|| format!("{origin}: spec.cpuRequest"))?;
        if let Err(errors) = spec.autoscaler.validate() {
            bail!(
                "{origin}: spec.autoscaler is invalid: {}",
                errors.to_string().replace("spec.", "spec.autoscaler.")
            );
        }
        Ok(scenario)
    }
}

/// The scenario `ferroscale simulate` runs without a file: a spike that scales up (limited by
/// a policy), a quiet period whose scale-down the stabilization window delays, and a dip.
pub const BUILT_IN: &str = include_str!("../../../../examples/simulate/built-in.yaml");
