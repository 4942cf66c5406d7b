//! One evaluation of an Autoscaler, as the HPA controller's `reconcileAutoscaler` performs it
//! after reading the target's scale: inputs in, a [`Decision`] out, no I/O and no clock.

use std::borrow::Cow;
use std::time::Duration;

use ferroscale_api::quantity::{ParsedQuantity, format_milli};
use ferroscale_api::*;
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::behavior::{self, RateLimits, Rules, Step, TimedReplicas};
use crate::calculate::{self, Context, Proposal, Tolerances};
use crate::conditions::{self, ABLE_TO_SCALE, SCALING_ACTIVE, SCALING_LIMITED};
use crate::pods::{PodInfo, Readiness};
use crate::samples::{Gathered, MetricValues};
use crate::time::{minus, minus_seconds};

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
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            tolerance: 0.1,
            cpu_initialization_period: Duration::from_secs(300),
            initial_readiness_delay: Duration::from_secs(30),
            downscale_stabilization: Duration::from_secs(300),
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
}

/// A Kubernetes event to record on the Autoscaler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub warning: bool,
    pub reason: String,
    pub message: String,
}

/// One metric's part in the decision.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MetricOutcome {
    /// The metric's source type.
    pub source: Option<MetricSourceType>,
    /// What the metric is, in the HPA's words (e.g. `cpu resource utilization (percentage of request)`).
    pub description: String,
    /// The metric's proposal before min/max and behavior.
    pub replicas: Option<i32>,
    /// Its current value as status reports it.
    pub status: Option<MetricStatus>,
    /// Why it could not be computed.
    pub error: Option<String>,
    /// How it was computed.
    pub proposal: Option<Proposal>,
}

/// How the evaluation went, for the controller's logging and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// The target has 0 replicas and minReplicas is not 0.
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

/// The last status with one condition set and the generation stamped; history and the
/// rest are kept, so nothing is lost while the Autoscaler cannot be evaluated.
fn with_condition(
    status: Option<&AutoscalerStatus>,
    generation: Option<i64>,
    type_: &str,
    reason: &str,
    message: String,
    now: Timestamp,
) -> AutoscalerStatus {
    let mut status = status.cloned().unwrap_or_default();
    conditions::set(
        status.conditions.get_or_insert_with(Vec::new),
        type_,
        false,
        reason,
        message,
        now,
    );
    status.observed_generation = generation;
    status
}

/// The status to write when the target's scale cannot be read (no such target, no scale
/// subresource, an API error): AbleToScale=False/FailedGetScale.
pub fn failed_get_scale(
    status: Option<&AutoscalerStatus>,
    generation: Option<i64>,
    error: &str,
    now: Timestamp,
) -> AutoscalerStatus {
    let message = format!("the HPA controller was unable to get the target's current scale: {error}");
    with_condition(status, generation, ABLE_TO_SCALE, "FailedGetScale", message, now)
}

/// The status to write when the spec breaks a rule the API server could not enforce:
/// ScalingActive=False/InvalidSpec naming the fields.
pub fn invalid_spec(
    status: Option<&AutoscalerStatus>,
    generation: Option<i64>,
    problems: &str,
    now: Timestamp,
) -> AutoscalerStatus {
    with_condition(
        status,
        generation,
        SCALING_ACTIVE,
        "InvalidSpec",
        format!("the spec is invalid: {problems}"),
        now,
    )
}

/// Whether an evaluation at `current` replicas reads metrics: not while scaling is disabled
/// (the target is at 0 and minReplicas is not), nor while the target is outside [min, max],
/// when the count is only brought back. Callers skip gathering metrics otherwise.
pub fn reads_metrics(spec: &AutoscalerSpec, current: i32) -> bool {
    let min = spec.min_replicas_or_default();
    !(current == 0 && min != 0) && current <= spec.max_replicas && current >= min
}

/// The spec's metrics, or the HPA's default of 80% average CPU utilization when there are none.
pub fn effective_metrics(spec: &AutoscalerSpec) -> Cow<'_, [MetricSpec]> {
    match spec.metrics.as_deref() {
        Some(metrics) if !metrics.is_empty() => Cow::Borrowed(metrics),
        _ => Cow::Owned(vec![MetricSpec {
            type_: MetricSourceType::Resource,
            resource: Some(ResourceMetricSource {
                name: "cpu".into(),
                target: MetricTarget {
                    type_: MetricTargetType::Utilization,
                    value: None,
                    average_value: None,
                    average_utilization: Some(80),
                },
            }),
            container_resource: None,
            pods: None,
            object: None,
            external: None,
            prometheus: None,
        }]),
    }
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

fn to_timed(list: Option<&Vec<Recommendation>>) -> Option<Vec<TimedReplicas>> {
    list.map(|l| {
        l.iter()
            .map(|r| TimedReplicas {
                timestamp: r.timestamp.0,
                replicas: r.replicas,
            })
            .collect()
    })
}

fn events_of(list: Option<&Vec<ScaleEvent>>) -> Vec<TimedReplicas> {
    list.into_iter()
        .flatten()
        .map(|e| TimedReplicas {
            timestamp: e.timestamp.0,
            replicas: e.change,
        })
        .collect()
}

/// Evaluates the Autoscaler once.
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
    // A never-evaluated Autoscaler starts its history with the current count, so it does not
    // scale down before one stabilization window has passed.
    let mut recommendations = to_timed(previous.recommendations.as_ref()).unwrap_or_else(|| {
        vec![TimedReplicas {
            timestamp: now,
            replicas: current,
        }]
    });
    let mut scale_ups = events_of(previous.scale_up_events.as_ref());
    let mut scale_downs = events_of(previous.scale_down_events.as_ref());
    let min = spec.min_replicas_or_default();
    let max = spec.max_replicas;
    let tolerances = tolerances(spec, settings.tolerance);
    let down_window = settings.downscale_stabilization;
    let rules = spec
        .behavior
        .as_ref()
        .map(|b| (behavior::scale_up_rules(b), behavior::scale_down_rules(b, down_window)));

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
    let mut desired = current;
    let mut rescale = true;
    let mut metric_statuses = None;

    if current == 0 && min != 0 {
        decision.path = Path::Disabled;
        rescale = false;
        conditions::set(
            &mut conds,
            SCALING_ACTIVE,
            false,
            "ScalingDisabled",
            "scaling is disabled since the replica count of the target is zero",
            now,
        );
    } else if current > max {
        decision.path = Path::OutOfRange;
        decision.reason = Some("Current number of replicas above Spec.MaxReplicas".into());
        desired = max;
    } else if current < min {
        decision.path = Path::OutOfRange;
        decision.reason = Some("Current number of replicas below Spec.MinReplicas".into());
        desired = min;
    } else {
        let metrics = effective_metrics(spec);
        let computed = match scale_selector(scale) {
            Err((event_reason, message)) => {
                decision.path = Path::InvalidSelector;
                let condition_message = if event_reason == "SelectorRequired" {
                    "the HPA target's scale is missing a selector".to_string()
                } else {
                    message.clone()
                };
                conditions::set(
                    &mut conds,
                    SCALING_ACTIVE,
                    false,
                    "InvalidSelector",
                    condition_message,
                    now,
                );
                decision.events.push(Event {
                    warning: true,
                    reason: event_reason.into(),
                    message: message.clone(),
                });
                Err(message)
            }
            Ok(_) => {
                let ctx = Context {
                    pods: input.pods,
                    now,
                    readiness: Readiness {
                        cpu_initialization_period: settings.cpu_initialization_period,
                        initial_readiness_delay: settings.initial_readiness_delay,
                    },
                    tolerances,
                };
                decision.metrics = metrics
                    .iter()
                    .enumerate()
                    .map(|(i, m)| compute_metric(&ctx, m, scale, input.metrics.get(i)))
                    .collect();
                combine(&mut decision, &mut conds, current, now)
            }
        };
        match computed {
            Err(message) => {
                if decision.path != Path::InvalidSelector {
                    decision.path = Path::MetricsFailed;
                }
                decision.events.push(Event {
                    warning: true,
                    reason: "FailedComputeMetricsReplicas".into(),
                    message,
                });
                let statuses: Vec<MetricStatus> = decision.metrics.iter().filter_map(|m| m.status.clone()).collect();
                recommendations.retain(|r| r.timestamp >= minus(now, longest_window(rules.as_ref(), down_window)));
                prune_events(&mut scale_ups, &mut scale_downs, rules.as_ref(), now);
                decision.status = AutoscalerStatus {
                    observed_generation: generation,
                    last_scale_time: previous.last_scale_time.clone(),
                    current_replicas: current,
                    desired_replicas: previous.desired_replicas,
                    current_metrics: Some(statuses),
                    conditions: Some(conds),
                    targets: Some(targets_summary(&metrics, &decision.metrics)),
                    recommendations: Some(to_recommendations(&recommendations)),
                    scale_up_events: Some(to_events(&scale_ups)),
                    scale_down_events: Some(to_events(&scale_downs)),
                };
                return decision;
            }
            Ok((proposal, description)) => {
                desired = proposal.max(0);
                decision.proposal = Some(proposal);
                if desired > current {
                    decision.reason = Some(format!("{description} above target"));
                } else if desired < current {
                    decision.reason = Some("All metrics below target".into());
                }
                let (stabilized, limited) = match &rules {
                    None => {
                        let s = behavior::stabilize_legacy(&recommendations, desired, now, down_window);
                        let l = behavior::limit_legacy(current, s.replicas, min, max);
                        (s, l)
                    }
                    Some((up, down)) => {
                        let s = behavior::stabilize(&recommendations, desired, current, now, up, down);
                        let rates = RateLimits {
                            up,
                            down,
                            scale_ups: &scale_ups,
                            scale_downs: &scale_downs,
                            now,
                        };
                        let l = behavior::limit(current, s.replicas, min, max, rates);
                        (s, l)
                    }
                };
                recommendations.push(TimedReplicas {
                    timestamp: now,
                    replicas: desired,
                });
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
                desired = limited.replicas;
                decision.stabilization = Some(stabilized);
                decision.limit = Some(limited);
                rescale = desired != current;
                metric_statuses = Some(decision.metrics.iter().filter_map(|m| m.status.clone()).collect());
            }
        }
    }

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
            let change = TimedReplicas {
                timestamp: now,
                replicas: (desired - current).abs(),
            };
            if desired > current {
                scale_ups.push(change)
            } else {
                scale_downs.push(change)
            }
        }
        last_scale_time = Some(Time(now));
    } else {
        desired = current;
    }
    recommendations.retain(|r| r.timestamp >= minus(now, longest_window(rules.as_ref(), down_window)));
    prune_events(&mut scale_ups, &mut scale_downs, rules.as_ref(), now);
    let metrics = effective_metrics(spec);
    decision.desired_replicas = desired;
    decision.rescale = rescale;
    decision.status = AutoscalerStatus {
        observed_generation: generation,
        last_scale_time,
        current_replicas: current,
        desired_replicas: desired,
        current_metrics: metric_statuses.or(Some(Vec::new())),
        conditions: Some(conds),
        targets: Some(targets_summary(&metrics, &decision.metrics)),
        recommendations: Some(to_recommendations(&recommendations)),
        scale_up_events: Some(to_events(&scale_ups)),
        scale_down_events: Some(to_events(&scale_downs)),
    };
    decision
}

/// The longest stabilization window: older recommendations can never matter again.
fn longest_window(rules: Option<&(Rules, Rules)>, legacy: Duration) -> Duration {
    match rules {
        None => legacy,
        Some((up, down)) => Duration::from_secs(up.window_seconds.max(down.window_seconds).max(0) as u64),
    }
}

/// Drops scale events outside the longest policy period of their direction.
fn prune_events(
    ups: &mut Vec<TimedReplicas>,
    downs: &mut Vec<TimedReplicas>,
    rules: Option<&(Rules, Rules)>,
    now: Timestamp,
) {
    let (up_period, down_period) = rules.map_or((0, 0), |(u, d)| (u.longest_period(), d.longest_period()));
    ups.retain(|e| e.timestamp > minus_seconds(now, up_period));
    downs.retain(|e| e.timestamp > minus_seconds(now, down_period));
}

fn to_recommendations(list: &[TimedReplicas]) -> Vec<Recommendation> {
    list.iter()
        .map(|r| Recommendation {
            timestamp: Time(r.timestamp),
            replicas: r.replicas,
        })
        .collect()
}

fn to_events(list: &[TimedReplicas]) -> Vec<ScaleEvent> {
    list.iter()
        .map(|e| ScaleEvent {
            timestamp: Time(e.timestamp),
            change: e.replicas,
        })
        .collect()
}

/// The maximum over valid metrics, with the HPA's rule for invalid ones: they are ignored when
/// the valid ones propose a scale-up (or no change), and block everything otherwise.
fn combine(
    decision: &mut Decision,
    conds: &mut Vec<AutoscalerCondition>,
    current: i32,
    now: Timestamp,
) -> Result<(i32, String), String> {
    let mut best: Option<(i32, &str)> = None;
    let mut invalid = 0;
    let mut first_error: Option<(&str, &str)> = None;
    for m in &decision.metrics {
        match (&m.error, m.replicas) {
            (None, Some(replicas)) => {
                if best.is_none_or(|(b, _)| b == 0 || replicas > b) {
                    best = Some((replicas, &m.description));
                }
            }
            (error, _) => {
                invalid += 1;
                first_error.get_or_insert((reason_of(m), error.as_deref().unwrap_or("no proposal")));
            }
        }
    }
    for m in &decision.metrics {
        if let Some(error) = &m.error {
            decision.events.push(Event {
                warning: true,
                reason: reason_of(m).into(),
                message: error.clone(),
            });
        }
    }
    let total = decision.metrics.len();
    let replicas = best.map_or(0, |(r, _)| r);
    if let Some((reason, error)) = first_error
        && (invalid >= total || replicas < current)
    {
        conditions::set(
            conds,
            SCALING_ACTIVE,
            false,
            reason,
            format!("the HPA was unable to compute the replica count: {error}"),
            now,
        );
        return Err(format!(
            "invalid metrics ({invalid} invalid out of {total}), first error is: {error}"
        ));
    }
    let description = best.map_or_else(String::new, |(_, d)| d.to_string());
    conditions::set(
        conds,
        SCALING_ACTIVE,
        true,
        "ValidMetricFound",
        format!("the HPA was able to successfully calculate a replica count from {description}"),
        now,
    );
    Ok((replicas, description))
}

fn reason_of(m: &MetricOutcome) -> &'static str {
    match m.source {
        Some(MetricSourceType::Resource) | None => "FailedGetResourceMetric",
        Some(MetricSourceType::ContainerResource) => "FailedGetContainerResourceMetric",
        Some(MetricSourceType::Pods) => "FailedGetPodsMetric",
        Some(MetricSourceType::Object) => "FailedGetObjectMetric",
        Some(MetricSourceType::External) => "FailedGetExternalMetric",
        Some(MetricSourceType::Prometheus) => "FailedGetPrometheusMetric",
        Some(MetricSourceType::Unknown) => "InvalidMetricSourceType",
    }
}

fn milli(q: &Option<Quantity>, field: &str) -> Result<Option<i64>, String> {
    q.as_ref()
        .map(|q| ferroscale_api::quantity::milli_value(&q.0).map_err(|e| format!("{field}: {e}")))
        .transpose()
}

fn value_status(value: Option<i64>, average: Option<i64>, utilization: Option<i32>) -> MetricValueStatus {
    MetricValueStatus {
        value: value.map(|v| Quantity(format_milli(v))),
        average_value: average.map(|v| Quantity(format_milli(v))),
        average_utilization: utilization,
    }
}

fn empty_status(type_: MetricSourceType) -> MetricStatus {
    MetricStatus {
        type_,
        resource: None,
        container_resource: None,
        pods: None,
        object: None,
        external: None,
        prometheus: None,
    }
}

/// Computes one metric's proposal and status. Failures are reported in the outcome.
fn compute_metric(ctx: &Context, spec: &MetricSpec, scale: &Scale, gathered: Option<&Gathered>) -> MetricOutcome {
    let tag = spec.type_.as_str();
    let mut outcome = MetricOutcome {
        source: Some(spec.type_),
        ..MetricOutcome::default()
    };
    let result = (|| -> Result<(Proposal, MetricStatus, String), String> {
        let gathered = gathered.ok_or_else(|| "no samples were gathered for this metric".to_string())?;
        let current = scale.spec_replicas;
        let mut status = empty_status(spec.type_);
        match spec.type_ {
            MetricSourceType::Unknown => Err("unknown metric source type".into()),
            MetricSourceType::Resource | MetricSourceType::ContainerResource => {
                let (name, container, target) = match (spec.type_, &spec.resource, &spec.container_resource) {
                    (MetricSourceType::Resource, Some(r), _) => (r.name.as_str(), None, &r.target),
                    (_, _, Some(c)) if spec.type_ == MetricSourceType::ContainerResource => {
                        (c.name.as_str(), Some(c.container.as_str()), &c.target)
                    }
                    _ => {
                        return Err(format!(
                            "metric type {tag} has no {} member",
                            if spec.type_ == MetricSourceType::ContainerResource {
                                "containerResource"
                            } else {
                                "resource"
                            }
                        ));
                    }
                };
                let samples = match gathered {
                    Ok(MetricValues::PerPod(s)) => s,
                    Ok(_) => return Err("internal error: gathered values are not per-pod samples".into()),
                    Err(e) => {
                        let kind = if target.average_value.is_some() {
                            "usage"
                        } else {
                            "utilization"
                        };
                        return Err(format!(
                            "failed to get {name} {kind}: unable to get metrics for resource {name}: {e}"
                        ));
                    }
                };
                let (proposal, description) = if let Some(avg) = milli(&target.average_value, "target.averageValue")? {
                    let p = calculate::average_value(ctx, current, avg, name == "cpu", samples)
                        .map_err(|e| format!("failed to get {name} usage: {e}"))?;
                    (p, format!("{name} resource"))
                } else if let Some(percent) = target.average_utilization {
                    let p = calculate::resource_utilization(ctx, current, percent, name, container, samples)
                        .map_err(|e| format!("failed to get {name} utilization: {e}"))?;
                    let what = if container.is_some() {
                        "container resource"
                    } else {
                        "resource"
                    };
                    (p, format!("{name} {what} utilization (percentage of request)"))
                } else {
                    return Err("invalid resource metric source: neither an average utilization target nor an average value (usage) target was set".into());
                };
                let current = value_status(None, Some(proposal.value), proposal.utilization);
                match container {
                    None => {
                        status.resource = Some(ResourceMetricStatus {
                            name: name.into(),
                            current,
                        })
                    }
                    Some(c) => {
                        status.container_resource = Some(ContainerResourceMetricStatus {
                            name: name.into(),
                            container: c.into(),
                            current,
                        })
                    }
                }
                Ok((proposal, status, description))
            }
            MetricSourceType::Pods => {
                let pods = spec.pods.as_ref().ok_or("metric type Pods has no pods member")?;
                let name = &pods.metric.name;
                let samples = match gathered {
                    Ok(MetricValues::PerPod(s)) => s,
                    Ok(_) => return Err("internal error: gathered values are not per-pod samples".into()),
                    Err(e) => return Err(format!("unable to get metric {name}: {e}")),
                };
                let target = milli(&pods.target.average_value, "target.averageValue")?
                    .ok_or("pods metric target has no averageValue")?;
                let p = calculate::average_value(ctx, current, target, false, samples)?;
                status.pods = Some(PodsMetricStatus {
                    metric: pods.metric.clone(),
                    current: value_status(None, Some(p.value), None),
                });
                Ok((p, status, format!("pods metric {name}")))
            }
            MetricSourceType::Object => {
                let object = spec.object.as_ref().ok_or("metric type Object has no object member")?;
                let name = &object.metric.name;
                let reference = &object.described_object;
                let value = match gathered {
                    Ok(MetricValues::Object(v)) => *v,
                    Ok(_) => return Err("internal error: gathered values are not an object metric".into()),
                    Err(e) => {
                        return Err(format!(
                            "unable to get metric {name}: {e} on {} {}",
                            reference.kind, reference.name
                        ));
                    }
                };
                let (p, current) = whole_or_average(ctx, scale, &object.target, value, TargetChoice::ByType)?;
                status.object = Some(ObjectMetricStatus {
                    described_object: reference.clone(),
                    metric: object.metric.clone(),
                    current,
                });
                Ok((p, status, format!("{} metric {name}", reference.kind)))
            }
            MetricSourceType::External => {
                let external = spec
                    .external
                    .as_ref()
                    .ok_or("metric type External has no external member")?;
                let name = &external.metric.name;
                let values = match gathered {
                    Ok(MetricValues::External(v)) => v,
                    Ok(_) => return Err("internal error: gathered values are not an external metric".into()),
                    Err(e) => return Err(format!("unable to get external metric {name}: {e}")),
                };
                if values.is_empty() {
                    return Err(format!(
                        "unable to get external metric {name}: no metrics returned from external metrics API"
                    ));
                }
                let sum = external_sum(values, external.target.average_value.is_some());
                let (p, current) = whole_or_average(ctx, scale, &external.target, sum, TargetChoice::AverageFirst)?;
                status.external = Some(ExternalMetricStatus {
                    metric: external.metric.clone(),
                    current,
                });
                Ok((p, status, format!("external metric {name}")))
            }
            MetricSourceType::Prometheus => {
                let prometheus = spec
                    .prometheus
                    .as_ref()
                    .ok_or("metric type Prometheus has no prometheus member")?;
                let value = match gathered {
                    Ok(MetricValues::Prometheus(v)) => *v,
                    Ok(_) => return Err("internal error: gathered values are not a Prometheus result".into()),
                    Err(e) => return Err(format!("unable to query Prometheus: {e}")),
                };
                let (p, current) = whole_or_average(ctx, scale, &prometheus.target, value, TargetChoice::AverageFirst)?;
                status.prometheus = Some(PrometheusMetricStatus {
                    query: prometheus.query.clone(),
                    current,
                });
                Ok((p, status, format!("prometheus query {}", prometheus.query)))
            }
        }
    })();
    match result {
        Ok((proposal, status, description)) => {
            outcome.replicas = Some(proposal.replicas);
            outcome.status = Some(status);
            outcome.description = description;
            outcome.proposal = Some(proposal);
        }
        Err(error) => {
            outcome.description = format!("{tag} metric");
            outcome.error = Some(error);
        }
    }
    outcome
}

/// Sums an External metric's series as the HPA does: a Value target caps positive overflow at
/// i64::MAX; an AverageValue target treats any negative running sum as overflow.
fn external_sum(values: &[i64], average: bool) -> i64 {
    if !average {
        return calculate::sum_capped(values);
    }
    let mut total = 0i64;
    for v in values {
        total = total.wrapping_add(*v);
        if total < 0 {
            return i64::MAX;
        }
    }
    total
}

/// Which field of an Object, External or Prometheus target counts. The HPA reads Object
/// targets by their type, and External targets by which value is set, AverageValue first.
#[derive(Clone, Copy, PartialEq, Eq)]
enum TargetChoice {
    ByType,
    AverageFirst,
}

/// Object, External and Prometheus targets: Value against the whole, AverageValue per replica.
fn whole_or_average(
    ctx: &Context,
    scale: &Scale,
    target: &MetricTarget,
    value: i64,
    choice: TargetChoice,
) -> Result<(Proposal, MetricValueStatus), String> {
    let value_target = milli(&target.value, "target.value")?;
    let average_target = milli(&target.average_value, "target.averageValue")?;
    let (use_value, use_average) = match choice {
        TargetChoice::ByType => (
            value_target.filter(|_| target.type_ == MetricTargetType::Value),
            average_target.filter(|_| target.type_ == MetricTargetType::AverageValue),
        ),
        TargetChoice::AverageFirst => (value_target.filter(|_| average_target.is_none()), average_target),
    };
    if let Some(t) = use_value {
        let p = calculate::whole_value(ctx, scale.spec_replicas, t, value)?;
        let status = value_status(Some(p.value), None, None);
        return Ok((p, status));
    }
    if let Some(t) = use_average {
        let p = calculate::average_of_whole(ctx, scale.status_replicas, t, value);
        let status = value_status(None, Some(p.value), None);
        return Ok((p, status));
    }
    Err("invalid metric source: neither a value target nor an average value target was set".into())
}

/// `cpu: 50%/80%, 20/15 (avg)`: each metric's current value against its target, as
/// `kubectl get hpa` prints them.
pub fn targets_summary(specs: &[MetricSpec], outcomes: &[MetricOutcome]) -> String {
    let unknown = "<unknown>".to_string();
    let q = |q: &Option<Quantity>| q.as_ref().map_or_else(|| unknown.clone(), |q| q.0.clone());
    let mut parts = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let current = outcomes.get(i).and_then(|o| o.status.as_ref());
        let part = match spec.type_ {
            MetricSourceType::Resource | MetricSourceType::ContainerResource => {
                let (name, target) = match (&spec.resource, &spec.container_resource) {
                    (Some(r), _) => (r.name.clone(), &r.target),
                    (_, Some(c)) => (format!("{}/{}", c.container, c.name), &c.target),
                    _ => continue,
                };
                let value = current.and_then(|s| {
                    s.resource
                        .as_ref()
                        .map(|r| &r.current)
                        .or(s.container_resource.as_ref().map(|c| &c.current))
                });
                match (target.average_value.as_ref(), target.average_utilization) {
                    (Some(avg), _) => format!(
                        "{name}: {}/{}",
                        value.map_or_else(|| unknown.clone(), |v| q(&v.average_value)),
                        avg.0
                    ),
                    (None, Some(u)) => {
                        let cur = value
                            .and_then(|v| v.average_utilization)
                            .map_or_else(|| unknown.clone(), |p| format!("{p}%"));
                        format!("{name}: {cur}/{u}%")
                    }
                    _ => format!("{name}: {unknown}"),
                }
            }
            _ => {
                let (target, value) = match spec.type_ {
                    MetricSourceType::Pods => (
                        spec.pods.as_ref().map(|p| &p.target),
                        current.and_then(|s| s.pods.as_ref()).map(|p| &p.current),
                    ),
                    MetricSourceType::Object => (
                        spec.object.as_ref().map(|o| &o.target),
                        current.and_then(|s| s.object.as_ref()).map(|o| &o.current),
                    ),
                    MetricSourceType::External => (
                        spec.external.as_ref().map(|e| &e.target),
                        current.and_then(|s| s.external.as_ref()).map(|e| &e.current),
                    ),
                    _ => (
                        spec.prometheus.as_ref().map(|p| &p.target),
                        current.and_then(|s| s.prometheus.as_ref()).map(|p| &p.current),
                    ),
                };
                let Some(target) = target else { continue };
                match (&target.value, &target.average_value) {
                    (Some(v), _) if target.type_ == MetricTargetType::Value => {
                        format!("{}/{}", value.map_or_else(|| unknown.clone(), |c| q(&c.value)), v.0)
                    }
                    (_, Some(avg)) => {
                        let suffix = if spec.type_ == MetricSourceType::Pods {
                            ""
                        } else {
                            " (avg)"
                        };
                        format!(
                            "{}/{}{suffix}",
                            value.map_or_else(|| unknown.clone(), |c| q(&c.average_value)),
                            avg.0
                        )
                    }
                    _ => unknown.clone(),
                }
            }
        };
        parts.push(part);
    }
    if parts.len() > 4 {
        let more = parts.len() - 4;
        parts.truncate(4);
        return format!("{} + {more} more...", parts.join(", "));
    }
    parts.join(", ")
}
