//! The `Autoscaler` custom resource: a field-for-field superset of `autoscaling/v2`
//! HorizontalPodAutoscaler, so that changing `apiVersion` and `kind` turns an HPA into one.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Autoscaler automatically scales any workload that has a `scale` subresource (Deployments,
/// StatefulSets, PodSets, any custom resource declaring one) from its metrics, exactly as the
/// HorizontalPodAutoscaler does, with Prometheus queries, per-direction tolerance and
/// persistent stabilization history on top.
// Each printer column repeats the same keys, which this lint mistakes for duplicates.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "ferroscale.dev",
    version = "v1alpha1",
    kind = "Autoscaler",
    doc = "Autoscaler scales any workload with a scale subresource from its metrics, as the HorizontalPodAutoscaler does (autoscaling/v2 compatible).",
    plural = "autoscalers",
    shortname = "fas",
    namespaced,
    status = "AutoscalerStatus",
    printcolumn(
        name = "Reference",
        type_ = "string",
        json_path = ".status.reference",
        description = "The workload being scaled, as kind/name"
    ),
    printcolumn(
        name = "Targets",
        type_ = "string",
        json_path = ".status.targets",
        description = "Current and target value of each metric"
    ),
    printcolumn(name = "MinPods", type_ = "integer", json_path = ".spec.minReplicas"),
    printcolumn(name = "MaxPods", type_ = "integer", json_path = ".spec.maxReplicas"),
    printcolumn(name = "Replicas", type_ = "integer", json_path = ".status.currentReplicas"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[x_kube(validation = Rule::new("!has(self.minReplicas) || self.minReplicas <= self.maxReplicas").message("minReplicas must be less than or equal to maxReplicas"))]
#[x_kube(validation = Rule::new("!has(self.minReplicas) || self.minReplicas != 0 || (has(self.metrics) && self.metrics.exists(m, m.type == 'Object' || m.type == 'External' || m.type == 'Prometheus'))").message("minReplicas may be 0 only when at least one Object, External or Prometheus metric is configured"))]
#[serde(rename_all = "camelCase")]
pub struct AutoscalerSpec {
    /// The workload to scale: any object with a `scale` subresource in the Autoscaler's namespace.
    pub scale_target_ref: CrossVersionObjectReference,

    /// The lower limit for the number of replicas. Defaults to 1. It can be 0 only when at least
    /// one Object, External or Prometheus metric is configured; scaling stops while the target
    /// itself is at 0 replicas and minReplicas is not 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub min_replicas: Option<i32>,

    /// The upper limit for the number of replicas. It cannot be less than minReplicas.
    #[schemars(range(min = 1))]
    pub max_replicas: i32,

    /// The metrics used to compute the desired replica count; the largest proposal wins. With
    /// none, the Autoscaler targets 80% average CPU utilization, as the HPA does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 100))]
    pub metrics: Option<Vec<MetricSpec>>,

    /// How fast to scale up and down. Missing parts take the HPA's defaults: scale up at once by
    /// 4 pods or 100% per 15s, whichever is more; scale down by up to 100% per 15s after a 300s
    /// stabilization window (the operator's --downscale-stabilization).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behavior: Option<Behavior>,

    /// How often this Autoscaler is evaluated, in seconds (1 to 3600). Defaults to the
    /// operator's --sync-period (15s). Behavior windows and policy periods keep their meaning:
    /// they are seconds of wall time, not numbers of evaluations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 3600))]
    pub sync_period_seconds: Option<i32>,

    /// Which pods count for the metrics: LabelSelector (default), every pod the target's
    /// selector matches; or OwnerReferences, only those the target owns, directly or through
    /// an owner chain (a Deployment's pods through their ReplicaSet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection_strategy: Option<SelectionStrategy>,

    /// Known load raised ahead of time: while a schedule is active its bounds replace
    /// minReplicas and maxReplicas (the largest minReplicas among the active schedules wins,
    /// with its maxReplicas, never below that minimum). ferroscale only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 20))]
    pub schedules: Option<Vec<Schedule>>,

    /// One number computed from the named metrics, compared with a target; when set it
    /// replaces the maximum over the metrics. ferroscale only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub formula: Option<Formula>,
}

/// A window of time, recurring by cron, with replica bounds of its own.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Schedule {
    /// The schedule's name, as the ScheduleActive condition names it.
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
    /// When the schedule starts: a five-field cron expression (minute hour day-of-month month
    /// day-of-week, day-of-week 0-7 with 0 and 7 Sunday, or names), in `timezone`.
    #[schemars(length(min = 1, max = 200))]
    pub start: String,
    /// When it ends: a five-field cron expression (the first time after the start), or a
    /// duration after the start such as `9h` or `90m`.
    #[schemars(length(min = 1, max = 200))]
    pub end: String,
    /// An IANA time zone name such as `Europe/Berlin`. Defaults to UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 100))]
    pub timezone: Option<String>,
    /// The minimum replica count while active. Defaults to the spec's minReplicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub min_replicas: Option<i32>,
    /// The maximum replica count while active. Defaults to the spec's maxReplicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_replicas: Option<i32>,
}

/// An expression over the named metrics, scaled on like one metric.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Formula {
    /// The expression: numbers and quantities (`500m`, `2k`), metric names, `+ - * /`,
    /// `min(a, b, ...)`, `max(a, b, ...)`, `abs(x)`, `clamp(x, low, high)`, comparisons
    /// (`< <= > >= == !=`, 1 for true and 0 for false) and `condition ? a : b`. E.g.
    /// `max(queue / 50, rps / 200)`. A metric's value is its whole value for Object, External
    /// and Prometheus metrics, its average per pod for Pods metrics, and its average
    /// utilization (percent) or average value for resource metrics.
    #[schemars(length(min = 1, max = 1000))]
    pub expression: String,
    /// The target for the expression's result: Value (compared as a whole) or AverageValue
    /// (divided by the current replica count).
    pub target: MetricTarget,
    /// The formula is active when its result is above this quantity; it decides on scaling
    /// to and from zero as an active metric does. Defaults to 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation_threshold: Option<Quantity>,
}

/// Which pods an Autoscaler's metrics count.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum SelectionStrategy {
    /// Every pod the target's selector matches, as the HorizontalPodAutoscaler counts them.
    #[default]
    LabelSelector,
    /// Only pods the target owns, directly or through an owner chain.
    OwnerReferences,
}

/// Identifies an object by API version, kind and name, in the Autoscaler's namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct CrossVersionObjectReference {
    /// API version of the referent, e.g. `apps/v1` or `ferroscale.dev/v1alpha1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Kind of the referent, e.g. `Deployment`.
    #[schemars(length(min = 1))]
    pub kind: String,
    /// Name of the referent.
    #[schemars(length(min = 1))]
    pub name: String,
}

/// One metric to scale on. `type` names the source, and the member of the same name (in
/// lowerCamelCase) describes it.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("self.type != 'Resource' || has(self.resource)").message("resource must be set when type is Resource"))]
#[x_kube(validation = Rule::new("self.type != 'ContainerResource' || has(self.containerResource)").message("containerResource must be set when type is ContainerResource"))]
#[x_kube(validation = Rule::new("self.type != 'Pods' || has(self.pods)").message("pods must be set when type is Pods"))]
#[x_kube(validation = Rule::new("self.type != 'Object' || has(self.object)").message("object must be set when type is Object"))]
#[x_kube(validation = Rule::new("self.type != 'External' || has(self.external)").message("external must be set when type is External"))]
#[x_kube(validation = Rule::new("self.type != 'Prometheus' || has(self.prometheus)").message("prometheus must be set when type is Prometheus"))]
#[serde(rename_all = "camelCase")]
pub struct MetricSpec {
    // The sources are boxed: only one is set, and inline they made a metric 1 KB, most of an
    // Autoscaler in the operator's cache.
    /// A name for the metric (a DNS label), by which spec.formula refers to its value.
    /// ferroscale only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"))]
    pub name: Option<String>,
    /// The kind of metric source: Resource, ContainerResource, Pods, Object, External or
    /// Prometheus.
    #[serde(rename = "type")]
    pub type_: MetricSourceType,
    /// A resource metric (cpu, memory) of the pods, as metrics-server reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<Box<ResourceMetricSource>>,
    /// A resource metric of one container in each pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_resource: Option<Box<ContainerResourceMetricSource>>,
    /// A custom metric of each pod, averaged over the pods (custom.metrics.k8s.io).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pods: Option<Box<PodsMetricSource>>,
    /// A custom metric describing one Kubernetes object (custom.metrics.k8s.io).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<Box<ObjectMetricSource>>,
    /// A metric not tied to any Kubernetes object (external.metrics.k8s.io).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<Box<ExternalMetricSource>>,
    /// A PromQL query evaluated directly against Prometheus, with no adapter. ferroscale only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<Box<PrometheusMetricSource>>,
}

/// Kinds of metric source.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MetricSourceType {
    Resource,
    ContainerResource,
    Pods,
    Object,
    External,
    Prometheus,
    /// Any other name. The API server refuses it; it can only come from elsewhere (an
    /// `explain` snapshot), and is reported as the HPA reports it: InvalidMetricSourceType.
    #[serde(other)]
    #[schemars(skip)]
    Unknown,
}

impl MetricSourceType {
    /// The name used in `type` fields and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Resource => "Resource",
            Self::ContainerResource => "ContainerResource",
            Self::Pods => "Pods",
            Self::Object => "Object",
            Self::External => "External",
            Self::Prometheus => "Prometheus",
            Self::Unknown => "Unknown",
        }
    }
}

/// A resource metric known to Kubernetes (requests and limits), summed over each pod's containers.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ResourceMetricSource {
    /// The resource, e.g. `cpu` or `memory`.
    #[schemars(length(min = 1))]
    pub name: String,
    /// The target value: Utilization (percent of requests) or AverageValue.
    pub target: MetricTarget,
    /// What the metric proposes once it has failed for a while, instead of blocking scaling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Fallback>,
}

/// A resource metric of one named container in each pod.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ContainerResourceMetricSource {
    /// The resource, e.g. `cpu` or `memory`.
    #[schemars(length(min = 1))]
    pub name: String,
    /// The container whose usage counts.
    #[schemars(length(min = 1))]
    pub container: String,
    /// The target value: Utilization (percent of requests) or AverageValue.
    pub target: MetricTarget,
    /// What the metric proposes once it has failed for a while, instead of blocking scaling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Fallback>,
}

/// A per-pod custom metric, averaged over the pods before comparing with the target.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PodsMetricSource {
    /// The metric's name and optional label selector.
    pub metric: MetricIdentifier,
    /// The target; only AverageValue is valid.
    pub target: MetricTarget,
    /// What the metric proposes once it has failed for a while, instead of blocking scaling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Fallback>,
}

/// A metric describing a single Kubernetes object, e.g. requests per second of an Ingress.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMetricSource {
    /// The object the metric describes.
    pub described_object: CrossVersionObjectReference,
    /// The metric's name and optional label selector.
    pub metric: MetricIdentifier,
    /// The target: Value, or AverageValue (divided by the current replica count).
    pub target: MetricTarget,
    /// The metric is active when its value (the whole, before any division by replicas) is
    /// above this quantity. At zero replicas, the target wakes only when a metric is active; it
    /// goes to zero only when none is. Defaults to 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation_threshold: Option<Quantity>,
    /// What the metric proposes once it has failed for a while, instead of blocking scaling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Fallback>,
}

/// A metric from outside the cluster, e.g. the length of a cloud queue.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ExternalMetricSource {
    /// The metric's name and optional label selector.
    pub metric: MetricIdentifier,
    /// The target: Value, or AverageValue (divided by the current replica count).
    pub target: MetricTarget,
    /// The metric is active when its value (the whole, before any division by replicas) is
    /// above this quantity. At zero replicas, the target wakes only when a metric is active; it
    /// goes to zero only when none is. Defaults to 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation_threshold: Option<Quantity>,
    /// What the metric proposes once it has failed for a while, instead of blocking scaling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Fallback>,
}

/// A PromQL query computed as an External metric is: its single value is compared with the
/// target as a whole (Value) or per current replica (AverageValue).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusMetricSource {
    /// Base URL of the Prometheus HTTP API, e.g. `http://prometheus.monitoring:9090`. Defaults
    /// to the operator's --prometheus-url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_address: Option<String>,
    /// The PromQL query. It must return a scalar or a vector with exactly one element.
    #[schemars(length(min = 1))]
    pub query: String,
    /// A Secret in the Autoscaler's namespace with credentials for Prometheus: `token` (sent as
    /// a bearer token) or `username` and `password` (basic auth), and optionally `ca.crt` (a
    /// PEM bundle to trust instead of the system's roots).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_secret_ref: Option<SecretRef>,
    /// The target: Value, or AverageValue (divided by the current replica count).
    pub target: MetricTarget,
    /// The metric is active when its value (the whole, before any division by replicas) is
    /// above this quantity. At zero replicas, the target wakes only when a metric is active; it
    /// goes to zero only when none is. Defaults to 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation_threshold: Option<Quantity>,
    /// What the metric proposes once it has failed for a while, instead of blocking scaling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Fallback>,
    /// Scale ahead of the load: forecast the query's value from its own history in
    /// Prometheus, and propose the larger of the reactive and the forecast replica count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predictive: Option<Predictive>,
}

/// A forecast of a Prometheus metric from its own history, read with a range query at every
/// evaluation (nothing is kept by the operator).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Predictive {
    /// SeasonalNaive (the value one season ago), HoltWinters (level, trend and an additive
    /// season of length `season`) or LinearRegression (a line over the last `window`).
    pub model: PredictiveModel,
    /// How much of the metric's past to read, a duration such as `72h`. Defaults to three
    /// seasons for HoltWinters, two for SeasonalNaive, and four windows for LinearRegression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<String>,
    /// How far ahead to forecast, a duration such as `2m`. Defaults to the target's pod
    /// start-up time, measured from its ready pods (60s when none can be measured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub look_ahead: Option<String>,
    /// The length of the season of SeasonalNaive and HoltWinters, e.g. `24h`. Defaults to 24h.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub season: Option<String>,
    /// The window LinearRegression fits its line over, e.g. `10m`. Defaults to 10m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    /// The largest error (mean absolute error over the last season or window, in percent of
    /// the mean absolute value) at which a forecast is used. Defaults to 25.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub max_error_percent: Option<i32>,
    /// Let the forecast scale down too (it then decides both ways); by default scaling down
    /// stays reactive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down: Option<bool>,
}

impl Predictive {
    /// `season` with its default of 24h; a value that does not parse counts as the default
    /// (validation reports it).
    pub fn season_or_default(&self) -> std::time::Duration {
        parse_or(&self.season, std::time::Duration::from_secs(24 * 3600))
    }

    /// `window` with its default of 10m.
    pub fn window_or_default(&self) -> std::time::Duration {
        parse_or(&self.window, std::time::Duration::from_secs(600))
    }

    /// `maxErrorPercent` with its default of 25.
    pub fn max_error_percent_or_default(&self) -> i32 {
        self.max_error_percent.unwrap_or(25)
    }

    /// The least history the model forecasts from: two seasons for the seasonal models (one
    /// to forecast from, and one to measure the error on), two windows for LinearRegression.
    pub fn history_needed(&self) -> std::time::Duration {
        match self.model {
            PredictiveModel::HoltWinters | PredictiveModel::SeasonalNaive => 2 * self.season_or_default(),
            PredictiveModel::LinearRegression => 2 * self.window_or_default(),
        }
    }

    /// What [`Self::history_needed`] counts, in words.
    pub fn history_rule(&self) -> &'static str {
        match self.model {
            PredictiveModel::HoltWinters | PredictiveModel::SeasonalNaive => "two seasons",
            PredictiveModel::LinearRegression => "two windows",
        }
    }

    /// `history` with its default: three seasons for HoltWinters, two for SeasonalNaive, four
    /// windows for LinearRegression.
    pub fn history_or_default(&self) -> std::time::Duration {
        let default = match self.model {
            PredictiveModel::HoltWinters => 3 * self.season_or_default(),
            PredictiveModel::SeasonalNaive => 2 * self.season_or_default(),
            PredictiveModel::LinearRegression => 4 * self.window_or_default(),
        };
        parse_or(&self.history, default)
    }
}

fn parse_or(text: &Option<String>, default: std::time::Duration) -> std::time::Duration {
    text.as_deref()
        .and_then(|t| crate::duration::parse(t).ok())
        .filter(|d| !d.is_zero())
        .unwrap_or(default)
}

/// Forecasting models.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PredictiveModel {
    SeasonalNaive,
    HoltWinters,
    LinearRegression,
}

/// A Secret in the same namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct SecretRef {
    /// The Secret's name.
    #[schemars(length(min = 1))]
    pub name: String,
}

/// A replica count a metric proposes once it has failed without interruption for
/// `failureDurationSeconds`; before that, and without a fallback, a failing metric only blocks
/// scaling down.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Fallback {
    /// How long the metric must fail before the fallback applies, in seconds. Defaults to 180.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub failure_duration_seconds: Option<i32>,
    /// The replica count the metric proposes while it fails.
    #[schemars(range(min = 1))]
    pub replicas: i32,
}

impl Fallback {
    /// failureDurationSeconds with its default.
    pub fn failure_duration_seconds_or_default(&self) -> i32 {
        self.failure_duration_seconds.unwrap_or(180)
    }
}

/// Names a metric and optionally narrows it with a label selector.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct MetricIdentifier {
    /// The metric's name.
    #[schemars(length(min = 1))]
    pub name: String,
    /// Labels the metric series must carry; when absent, the metrics API decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
}

/// The value a metric should be held at.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("self.type != 'Utilization' || has(self.averageUtilization)").message("averageUtilization must be set when type is Utilization"))]
#[x_kube(validation = Rule::new("self.type != 'Value' || has(self.value)").message("value must be set when type is Value"))]
#[x_kube(validation = Rule::new("self.type != 'AverageValue' || has(self.averageValue)").message("averageValue must be set when type is AverageValue"))]
#[serde(rename_all = "camelCase")]
pub struct MetricTarget {
    /// Utilization, Value or AverageValue.
    #[serde(rename = "type")]
    pub type_: MetricTargetType,
    /// The target value of the metric as a whole (a quantity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Quantity>,
    /// The target value of the metric averaged over the pods (a quantity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub average_value: Option<Quantity>,
    /// The target percentage of the pods' resource requests (resource metrics only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub average_utilization: Option<i32>,
}

/// Kinds of metric target.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MetricTargetType {
    Utilization,
    Value,
    AverageValue,
}

/// Scaling behavior in each direction.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Behavior {
    /// Rules for scaling up. Defaults: no stabilization window; 4 pods or 100% per 15s, the larger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_up: Option<ScalingRules>,
    /// Rules for scaling down. Defaults: the operator's stabilization window (300s); 100% per 15s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down: Option<ScalingRules>,
}

/// How one direction of scaling is stabilized, rate-limited and made tolerant of noise.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ScalingRules {
    /// Seconds of past recommendations to consider: scaling up uses the lowest of them, scaling
    /// down the highest, so short spikes and dips do not move the replica count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 3600))]
    pub stabilization_window_seconds: Option<i32>,
    /// Which policy wins when several apply: Max (the largest change, default), Min (the
    /// smallest), or Disabled (no scaling in this direction).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub select_policy: Option<SelectPolicy>,
    /// Rate limits: at most `value` pods or percent per `periodSeconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub policies: Option<Vec<ScalingPolicy>>,
    /// How far the usage ratio may stray from 1.0 before scaling in this direction, as a
    /// quantity (e.g. `0.05` or `50m`). Defaults to the operator's --tolerance (0.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<Quantity>,
}

/// Which of several policies to apply.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SelectPolicy {
    Max,
    Min,
    Disabled,
}

/// One rate limit.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ScalingPolicy {
    /// Pods (an absolute number of replicas) or Percent (of the replicas at the period's start).
    #[serde(rename = "type")]
    pub type_: ScalingPolicyType,
    /// The amount of change allowed per period; greater than zero.
    #[schemars(range(min = 1))]
    pub value: i32,
    /// The length of the period in seconds, from 1 to 1800.
    #[schemars(range(min = 1, max = 1800))]
    pub period_seconds: i32,
}

/// Kinds of rate limit.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScalingPolicyType {
    Pods,
    Percent,
}

/// What the controller last observed and decided, plus the history that stabilization windows
/// and rate limits need, so that a restart or a change of leader forgets nothing.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct AutoscalerStatus {
    /// The generation of the spec this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// When the target's replica count was last changed by this Autoscaler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scale_time: Option<Time>,
    /// The target's replica count when last evaluated.
    #[serde(default)]
    pub current_replicas: i32,
    /// The replica count the Autoscaler last decided on.
    #[serde(default)]
    pub desired_replicas: i32,
    /// The last read value of each metric, in the order of spec.metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_metrics: Option<Vec<MetricStatus>>,
    /// AbleToScale, ScalingActive and ScalingLimited, with the HPA's reasons.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<AutoscalerCondition>>,
    /// Current against target value of each metric, as `kubectl get hpa` shows them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targets: Option<String>,
    /// Unstabilized recommendations that a stabilization window can still reach, the newest of
    /// each replica count. The one marked `current` is the latest evaluations' recommendation;
    /// it changes only when the recommendation does, so a steady Autoscaler writes no status.
    /// Absent on an Autoscaler that was never evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recommendations: Option<Vec<Recommendation>>,
    /// Replicas added by recent rescales, within the longest scale-up policy period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_up_events: Option<Vec<ScaleEvent>>,
    /// Replicas removed by recent rescales, within the longest scale-down policy period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down_events: Option<Vec<ScaleEvent>>,
    /// The metrics failing now, and since when: a metric's fallback applies once it has failed
    /// for its failureDurationSeconds, counted across restarts and changes of leader.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_failures: Option<Vec<MetricFailure>>,
    /// The replica count the `ferroscale.dev/paused-replicas` annotation set, once it was set;
    /// the target is held there while the annotation stays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused_replicas: Option<i32>,
    /// The target as `Kind/name` (`PodSet/web`), for the REFERENCE column that `kubectl get hpa`
    /// shows the same way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// The forecast of each predictive metric at the last evaluation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forecasts: Option<Vec<ForecastStatus>>,
}

/// One predictive metric's forecast.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ForecastStatus {
    /// The metric's index in spec.metrics.
    pub index: i32,
    /// The forecast value of the query at `time`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Quantity>,
    /// The time forecast for: the evaluation's time plus lookAhead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<Time>,
    /// The replica count the forecast proposes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// The model's error over the last season or window, in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_percent: Option<i32>,
    /// Whether the forecast took part in the decision; when not, `reason` says why.
    pub used: bool,
    /// Why the forecast was not used: HistoryUnavailable, NotEnoughHistory, ForecastErrorTooHigh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A metric that has failed at every evaluation since `since`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct MetricFailure {
    /// The metric's index in spec.metrics.
    pub index: i32,
    /// When it first failed.
    pub since: Time,
}

/// A recommendation: when it was last made, or for the `current` one, since when it holds.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Recommendation {
    /// When it was last made; for the current recommendation, when it was first made.
    pub timestamp: Time,
    /// The replica count the metrics proposed, before stabilization and rate limits.
    pub replicas: i32,
    /// True for the recommendation of the latest evaluations: made at every evaluation since
    /// `timestamp`, and still in force.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub current: bool,
}

/// One rescale.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ScaleEvent {
    /// When the target was rescaled.
    pub timestamp: Time,
    /// How many replicas were added or removed (always positive).
    pub change: i32,
}

/// A condition of the Autoscaler, as the HPA reports it.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AutoscalerCondition {
    /// AbleToScale, ScalingActive or ScalingLimited.
    #[serde(rename = "type")]
    pub type_: String,
    /// True, False or Unknown.
    pub status: String,
    /// When the status last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
    /// A machine-readable reason, e.g. ScaleUpLimit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A human-readable explanation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The last read value of one metric; `type` names the member that is set.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MetricStatus {
    /// Resource, ContainerResource, Pods, Object, External or Prometheus.
    #[serde(rename = "type")]
    pub type_: MetricSourceType,
    /// Status of a Resource metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<ResourceMetricStatus>,
    /// Status of a ContainerResource metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_resource: Option<ContainerResourceMetricStatus>,
    /// Status of a Pods metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pods: Option<PodsMetricStatus>,
    /// Status of an Object metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<ObjectMetricStatus>,
    /// Status of an External metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalMetricStatus>,
    /// Status of a Prometheus metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusMetricStatus>,
}

/// Current value of a Resource metric.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ResourceMetricStatus {
    /// The resource, e.g. `cpu`.
    pub name: String,
    /// The current value.
    pub current: MetricValueStatus,
}

/// Current value of a ContainerResource metric.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ContainerResourceMetricStatus {
    /// The resource, e.g. `cpu`.
    pub name: String,
    /// The container measured.
    pub container: String,
    /// The current value.
    pub current: MetricValueStatus,
}

/// Current value of a Pods metric.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PodsMetricStatus {
    /// The metric.
    pub metric: MetricIdentifier,
    /// The current value.
    pub current: MetricValueStatus,
}

/// Current value of an Object metric.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMetricStatus {
    /// The object the metric describes.
    pub described_object: CrossVersionObjectReference,
    /// The metric.
    pub metric: MetricIdentifier,
    /// The current value.
    pub current: MetricValueStatus,
}

/// Current value of an External metric.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ExternalMetricStatus {
    /// The metric.
    pub metric: MetricIdentifier,
    /// The current value.
    pub current: MetricValueStatus,
}

/// Current value of a Prometheus metric.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusMetricStatus {
    /// The query evaluated.
    pub query: String,
    /// The current value.
    pub current: MetricValueStatus,
}

/// A metric's current value, in the form its target takes.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct MetricValueStatus {
    /// The value of the metric as a whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Quantity>,
    /// The value averaged over the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub average_value: Option<Quantity>,
    /// The percentage of the pods' resource requests in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub average_utilization: Option<i32>,
}

impl MetricSpec {
    /// The target of the member that `type` names; None when that member is missing.
    pub fn target(&self) -> Option<&MetricTarget> {
        match self.type_ {
            MetricSourceType::Resource => self.resource.as_ref().map(|r| &r.target),
            MetricSourceType::ContainerResource => self.container_resource.as_ref().map(|c| &c.target),
            MetricSourceType::Pods => self.pods.as_ref().map(|p| &p.target),
            MetricSourceType::Object => self.object.as_ref().map(|o| &o.target),
            MetricSourceType::External => self.external.as_ref().map(|e| &e.target),
            MetricSourceType::Prometheus => self.prometheus.as_ref().map(|p| &p.target),
            MetricSourceType::Unknown => None,
        }
    }
}

impl MetricSpec {
    /// The fallback of the member that `type` names.
    pub fn fallback(&self) -> Option<&Fallback> {
        match self.type_ {
            MetricSourceType::Resource => self.resource.as_ref()?.fallback.as_ref(),
            MetricSourceType::ContainerResource => self.container_resource.as_ref()?.fallback.as_ref(),
            MetricSourceType::Pods => self.pods.as_ref()?.fallback.as_ref(),
            MetricSourceType::Object => self.object.as_ref()?.fallback.as_ref(),
            MetricSourceType::External => self.external.as_ref()?.fallback.as_ref(),
            MetricSourceType::Prometheus => self.prometheus.as_ref()?.fallback.as_ref(),
            MetricSourceType::Unknown => None,
        }
    }

    /// Whether the metric can be read with no pods running (Object, External, Prometheus):
    /// only those decide on scaling to and from zero.
    pub fn reads_without_pods(&self) -> bool {
        matches!(
            self.type_,
            MetricSourceType::Object | MetricSourceType::External | MetricSourceType::Prometheus
        )
    }

    /// The activation threshold of an Object, External or Prometheus metric.
    pub fn activation_threshold(&self) -> Option<&Quantity> {
        match self.type_ {
            MetricSourceType::Object => self.object.as_ref()?.activation_threshold.as_ref(),
            MetricSourceType::External => self.external.as_ref()?.activation_threshold.as_ref(),
            MetricSourceType::Prometheus => self.prometheus.as_ref()?.activation_threshold.as_ref(),
            _ => None,
        }
    }
}

impl MetricStatus {
    /// The current value of the member that `type` names.
    pub fn current(&self) -> Option<&MetricValueStatus> {
        match self.type_ {
            MetricSourceType::Resource => self.resource.as_ref().map(|r| &r.current),
            MetricSourceType::ContainerResource => self.container_resource.as_ref().map(|c| &c.current),
            MetricSourceType::Pods => self.pods.as_ref().map(|p| &p.current),
            MetricSourceType::Object => self.object.as_ref().map(|o| &o.current),
            MetricSourceType::External => self.external.as_ref().map(|e| &e.current),
            MetricSourceType::Prometheus => self.prometheus.as_ref().map(|p| &p.current),
            MetricSourceType::Unknown => None,
        }
    }
}

impl AutoscalerSpec {
    /// minReplicas with the HPA's default of 1.
    pub fn min_replicas_or_default(&self) -> i32 {
        self.min_replicas.unwrap_or(1)
    }
}
