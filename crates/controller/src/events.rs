//! Recording Kubernetes events (`events.k8s.io/v1`) on the objects the controllers manage.
//!
//! An occurrence that repeats an earlier one — same object, type, reason *and* note — updates
//! that event's series (count, last seen) instead of creating another, as client-go's event
//! correlator does. An occurrence with a new note is a new event, so every event always says
//! what actually happened (kube's own recorder folds by reason alone and keeps the first note).

use std::collections::HashMap;
use std::sync::Mutex;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use tracing::warn;

pub use kube::runtime::events::EventType;

/// How long a repeat still joins the earlier event's series, as kube's recorder.
const SERIES_TTL: SignedDuration = SignedDuration::from_mins(6);
/// How often forgotten series are swept from memory.
const SWEEP_EVERY: SignedDuration = SignedDuration::from_mins(1);
/// The API server refuses a longer note.
const MAX_NOTE_BYTES: usize = 1024;

/// Who records: the controller's name and this process's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reporter {
    pub controller: String,
    pub instance: String,
}

/// What makes two occurrences the same event.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    uid: Option<String>,
    namespace: Option<String>,
    kind: Option<String>,
    name: Option<String>,
    warning: bool,
    action: String,
    reason: String,
    note: String,
}

#[derive(Debug, Clone)]
struct Series {
    event_name: String,
    count: i32,
    last: Timestamp,
}

#[derive(Debug, Default)]
struct Memory {
    series: HashMap<Key, Series>,
    swept: Option<Timestamp>,
}

/// Records events, remembering recent series.
pub struct Recorder {
    client: kube::Client,
    reporter: Reporter,
    memory: Mutex<Memory>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("reporter", &self.reporter)
            .finish_non_exhaustive()
    }
}

impl Recorder {
    pub fn new(client: kube::Client, reporter: Reporter) -> Self {
        Self {
            client,
            reporter,
            memory: Mutex::new(Memory::default()),
        }
    }

    /// Records one occurrence. Events are advisory: a failure is logged, never returned.
    pub async fn publish(&self, regarding: &ObjectReference, type_: EventType, action: &str, reason: &str, note: &str) {
        if let Err(error) = self.record(regarding, type_, action, reason, note).await {
            warn!(%error, reason, "could not record an event");
        }
    }

    async fn record(
        &self,
        regarding: &ObjectReference,
        type_: EventType,
        action: &str,
        reason: &str,
        note: &str,
    ) -> Result<(), kube::Error> {
        let now = Timestamp::now();
        let note = truncate(note, MAX_NOTE_BYTES);
        let key = Key {
            uid: regarding.uid.clone(),
            namespace: regarding.namespace.clone(),
            kind: regarding.kind.clone(),
            name: regarding.name.clone(),
            warning: type_ == EventType::Warning,
            action: action.into(),
            reason: reason.into(),
            note: note.to_string(),
        };
        let namespace = regarding.namespace.as_deref().unwrap_or("default");
        let events: Api<Event> = Api::namespaced(self.client.clone(), namespace);
        let repeat = self.repeat_of(&key, now);
        if let Some(series) = repeat {
            let patch = json!({"series": EventSeries {count: series.count, last_observed_time: MicroTime(now)}});
            match events
                .patch(&series.event_name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => return Ok(()),
                // Deleted meanwhile (events expire): record it afresh.
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(error) => return Err(error),
            }
        }
        let event = self.event(regarding, type_, action, reason, note, now);
        let created = events.create(&PostParams::default(), &event).await?;
        let event_name = created.metadata.name.or(event.metadata.name).unwrap_or_default();
        self.lock().series.insert(
            key,
            Series {
                event_name,
                count: 1,
                last: now,
            },
        );
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.memory.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The series this occurrence continues, with its count already advanced; None when it is
    /// the first of its kind within the TTL.
    fn repeat_of(&self, key: &Key, now: Timestamp) -> Option<Series> {
        let mut memory = self.lock();
        if memory.swept.is_none_or(|at| now.duration_since(at) >= SWEEP_EVERY) {
            memory.series.retain(|_, s| now.duration_since(s.last) < SERIES_TTL);
            memory.swept = Some(now);
        }
        let series = memory.series.get_mut(key)?;
        if now.duration_since(series.last) >= SERIES_TTL {
            return None;
        }
        // A series' count includes the first occurrence, so the first repeat makes it 2.
        series.count = series.count.max(1) + 1;
        series.last = now;
        Some(series.clone())
    }

    fn event(
        &self,
        regarding: &ObjectReference,
        type_: EventType,
        action: &str,
        reason: &str,
        note: &str,
        now: Timestamp,
    ) -> Event {
        // Object names are at most 253 characters, and so must the event's be.
        let base = truncate(regarding.name.as_deref().unwrap_or(&self.reporter.controller), 200);
        Event {
            action: Some(action.into()),
            reason: Some(reason.into()),
            note: Some(note.into()),
            event_time: Some(MicroTime(now)),
            regarding: Some(regarding.clone()),
            metadata: ObjectMeta {
                namespace: regarding.namespace.clone(),
                name: Some(format!("{base}.{:x}", now.as_nanosecond())),
                ..ObjectMeta::default()
            },
            reporting_controller: Some(self.reporter.controller.clone()),
            reporting_instance: Some(self.reporter.instance.clone()),
            type_: Some(
                match type_ {
                    EventType::Normal => "Normal",
                    EventType::Warning => "Warning",
                }
                .into(),
            ),
            ..Event::default()
        }
    }
}

/// The longest prefix of `text` within `max` bytes, ending on a character boundary.
fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_notes_are_cut_on_a_character_boundary() {
        assert_eq!(truncate("short", 1024), "short");
        let long = "é".repeat(600);
        let cut = truncate(&long, MAX_NOTE_BYTES);
        assert!(cut.len() <= MAX_NOTE_BYTES && cut.len() >= MAX_NOTE_BYTES - 1);
        assert!(cut.chars().all(|c| c == 'é'));
    }
}
