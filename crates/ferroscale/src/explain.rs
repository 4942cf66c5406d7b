//! `ferroscale explain`: replays one decision from a snapshot, and says why.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use ferroscale_api::quantity::{format_f64, format_milli};
use ferroscale_api::{MetricSourceType, MetricSpec, MetricTarget};
use ferroscale_autoscaler::predict::{ForecastOutcome, NoForecast};
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
    /// Which shard evaluates the Autoscaler, per operator deployment (Lease group) found.
    pub shards: Vec<ShardOwner>,
}

/// The shard of one operator deployment that evaluates the Autoscaler, read from its Leases.
#[derive(Debug, Clone)]
pub struct ShardOwner {
    /// The Lease group (the base Lease name) and the Leases' namespace.
    pub group: String,
    pub namespace: String,
    /// The live claim that owns the Autoscaler; None when no live Lease covers it (its shard's
    /// leader is down, or a reshard waits for an old Lease).
    pub claim: Option<ferroscale_controller::shard::Claim>,
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
    let series = gather::series(&snapshot.rest, &metrics);
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
        series: &series,
    };
    let decision = decide(&input);
    Replay {
        snapshot,
        decision,
        metrics,
        now,
        // A snapshot holds the pods that counted.
        pods_left_out: 0,
        shards: Vec::new(),
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
                   "skipped": m.skipped, "activation": activation, "fallback": m.fallback,
                   "forecast": m.forecast.as_ref().map(forecast_json)})
        })
        .collect();
    let events: Vec<Value> = d
        .events
        .iter()
        .map(
            |e| json!({"type": if e.warning { "Warning" } else { "Normal" }, "reason": e.reason, "message": e.message}),
        )
        .collect();
    let mut out = json!({
        "currentReplicas": d.current_replicas,
        "desiredReplicas": d.desired_replicas,
        "rescale": d.rescale,
        "metrics": metrics,
        "conditions": d.status.conditions.clone().unwrap_or_default(),
        "events": events,
        "status": d.status,
        "podsLeftOut": replay.pods_left_out,
        "bounds": {"minReplicas": d.bounds.min, "maxReplicas": d.bounds.max, "activeSchedules": d.bounds.active},
        "formula": d.formula.as_ref().map(|f| json!({
            "expression": f.expression,
            "inputs": f.inputs.iter().map(|i| json!({"name": i.name, "index": i.index, "value": i.value})).collect::<Vec<_>>(),
            "result": f.result,
            "replicas": f.outcome.replicas,
            "error": f.outcome.error,
            "fallback": f.outcome.fallback,
        })),
    });
    // Only a live explain reads the Leases; a snapshot's JSON stays as it was.
    if !replay.shards.is_empty() {
        out["shards"] = replay
            .shards
            .iter()
            .map(|o| {
                json!({"group": o.group, "namespace": o.namespace, "owner": o.claim.as_ref().map(|c| json!({
                    "index": c.shard.index, "shards": c.shard.count, "lease": c.lease, "holder": c.holder}))})
            })
            .collect();
    }
    out
}

fn forecast_json(f: &ForecastOutcome) -> Value {
    let made = f.forecast.as_ref().ok();
    json!({
        "model": made.map(|m| format!("{:?}", m.model)),
        "value": made.map(|m| m.value),
        "time": made.map(|m| m.at.to_string()),
        "lookAheadSeconds": f.look_ahead.as_secs(),
        "errorPercent": made.map(|m| m.error_percent),
        "maxErrorPercent": f.max_error_percent,
        "historyFrom": made.map(|m| m.from.to_string()),
        "historyTo": made.map(|m| m.to.to_string()),
        "historyPoints": made.map(|m| m.points),
        "replicas": f.replicas,
        "reactiveReplicas": f.reactive,
        "used": f.used,
        "reason": f.reason,
        "problem": f.forecast.as_ref().err().map(NoForecast::message),
    })
}

/// What a forecast said and whether it decided, for `-o text`.
fn forecast_text(f: &ForecastOutcome) -> Vec<String> {
    let mut lines = Vec::new();
    match &f.forecast {
        Ok(m) => {
            lines.push(format!(
                "forecast ({:?}, from {} points {} to {}): {} at {} ({}s ahead)",
                m.model,
                m.points,
                m.from,
                m.to,
                format_f64(m.value),
                m.at,
                f.look_ahead.as_secs()
            ));
            if let Some((alpha, beta, gamma)) = m.parameters {
                lines.push(format!(
                    "  smoothing chosen: level {alpha}, trend {beta}, season {gamma}"
                ));
            }
            lines.push(format!(
                "  model error over the last season or window: {:.1}% (bound {}%)",
                m.error_percent, f.max_error_percent
            ));
        }
        Err(no) => lines.push(format!("no forecast: {}", no.message())),
    }
    match (f.used, f.replicas, f.reactive) {
        (true, Some(predicted), Some(reactive)) => lines.push(format!(
            "  the forecast proposes {predicted} replicas, the reactive value {reactive}"
        )),
        (false, _, _) => lines.push(format!(
            "  not used ({}): the metric is reactive only",
            f.reason.unwrap_or("ForecastUnusable")
        )),
        _ => {}
    }
    lines
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

/// Which shard of an operator deployment evaluates the Autoscaler, in one line.
fn shard_text(owner: &ShardOwner) -> String {
    match &owner.claim {
        Some(claim) => format!(
            "Evaluated by shard {} of {} (Lease {}/{}, held by {})",
            claim.shard.index, claim.shard.count, owner.namespace, claim.lease, claim.holder
        ),
        None => format!(
            "Evaluated by no shard right now: no live Lease of group {} in {} covers it (its shard's leader is down, or a reshard waits for an old Lease to go)",
            owner.group, owner.namespace
        ),
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
    for owner in &replay.shards {
        let _ = writeln!(out, "  {}", shard_text(owner));
    }
    if !d.bounds.active.is_empty() {
        let _ = writeln!(
            out,
            "  Schedules active: {}; replicas between {} and {} while they are",
            d.bounds.active.join(", "),
            d.bounds.min,
            d.bounds.max
        );
    } else if a.spec.schedules.as_ref().is_some_and(|s| !s.is_empty()) {
        let names: Vec<&str> = a.spec.schedules.iter().flatten().map(|s| s.name.as_str()).collect();
        let _ = writeln!(out, "  Schedules: none active ({})", names.join(", "));
    }
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
            let why = if a.spec.formula.is_some() && d.current_replicas > 0 {
                "the formula does not use it"
            } else {
                "it needs pods, and the target has none"
            };
            let _ = writeln!(out, "      not read: {why}");
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
        if let Some(f) = &m.forecast {
            for line in forecast_text(f) {
                let _ = writeln!(out, "      {line}");
            }
        }
        match (m.replicas, &d.formula) {
            (Some(r), Some(_)) => {
                let _ = writeln!(
                    out,
                    "      an input of the formula: its own proposal ({r} replicas) does not count"
                );
            }
            (Some(r), None) => {
                let _ = writeln!(out, "      proposes {r} replicas");
            }
            (None, _) => {}
        }
    }
    if let Some(f) = &d.formula {
        let _ = writeln!(out, "\nFormula {}:", f.expression);
        for input in &f.inputs {
            let value = input.value.map_or_else(|| "no value".to_string(), format_f64);
            let _ = writeln!(out, "  {} = {value}", input.name);
        }
        match (f.result, &f.outcome.error) {
            (Some(result), None) => {
                let target = a
                    .spec
                    .formula
                    .as_ref()
                    .map(|f| target_text(&f.target))
                    .unwrap_or_default();
                let _ = writeln!(out, "  result {} against {target}", format_f64(result));
                for note in f.outcome.proposal.iter().flat_map(|p| &p.notes) {
                    let _ = writeln!(out, "  {note}");
                }
            }
            (_, Some(error)) => {
                let _ = writeln!(out, "  could not be computed: {error}");
                if let Some(r) = f.outcome.fallback {
                    let _ = writeln!(out, "  the inputs' fallback applies: proposes {r} replicas");
                }
            }
            (None, None) => {}
        }
        if let Some(r) = f.outcome.replicas {
            let _ = writeln!(out, "  proposes {r} replicas");
        }
    }
    if let Some(proposal) = d.proposal {
        let _ = writeln!(out, "\nDecision:");
        if d.formula.is_some() {
            let _ = writeln!(out, "  the formula proposes {proposal} replicas");
        } else {
            let _ = writeln!(
                out,
                "  the metrics propose {proposal} replicas (the largest proposal counts)"
            );
        }
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
