//! What an evaluation derives from the spec alone, once per spec change: the problems that stop
//! it, the parsed formula and the parsed schedules. The controller keeps one per Autoscaler
//! generation; callers that evaluate once (`explain`, tests) let [`crate::decide`] build it.

use ferroscale_api::AutoscalerSpec;

use crate::formula::{self, Expr};
use crate::schedule::CompiledSchedule;

/// A spec, checked and parsed.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// Every problem that stops an evaluation, naming its field; None for a valid spec.
    pub problems: Option<String>,
    pub formula: Option<Expr>,
    /// The metrics the formula reads, by index ([`Expr::metrics`]), found once.
    pub formula_reads: Vec<usize>,
    pub schedules: Vec<CompiledSchedule>,
}

impl Compiled {
    /// Checks and parses `spec`.
    pub fn of(spec: &AutoscalerSpec) -> Self {
        let mut problems: Vec<String> = crate::gates::validation_problems(spec);
        let mut schedules = Vec::new();
        for (i, schedule) in spec.schedules.iter().flatten().enumerate() {
            match CompiledSchedule::new(schedule, &format!("spec.schedules[{i}]")) {
                Ok(s) => schedules.push(s),
                Err(errors) => problems.extend(errors.into_iter().map(|(path, message)| format!("{path}: {message}"))),
            }
        }
        let formula = spec.formula.as_ref().and_then(|f| {
            let names: Vec<Option<String>> = spec.metrics.iter().flatten().map(|m| m.name.clone()).collect();
            formula::parse(&f.expression, &names)
                .map_err(|e| problems.push(format!("spec.formula.expression: {e}")))
                .ok()
        });
        Self {
            problems: (!problems.is_empty()).then(|| problems.join("; ")),
            formula_reads: formula.as_ref().map(Expr::metrics).unwrap_or_default(),
            formula,
            schedules,
        }
    }

    /// Which of the spec's metrics the decision counts: with a formula, those it reads; else all.
    pub fn counts_metric(&self, index: usize) -> bool {
        self.formula.is_none() || self.formula_reads.contains(&index)
    }
}
