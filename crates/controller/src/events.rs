//! Recording Kubernetes events on the objects the controllers manage.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder};
use tracing::warn;

/// Records an event. Events are advisory: a failure to record one is logged and never fails
/// the reconcile.
pub async fn publish(
    recorder: &Recorder,
    object: &ObjectReference,
    type_: EventType,
    action: &str,
    reason: &str,
    note: &str,
) {
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(note.into()),
        action: action.into(),
        secondary: None,
    };
    if let Err(error) = recorder.publish(&event, object).await {
        warn!(%error, reason, "could not record an event");
    }
}
