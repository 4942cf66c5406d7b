//! One forecast per model over two days of history at a 15 s step (11,520 points): what a
//! predictive metric costs the operator at each evaluation, beside the range query.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use ferroscale_api::{Predictive, PredictiveModel};
use ferroscale_autoscaler::predict::{Range, forecast};
use ferroscale_autoscaler::samples::Series;
use jiff::{SignedDuration, Timestamp};

fn bench(c: &mut Criterion) {
    let end: Timestamp = "2026-01-03T00:00:00Z".parse().unwrap_or(Timestamp::UNIX_EPOCH);
    let n = 2 * 24 * 3600 / 15;
    let points = (0..n)
        .map(|i| {
            let t = end - SignedDuration::from_secs(15 * (n - 1 - i) as i64);
            let phase = std::f64::consts::TAU * (t.as_second() % 86_400) as f64 / 86_400.0;
            (t, 1000.0 + 800.0 * phase.sin() + (i % 7) as f64 * 10.0)
        })
        .collect();
    let series = Series {
        step: Duration::from_secs(15),
        points,
    };
    let range = Range {
        start: end - SignedDuration::from_hours(48),
        end,
        step: Duration::from_secs(15),
    };
    let mut group = c.benchmark_group("forecast over 11,520 points");
    for model in [
        PredictiveModel::SeasonalNaive,
        PredictiveModel::HoltWinters,
        PredictiveModel::LinearRegression,
    ] {
        let predictive = Predictive {
            model,
            history: Some("48h".into()),
            look_ahead: Some("2m".into()),
            season: (model != PredictiveModel::LinearRegression).then(|| "24h".into()),
            window: (model == PredictiveModel::LinearRegression).then(|| "1h".into()),
            max_error_percent: None,
            scale_down: None,
        };
        group.bench_with_input(
            BenchmarkId::from_parameter(format!("{model:?}")),
            &predictive,
            |b, p| {
                b.iter(|| black_box(forecast(p, &series, &range, Duration::from_secs(120))));
            },
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
