//! Scaling ahead of the load, end to end: a schedule raises a PodSet's minimum at its start and
//! releases it at its end, a formula over two Prometheus series decides, and a predictive
//! metric scales up ahead of a ramp Prometheus has seen before.
//! Runs only with FERROSCALE_E2E_KUBECONFIG set (and Prometheus installed).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod support;

use std::time::Duration;

use anyhow::Result;
use ferroscale_api::{Autoscaler, PodSet};
use jiff::Timestamp;
use kube::Api;
use kube::api::PostParams;
use serde_json::{Value, json};
use support::*;

const CONVERGE: Duration = Duration::from_secs(180);

fn podset(app: &str, replicas: i32) -> Result<PodSet> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "ferroscale.dev/v1alpha1", "kind": "PodSet", "metadata": {"name": "web"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": app}},
                 "template": {"metadata": {"labels": {"app": app}},
                              "spec": {"terminationGracePeriodSeconds": 0,
                                       "containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10"}]}}}
    }))?)
}

fn autoscaler(spec: Value) -> Result<Autoscaler> {
    let mut spec = spec;
    spec["scaleTargetRef"] = json!({"apiVersion": "ferroscale.dev/v1alpha1", "kind": "PodSet", "name": "web"});
    Ok(serde_json::from_value(json!({
        "apiVersion": "ferroscale.dev/v1alpha1", "kind": "Autoscaler", "metadata": {"name": "web"}, "spec": spec
    }))?)
}

async fn replicas(podsets: &Api<PodSet>) -> Result<i32> {
    Ok(podsets
        .get_scale("web")
        .await?
        .spec
        .and_then(|s| s.replicas)
        .unwrap_or(0))
}

fn condition(a: &Autoscaler, type_: &str) -> Option<(String, String, String)> {
    a.status
        .as_ref()?
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == type_)
        .map(|c| {
            (
                c.status.clone(),
                c.reason.clone().unwrap_or_default(),
                c.message.clone().unwrap_or_default(),
            )
        })
}

#[tokio::test]
async fn a_schedule_raises_the_minimum_at_its_start_and_releases_it_at_its_end() -> Result<()> {
    let Some(s) = Driven::setup(
        "a_schedule_raises_the_minimum_at_its_start_and_releases_it_at_its_end",
        "ferroscale-e2e-schedule",
        5.0,
    )
    .await?
    else {
        return Ok(());
    };
    let podsets: Api<PodSet> = Api::namespaced(s.client.clone(), &s.ns.name);
    let autoscalers: Api<Autoscaler> = Api::namespaced(s.client.clone(), &s.ns.name);
    podsets
        .create(&PostParams::default(), &podset("e2e-schedule", 1)?)
        .await?;
    // The next whole minute on Tokyo's clock that is at least 20 s away; one minute long.
    let now = Timestamp::now();
    let start = Timestamp::from_second((now.as_second() + 20) / 60 * 60 + 60)?;
    let tokyo = start.to_zoned(jiff::tz::TimeZone::get("Asia/Tokyo")?);
    let cron = format!("{} {} * * *", tokyo.minute(), tokyo.hour());
    autoscalers
        .create(
            &PostParams::default(),
            &autoscaler(json!({
                "minReplicas": 1, "maxReplicas": 5,
                "schedules": [{"name": "launch", "start": cron, "end": "1m", "timezone": "Asia/Tokyo", "minReplicas": 3}],
                "metrics": [{"type": "Prometheus", "prometheus": {"query": "sum(e2e_load)", "target": {"type": "AverageValue", "averageValue": "10"}}}],
                "behavior": {"scaleDown": {"stabilizationWindowSeconds": 5}}
            }))?,
        )
        .await?;
    let _operator = s.operator()?;
    wait_for("the first evaluation", CONVERGE, || async {
        let a = autoscalers.get_status("web").await?;
        Ok(condition(&a, "ScheduleActive").filter(|c| c.0 == "False").map(|_| ()))
    })
    .await?;
    // Before the start the metric (5 against 10 per replica) keeps one replica.
    while Timestamp::now() < start - jiff::SignedDuration::from_secs(3) {
        assert_eq!(replicas(&podsets).await?, 1, "raised before the schedule's start");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    wait_for(
        "the schedule to raise the PodSet to 3",
        Duration::from_secs(30),
        || async { Ok((replicas(&podsets).await? == 3).then_some(())) },
    )
    .await?;
    let raised_at = Timestamp::now();
    assert!(raised_at >= start, "raised at {raised_at}, before {start}");
    let a = autoscalers.get_status("web").await?;
    let (status, reason, message) = condition(&a, "ScheduleActive").unwrap();
    assert_eq!((status.as_str(), reason.as_str()), ("True", "ScheduleActive"));
    assert!(message.contains("launch"), "{message}");
    // At its end the minimum is released and the metric takes the PodSet back to one.
    let end = start + jiff::SignedDuration::from_secs(60);
    wait_for(
        "the release at the schedule's end",
        Duration::from_secs(120),
        || async { Ok((replicas(&podsets).await? == 1).then_some(())) },
    )
    .await?;
    assert!(Timestamp::now() >= end, "released before the end at {end}");
    let a = autoscalers.get_status("web").await?;
    assert_eq!(condition(&a, "ScheduleActive").unwrap().1, "NoScheduleActive");
    Ok(())
}

#[tokio::test]
async fn a_formula_over_two_prometheus_series_decides() -> Result<()> {
    let Some(s) = Driven::setup(
        "a_formula_over_two_prometheus_series_decides",
        "ferroscale-e2e-formula",
        20.0,
    )
    .await?
    else {
        return Ok(());
    };
    let podsets: Api<PodSet> = Api::namespaced(s.client.clone(), &s.ns.name);
    let autoscalers: Api<Autoscaler> = Api::namespaced(s.client.clone(), &s.ns.name);
    podsets
        .create(&PostParams::default(), &podset("e2e-formula", 1)?)
        .await?;
    // `pair` is two series, 1 and 2: its sum is 3.
    autoscalers
        .create(
            &PostParams::default(),
            &autoscaler(json!({
                "minReplicas": 1, "maxReplicas": 8,
                "metrics": [
                    {"name": "load", "type": "Prometheus", "prometheus": {"query": "sum(e2e_load)", "target": {"type": "Value", "value": "1"}}},
                    {"name": "floor", "type": "Prometheus", "prometheus": {"query": "sum(pair)", "target": {"type": "Value", "value": "1"}}}
                ],
                "formula": {"expression": "max(load / 10, floor)", "target": {"type": "AverageValue", "averageValue": "1"}},
                "behavior": {"scaleDown": {"stabilizationWindowSeconds": 5}}
            }))?,
        )
        .await?;
    let _operator = s.operator()?;
    // load 20 → 2, floor 3: the formula says 3 (either metric alone, against its target of 1
    // on one replica, would say 20 or 3).
    wait_for("the formula's 3", CONVERGE, || async {
        Ok((replicas(&podsets).await? == 3).then_some(()))
    })
    .await?;
    let a = autoscalers.get_status("web").await?;
    let (_, reason, message) = condition(&a, "ScalingActive").unwrap();
    assert_eq!(reason, "ValidMetricFound");
    assert!(message.contains("formula max(load / 10, floor)"), "{message}");
    // load 70 → 7: now the load decides.
    s.exporter.set(70.0);
    wait_for("the formula's 7", CONVERGE, || async {
        Ok((replicas(&podsets).await? == 7).then_some(()))
    })
    .await?;
    Ok(())
}

/// The exporter's value by the wall clock: 5 for the first minute of every two, then 40.
fn square(now: Timestamp) -> f64 {
    if now.as_second().rem_euclid(120) < 60 {
        5.0
    } else {
        40.0
    }
}

#[tokio::test]
async fn a_predictive_metric_scales_up_ahead_of_a_ramp_prometheus_has_seen_before() -> Result<()> {
    let Some(s) = Driven::setup(
        "a_predictive_metric_scales_up_ahead_of_a_ramp_prometheus_has_seen_before",
        "ferroscale-e2e-predict",
        square(Timestamp::now()),
    )
    .await?
    else {
        return Ok(());
    };
    let exporter = s.exporter.clone();
    let driver = tokio::spawn(async move {
        loop {
            exporter.set(square(Timestamp::now()));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let podsets: Api<PodSet> = Api::namespaced(s.client.clone(), &s.ns.name);
    let autoscalers: Api<Autoscaler> = Api::namespaced(s.client.clone(), &s.ns.name);
    podsets
        .create(&PostParams::default(), &podset("e2e-predict", 1)?)
        .await?;
    autoscalers
        .create(
            &PostParams::default(),
            &autoscaler(json!({
                "minReplicas": 1, "maxReplicas": 6,
                "metrics": [{"type": "Prometheus", "prometheus": {
                    "query": "sum(e2e_load)", "target": {"type": "AverageValue", "averageValue": "10"},
                    "predictive": {"model": "SeasonalNaive", "season": "2m", "history": "4m", "lookAhead": "20s"}}}],
                "behavior": {"scaleDown": {"stabilizationWindowSeconds": 5}}
            }))?,
        )
        .await?;
    let _operator = s.operator()?;
    // Until Prometheus holds two seasons, the metric is reactive and says why.
    wait_for("the first evaluation", Duration::from_secs(60), || async {
        let a = autoscalers.get_status("web").await?;
        Ok(condition(&a, "PredictionActive").map(|c| c.1))
    })
    .await?;
    // Once it does, in a quiet minute after the reactive scale-down to 1, the PodSet goes to 4
    // before the load of 40 arrives.
    let deadline = std::time::Instant::now() + Duration::from_secs(540);
    let mut low_in_cycle = None;
    let ahead = loop {
        assert!(std::time::Instant::now() < deadline, "no scale-up ahead of the ramp");
        let second = Timestamp::now().as_second();
        let (cycle, phase) = (second.div_euclid(120), second.rem_euclid(120));
        let now = replicas(&podsets).await?;
        if phase < 60 && now == 1 {
            low_in_cycle = Some(cycle);
        }
        if phase < 58 && now >= 4 && low_in_cycle == Some(cycle) {
            break phase;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(
        ahead >= 30,
        "raised at second {ahead} of the quiet minute: too early for a 20s look-ahead"
    );
    let a = autoscalers.get_status("web").await?;
    let (status, reason, message) = condition(&a, "PredictionActive").unwrap();
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("True", "ForecastUsed"),
        "{message}"
    );
    let forecast = &a.status.as_ref().unwrap().forecasts.as_ref().unwrap()[0];
    assert!(forecast.used && forecast.replicas == Some(4), "{forecast:?}");
    driver.abort();
    Ok(())
}
