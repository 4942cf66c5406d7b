//! The types every stage of an evaluation shares: what it reads ([`Input`], [`Scale`]) and what
//! it produces ([`Decision`], [`Event`], [`Path`]). The stages depend on these, never on the
//! orchestrator in `decision.rs`, which only sequences them.

use std::collections::BTreeMap;

use ferroscale_api::{AutoscalerSpec, AutoscalerStatus};
use jiff::Timestamp;

use crate::behavior::Step;
use crate::calculate::Tolerances;
use crate::compiled::Compiled;
use crate::conditions::{self, ABLE_TO_SCALE};
use crate::formula::FormulaOutcome;
use crate::hold::Conflict;
use crate::metric::MetricOutcome;
use crate::pods::PodInfo;
use crate::samples::{Gathered, GatheredSeries};
use crate::schedule::Bounds;
use crate::settings::Settings;

/// The target's `scale` subresource.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scale {
    pub spec_replicas: i32,
    pub status_replicas: i32,
    /// `status.selector`: the label selector of the target's pods, in string form.
    pub selector: Option<String>,
}

impl Scale {
    /// A target with no replicas and no selector, for what is decided without reading one.
    pub const NONE: Scale = Scale {
        spec_replicas: 0,
        status_replicas: 0,
        selector: None,
    };
}

impl From<&k8s_openapi::api::autoscaling::v1::Scale> for Scale {
    fn from(scale: &k8s_openapi::api::autoscaling::v1::Scale) -> Self {
        Self {
            spec_replicas: scale.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0),
            status_replicas: scale.status.as_ref().map_or(0, |s| s.replicas),
            selector: scale.status.as_ref().and_then(|s| s.selector.clone()),
        }
    }
}

/// Everything one evaluation reads.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    pub spec: &'a AutoscalerSpec,
    /// The status as last written; its history feeds stabilization and rate limits.
    pub status: Option<&'a AutoscalerStatus>,
    pub generation: Option<i64>,
    pub scale: &'a Scale,
    /// The pods matching the scale's selector.
    pub pods: &'a [PodInfo],
    /// One entry per metric of [`crate::effective_metrics`], in order.
    pub metrics: &'a [Gathered],
    pub now: Timestamp,
    pub settings: &'a Settings,
    /// When the current recommendation in status was last made, if the caller remembers (the
    /// controller does while it runs); otherwise one sync period before `now` is assumed.
    pub last_recommended: Option<Timestamp>,
    /// The Autoscaler's annotations (the pause annotations are read from them).
    pub annotations: Option<&'a BTreeMap<String, String>>,
    /// Another autoscaler this one must not fight, if the caller found one.
    pub conflict: Option<&'a Conflict>,
    /// Pods the selector matched but the target does not own, left out of `pods`
    /// (selectionStrategy OwnerReferences); `explain` says how many.
    pub pods_left_out: usize,
    /// The spec checked and parsed, when the caller keeps it across evaluations; otherwise
    /// the evaluation builds it.
    pub compiled: Option<&'a Compiled>,
    /// One entry per metric of [`crate::effective_metrics`]: the history of a predictive one.
    pub series: &'a [GatheredSeries],
}

/// A Kubernetes event to record on the Autoscaler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub warning: bool,
    pub reason: String,
    pub message: String,
}

/// How the evaluation went, for the controller's logging and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// The spec is invalid: nothing is scaled until it changes.
    InvalidSpec,
    /// The target has 0 replicas that ferroscale did not set (maintenance).
    Disabled,
    /// The target was outside [min, max] and is brought back.
    OutOfRange,
    /// The scale's selector is missing or invalid.
    InvalidSelector,
    /// No usable metric (or only failed ones and a scale-down).
    MetricsFailed,
    /// Metrics were computed and normalized.
    Evaluated,
}

/// The outcome of one evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub path: Path,
    pub current_replicas: i32,
    /// The count the target should have: the new count when `rescale`, else the current one.
    pub desired_replicas: i32,
    pub rescale: bool,
    /// Why the target is rescaled, as the SuccessfulRescale event says.
    pub reason: Option<String>,
    /// The metrics' combined proposal, before behavior.
    pub proposal: Option<i32>,
    /// The stabilization step, when one ran.
    pub stabilization: Option<Step>,
    /// The limit step, when one ran.
    pub limit: Option<Step>,
    pub metrics: Vec<MetricOutcome>,
    pub events: Vec<Event>,
    /// The status to write, history included.
    pub status: AutoscalerStatus,
    /// The tolerances used.
    pub tolerances: Tolerances,
    /// The replica bounds applied: the spec's, or those of the active schedules.
    pub bounds: Bounds,
    /// The formula's inputs and result, when the spec has one.
    pub formula: Option<FormulaOutcome>,
}

impl Decision {
    /// Whether the controller writes this decision's status: only when it differs from the
    /// status it read, so a steady Autoscaler costs the API server nothing.
    pub fn writes_status(&self, previous: Option<&AutoscalerStatus>) -> bool {
        previous != Some(&self.status)
    }

    /// Status for when the scale update this decision asked for failed: no rescale happened,
    /// so no scale event is kept and the last scale time stays.
    pub fn rescale_failed(&mut self, previous: Option<&AutoscalerStatus>, error: &str, now: Timestamp) {
        let conditions = self.status.conditions.get_or_insert_with(Vec::new);
        conditions::set(
            conditions,
            ABLE_TO_SCALE,
            false,
            "FailedUpdateScale",
            format!("the HPA controller was unable to update the target scale: {error}"),
            now,
        );
        self.status.desired_replicas = previous.map_or(self.current_replicas, |s| s.desired_replicas);
        self.status.last_scale_time = previous.and_then(|s| s.last_scale_time.clone());
        self.status.scale_up_events = previous.and_then(|s| s.scale_up_events.clone());
        self.status.scale_down_events = previous.and_then(|s| s.scale_down_events.clone());
        self.events.retain(|e| e.reason != "SuccessfulRescale");
        self.events.push(Event {
            warning: true,
            reason: "FailedRescale".into(),
            message: format!(
                "New size: {}; reason: {}; error: {error}",
                self.desired_replicas,
                self.reason.as_deref().unwrap_or("")
            ),
        });
        self.rescale = false;
        self.desired_replicas = self.current_replicas;
    }
}
