//! Each metric's replica proposal, computed as the HPA's replica calculator does: the usage
//! ratio against the target, a tolerance band around 1.0, and a second, conservative pass when
//! pods are missing samples or not ready.

use ferroscale_api::quantity::format_milli;
use jiff::Timestamp;

use crate::pods::{Group, PodInfo, Readiness, group, index_samples};
use crate::samples::PodSample;

/// How far the usage ratio may stray below and above 1.0 without a change of scale.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerances {
    pub down: f64,
    pub up: f64,
}

impl Tolerances {
    /// Within `[1 - down, 1 + up]`.
    pub fn contains(&self, ratio: f64) -> bool {
        (1.0 - self.down) <= ratio && ratio <= (1.0 + self.up)
    }
}

/// What a calculation may read besides its samples.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub pods: &'a [PodInfo],
    pub now: Timestamp,
    pub readiness: Readiness,
    pub tolerances: Tolerances,
}

/// One metric's result: the replica count it proposes and the value it observed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Proposal {
    pub replicas: i32,
    /// Milli-units; averaged over pods for per-pod metrics.
    pub value: i64,
    /// Percent of requests, for utilization targets.
    pub utilization: Option<i32>,
    /// How the pods were counted, for per-pod metrics.
    pub pods: Option<PodAccount>,
    /// What decided the number, in words, for `explain`.
    pub notes: Vec<String>,
}

/// How the pods of a per-pod metric were counted.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PodAccount {
    pub ready: usize,
    pub unready: Vec<String>,
    pub missing: Vec<String>,
    pub ignored: Vec<String>,
    /// The usage ratio of the first pass, over the pods with trusted samples.
    pub ratio: f64,
    /// The ratio after counting missing and unready pods conservatively, when it was needed.
    pub rebalanced_ratio: Option<f64>,
}

/// `int32(math.Ceil(x))`, saturating instead of overflowing.
pub fn ceil_replicas(x: f64) -> i32 {
    x.ceil() as i32
}

/// How a per-pod metric compares with its target.
enum PerPodTarget {
    /// Percent of the pods' requests (Resource and ContainerResource metrics); `requests[i]`
    /// belongs to `pods[i]`.
    Utilization { percent: i32, requests: Vec<i64> },
    /// An average value per pod (Pods metrics, and resource metrics with AverageValue targets).
    AverageValue(i64),
}

/// The values a ratio is computed over: one per pod (None when left out), and the values of
/// samples naming no known pod.
struct Values<'a> {
    by_pod: Vec<Option<i64>>,
    extraneous: &'a [i64],
}

impl Values<'_> {
    fn len(&self) -> usize {
        self.by_pod.iter().flatten().count() + self.extraneous.len()
    }
}

impl PerPodTarget {
    /// The usage ratio, the current value (average, milli), and utilization.
    fn ratio(&self, values: &Values) -> Result<(f64, i64, Option<i32>), String> {
        match self {
            Self::Utilization { percent, requests } => {
                let (mut used, mut requested, mut counted) = (0i64, 0i64, 0i64);
                // Samples of pods outside the selection have no request and do not count.
                for (value, request) in values.by_pod.iter().zip(requests) {
                    if let Some(value) = value {
                        used = used.wrapping_add(*value);
                        requested = requested.wrapping_add(*request);
                        counted += 1;
                    }
                }
                if requested == 0 {
                    return Err("no metrics returned matched known pods".into());
                }
                let utilization = (used.wrapping_mul(100) / requested) as i32;
                Ok((
                    f64::from(utilization) / f64::from(*percent),
                    used / counted,
                    Some(utilization),
                ))
            }
            Self::AverageValue(target) => {
                let total = values
                    .by_pod
                    .iter()
                    .flatten()
                    .chain(values.extraneous)
                    .fold(0i64, |acc, v| acc.wrapping_add(*v));
                let average = total / values.len() as i64;
                Ok((average as f64 / *target as f64, average, None))
            }
        }
    }

    /// What missing pod `i` is assumed to use when the metric is below target.
    fn fallback(&self, i: usize) -> i64 {
        match self {
            Self::Utilization { percent, requests } => {
                // All of its request, or the target when the target is above 100%.
                requests[i].wrapping_mul(i64::from((*percent).max(100))) / 100
            }
            Self::AverageValue(target) => *target,
        }
    }
}

/// A Resource or ContainerResource metric with a Utilization target.
pub fn resource_utilization(
    ctx: &Context,
    current: i32,
    percent: i32,
    resource: &str,
    container: Option<&str>,
    samples: &[PodSample],
) -> Result<Proposal, String> {
    per_pod(ctx, current, resource == "cpu", samples, |pods| {
        let requests = pods
            .iter()
            .map(|pod| pod.request(resource, container))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PerPodTarget::Utilization { percent, requests })
    })
}

/// A Pods metric, or a resource metric with an AverageValue target (`is_cpu` for CPU).
pub fn average_value(
    ctx: &Context,
    current: i32,
    target: i64,
    is_cpu: bool,
    samples: &[PodSample],
) -> Result<Proposal, String> {
    per_pod(ctx, current, is_cpu, samples, |_| {
        Ok(PerPodTarget::AverageValue(target))
    })
}

fn per_pod(
    ctx: &Context,
    current: i32,
    is_cpu: bool,
    samples: &[PodSample],
    make_target: impl FnOnce(&[PodInfo]) -> Result<PerPodTarget, String>,
) -> Result<Proposal, String> {
    if ctx.pods.is_empty() {
        return Err("no pods returned by selector while calculating replica count".into());
    }
    let indexed = index_samples(ctx.pods, samples);
    let groups = group(ctx.pods, &indexed, is_cpu, ctx.now, ctx.readiness);
    let mut values = Values {
        by_pod: indexed
            .by_pod
            .iter()
            .zip(&groups)
            .map(|(s, g)| s.filter(|_| *g == Group::Ready).map(|s| s.value))
            .collect(),
        extraneous: &indexed.extraneous,
    };
    if values.len() == 0 {
        return Err("did not receive metrics for targeted pods (pods might be unready)".into());
    }
    let target = make_target(ctx.pods)?;
    let (ratio, value, utilization) = target.ratio(&values)?;
    let mut account = account(ctx.pods, &groups, ratio);
    let mut proposal = Proposal {
        replicas: current,
        value,
        utilization,
        pods: None,
        notes: Vec::new(),
    };

    let scale_up_with_unready = !account.unready.is_empty() && ratio > 1.0;
    if !scale_up_with_unready && account.missing.is_empty() {
        if ctx.tolerances.contains(ratio) {
            proposal.notes.push(within_note(ratio, ctx.tolerances, current));
        } else {
            proposal.replicas = ceil_replicas(ratio * account.ready as f64);
            proposal.notes.push(format!(
                "ratio {ratio:.3} × {} ready pods → {}",
                account.ready, proposal.replicas
            ));
        }
        proposal.pods = Some(account);
        return Ok(proposal);
    }

    // A second pass that assumes the worst for the pods it could not trust: missing pods use
    // the target on a scale-down and nothing on a scale-up; unready pods nothing on a scale-up.
    for (i, g) in groups.iter().enumerate() {
        match g {
            Group::Missing if ratio < 1.0 => values.by_pod[i] = Some(target.fallback(i)),
            Group::Missing if ratio > 1.0 => values.by_pod[i] = Some(0),
            Group::Unready if scale_up_with_unready => values.by_pod[i] = Some(0),
            _ => {}
        }
    }
    let (new_ratio, _, _) = target.ratio(&values)?;
    account.rebalanced_ratio = Some(new_ratio);
    proposal.pods = Some(account);
    if ctx.tolerances.contains(new_ratio) {
        proposal.notes.push(format!("after counting missing/unready pods conservatively the ratio is {new_ratio:.3}, inside the tolerance: keeps {current}"));
        return Ok(proposal);
    }
    if (ratio < 1.0 && new_ratio > 1.0) || (ratio > 1.0 && new_ratio < 1.0) {
        proposal.notes.push(format!("counting missing/unready pods conservatively would reverse the direction (ratio {ratio:.3} → {new_ratio:.3}): keeps {current}"));
        return Ok(proposal);
    }
    let counted = values.len();
    let replicas = ceil_replicas(new_ratio * counted as f64);
    if (new_ratio < 1.0 && replicas > current) || (new_ratio > 1.0 && replicas < current) {
        proposal.notes.push(format!(
            "{replicas} would move against the ratio {new_ratio:.3}: keeps {current}"
        ));
        return Ok(proposal);
    }
    proposal.replicas = replicas;
    proposal
        .notes
        .push(format!("rebalanced ratio {new_ratio:.3} × {counted} pods → {replicas}"));
    Ok(proposal)
}

fn account(pods: &[PodInfo], groups: &[Group], ratio: f64) -> PodAccount {
    let mut account = PodAccount {
        ratio,
        ..PodAccount::default()
    };
    for (pod, g) in pods.iter().zip(groups) {
        match g {
            Group::Ready => account.ready += 1,
            Group::Unready => account.unready.push(pod.name.to_string()),
            Group::Missing => account.missing.push(pod.name.to_string()),
            Group::Ignored => account.ignored.push(pod.name.to_string()),
        }
    }
    for names in [&mut account.unready, &mut account.missing, &mut account.ignored] {
        names.sort();
    }
    account
}

fn within_note(ratio: f64, t: Tolerances, current: i32) -> String {
    format!(
        "ratio {ratio:.3} is within the tolerance [{:.3}, {:.3}]: keeps {current}",
        1.0 - t.down,
        1.0 + t.up
    )
}

/// An Object, External or Prometheus metric with a Value target: the ratio of the whole value
/// to the target scales the ready pods; a target at zero replicas scales from the ratio alone.
pub fn whole_value(ctx: &Context, current: i32, target: i64, value: i64) -> Result<Proposal, String> {
    let ratio = value as f64 / target as f64;
    let mut proposal = Proposal {
        replicas: current,
        value,
        ..Proposal::default()
    };
    if current == 0 {
        proposal.replicas = ceil_replicas(ratio);
        proposal.notes.push(format!(
            "target at 0 replicas: ratio {ratio:.3} → {}",
            proposal.replicas
        ));
        return Ok(proposal);
    }
    if ctx.tolerances.contains(ratio) {
        proposal.notes.push(within_note(ratio, ctx.tolerances, current));
        return Ok(proposal);
    }
    if ctx.pods.is_empty() {
        return Err(
            "unable to calculate ready pods: no pods returned by selector while calculating replica count".into(),
        );
    }
    let ready = ctx.pods.iter().filter(|p| p.is_running_and_ready()).count();
    proposal.replicas = ceil_replicas(ratio * ready as f64);
    proposal
        .notes
        .push(format!("ratio {ratio:.3} × {ready} ready pods → {}", proposal.replicas));
    Ok(proposal)
}

/// An Object, External or Prometheus metric with an AverageValue target: the whole value
/// divided by the target, compared per replica of the target's status.
pub fn average_of_whole(ctx: &Context, status_replicas: i32, target: i64, value: i64) -> Proposal {
    let ratio = value as f64 / (target as f64 * f64::from(status_replicas));
    let mut proposal = Proposal {
        replicas: status_replicas,
        ..Proposal::default()
    };
    if ctx.tolerances.contains(ratio) {
        proposal.notes.push(within_note(ratio, ctx.tolerances, status_replicas));
    } else {
        proposal.replicas = ceil_replicas(value as f64 / target as f64);
        proposal.notes.push(format!(
            "{} ÷ target {} → {}",
            format_milli(value),
            format_milli(target),
            proposal.replicas
        ));
    }
    // At zero replicas (waking from zero) the average is over the one replica a wake-up gives.
    proposal.value = if value == i64::MAX {
        value
    } else {
        (value as f64 / f64::from(status_replicas.max(1))).ceil() as i64
    };
    proposal
}

/// The sum of an External metric's series, capped at i64::MAX as the HPA does.
pub fn sum_capped(values: &[i64]) -> i64 {
    let mut total = 0i64;
    for v in values {
        match total.checked_add(*v) {
            Some(t) => total = t,
            None if *v > 0 => return i64::MAX,
            None => total = total.wrapping_add(*v),
        }
    }
    total
}
