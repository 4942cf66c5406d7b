//! One evaluation of an Autoscaler, as the HPA controller's `reconcileAutoscaler` performs it
//! after reading the target's scale: inputs in, a [`Decision`] out, no I/O and no clock.

use ferroscale_api::*;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::behavior;
use crate::compiled::Compiled;
use crate::conditions::{self, ABLE_TO_SCALE, SCALING_ACTIVE, SCALING_LIMITED};
use crate::failures::{self, Failures};
use crate::gates::{self, Gate};
use crate::history::History;
use crate::hold;
use crate::metric::effective_metrics;
use crate::normalize::normalize;
use crate::pause::Pause;
use crate::predict;
use crate::propose::proposal;
use crate::schedule;
use crate::settings::{sync_period, tolerances};
use crate::status::{invalid_spec, targets_summary};
use crate::types::{Decision, Event, Input, Path};
use crate::zero;

/// Evaluates the Autoscaler once, in stages: the bounds of the active schedules
/// ([`schedule`]), the gates that stop or shortcut an evaluation ([`gates`]), each metric's
/// proposal with its forecast ([`crate::propose`], [`predict`]), their combination
/// ([`crate::combine`], or the [`crate::formula`]), stabilization and limits ([`behavior`]) over
/// the history in status ([`crate::history`]), what may hold the target ([`hold`]), and the status to
/// write.
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
    let owned;
    let compiled = match input.compiled {
        Some(compiled) => compiled,
        None => {
            owned = Compiled::of(spec);
            &owned
        }
    };
    let bounds = schedule::bounds(spec, &compiled.schedules, now);
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
        bounds,
        formula: None,
    };

    let gate = gates::check(compiled, &decision.bounds, status, current);
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
                    compiled,
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
            match proposal(
                input,
                compiled,
                &gate,
                &mut decision,
                &mut conds,
                &mut failures,
                &mut fallbacks,
            ) {
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
                    let (stabilized, limited) = normalize(
                        &history,
                        last_made,
                        rules.as_ref(),
                        current,
                        proposal,
                        &decision.bounds,
                        input,
                    );
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
    schedule::record(&mut conds, spec, &decision.bounds, now);
    predict::record(&mut conds, &metrics, &decision.metrics, now);
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
        forecasts: predict::to_status(&decision.metrics),
        ..AutoscalerStatus::default()
    };
    history.write(&mut decision.status);
    decision
}
