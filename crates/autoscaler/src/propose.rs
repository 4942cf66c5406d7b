//! The metric stage: each metric's proposal (the fallback's, for a metric failing long enough;
//! zero when no metric is active and the target may go to zero), combined into one.

use ferroscale_api::AutoscalerCondition;

use crate::calculate::Context;
use crate::combine::combine;
use crate::compiled::Compiled;
use crate::conditions::{self, SCALING_ACTIVE};
use crate::failures::{self, Failures};
use crate::formula;
use crate::gates::Gate;
use crate::metric::{MetricOutcome, compute_metric, effective_metrics};
use crate::pods::Readiness;
use crate::predict;
use crate::selector::scale_selector;
use crate::settings::sync_period;
use crate::types::{Decision, Event, Input, Path};
use crate::zero;

/// Each metric's proposal (the fallback's, for a metric failing long enough; zero when no
/// metric is active and the target may go to zero), combined: the largest valid one, or why
/// there is none. Records the metrics' failures and which fallbacks apply.
pub fn proposal(
    input: &Input,
    compiled: &Compiled,
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
            if (*gate == Gate::Zero && !m.reads_without_pods()) || !compiled.counts_metric(i) {
                MetricOutcome::skipped(m)
            } else {
                compute_metric(&ctx, m, scale, input.metrics.get(i))
            }
        })
        .collect();
    predict::apply(
        &specs,
        &mut decision.metrics,
        input.series,
        &ctx,
        scale,
        sync_period(spec, settings),
    );
    failures.update(&decision.metrics, now);
    *fallbacks = failures::apply(&specs, &mut decision.metrics, failures, now);
    // With a formula, its one outcome stands for the metrics in the combination.
    if let (Some(formula), Some(expr)) = (&spec.formula, &compiled.formula) {
        let mut outcome = formula::evaluate(
            formula,
            expr,
            &compiled.formula_reads,
            &specs,
            &decision.metrics,
            &ctx,
            scale,
        );
        if zero::enabled(spec) {
            zero::activate(std::slice::from_mut(&mut outcome.outcome));
        }
        let counted = [outcome.outcome.clone()];
        decision.formula = Some(outcome);
        let reported: Vec<&MetricOutcome> = decision.metrics.iter().chain(&counted).collect();
        return combine(
            &counted,
            &reported,
            &mut decision.events,
            conds,
            scale.spec_replicas,
            now,
        );
    }
    if zero::enabled(spec) {
        zero::activate(&mut decision.metrics);
    }
    let reported: Vec<&MetricOutcome> = decision.metrics.iter().collect();
    combine(
        &decision.metrics,
        &reported,
        &mut decision.events,
        conds,
        scale.spec_replicas,
        now,
    )
}
