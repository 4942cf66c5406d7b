//! One evaluation of an Autoscaler, as the HPA controller's `reconcileAutoscaler` performs it
//! after reading the target's scale: inputs in, a [`Decision`] out, no I/O and no clock.

use std::collections::BTreeMap;
use std::time::Duration;

use ferroscale_api::quantity::ParsedQuantity;
use ferroscale_api::*;
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::behavior::{self, RateLimits, Rules, Step};
use crate::calculate::{Context, Tolerances};
use crate::combine::combine;
use crate::conditions::{self, ABLE_TO_SCALE, SCALING_ACTIVE, SCALING_LIMITED};
use crate::failures::{self, Failures};
use crate::gates::{self, Gate};
use crate::history::History;
use crate::hold::{self, Conflict};
use crate::pause::Pause;
use crate::pods::{PodInfo, Readiness};
use crate::samples::Gathered;
use crate::zero;

pub use crate::gates::{metrics_read, reads_metrics};
pub use crate::metric::{MetricOutcome, compute_metric, effective_metrics};
pub use crate::status::{failed_get_scale, invalid_spec, targets_summary};

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
    /// One entry per metric of [`effective_metrics`], in order.
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

/// The selector of the target's pods, or the condition message for why it is unusable.
pub fn scale_selector(scale: &Scale) -> Result<kube::core::Selector, (&'static str, String)> {
    match scale.selector.as_deref() {
        None | Some("") => Err(("SelectorRequired", "selector is required".into())),
        Some(text) => crate::selector::parse(text).map_err(|e| {
            (
                "InvalidSelector",
                format!("couldn't convert selector into a corresponding internal selector object: {e}"),
            )
        }),
    }
}

/// Evaluates the Autoscaler once, in stages: the gates that stop or shortcut an evaluation
/// ([`gates`]), each metric's proposal ([`metric`]), their combination ([`combine`]),
/// stabilization and limits ([`behavior`]) over the history in status ([`history`]), and the
/// status to write.
pub fn decide(input: &Input) -> Decision {
    let Input {
        spec,
        status,
        generation,
        scale,
        now,
        settings,
        ..
    } = *input;
    let previous = status.cloned().unwrap_or_default();
    let mut conds = previous.conditions.clone().unwrap_or_default();
    conditions::set(
        &mut conds,
        ABLE_TO_SCALE,
        true,
        "SucceededGetScale",
        "the HPA controller was able to get the target's current scale",
        now,
    );
    let current = scale.spec_replicas;
    let mut history = History::read(status, current, now);
    let last_made = history.last_made(input.last_recommended, now, sync_period(spec, settings));
    let tolerances = tolerances(spec, settings.tolerance);
    let down_window = settings.downscale_stabilization;
    let rules = spec
        .behavior
        .as_ref()
        .map(|b| (behavior::scale_up_rules(b), behavior::scale_down_rules(b, down_window)));
    let metrics = effective_metrics(spec);
    let mut decision = Decision {
        path: Path::Evaluated,
        current_replicas: current,
        desired_replicas: current,
        rescale: false,
        reason: None,
        proposal: None,
        stabilization: None,
        limit: None,
        metrics: Vec::new(),
        events: Vec::new(),
        status: AutoscalerStatus::default(),
        tolerances,
    };

    let gate = gates::check(spec, status, current);
    let mut failures = Failures::read(previous.metric_failures.as_ref());
    let mut fallbacks = Vec::new();
    let desired = match gate {
        Gate::InvalidSpec(problems) => {
            // Nothing else is evaluated: the last status stands, with the reason.
            decision.path = Path::InvalidSpec;
            decision.events.push(Event {
                warning: true,
                reason: "InvalidSpec".into(),
                message: problems.clone(),
            });
            decision.status = invalid_spec(input.spec, status, generation, &problems, now);
            return decision;
        }
        Gate::Disabled { report } => {
            decision.path = Path::Disabled;
            if report {
                // Read and reported, never acted upon.
                let _ = proposal(
                    input,
                    &Gate::Zero,
                    &mut decision,
                    &mut conds,
                    &mut failures,
                    &mut fallbacks,
                );
                fallbacks.clear();
                decision.path = Path::Disabled;
            }
            conditions::set(
                &mut conds,
                SCALING_ACTIVE,
                false,
                "ScalingDisabled",
                "scaling is disabled since the replica count of the target is zero",
                now,
            );
            None
        }
        Gate::OutOfRange { desired, reason } => {
            decision.path = Path::OutOfRange;
            decision.reason = Some(reason.into());
            Some(desired)
        }
        Gate::Open | Gate::Zero => {
            match proposal(input, &gate, &mut decision, &mut conds, &mut failures, &mut fallbacks) {
                Err(message) => {
                    if decision.path != Path::InvalidSelector {
                        decision.path = Path::MetricsFailed;
                    }
                    decision.events.push(Event {
                        warning: true,
                        reason: "FailedComputeMetricsReplicas".into(),
                        message,
                    });
                    None
                }
                Ok((proposal, description)) => {
                    let proposal = proposal.max(0);
                    decision.proposal = Some(proposal);
                    if proposal > current {
                        decision.reason = Some(if description.starts_with("the fallback") {
                            description.clone()
                        } else {
                            format!("{description} above target")
                        });
                    } else if proposal < current {
                        decision.reason = Some("All metrics below target".into());
                    }
                    let (stabilized, limited) =
                        normalize(&history, last_made, rules.as_ref(), current, proposal, input);
                    history.record(proposal, now, last_made);
                    conditions::set(
                        &mut conds,
                        ABLE_TO_SCALE,
                        true,
                        stabilized.reason,
                        stabilized.message,
                        now,
                    );
                    conditions::set(
                        &mut conds,
                        SCALING_LIMITED,
                        limited.replicas != stabilized.replicas,
                        limited.reason,
                        limited.message,
                        now,
                    );
                    let desired = limited.replicas;
                    decision.stabilization = Some(stabilized);
                    decision.limit = Some(limited);
                    Some(desired)
                }
            }
        }
    };

    if decision.proposal.is_none() {
        history.end_current(last_made);
    }
    let pause = Pause::from_annotations(input.annotations);
    let held = hold::apply(
        desired,
        current,
        &pause,
        input.conflict,
        &previous,
        &mut conds,
        &mut decision.events,
        now,
    );
    if held.set.is_some() && held.set != desired {
        decision.reason = Some(format!(
            "set to {} by the annotation {}",
            held.set.unwrap_or(current),
            crate::pause::PAUSED_REPLICAS
        ));
    }
    let desired = held.set;
    let rescale = desired.is_some_and(|d| d != current);
    let desired = if rescale { desired.unwrap_or(current) } else { current };
    let mut last_scale_time = previous.last_scale_time.clone();
    if rescale {
        conditions::set(
            &mut conds,
            ABLE_TO_SCALE,
            true,
            "SucceededRescale",
            format!("the HPA controller was able to update the target scale to {desired}"),
            now,
        );
        decision.events.push(Event {
            warning: false,
            reason: "SuccessfulRescale".into(),
            message: format!(
                "New size: {desired}; reason: {}",
                decision.reason.as_deref().unwrap_or("")
            ),
        });
        // Scale events only feed behavior policies; without behavior they are not kept.
        if rules.is_some() {
            history.record_rescale(current, desired, now);
        }
        last_scale_time = Some(Time(now));
    }
    history.prune(rules.as_ref(), down_window, now);
    zero::record(&mut conds, desired, rescale, now);
    failures::record(&mut conds, &mut decision.events, &metrics, &fallbacks, &failures, now);
    decision.desired_replicas = desired;
    decision.rescale = rescale;
    decision.status = AutoscalerStatus {
        observed_generation: generation,
        last_scale_time,
        current_replicas: current,
        // When the metrics failed, the last decision stands.
        desired_replicas: if decision.path == Path::MetricsFailed || decision.path == Path::InvalidSelector {
            previous.desired_replicas
        } else {
            desired
        },
        current_metrics: Some(decision.metrics.iter().filter_map(|m| m.status.clone()).collect()),
        conditions: Some(conds),
        targets: Some(targets_summary(&metrics, &decision.metrics)),
        metric_failures: failures.to_status(),
        paused_replicas: held.paused_replicas,
        reference: Some(crate::status::reference(input.spec)),
        ..AutoscalerStatus::default()
    };
    history.write(&mut decision.status);
    decision
}

/// Each metric's proposal (the fallback's, for a metric failing long enough; zero when no
/// metric is active and the target may go to zero), combined: the largest valid one, or why
/// there is none. Records the metrics' failures and which fallbacks apply.
fn proposal(
    input: &Input,
    gate: &Gate,
    decision: &mut Decision,
    conds: &mut Vec<AutoscalerCondition>,
    failures: &mut Failures,
    fallbacks: &mut Vec<usize>,
) -> Result<(i32, String), String> {
    let Input {
        spec,
        scale,
        now,
        settings,
        ..
    } = *input;
    let tolerances = decision.tolerances;
    if let Err((event_reason, message)) = scale_selector(scale) {
        decision.path = Path::InvalidSelector;
        let condition_message = if event_reason == "SelectorRequired" {
            "the HPA target's scale is missing a selector".to_string()
        } else {
            message.clone()
        };
        conditions::set(conds, SCALING_ACTIVE, false, "InvalidSelector", condition_message, now);
        decision.events.push(Event {
            warning: true,
            reason: event_reason.into(),
            message: message.clone(),
        });
        return Err(message);
    }
    let ctx = Context {
        pods: input.pods,
        now,
        readiness: Readiness {
            cpu_initialization_period: settings.cpu_initialization_period,
            initial_readiness_delay: settings.initial_readiness_delay,
        },
        tolerances,
    };
    let specs = effective_metrics(spec);
    decision.metrics = specs
        .iter()
        .enumerate()
        .map(|(i, m)| {
            if *gate == Gate::Zero && !m.reads_without_pods() {
                MetricOutcome::skipped(m)
            } else {
                compute_metric(&ctx, m, scale, input.metrics.get(i))
            }
        })
        .collect();
    failures.update(&decision.metrics, now);
    *fallbacks = failures::apply(&specs, &mut decision.metrics, failures, now);
    if zero::enabled(spec) {
        zero::activate(&mut decision.metrics);
    }
    combine(decision, conds, scale.spec_replicas, now)
}

/// Stabilization over the recommendation history, then rate limits and min/max: with
/// `behavior`, its windows and policies; without, the HPA's legacy rules.
fn normalize(
    history: &History,
    last_made: Timestamp,
    rules: Option<&(Rules, Rules)>,
    current: i32,
    proposal: i32,
    input: &Input,
) -> (Step, Step) {
    let (min, max, now) = (input.spec.min_replicas_or_default(), input.spec.max_replicas, input.now);
    let recommendations = history.window(last_made);
    match rules {
        None => {
            let window = input.settings.downscale_stabilization;
            let s = behavior::stabilize_legacy(&recommendations, proposal, now, window);
            let l = behavior::limit_legacy(current, s.replicas, min, max);
            (s, l)
        }
        Some((up, down)) => {
            let s = behavior::stabilize(&recommendations, proposal, current, now, up, down);
            let rates = RateLimits {
                up,
                down,
                scale_ups: &history.scale_ups,
                scale_downs: &history.scale_downs,
                now,
            };
            let l = behavior::limit(current, s.replicas, min, max, rates);
            (s, l)
        }
    }
}
