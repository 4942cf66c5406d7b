//! `ferroscale explain`: replays one decision from a snapshot, and says why.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use ferroscale_api::quantity::format_milli;
use ferroscale_api::{MetricSourceType, MetricSpec, MetricTarget};
use ferroscale_autoscaler::selector::scale_selector;
use ferroscale_autoscaler::{Decision, Input, Path as DecisionPath, Scale, Settings, decide, effective_metrics};
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::gather;
use crate::snapshot::{Complete, Snapshot};

/// A replayed decision with what it was computed from.
#[derive(Debug)]
pub struct Replay {
    pub snapshot: Complete,
    pub decision: Decision,
    pub metrics: Vec<MetricSpec>,
    pub now: Timestamp,
    /// Pods the selector matched that the target does not own (selectionStrategy OwnerReferences).
    pub pods_left_out: usize,
}

/// Loads the snapshot and decides.
pub fn replay(path: &Path, now: Timestamp, settings: &Settings) -> Result<Replay> {
    let snapshot = Snapshot::load(path)?;
    Ok(replay_snapshot(snapshot, now, settings))
}

/// Decides on an already loaded snapshot.
pub fn replay_snapshot(snapshot: Complete, now: Timestamp, settings: &Settings) -> Replay {
    let autoscaler = &snapshot.autoscaler;
    let namespace = autoscaler.metadata.namespace.as_deref();
    let scale = Scale::from(&snapshot.scale);
    let selector = scale_selector(&scale).ok();
    let pods = gather::pods(&snapshot.rest, namespace, selector.as_ref());
    let metrics = effective_metrics(&autoscaler.spec).into_owned();
    let gathered = gather::metrics(&snapshot.rest, &metrics, namespace, selector.as_ref());
    let input = Input {
        spec: &autoscaler.spec,
        status: autoscaler.status.as_ref(),
        generation: autoscaler.metadata.generation,
        scale: &scale,
        pods: &pods,
        metrics: &gathered,
        now,
        settings,
        // A snapshot says nothing of the controller's memory: it decides as a new leader would.
        last_recommended: None,
        annotations: autoscaler.metadata.annotations.as_ref(),
        conflict: None,
        pods_left_out: 0,
        compiled: None,
        series: &[],
    };
    let decision = decide(&input);
    Replay {
        snapshot,
        decision,
        metrics,
        now,
        // A snapshot holds the pods that counted.
        pods_left_out: 0,
    }
}

/// The `-o json` document of DESIGN.md.
pub fn to_json(replay: &Replay) -> Value {
    let d = &replay.decision;
    let metrics: Vec<Value> = d
        .metrics
        .iter()
        .map(|m| {
            let activation = m.activation.map(
                |a| json!({"value": format_milli(a.value), "threshold": format_milli(a.threshold), "active": a.active}),
            );
            json!({"replicas": m.replicas, "status": m.status, "error": m.error, "description": m.description,
                   "skipped": m.skipped, "activation": activation, "fallback": m.fallback})
        })
        .collect();
    let events: Vec<Value> = d
        .events
        .iter()
        .map(
            |e| json!({"type": if e.warning { "Warning" } else { "Normal" }, "reason": e.reason, "message": e.message}),
        )
        .collect();
    json!({
        "currentReplicas": d.current_replicas,
        "desiredReplicas": d.desired_replicas,
        "rescale": d.rescale,
        "metrics": metrics,
        "conditions": d.status.conditions.clone().unwrap_or_default(),
        "events": events,
        "status": d.status,
        "podsLeftOut": replay.pods_left_out,
    })
}

fn target_text(target: &MetricTarget) -> String {
    if let Some(v) = &target.average_value {
        return format!("an average of {} per replica", v.0);
    }
    if let Some(u) = target.average_utilization {
        return format!("{u}% of requests");
    }
    target
        .value
        .as_ref()
        .map_or_else(|| "no value".to_string(), |v| format!("a value of {}", v.0))
}

fn metric_title(spec: &MetricSpec) -> String {
    match spec.type_ {
        MetricSourceType::Resource => spec
            .resource
            .as_ref()
            .map_or_else(String::new, |r| format!("Resource {}", r.name)),
        MetricSourceType::ContainerResource => spec.container_resource.as_ref().map_or_else(String::new, |c| {
            format!("ContainerResource {} of container {}", c.name, c.container)
        }),
        MetricSourceType::Pods => spec
            .pods
            .as_ref()
            .map_or_else(String::new, |p| format!("Pods metric {}", p.metric.name)),
        MetricSourceType::Object => spec.object.as_ref().map_or_else(String::new, |o| {
            format!(
                "Object metric {} of {} {}",
                o.metric.name, o.described_object.kind, o.described_object.name
            )
        }),
        MetricSourceType::External => spec
            .external
            .as_ref()
            .map_or_else(String::new, |e| format!("External metric {}", e.metric.name)),
        MetricSourceType::Prometheus => spec
            .prometheus
            .as_ref()
            .map_or_else(String::new, |p| format!("Prometheus query {}", p.query)),
        MetricSourceType::Unknown => "a metric of unknown type".into(),
    }
}

fn list(names: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut text = names.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
    if names.len() > SHOWN {
        let _ = write!(text, " and {} more", names.len() - SHOWN);
    }
    text
}

/// The `-o text` report: what each metric measured and proposed, what shaped the final number,
/// and what happens next.
pub fn to_text(replay: &Replay) -> String {
    let d = &replay.decision;
    let a = &replay.snapshot.autoscaler;
    let mut out = String::new();
    let name = format!(
        "{}/{}",
        a.metadata.namespace.as_deref().unwrap_or("default"),
        a.metadata.name.as_deref().unwrap_or("?")
    );
    let target = &a.spec.scale_target_ref;
    let _ = writeln!(
        out,
        "Autoscaler {name} scales {} {} ({} replicas now, min {}, max {}) at {}",
        target.kind,
        target.name,
        d.current_replicas,
        a.spec.min_replicas_or_default(),
        a.spec.max_replicas,
        replay.now
    );
    let _ = writeln!(
        out,
        "  Tolerance: scale down below {:.3}, scale up above {:.3} (usage ratio)",
        1.0 - d.tolerances.down,
        1.0 + d.tolerances.up
    );
    if replay.pods_left_out > 0 {
        let _ = writeln!(
            out,
            "  Pods: {} matched the selector but are not owned by the target (selectionStrategy OwnerReferences): left out",
            replay.pods_left_out
        );
    }
    match d.path {
        DecisionPath::InvalidSpec => {
            let problems = d.events.first().map_or("", |e| e.message.as_str());
            let _ = writeln!(
                out,
                "\nThe spec is invalid: the controller reports InvalidSpec and scales nothing until it changes.\n  {problems}"
            );
        }
        DecisionPath::Disabled => {
            let _ = writeln!(
                out,
                "\nThe target has 0 replicas that ferroscale did not set: autoscaling is disabled (maintenance) until something scales it up."
            );
        }
        DecisionPath::OutOfRange => {
            let _ = writeln!(
                out,
                "\n{}: metrics are not read; the target goes straight to {}.",
                d.reason.as_deref().unwrap_or(""),
                d.desired_replicas
            );
        }
        _ => {}
    }
    if ferroscale_autoscaler::zero::set_by_us(
        a.status
            .as_ref()
            .and_then(|s| s.conditions.as_deref())
            .unwrap_or_default(),
    ) && d.current_replicas == 0
        && d.path != DecisionPath::InvalidSpec
    {
        let _ = writeln!(
            out,
            "\nThe target is at the zero ferroscale set: only Object, External and Prometheus metrics are read; it wakes when one is active."
        );
    }
    if !d.metrics.is_empty() {
        let _ = writeln!(out, "\nMetrics:");
    }
    let failures = ferroscale_autoscaler::failures::Failures::read(d.status.metric_failures.as_ref());
    for (i, (spec, m)) in replay.metrics.iter().zip(&d.metrics).enumerate() {
        let target = spec.target().map(target_text).unwrap_or_default();
        let _ = writeln!(out, "  [{i}] {} — target {target}", metric_title(spec));
        if m.skipped {
            let _ = writeln!(out, "      not read: it needs pods, and the target has none");
            continue;
        }
        if let Some(error) = &m.error {
            let _ = writeln!(out, "      could not be computed: {error}");
            if let Some(since) = failures.since(i) {
                let _ = writeln!(out, "      failing since {since}");
            }
            match (m.fallback, spec.fallback()) {
                (Some(r), _) => {
                    let _ = writeln!(out, "      its fallback applies: proposes {r} replicas");
                }
                (None, Some(f)) => {
                    let _ = writeln!(
                        out,
                        "      its fallback ({} replicas) applies once it has failed for {}s",
                        f.replicas,
                        f.failure_duration_seconds_or_default()
                    );
                }
                (None, None) => {}
            }
            continue;
        }
        // Activation matters to Autoscalers that may go to zero, or that set a threshold.
        let shown = a.spec.min_replicas_or_default() == 0 || spec.activation_threshold().is_some();
        if let Some(a) = m.activation.filter(|_| shown) {
            let (word, relation) = if a.active {
                ("active", "above")
            } else {
                ("inactive", "not above")
            };
            let _ = writeln!(
                out,
                "      {word}: {} is {relation} the activation threshold {}",
                format_milli(a.value),
                format_milli(a.threshold)
            );
        }
        if let Some(p) = &m.proposal {
            let current = match (p.utilization, &p.pods, &m.status) {
                (Some(u), _, _) => format!("{u}% of requests (an average of {} per pod)", format_milli(p.value)),
                (None, Some(_), _) => format!("an average of {} per pod", format_milli(p.value)),
                (None, None, Some(status)) => current_value(status),
                (None, None, None) => format_milli(p.value),
            };
            let _ = writeln!(out, "      measured {current}");
            if let Some(pods) = &p.pods {
                let _ = writeln!(out, "      pods: {} ready", pods.ready);
                if !pods.unready.is_empty() {
                    let _ = writeln!(
                        out,
                        "        {} unready or still initializing ({}): counted as using nothing when scaling up, left out otherwise",
                        pods.unready.len(),
                        list(&pods.unready)
                    );
                }
                if !pods.missing.is_empty() {
                    let _ = writeln!(
                        out,
                        "        {} without a sample ({}): counted as at target when scaling down, as using nothing when scaling up",
                        pods.missing.len(),
                        list(&pods.missing)
                    );
                }
                if !pods.ignored.is_empty() {
                    let _ = writeln!(
                        out,
                        "        {} terminating or failed ({}): ignored",
                        pods.ignored.len(),
                        list(&pods.ignored)
                    );
                }
            }
            for note in &p.notes {
                let _ = writeln!(out, "      {note}");
            }
        }
        if let Some(r) = m.replicas {
            let _ = writeln!(out, "      proposes {r} replicas");
        }
    }
    if let Some(proposal) = d.proposal {
        let _ = writeln!(out, "\nDecision:");
        let _ = writeln!(
            out,
            "  the metrics propose {proposal} replicas (the largest proposal counts)"
        );
        let active = d
            .metrics
            .iter()
            .any(|m| m.fallback.is_some() || m.activation.is_some_and(|x| x.active));
        if a.spec.min_replicas_or_default() == 0 && !active {
            let _ = writeln!(
                out,
                "  no metric is active: every metric proposes 0, so the target may go to zero"
            );
        }
        if let Some(s) = &d.stabilization {
            if s.replicas != proposal {
                let _ = writeln!(
                    out,
                    "  stabilization window: {} → {} ({})",
                    proposal, s.replicas, s.message
                );
            } else {
                let _ = writeln!(out, "  stabilization window: no change");
            }
        }
        if let Some(l) = &d.limit {
            let before = d.stabilization.as_ref().map_or(proposal, |s| s.replicas);
            if l.replicas != before {
                let _ = writeln!(
                    out,
                    "  limits: {} → {} ({}: {})",
                    before, l.replicas, l.reason, l.message
                );
            } else {
                let _ = writeln!(out, "  limits: none applied ({})", l.message);
            }
        }
    }
    let _ = writeln!(out, "\nConditions:");
    for c in d.status.conditions.iter().flatten() {
        let _ = writeln!(
            out,
            "  {}={} {}: {}",
            c.type_,
            c.status,
            c.reason.as_deref().unwrap_or(""),
            c.message.as_deref().unwrap_or("")
        );
    }
    let _ = writeln!(out, "\nNext:");
    if d.rescale {
        let _ = writeln!(
            out,
            "  the controller sets {} {} to {} replicas ({}).",
            target.kind,
            target.name,
            d.desired_replicas,
            d.reason.as_deref().unwrap_or("")
        );
    } else {
        let _ = writeln!(
            out,
            "  no change: {} {} stays at {} replicas.",
            target.kind, target.name, d.current_replicas
        );
    }
    for e in d.events.iter().filter(|e| e.warning) {
        let _ = writeln!(out, "  warning event {}: {}", e.reason, e.message);
    }
    let kept = d.status.recommendations.as_ref().map_or(0, Vec::len);
    let what = if !d.writes_status(replay.snapshot.autoscaler.status.as_ref()) {
        "status does not change, so nothing is written".to_string()
    } else if d.proposal.is_some() {
        format!("it writes status, recording this recommendation ({kept} kept for stabilization)")
    } else {
        format!("it writes status ({kept} recommendations kept for stabilization)")
    };
    let again = if d.path == DecisionPath::InvalidSpec {
        "when the spec changes"
    } else {
        "after one sync period"
    };
    let _ = writeln!(out, "  {what}; it evaluates again {again}.");
    out
}

fn current_value(status: &ferroscale_api::MetricStatus) -> String {
    match status.current() {
        Some(c) => match (&c.value, &c.average_value) {
            (Some(v), _) => format!("a value of {}", v.0),
            (None, Some(a)) => format!("an average of {} per replica", a.0),
            _ => "no value".into(),
        },
        None => "no value".into(),
    }
}
