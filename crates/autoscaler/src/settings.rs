//! Operator-wide settings, and what each Autoscaler derives from them: its sync period and
//! its tolerances.

use std::time::Duration;

use ferroscale_api::quantity::ParsedQuantity;
use ferroscale_api::{AutoscalerSpec, ScalingRules};

use crate::calculate::Tolerances;

/// Operator-wide settings, with the HPA controller's defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// Default tolerance in both directions (`--horizontal-pod-autoscaler-tolerance`).
    pub tolerance: f64,
    /// How long after start a pod's CPU samples need a settled Ready condition.
    pub cpu_initialization_period: Duration,
    /// How long after start a pod that never became ready is assumed still initializing.
    pub initial_readiness_delay: Duration,
    /// The scale-down stabilization window of Autoscalers that set no window of their own.
    pub downscale_stabilization: Duration,
    /// How often each Autoscaler is evaluated.
    pub sync_period: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            tolerance: 0.1,
            cpu_initialization_period: Duration::from_secs(300),
            initial_readiness_delay: Duration::from_secs(30),
            downscale_stabilization: Duration::from_secs(300),
            sync_period: Duration::from_secs(15),
        }
    }
}

/// How often the Autoscaler is evaluated: its own syncPeriodSeconds, else the operator's.
pub fn sync_period(spec: &AutoscalerSpec, settings: &Settings) -> Duration {
    spec.sync_period_seconds
        .and_then(|s| u64::try_from(s).ok())
        .filter(|s| *s > 0)
        .map_or(settings.sync_period, Duration::from_secs)
}

/// Per-direction tolerances: the behavior's own, else the operator's.
pub fn tolerances(spec: &AutoscalerSpec, default: f64) -> Tolerances {
    let of = |rules: Option<&ScalingRules>| {
        rules
            .and_then(|r| r.tolerance.as_ref())
            .and_then(|q| ParsedQuantity::parse(&q.0).ok())
            .map_or(default, |q| q.as_f64())
    };
    let behavior = spec.behavior.as_ref();
    Tolerances {
        down: of(behavior.and_then(|b| b.scale_down.as_ref())),
        up: of(behavior.and_then(|b| b.scale_up.as_ref())),
    }
}
