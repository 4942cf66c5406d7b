//! The pure core of ferroscale: given an Autoscaler, its target's scale, the target's pods and
//! the gathered metric values, decide the replica count exactly as the Kubernetes
//! HorizontalPodAutoscaler controller would. No I/O and no clock: `now` is an input, and the
//! stabilization and rate-limit history is read from and written to the Autoscaler's status.

pub mod behavior;
pub mod calculate;
pub mod combine;
pub mod compiled;
pub mod conditions;
pub mod decision;
pub mod failures;
pub mod formula;
pub mod gates;
pub mod history;
pub mod hold;
pub mod metric;
pub mod normalize;
pub mod pause;
pub mod pods;
pub mod predict;
pub mod propose;
pub mod samples;
pub mod schedule;
pub mod selection;
pub mod selector;
pub mod settings;
pub mod status;
pub mod time;
pub mod types;
pub mod zero;

pub use decision::decide;
pub use metric::{MetricOutcome, effective_metrics};
pub use pods::PodInfo;
pub use samples::{Gathered, MetricValues, PodSample, PodUsage};
pub use settings::Settings;
pub use types::{Decision, Event, Input, Path, Scale};
