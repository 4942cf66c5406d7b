//! `ferroscale simulate`: the decision core against a modelled workload over time, to try
//! ferroscale and tune `behavior` without a cluster.

pub mod engine;
pub mod scenario;

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result, anyhow};
use plotters::prelude::*;

use engine::Run;
use scenario::Scenario;
use serde::Serialize;

/// Loads the scenario file, or the built-in one.
pub fn load(path: Option<&Path>) -> Result<Scenario> {
    match path {
        None => Scenario::parse(scenario::BUILT_IN, "the built-in scenario"),
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
            Scenario::parse(&text, &p.display().to_string())
        }
    }
}

fn clock(seconds: u64) -> String {
    if seconds < 3600 {
        format!("{}:{:02}", seconds / 60, seconds % 60)
    } else {
        format!("{}:{:02}:{:02}", seconds / 3600, seconds / 60 % 60, seconds % 60)
    }
}

/// A run, and for an Autoscaler with a predictive metric the same scenario without prediction,
/// so the gain and its cost can be read side by side.
#[derive(Debug, Clone, Serialize)]
pub struct Compared {
    #[serde(flatten)]
    pub run: Run,
    /// The summary of the reactive run, when the scenario predicts.
    #[serde(skip_serializing_if = "Option::is_none", rename = "reactiveSummary")]
    pub reactive_summary: Option<engine::Summary>,
    #[serde(skip)]
    pub reactive: Option<Run>,
}

/// Runs the scenario, and again without prediction when it has a predictive metric.
pub fn run(spec: &scenario::ScenarioSpec, settings: &ferroscale_autoscaler::Settings) -> Compared {
    let run = engine::simulate(spec, settings);
    let mut reactive_spec = spec.clone();
    let mut predicts = false;
    for m in reactive_spec.autoscaler.metrics.iter_mut().flatten() {
        if let Some(p) = m.prometheus.as_mut() {
            predicts |= p.predictive.take().is_some();
        }
    }
    let reactive = predicts.then(|| engine::simulate(&reactive_spec, settings));
    Compared {
        run,
        reactive_summary: reactive.as_ref().map(|r| r.summary.clone()),
        reactive,
    }
}

/// Predictive against reactive: pressure and cost, and their change.
fn comparison(predictive: &engine::Summary, reactive: &engine::Summary) -> String {
    let change = |now: u64, before: u64| {
        if before == 0 {
            if now == 0 { "0%".to_string() } else { "new".to_string() }
        } else {
            format!("{:+.0}%", 100.0 * (now as f64 - before as f64) / before as f64)
        }
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nPredictive against reactive (the same scenario with prediction off):"
    );
    let _ = writeln!(
        out,
        "  {:<28} {:>12} {:>12} {:>8}",
        "", "reactive", "predictive", "change"
    );
    let _ = writeln!(
        out,
        "  {:<28} {:>12} {:>12} {:>8}",
        "pressure (s over target)",
        reactive.seconds_over_target,
        predictive.seconds_over_target,
        change(predictive.seconds_over_target, reactive.seconds_over_target)
    );
    let _ = writeln!(
        out,
        "  {:<28} {:>12} {:>12} {:>8}",
        "cost (replica-seconds)",
        reactive.replica_seconds,
        predictive.replica_seconds,
        change(predictive.replica_seconds, reactive.replica_seconds)
    );
    let _ = writeln!(
        out,
        "  {:<28} {:>12} {:>12}",
        "scale events (up/down)",
        format!("{}/{}", reactive.scale_ups, reactive.scale_downs),
        format!("{}/{}", predictive.scale_ups, predictive.scale_downs)
    );
    out
}

/// The timeline as a table: rows where something happened (plus one every five minutes), then
/// the summary, and the comparison with the reactive run when there is one.
pub fn table(name: &str, compared: &Compared) -> String {
    let run = &compared.run;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Simulation {name}: one row per sync period in which something changed (-o csv lists them all)\n"
    );
    let _ = writeln!(
        out,
        "{:>6} {:>8} {:>8} {:>6} {:>5} {:>8}  what happened",
        "time", "load", "metric", "ready", "pods", "desired"
    );
    let mut previous: Option<&engine::Row> = None;
    for row in &run.timeline {
        let changed = previous.is_none_or(|p| {
            p.ready != row.ready || p.pods != row.pods || p.desired != row.desired || p.reason != row.reason
        });
        if changed || row.seconds % 300 == 0 {
            let _ = writeln!(
                out,
                "{:>6} {:>8} {:>8} {:>6} {:>5} {:>8}  {}",
                clock(row.seconds),
                row.load,
                row.metric,
                row.ready,
                row.pods,
                row.desired,
                row.reason
            );
        }
        previous = Some(row);
    }
    let s = &run.summary;
    // The reported span: a warm-up before reportFrom is not in the timeline.
    let last = match (run.timeline.first(), run.timeline.last()) {
        (Some(first), Some(last)) => (last.seconds - first.seconds).max(1),
        _ => 1,
    };
    let _ = writeln!(out, "\nSummary:");
    let _ = writeln!(
        out,
        "  cost: {} replica-seconds ({:.1} replicas on average, {} at most)",
        s.replica_seconds,
        s.replica_seconds as f64 / last as f64,
        s.max_replicas
    );
    let _ = writeln!(
        out,
        "  pressure: {} s with the load above the target",
        s.seconds_over_target
    );
    let _ = writeln!(out, "  scale events: {} up, {} down", s.scale_ups, s.scale_downs);
    match s.seconds_to_first_scale_up {
        Some(secs) => {
            let _ = writeln!(out, "  first scale-up {secs} s after the load first rose sharply");
        }
        None => {
            let _ = writeln!(out, "  no scale-up followed a sharp rise in load");
        }
    }
    if let Some(reactive) = &compared.reactive_summary {
        out.push_str(&comparison(&run.summary, reactive));
    }
    out
}

/// The timeline as CSV, every sync period.
pub fn csv(run: &Run) -> String {
    let mut out = String::from("seconds,load,metric,ready,pods,desired,reason\n");
    for r in &run.timeline {
        let reason = r.reason.replace('"', "\"\"");
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},\"{reason}\"",
            r.seconds, r.load, r.metric, r.ready, r.pods, r.desired
        );
    }
    out
}

/// Draws load and replicas over time as an SVG file; with a reactive run beside a predictive
/// one, its ready replicas too.
pub fn plot(compared: &Compared, name: &str, path: &Path) -> Result<()> {
    let run = &compared.run;
    let first = run.timeline.first().map_or(0, |r| r.seconds);
    let span = run
        .timeline
        .last()
        .map_or(1, |r| r.seconds)
        .saturating_sub(first)
        .max(1);
    let (unit, unit_name) = if span > 3 * 3600 {
        (3600.0, "hours")
    } else {
        (60.0, "minutes")
    };
    let end = span as f64 / unit;
    let max_load = run.timeline.iter().map(|r| r.load).fold(1.0, f64::max) * 1.1;
    let max_replicas = run
        .timeline
        .iter()
        .map(|r| r.desired.max(r.pods as i32))
        .max()
        .unwrap_or(1)
        .max(1) as f64
        * 1.2;
    let root = SVGBackend::new(path, (960, 540)).into_drawing_area();
    let draw = |e: &dyn std::fmt::Display| anyhow!("drawing {}: {e}", path.display());
    root.fill(&WHITE).map_err(|e| draw(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("ferroscale simulate: {name}"), ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .right_y_label_area_size(60)
        .build_cartesian_2d(0.0..end, 0.0..max_load)
        .map_err(|e| draw(&e))?
        .set_secondary_coord(0.0..end, 0.0..max_replicas);
    chart
        .configure_mesh()
        .x_desc(unit_name)
        .y_desc("load")
        .draw()
        .map_err(|e| draw(&e))?;
    chart
        .configure_secondary_axes()
        .y_desc("replicas")
        .draw()
        .map_err(|e| draw(&e))?;
    let minutes = |r: &engine::Row| (r.seconds - first) as f64 / unit;
    chart
        .draw_series(LineSeries::new(
            run.timeline.iter().map(|r| (minutes(r), r.load)),
            BLUE.stroke_width(2),
        ))
        .map_err(|e| draw(&e))?
        .label("load")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLUE.stroke_width(2)));
    chart
        .draw_secondary_series(LineSeries::new(
            run.timeline.iter().map(|r| (minutes(r), f64::from(r.desired))),
            RED.stroke_width(2),
        ))
        .map_err(|e| draw(&e))?
        .label("desired replicas")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], RED.stroke_width(2)));
    chart
        .draw_secondary_series(LineSeries::new(
            run.timeline.iter().map(|r| (minutes(r), f64::from(r.ready))),
            GREEN.stroke_width(2),
        ))
        .map_err(|e| draw(&e))?
        .label(if compared.reactive.is_some() {
            "ready replicas (predictive)"
        } else {
            "ready replicas"
        })
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], GREEN.stroke_width(2)));
    if let Some(reactive) = &compared.reactive {
        let gray = RGBColor(120, 120, 120);
        chart
            .draw_secondary_series(LineSeries::new(
                reactive.timeline.iter().map(|r| (minutes(r), f64::from(r.ready))),
                gray.stroke_width(2),
            ))
            .map_err(|e| draw(&e))?
            .label("ready replicas (reactive)")
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], gray.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(|e| draw(&e))?;
    root.present().map_err(|e| draw(&e))?;
    Ok(())
}
