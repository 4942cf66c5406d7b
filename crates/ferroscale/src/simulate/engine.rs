//! Runs the decision core against the modelled workload, one sync period at a time.

use std::time::Duration;

use ferroscale_api::quantity::{milli_value, to_milli};
use ferroscale_api::{AutoscalerStatus, MetricSourceType, MetricSpec, MetricTargetType};
use ferroscale_autoscaler::compiled::Compiled;
use ferroscale_autoscaler::pods::{ContainerRequests, PodPhase};
use ferroscale_autoscaler::predict;
use ferroscale_autoscaler::samples::{GatheredSeries, Series};
use ferroscale_autoscaler::{
    Decision, Gathered, Input, MetricValues, PodInfo, PodSample, Scale, Settings, decide, effective_metrics,
};
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use super::scenario::ScenarioSpec;
use ferroscale_autoscaler::history::Remembered;

/// The simulated clock starts here, so runs are reproducible.
const START: Timestamp = Timestamp::constant(1_767_225_600, 0); // 2026-01-01T00:00:00Z

/// One sync period.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    pub seconds: u64,
    pub load: f64,
    /// The first metric's current value, as status shows it.
    pub metric: String,
    pub ready: u32,
    /// Pods existing (ready or starting).
    pub pods: u32,
    pub desired: i32,
    /// Why the count changed, or what held it.
    pub reason: String,
}

/// Figures of merit for the whole run.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Pods × seconds: the cost.
    pub replica_seconds: u64,
    /// Seconds the ready pods' load was above the first metric's target: the pressure.
    pub seconds_over_target: u64,
    pub scale_ups: u32,
    pub scale_downs: u32,
    /// From the first sharp rise in load (20% or more within one sync period) to the first
    /// scale-up after it.
    pub seconds_to_first_scale_up: Option<u64>,
    pub max_replicas: i32,
}

/// A whole run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Run {
    pub timeline: Vec<Row>,
    pub summary: Summary,
}

struct Pod {
    name: String,
    created: Duration,
}

/// Simulates the scenario.
pub fn simulate(spec: &ScenarioSpec, settings: &Settings) -> Run {
    let settings = &Settings {
        sync_period: spec.sync_period,
        ..*settings
    };
    // An Autoscaler's own syncPeriodSeconds wins over the scenario's period, as in the operator.
    let step = ferroscale_autoscaler::settings::sync_period(&spec.autoscaler, settings);
    let request = milli_value(&spec.cpu_request).unwrap_or(500);
    let metrics = effective_metrics(&spec.autoscaler).into_owned();
    let compiled = Compiled::of(&spec.autoscaler);
    let mut pods: Vec<Pod> = (0..spec.initial_replicas)
        .map(|i| Pod {
            name: format!("pod-{i}"),
            created: Duration::ZERO,
        })
        .collect();
    // Initial pods are already Ready at the start.
    let ready_at = |p: &Pod| {
        if p.created.is_zero() {
            Duration::ZERO
        } else {
            p.created + spec.pod_startup
        }
    };
    let mut next_pod = spec.initial_replicas;
    let mut desired = spec.initial_replicas as i32;
    let mut status: Option<AutoscalerStatus> = None;
    let mut remembered: Option<Remembered> = None;
    let mut timeline = Vec::new();
    let mut ready_history: Vec<(Duration, u32)> = Vec::new();
    let (mut replica_seconds, mut over_target_seconds) = (0u64, 0u64);
    let (mut ups, mut downs) = (0u32, 0u32);
    let mut first_rise: Option<Duration> = None;
    let mut first_scale_up_after_rise: Option<Duration> = None;
    let mut previous_load: Option<f64> = None;
    // What Prometheus recorded of each metric, for the range queries of predictive metrics.
    let mut recorded: Vec<Vec<(Timestamp, f64)>> = vec![Vec::new(); metrics.len()];
    let report_from = spec.report_from.unwrap_or_default();
    let mut t = Duration::ZERO;
    while t <= spec.duration {
        let now = at(t);
        let reported = t >= report_from;
        let ready = pods.iter().filter(|p| ready_at(p) <= t).count() as u32;
        ready_history.push((t, ready));
        let load = spec.load.at(t);
        if reported && first_rise.is_none() && previous_load.is_some_and(|p| load > p * 1.2 && load > 0.0) {
            first_rise = Some(t);
        }
        previous_load = Some(load);

        // What the metrics report now describes the load and ready pods `metric_lag` ago.
        let seen_at = t.saturating_sub(spec.metric_lag);
        let seen_load = spec.load.at(seen_at);
        let seen_ready = ready_history
            .iter()
            .rev()
            .find(|(at, _)| *at <= seen_at)
            .map_or(ready, |(_, r)| *r)
            .max(1);
        let infos: Vec<PodInfo> = pods.iter().map(|p| pod_info(p, ready_at(p), t, request)).collect();
        let per_pod = seen_load / f64::from(seen_ready);
        let outage = spec.metric_outages.iter().any(|o| o.covers(t));
        let gathered: Vec<Gathered> = metrics
            .iter()
            .map(|m| match outage {
                true => Err("the metric source is down (a modelled outage)".into()),
                false => model_metric(m, &infos, per_pod, seen_load, spec.pod_capacity, request, now),
            })
            .collect();
        for (i, value) in gathered.iter().enumerate() {
            if let Ok(MetricValues::Prometheus(milli)) = value {
                recorded[i].push((now, *milli as f64 / 1000.0));
            }
        }
        let series: Vec<GatheredSeries> = metrics
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let predictive = m.prometheus.as_ref()?.predictive.as_ref()?;
                let range = predict::range(predictive, step, now);
                let history = &recorded[i];
                let from = history.partition_point(|(at, _)| *at < range.start);
                let to = history.partition_point(|(at, _)| *at <= range.end);
                Some(Ok(Series {
                    step: range.step,
                    points: history[from..to].to_vec(),
                }))
            })
            .collect();
        let scale = Scale {
            spec_replicas: desired,
            status_replicas: pods.len() as i32,
            selector: Some("app=simulated".into()),
        };
        let input = Input {
            spec: &spec.autoscaler,
            status: status.as_ref(),
            generation: Some(1),
            scale: &scale,
            pods: &infos,
            metrics: &gathered,
            now,
            settings,
            last_recommended: remembered.and_then(|r| r.last_made(status.as_ref())),
            annotations: None,
            conflict: None,
            pods_left_out: 0,
            compiled: Some(&compiled),
            series: &series,
        };
        let decision = decide(&input);
        remembered = Remembered::after(decision.proposal.is_some(), &decision.status, now);

        let actual_per_pod = load / f64::from(ready.max(1));
        if reported && over_target(metrics.first(), actual_per_pod, load, ready, spec.pod_capacity, request) {
            over_target_seconds += step.as_secs();
        }
        if reported {
            replica_seconds += pods.len() as u64 * step.as_secs();
        }
        let reason = reason(&decision);
        if decision.rescale {
            // During the warm-up the count follows; the figures do not count it.
            if reported && decision.desired_replicas > desired {
                ups += 1;
                if first_rise.is_some() && first_scale_up_after_rise.is_none() {
                    first_scale_up_after_rise = Some(t);
                }
            } else if reported {
                downs += 1;
            }
            desired = decision.desired_replicas;
        }
        let row = Row {
            seconds: t.as_secs(),
            load: (load * 100.0).round() / 100.0,
            metric: current_value(&decision),
            ready,
            pods: pods.len() as u32,
            desired,
            reason,
        };
        if reported {
            timeline.push(row);
        }
        status = Some(decision.status);

        // The workload controller catches up with the count before the next evaluation:
        // surplus pods go (starting ones first, then the newest), missing ones are created.
        while pods.len() > desired.max(0) as usize {
            let victim = pods
                .iter()
                .enumerate()
                .max_by_key(|(_, p)| (ready_at(p) > t, p.created))
                .map(|(i, _)| i)
                .unwrap_or(0);
            pods.remove(victim);
        }
        while pods.len() < desired.max(0) as usize {
            pods.push(Pod {
                name: format!("pod-{next_pod}"),
                created: t + Duration::from_millis(1),
            });
            next_pod += 1;
        }
        t += step;
    }
    let summary = Summary {
        replica_seconds,
        seconds_over_target: over_target_seconds,
        scale_ups: ups,
        scale_downs: downs,
        seconds_to_first_scale_up: match (first_rise, first_scale_up_after_rise) {
            (Some(rise), Some(up)) => Some(up.saturating_sub(rise).as_secs()),
            _ => None,
        },
        max_replicas: timeline.iter().map(|r| r.desired).max().unwrap_or(0),
    };
    Run { timeline, summary }
}

fn at(offset: Duration) -> Timestamp {
    START + SignedDuration::try_from(offset).unwrap_or(SignedDuration::ZERO)
}

/// A pod as the decision sees it at `t`: starting (Pending) until `ready_at`, then Running and
/// Ready since then. Initial pods have been running for an hour.
fn pod_info(pod: &Pod, ready_at: Duration, t: Duration, request: i64) -> PodInfo {
    let start = if pod.created.is_zero() {
        START - SignedDuration::from_secs(3600)
    } else {
        at(pod.created)
    };
    let mut info = PodInfo::running(
        pod.name.clone(),
        start,
        vec![ContainerRequests {
            name: "app".into(),
            requests: vec![("cpu".into(), request)],
        }],
    );
    if ready_at > t {
        info.phase = PodPhase::Pending;
        info.ready = None;
    } else if let Some(ready) = info.ready.as_mut() {
        ready.last_transition = Some(if pod.created.is_zero() { start } else { at(ready_at) });
    }
    info
}

/// What each metric type reports in the model: CPU in proportion to load per pod, a per-pod
/// metric equal to the load per pod, and whole-workload metrics equal to the load.
fn model_metric(
    metric: &MetricSpec,
    pods: &[PodInfo],
    per_pod: f64,
    load: f64,
    capacity: f64,
    request: i64,
    now: Timestamp,
) -> Gathered {
    let per_pod_samples = |value: i64| {
        let samples = pods
            .iter()
            .filter(|p| p.phase == PodPhase::Running)
            .map(|p| PodSample {
                pod: p.name.to_string(),
                value,
                timestamp: now,
                window: Duration::from_secs(30),
            })
            .collect();
        Ok(MetricValues::PerPod(samples))
    };
    match metric.type_ {
        MetricSourceType::Resource | MetricSourceType::ContainerResource => {
            let name = metric
                .resource
                .as_ref()
                .map(|r| r.name.as_str())
                .or(metric.container_resource.as_ref().map(|c| c.name.as_str()));
            if name != Some("cpu") {
                return Err("the simulation models cpu only among resources".into());
            }
            per_pod_samples((per_pod / capacity * request as f64).round() as i64)
        }
        MetricSourceType::Pods => per_pod_samples(to_milli(per_pod)),
        MetricSourceType::Object => Ok(MetricValues::Object(to_milli(load))),
        MetricSourceType::External => Ok(MetricValues::External(vec![to_milli(load)])),
        MetricSourceType::Prometheus => Ok(MetricValues::Prometheus(to_milli(load))),
        MetricSourceType::Unknown => Err("unknown metric source type".into()),
    }
}

/// Whether the actual load is above what the first metric's target allows.
fn over_target(metric: Option<&MetricSpec>, per_pod: f64, load: f64, ready: u32, capacity: f64, request: i64) -> bool {
    let Some(m) = metric else { return false };
    let target = m.target();
    let Some(target) = target else { return false };
    let milli = |q: &Option<k8s_openapi::apimachinery::pkg::api::resource::Quantity>| {
        q.as_ref()
            .and_then(|q| milli_value(&q.0).ok())
            .map(|v| v as f64 / 1000.0)
    };
    match m.type_ {
        MetricSourceType::Resource | MetricSourceType::ContainerResource => {
            match (target.average_utilization, milli(&target.average_value)) {
                (_, Some(avg)) => per_pod / capacity * request as f64 / 1000.0 > avg,
                (Some(percent), None) => per_pod / capacity * 100.0 > f64::from(percent),
                _ => false,
            }
        }
        MetricSourceType::Pods => milli(&target.average_value).is_some_and(|t| per_pod > t),
        _ => match (target.type_, milli(&target.value), milli(&target.average_value)) {
            (MetricTargetType::Value, Some(v), _) => load > v,
            (_, _, Some(avg)) => load / f64::from(ready.max(1)) > avg,
            _ => false,
        },
    }
}

fn current_value(d: &Decision) -> String {
    let Some(status) = d.metrics.first().and_then(|m| m.status.as_ref()) else {
        return d
            .metrics
            .first()
            .and_then(|m| m.error.as_ref())
            .map_or_else(|| "-".into(), |_| "<unknown>".into());
    };
    let current = status.current();
    match current {
        Some(c) => match (c.average_utilization, &c.average_value, &c.value) {
            (Some(u), _, _) => format!("{u}%"),
            (None, Some(avg), _) => avg.0.clone(),
            (None, None, Some(v)) => v.0.clone(),
            _ => "-".into(),
        },
        None => "-".into(),
    }
}

/// The reason for a change, or the condition that held the count.
fn reason(d: &Decision) -> String {
    if d.rescale {
        let direction = if d.desired_replicas > d.current_replicas {
            "scale up"
        } else {
            "scale down"
        };
        let limited = d
            .limit
            .as_ref()
            .filter(|l| l.reason != "DesiredWithinRange")
            .map(|l| format!(" (limited: {})", l.reason));
        return format!(
            "{direction} to {}: {}{}",
            d.desired_replicas,
            d.reason.as_deref().unwrap_or(""),
            limited.unwrap_or_default()
        );
    }
    match (&d.stabilization, &d.limit, d.proposal) {
        (Some(s), _, Some(p)) if s.replicas != p => format!("held by stabilization ({p} proposed)"),
        (_, Some(l), Some(p)) if l.reason != "DesiredWithinRange" && l.replicas != p => {
            format!("held: {} ({p} proposed)", l.reason)
        }
        _ => match d.metrics.iter().find_map(|m| m.error.as_ref()) {
            Some(error) => format!("metric error: {error}"),
            None => String::new(),
        },
    }
}
