//! The prediction stage: a Prometheus metric forecast from its own history, so the target is
//! scaled before the load arrives. The history is read afresh at every evaluation over a window
//! that depends only on the time and the spec ([`range`]), so the operator keeps no state of its
//! own and a restart changes no forecast.
//!
//! Each model is judged by its error over the last season (or, for LinearRegression, the last
//! window): every point there is forecast from the data `lookAhead` before it, as the live
//! forecast is, and the mean absolute error is taken in percent of the mean absolute value. A
//! forecast whose error is above `maxErrorPercent` is not used.

use std::time::Duration;

use ferroscale_api::quantity::{format_f64, to_milli};
use ferroscale_api::{AutoscalerCondition, ForecastStatus, MetricSpec, MetricTarget, Predictive, PredictiveModel};
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::calculate::{self, Context};
use crate::conditions;
use crate::metric::MetricOutcome;
use crate::pods::{ConditionStatus, PodInfo};
use crate::samples::{GatheredSeries, Series};
use crate::types::Scale;

/// The condition that says whether forecasts take part in the decision.
pub const PREDICTION_ACTIVE: &str = "PredictionActive";

/// The most points one history holds: past this, the step grows (a range query of Prometheus
/// returns at most 11,000 points, so the reader splits it; this bounds the work for a tenant).
pub const MAX_POINTS: u64 = 40_000;

/// The look-ahead when none is set and no pod's start-up can be measured.
pub const DEFAULT_LOOK_AHEAD: Duration = Duration::from_secs(60);

/// The range a predictive metric's history is read over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub start: Timestamp,
    pub end: Timestamp,
    pub step: Duration,
}

/// The history to read at `now`: `history` back from the last whole step, at the sync period
/// (or coarser, to stay within [`MAX_POINTS`]). Aligned to the step, so two evaluations in the
/// same step (a restart, a new leader) read the same points.
pub fn range(predictive: &Predictive, sync_period: Duration, now: Timestamp) -> Range {
    let history = predictive.history_or_default().as_secs().max(1);
    let step = sync_period.as_secs().max(1).max(history.div_ceil(MAX_POINTS));
    let end = now.as_second() - now.as_second().rem_euclid(step as i64);
    let start = end - history as i64;
    Range {
        start: Timestamp::from_second(start).unwrap_or(Timestamp::UNIX_EPOCH),
        end: Timestamp::from_second(end).unwrap_or(now),
        step: Duration::from_secs(step),
    }
}

/// The history to read at `now` for each of `metrics` that is read (`read[i]`) and predictive.
pub fn history_reads(
    metrics: &[MetricSpec],
    read: &[bool],
    sync_period: Duration,
    now: Timestamp,
) -> Vec<Option<Range>> {
    metrics
        .iter()
        .zip(read)
        .map(|(m, read)| {
            let predictive = m.prometheus.as_ref()?.predictive.as_ref()?;
            read.then(|| range(predictive, sync_period, now))
        })
        .collect()
}

/// How far ahead to forecast: the spec's lookAhead, else the target's measured pod start-up
/// time (the median, over its ready pods, of start to Ready), at least one step.
pub fn look_ahead(predictive: &Predictive, pods: &[PodInfo], step: Duration) -> Duration {
    let set = predictive
        .look_ahead
        .as_deref()
        .and_then(|t| ferroscale_api::duration::parse(t).ok())
        .filter(|d| !d.is_zero());
    set.unwrap_or_else(|| measured_start_up(pods).unwrap_or(DEFAULT_LOOK_AHEAD))
        .max(step)
}

/// The median time from a pod's start to its Ready transition, over the ready pods.
pub fn measured_start_up(pods: &[PodInfo]) -> Option<Duration> {
    let mut times: Vec<i64> = pods
        .iter()
        .filter_map(|p| {
            let ready = p.ready?;
            (ready.status == ConditionStatus::True).then_some(())?;
            let seconds = ready.last_transition?.as_second() - p.start_time?.as_second();
            (seconds >= 0).then_some(seconds)
        })
        .collect();
    if times.is_empty() {
        return None;
    }
    times.sort_unstable();
    Some(Duration::from_secs(times[times.len() / 2] as u64))
}

/// A forecast and how it was made.
#[derive(Debug, Clone, PartialEq)]
pub struct Forecast {
    pub model: PredictiveModel,
    /// The forecast value, in the metric's units.
    pub value: f64,
    /// The time it is forecast for.
    pub at: Timestamp,
    /// The model's error over the last season or window, in percent.
    pub error_percent: f64,
    /// The history it came from: first and last point, and how many points.
    pub from: Timestamp,
    pub to: Timestamp,
    pub points: usize,
    /// For HoltWinters, the smoothing parameters chosen (level, trend, season).
    pub parameters: Option<(f64, f64, f64)>,
}

/// Why no forecast could be made from the history.
#[derive(Debug, Clone, PartialEq)]
pub enum NoForecast {
    /// The history could not be read; the metric is reactive only.
    HistoryUnavailable(String),
    /// Fewer points than the model needs.
    NotEnoughHistory { have: usize, need: usize },
}

impl NoForecast {
    pub fn reason(&self) -> &'static str {
        match self {
            NoForecast::HistoryUnavailable(_) => "HistoryUnavailable",
            NoForecast::NotEnoughHistory { .. } => "NotEnoughHistory",
        }
    }

    pub fn message(&self) -> String {
        match self {
            NoForecast::HistoryUnavailable(e) => format!("the history could not be read: {e}"),
            NoForecast::NotEnoughHistory { have, need } => {
                format!("the history holds {have} points; the model needs {need}")
            }
        }
    }
}

/// The values on a regular grid of `step` from the first point up to `end`, a missing step
/// carrying the value before it.
fn regular(series: &Series, end: Timestamp) -> (Vec<f64>, Timestamp) {
    let step = series.step.as_secs().max(1) as i64;
    let Some(first) = series.points.first().map(|(t, _)| t.as_second()) else {
        return (Vec::new(), end);
    };
    let last = end.as_second().max(first);
    let n = ((last - first) / step + 1) as usize;
    let mut grid: Vec<Option<f64>> = vec![None; n];
    for (t, v) in &series.points {
        let i = (t.as_second() - first + step / 2).div_euclid(step);
        if (0..n as i64).contains(&i) && v.is_finite() {
            grid[i as usize] = Some(*v);
        }
    }
    // Trailing steps with no point yet (the newest scrape not in) are dropped, not invented.
    while grid.last().is_some_and(Option::is_none) {
        grid.pop();
    }
    let mut values = Vec::with_capacity(grid.len());
    let mut carried = 0.0;
    for v in grid {
        carried = v.unwrap_or(carried);
        values.push(carried);
    }
    let to = Timestamp::from_second(first + (values.len().max(1) as i64 - 1) * step).unwrap_or(end);
    (values, to)
}

/// The error of forecasts against actuals, in percent of the actuals' mean absolute value.
fn error_percent(pairs: impl Iterator<Item = (f64, f64)>) -> f64 {
    let (mut error, mut size, mut count) = (0.0, 0.0, 0);
    for (forecast, actual) in pairs {
        error += (forecast - actual).abs();
        size += actual.abs();
        count += 1;
    }
    relative_error(error, size, count)
}

/// `error` in percent of `size`, over `count` forecasts: none is an infinite error, and actuals
/// all zero are matched only by forecasts all zero.
fn relative_error(error: f64, size: f64, count: usize) -> f64 {
    match (count, size > 0.0) {
        (0, _) => f64::INFINITY,
        (_, true) => 100.0 * error / size,
        (_, false) if error == 0.0 => 0.0,
        _ => f64::INFINITY,
    }
}

/// The forecast `h` steps past the last of `y`, and the error over the last `span` points.
struct Fit {
    value: f64,
    error: f64,
    parameters: Option<(f64, f64, f64)>,
}

fn seasonal_naive(y: &[f64], m: usize, h: usize) -> Option<Fit> {
    let n = y.len();
    if h > m || n < 2 * m {
        return None;
    }
    let value = y[n - 1 + h - m];
    let error = error_percent((n - m..n).map(|t| (y[t - m], y[t])));
    Some(Fit {
        value,
        error,
        parameters: None,
    })
}

/// Additive Holt-Winters with the given smoothing; the forecast `h` steps ahead of the last
/// point and the error of the `h`-ahead forecasts over the last season.
fn holt_winters_with(y: &[f64], m: usize, h: usize, (alpha, beta, gamma): (f64, f64, f64)) -> Fit {
    let n = y.len();
    let first: f64 = y[..m].iter().sum::<f64>() / m as f64;
    let second: f64 = y[m..2 * m].iter().sum::<f64>() / m as f64;
    // The first season's mean is its level at its middle: the season starts as that season
    // with the trend taken out, and the level is carried to its last point.
    let middle = (m as f64 - 1.0) / 2.0;
    let mut trend = (second - first) / m as f64;
    let mut level = first + trend * middle;
    let mut season: Vec<f64> = Vec::with_capacity(n);
    season.extend(
        y[..m]
            .iter()
            .enumerate()
            .map(|(i, v)| v - (first + trend * (i as f64 - middle))),
    );
    // The season of t + h is the latest known one at the same phase.
    let back = m * h.div_ceil(m).max(1);
    let last_season = n - m;
    let (mut error, mut size, mut count) = (0.0, 0.0, 0usize);
    let mut value = level;
    for t in m..n {
        let previous_level = level;
        level = alpha * (y[t] - season[t - m]) + (1.0 - alpha) * (level + trend);
        trend = beta * (level - previous_level) + (1.0 - beta) * trend;
        season.push(gamma * (y[t] - level) + (1.0 - gamma) * season[t - m]);
        let ahead = t + h;
        let forecast = level + h as f64 * trend + season[ahead - back];
        if ahead >= last_season && ahead < n {
            error += (forecast - y[ahead]).abs();
            size += y[ahead].abs();
            count += 1;
        }
        value = forecast;
    }
    Fit {
        value,
        error: relative_error(error, size, count),
        parameters: Some((alpha, beta, gamma)),
    }
}

/// Holt-Winters with the smoothing of a small fixed grid that has the least error over the
/// last season: deterministic, and no parameter for a user to get wrong.
fn holt_winters(y: &[f64], m: usize, h: usize) -> Option<Fit> {
    if m < 2 || y.len() < 2 * m {
        return None;
    }
    let mut best: Option<Fit> = None;
    for alpha in [0.2, 0.5, 0.8] {
        for beta in [0.0, 0.05] {
            for gamma in [0.1, 0.4] {
                let fit = holt_winters_with(y, m, h, (alpha, beta, gamma));
                if best.as_ref().is_none_or(|b| fit.error < b.error) {
                    best = Some(fit);
                }
            }
        }
    }
    best
}

/// A least-squares line over the `w` points ending at `end` (inclusive), evaluated `h` past it.
fn line_forecast(prefix: &Prefix, end: usize, w: usize, h: usize) -> f64 {
    let start = end + 1 - w;
    let count = w as f64;
    let (sx, sy, sxx, sxy) = prefix.sums(start, end + 1);
    let denominator = count * sxx - sx * sx;
    let slope = if denominator == 0.0 {
        0.0
    } else {
        (count * sxy - sx * sy) / denominator
    };
    let intercept = (sy - slope * sx) / count;
    intercept + slope * (end + h) as f64
}

/// Prefix sums of x, y, x² and xy, so each window's line costs O(1).
struct Prefix(Vec<[f64; 4]>);

impl Prefix {
    fn new(y: &[f64]) -> Self {
        let mut sums = Vec::with_capacity(y.len() + 1);
        let mut acc = [0.0; 4];
        sums.push(acc);
        for (i, v) in y.iter().enumerate() {
            let x = i as f64;
            acc = [acc[0] + x, acc[1] + v, acc[2] + x * x, acc[3] + x * v];
            sums.push(acc);
        }
        Self(sums)
    }

    fn sums(&self, from: usize, to: usize) -> (f64, f64, f64, f64) {
        let (a, b) = (self.0[from], self.0[to]);
        (b[0] - a[0], b[1] - a[1], b[2] - a[2], b[3] - a[3])
    }
}

fn linear_regression(y: &[f64], w: usize, h: usize) -> Option<Fit> {
    let n = y.len();
    if w < 2 || n < 2 * w + h {
        return None;
    }
    let prefix = Prefix::new(y);
    let value = line_forecast(&prefix, n - 1, w, h);
    let error = error_percent((n - w..n).map(|t| (line_forecast(&prefix, t - h, w, h), y[t])));
    Some(Fit {
        value,
        error,
        parameters: None,
    })
}

/// Forecasts the metric `look_ahead` past the end of the range from its history.
pub fn forecast(
    predictive: &Predictive,
    series: &Series,
    range: &Range,
    look_ahead: Duration,
) -> Result<Forecast, NoForecast> {
    let step = series.step.as_secs().max(1);
    let (y, to) = regular(series, range.end);
    let h = look_ahead.as_secs().div_ceil(step).max(1) as usize;
    let m = (predictive.season_or_default().as_secs() / step).max(1) as usize;
    let w = (predictive.window_or_default().as_secs() / step).max(2) as usize;
    let need = match predictive.model {
        PredictiveModel::SeasonalNaive | PredictiveModel::HoltWinters => 2 * m,
        PredictiveModel::LinearRegression => 2 * w + h,
    };
    let fit = match predictive.model {
        PredictiveModel::SeasonalNaive => seasonal_naive(&y, m, h),
        PredictiveModel::HoltWinters => holt_winters(&y, m, h),
        PredictiveModel::LinearRegression => linear_regression(&y, w, h),
    }
    .ok_or(NoForecast::NotEnoughHistory { have: y.len(), need })?;
    let from = series.points.first().map_or(range.start, |(t, _)| *t);
    let ahead = SignedDuration::from_secs((h as u64 * step) as i64);
    Ok(Forecast {
        model: predictive.model,
        value: fit.value,
        at: to.checked_add(ahead).unwrap_or(to),
        error_percent: fit.error,
        from,
        to,
        points: y.len(),
        parameters: fit.parameters,
    })
}

/// A predictive metric's forecast, and what became of it.
#[derive(Debug, Clone, PartialEq)]
pub struct ForecastOutcome {
    pub forecast: Result<Forecast, NoForecast>,
    pub look_ahead: Duration,
    /// The replica count the forecast proposes.
    pub replicas: Option<i32>,
    /// The reactive proposal it was weighed against.
    pub reactive: Option<i32>,
    /// Whether the forecast took part in the decision.
    pub used: bool,
    /// Why not, when it did not: a reason of [`NoForecast`], or ForecastErrorTooHigh.
    pub reason: Option<&'static str>,
    /// The error bound it was held to, in percent.
    pub max_error_percent: i32,
}

/// Forecasts each predictive metric that was read, and lets the forecast raise its proposal (or,
/// with `scaleDown: true`, decide it both ways). A metric whose history cannot be read, or whose
/// model errs too much, stays reactive.
pub fn apply(
    specs: &[MetricSpec],
    outcomes: &mut [MetricOutcome],
    series: &[GatheredSeries],
    ctx: &Context,
    scale: &Scale,
    sync_period: Duration,
) {
    for (i, (spec, outcome)) in specs.iter().zip(outcomes.iter_mut()).enumerate() {
        let Some(prometheus) = spec.prometheus.as_ref() else {
            continue;
        };
        let Some(predictive) = prometheus.predictive.as_ref() else {
            continue;
        };
        if outcome.skipped || outcome.error.is_some() {
            continue;
        }
        let range = range(predictive, sync_period, ctx.now);
        let look_ahead = look_ahead(predictive, ctx.pods, range.step);
        let forecast = match series.get(i).and_then(Option::as_ref) {
            None => Err(NoForecast::HistoryUnavailable("it was not read".into())),
            Some(Err(e)) => Err(NoForecast::HistoryUnavailable(e.clone())),
            Some(Ok(s)) => forecast(predictive, s, &range, look_ahead),
        };
        let bound = predictive.max_error_percent_or_default();
        let mut result = ForecastOutcome {
            forecast,
            look_ahead,
            replicas: None,
            reactive: outcome.replicas,
            used: false,
            reason: None,
            max_error_percent: bound,
        };
        match &result.forecast {
            Err(no) => result.reason = Some(no.reason()),
            Ok(f) if f.error_percent > f64::from(bound) => result.reason = Some("ForecastErrorTooHigh"),
            Ok(f) => {
                let value = to_milli(f.value);
                match forecast_replicas(&prometheus.target, value, ctx, scale) {
                    Some(predicted) => {
                        result.replicas = Some(predicted);
                        result.used = true;
                        let reactive = outcome.replicas.unwrap_or(0);
                        let decided = if predictive.scale_down == Some(true) {
                            predicted
                        } else {
                            predicted.max(reactive)
                        };
                        if decided != reactive {
                            outcome.description = format!("forecast of {}", outcome.description);
                        }
                        outcome.replicas = Some(decided);
                        // A forecast above the threshold wakes a target at zero ahead of the load.
                        if let Some(activation) = outcome.activation.as_mut() {
                            activation.active |= value > activation.threshold;
                        }
                    }
                    None => result.reason = Some("ForecastUnusable"),
                }
            }
        }
        outcome.forecast = Some(result);
    }
}

/// The replicas the forecast value needs: `ceil(value / target)` for an AverageValue target,
/// the ratio to the target times the ready pods for a Value target. No tolerance band: that
/// band keeps a measured value's noise from moving the count, while a forecast is where the
/// load is going, and it only ever raises the proposal unless `scaleDown` lets it lower it.
pub fn forecast_replicas(target: &MetricTarget, value: i64, ctx: &Context, scale: &Scale) -> Option<i32> {
    let milli = |q: &Option<Quantity>| {
        q.as_ref()
            .and_then(|q| ferroscale_api::quantity::milli_value(&q.0).ok())
            .filter(|t| *t > 0)
    };
    if let Some(average) = milli(&target.average_value) {
        return Some(calculate::ceil_replicas(value.max(0) as f64 / average as f64));
    }
    let whole = milli(&target.value)?;
    let ratio = value.max(0) as f64 / whole as f64;
    if scale.spec_replicas == 0 {
        return Some(calculate::ceil_replicas(ratio));
    }
    let ready = ctx.pods.iter().filter(|p| p.is_running_and_ready()).count();
    (ready > 0).then(|| calculate::ceil_replicas(ratio * ready as f64))
}

/// status.forecasts: each predictive metric's forecast, compactly.
pub fn to_status(outcomes: &[MetricOutcome]) -> Option<Vec<ForecastStatus>> {
    let list: Vec<ForecastStatus> = outcomes
        .iter()
        .enumerate()
        .filter_map(|(i, o)| {
            let f = o.forecast.as_ref()?;
            let made = f.forecast.as_ref().ok();
            Some(ForecastStatus {
                index: i as i32,
                value: made.map(|m| Quantity(format_f64(m.value))),
                time: made.map(|m| Time(m.at)),
                replicas: f.replicas,
                error_percent: made.map(|m| m.error_percent.min(1e6).round() as i32),
                used: f.used,
                reason: f.reason.map(str::to_string),
            })
        })
        .collect();
    (!list.is_empty()).then_some(list)
}

/// Sets PredictionActive when the spec has a predictive metric: True while a forecast is used,
/// False with the first reason otherwise; removed when the spec has none.
pub fn record(conds: &mut Vec<AutoscalerCondition>, specs: &[MetricSpec], outcomes: &[MetricOutcome], now: Timestamp) {
    let predictive = specs
        .iter()
        .any(|m| m.prometheus.as_ref().is_some_and(|p| p.predictive.is_some()));
    if !predictive {
        conds.retain(|c| c.type_ != PREDICTION_ACTIVE);
        return;
    }
    let forecasts: Vec<(usize, &ForecastOutcome)> = outcomes
        .iter()
        .enumerate()
        .filter_map(|(i, o)| Some((i, o.forecast.as_ref()?)))
        .collect();
    let describe = |(i, f): &(usize, &ForecastOutcome)| match &f.forecast {
        Ok(made) => format!(
            "metric {i}: {:?} forecasts {} in {}s (error {:.1}%, bound {}%){}",
            made.model,
            format_f64(made.value),
            f.look_ahead.as_secs(),
            made.error_percent,
            f.max_error_percent,
            f.replicas.map(|r| format!(", {r} replicas")).unwrap_or_default()
        ),
        Err(no) => format!("metric {i}: {}", no.message()),
    };
    match forecasts.iter().find(|(_, f)| f.used) {
        Some(_) => {
            let used: Vec<String> = forecasts.iter().filter(|(_, f)| f.used).map(describe).collect();
            conditions::set(conds, PREDICTION_ACTIVE, true, "ForecastUsed", used.join("; "), now);
        }
        None => {
            let (reason, message) = match forecasts.first() {
                Some(first) => (first.1.reason.unwrap_or("ForecastUnusable"), describe(first)),
                None => (
                    "NotForecast",
                    "no predictive metric was read at this evaluation".to_string(),
                ),
            };
            conditions::set(conds, PREDICTION_ACTIVE, false, reason, message, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn predictive(model: PredictiveModel) -> Predictive {
        Predictive {
            model,
            history: None,
            look_ahead: None,
            season: Some("100s".into()),
            window: None,
            max_error_percent: None,
            scale_down: None,
        }
    }

    fn series(values: &[f64]) -> (Series, Range) {
        let start = Timestamp::from_second(1_000_000).unwrap();
        let points: Vec<(Timestamp, f64)> = values
            .iter()
            .enumerate()
            .map(|(i, v)| (start + SignedDuration::from_secs(i as i64), *v))
            .collect();
        let end = points.last().unwrap().0;
        (
            Series {
                step: Duration::from_secs(1),
                points,
            },
            Range {
                start,
                end,
                step: Duration::from_secs(1),
            },
        )
    }

    fn seasonal(n: usize, m: usize, trend: f64) -> Vec<f64> {
        (0..n)
            .map(|i| 100.0 + trend * i as f64 + 40.0 * (2.0 * std::f64::consts::PI * (i % m) as f64 / m as f64).sin())
            .collect()
    }

    #[test]
    fn seasonal_naive_repeats_the_last_season() {
        let y = seasonal(300, 100, 0.0);
        let (s, r) = series(&y);
        let f = forecast(
            &predictive(PredictiveModel::SeasonalNaive),
            &s,
            &r,
            Duration::from_secs(10),
        )
        .unwrap();
        // Point 309 is at phase 9, as point 209 was.
        assert!((f.value - y[209]).abs() < 1e-9, "{f:?}");
        assert!(f.error_percent < 1e-9);
        assert_eq!(f.at, r.end + SignedDuration::from_secs(10));
        assert_eq!(f.points, 300);
    }

    #[test]
    fn holt_winters_follows_season_and_trend() {
        let y = seasonal(400, 100, 0.2);
        let (s, r) = series(&y);
        let f = forecast(
            &predictive(PredictiveModel::HoltWinters),
            &s,
            &r,
            Duration::from_secs(20),
        )
        .unwrap();
        let truth = 100.0 + 0.2 * 419.0 + 40.0 * (2.0 * std::f64::consts::PI * 19.0 / 100.0).sin();
        assert!(
            (f.value - truth).abs() < 2.0,
            "forecast {} truth {truth} {f:?}",
            f.value
        );
        assert!(f.error_percent < 2.0, "{}", f.error_percent);
        // Seasonal naive misses the trend by a season's worth of it (0.2 × 100 = 20).
        let naive = forecast(
            &predictive(PredictiveModel::SeasonalNaive),
            &s,
            &r,
            Duration::from_secs(20),
        )
        .unwrap();
        assert!((naive.value - truth).abs() > 15.0);
    }

    #[test]
    fn linear_regression_extends_a_ramp() {
        let y: Vec<f64> = (0..100).map(|i| 10.0 + 3.0 * i as f64).collect();
        let (s, r) = series(&y);
        let mut p = predictive(PredictiveModel::LinearRegression);
        p.season = None;
        p.window = Some("20s".into());
        let f = forecast(&p, &s, &r, Duration::from_secs(30)).unwrap();
        assert!((f.value - (10.0 + 3.0 * 129.0)).abs() < 1e-6, "{f:?}");
        assert!(f.error_percent < 1e-9);
    }

    #[test]
    fn noise_shows_as_error() {
        // A season of pure alternation that flips phase halfway: the last season is unlike
        // the one before, and the model says so.
        let mut y = seasonal(200, 100, 0.0);
        for v in &mut y[100..] {
            *v = 200.0 - *v;
        }
        let (s, r) = series(&y);
        let f = forecast(
            &predictive(PredictiveModel::SeasonalNaive),
            &s,
            &r,
            Duration::from_secs(5),
        )
        .unwrap();
        assert!(f.error_percent > 25.0, "{}", f.error_percent);
    }

    #[test]
    fn short_histories_are_refused() {
        let (s, r) = series(&seasonal(150, 100, 0.0));
        assert_eq!(
            forecast(
                &predictive(PredictiveModel::HoltWinters),
                &s,
                &r,
                Duration::from_secs(5)
            ),
            Err(NoForecast::NotEnoughHistory { have: 150, need: 200 })
        );
        let empty = Series {
            step: Duration::from_secs(1),
            points: Vec::new(),
        };
        assert!(
            forecast(
                &predictive(PredictiveModel::SeasonalNaive),
                &empty,
                &r,
                Duration::from_secs(5)
            )
            .is_err()
        );
    }

    #[test]
    fn gaps_carry_the_value_before_them() {
        let (mut s, r) = series(&seasonal(300, 100, 0.0));
        s.points.retain(|(t, _)| t.as_second() % 7 != 0);
        let f = forecast(
            &predictive(PredictiveModel::SeasonalNaive),
            &s,
            &r,
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(f.points, 300);
        assert!(f.error_percent < 5.0, "{}", f.error_percent);
    }

    #[test]
    fn the_range_depends_only_on_time_and_spec() {
        let mut p = predictive(PredictiveModel::HoltWinters);
        p.season = Some("24h".into());
        let at = |s: i64| Timestamp::from_second(s).unwrap();
        let a = range(&p, Duration::from_secs(15), at(1_800_000_007));
        let b = range(&p, Duration::from_secs(15), at(1_800_000_014));
        assert_eq!(a, b);
        assert_eq!(a.end, at(1_800_000_000));
        // Three days at 15 s would be 17,280 points: within the bound, the step stays.
        assert_eq!(a.step, Duration::from_secs(15));
        p.history = Some("720h".into());
        let long = range(&p, Duration::from_secs(15), at(1_800_000_007));
        assert_eq!(long.step, Duration::from_secs(65), "30 days in at most 40,000 points");
    }

    #[test]
    fn start_up_is_measured_from_ready_pods() {
        let start = Timestamp::from_second(1_000).unwrap();
        let pod = |ready_after: i64| {
            let mut p = PodInfo::running("p", start, Vec::new());
            if let Some(r) = p.ready.as_mut() {
                r.last_transition = Some(start + SignedDuration::from_secs(ready_after));
            }
            p
        };
        let pods = [pod(40), pod(90), pod(60)];
        assert_eq!(measured_start_up(&pods), Some(Duration::from_secs(60)));
        let p = predictive(PredictiveModel::SeasonalNaive);
        assert_eq!(look_ahead(&p, &pods, Duration::from_secs(15)), Duration::from_secs(60));
        assert_eq!(look_ahead(&p, &[], Duration::from_secs(15)), DEFAULT_LOOK_AHEAD);
        assert_eq!(
            look_ahead(&p, &[pod(0)], Duration::from_secs(15)),
            Duration::from_secs(15)
        );
    }
}
