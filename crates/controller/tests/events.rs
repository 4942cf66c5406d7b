//! Events: a repeat of the same occurrence joins its series; a new note is a new event.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use common::*;
use ferroscale_controller::events::{EventType, Recorder, Reporter};
use k8s_openapi::api::core::v1::ObjectReference;
use serde_json::json;

fn regarding() -> ObjectReference {
    ObjectReference {
        api_version: Some("ferroscale.dev/v1alpha1".into()),
        kind: Some("Autoscaler".into()),
        name: Some("web".into()),
        namespace: Some("shop".into()),
        uid: Some("uid-1".into()),
        ..ObjectReference::default()
    }
}

#[tokio::test]
async fn each_note_is_its_own_event_and_repeats_count_in_its_series() {
    let (client, log) = fake_api(|method, path, body| match method {
        "POST" if path.ends_with("/events") => (201, body.clone()),
        "PATCH" if path.contains("/events/") => (200, json!({"metadata": {"name": "x"}})),
        _ => status_error(404, "NotFound", "no route"),
    });
    let recorder = Recorder::new(
        client,
        Reporter {
            controller: "ferroscale-autoscaler".into(),
            instance: "ferroscale-1".into(),
        },
    );
    let target = regarding();
    for note in [
        "selector is required",
        "selector is required",
        "selector is required",
        "no metrics returned",
    ] {
        recorder
            .publish(
                &target,
                EventType::Warning,
                "Autoscale",
                "FailedComputeMetricsReplicas",
                note,
            )
            .await;
    }

    let created = log.find("POST", "/apis/events.k8s.io/v1/namespaces/shop/events");
    let notes: Vec<&str> = created.iter().map(|r| r.body["note"].as_str().unwrap()).collect();
    assert_eq!(
        notes,
        ["selector is required", "no metrics returned"],
        "a new note is a new event"
    );
    let first = &created[0].body;
    assert_eq!(first["type"], "Warning");
    assert_eq!(first["reason"], "FailedComputeMetricsReplicas");
    assert_eq!(first["regarding"]["uid"], "uid-1");
    assert_eq!(first["reportingController"], "ferroscale-autoscaler");
    assert_eq!(first["reportingInstance"], "ferroscale-1");

    let name = first["metadata"]["name"].as_str().unwrap();
    let series = log.find("PATCH", &format!("/events/{name}"));
    let counts: Vec<i64> = series
        .iter()
        .map(|r| r.body["series"]["count"].as_i64().unwrap())
        .collect();
    assert_eq!(
        counts,
        [2, 3],
        "repeats of the same note count in the first event's series"
    );
    assert!(
        series.iter().all(|r| r.body.get("note").is_none()),
        "a repeat keeps its own note"
    );
}

#[tokio::test]
async fn a_series_whose_event_expired_starts_a_new_event() {
    let (client, log) = fake_api(|method, path, body| match method {
        "POST" if path.ends_with("/events") => (201, body.clone()),
        "PATCH" => status_error(404, "NotFound", "events.events.k8s.io not found"),
        _ => status_error(404, "NotFound", "no route"),
    });
    let recorder = Recorder::new(
        client,
        Reporter {
            controller: "c".into(),
            instance: "i".into(),
        },
    );
    for _ in 0..2 {
        recorder
            .publish(
                &regarding(),
                EventType::Normal,
                "Autoscale",
                "SuccessfulRescale",
                "New size: 3",
            )
            .await;
    }
    assert_eq!(log.find("POST", "/events").len(), 2);
}
