//! The objects the Kubernetes metrics APIs return, as ferroscale reads them:
//! `metrics.k8s.io/v1beta1` PodMetrics, `custom.metrics.k8s.io` MetricValue (v1beta1 and
//! v1beta2 item shapes) and `external.metrics.k8s.io/v1beta1` ExternalMetricValue.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, Time};
use serde::{Deserialize, Serialize};

/// Resource usage of one pod over a window (`metrics.k8s.io/v1beta1` PodMetrics).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PodMetrics {
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// When the window ended.
    pub timestamp: Time,
    /// The window the usage was averaged over, in Go duration syntax (`1m0s`).
    #[serde(default)]
    pub window: Option<String>,
    #[serde(default)]
    pub containers: Vec<ContainerMetrics>,
}

/// Resource usage of one container.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct ContainerMetrics {
    pub name: String,
    #[serde(default)]
    pub usage: BTreeMap<String, Quantity>,
}

/// A list of [`PodMetrics`].
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct PodMetricsList {
    #[serde(default)]
    pub items: Vec<PodMetrics>,
}

/// The object a custom metric describes.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct DescribedObject {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub api_version: Option<String>,
}

/// The metric of a v1beta2 MetricValue.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct MetricRef {
    pub name: String,
    #[serde(default)]
    pub selector: Option<LabelSelector>,
}

/// One value of a custom metric (`custom.metrics.k8s.io`); v1beta1 names the metric in
/// `metricName`, v1beta2 in `metric.name`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MetricValue {
    #[serde(default)]
    pub described_object: DescribedObject,
    #[serde(default)]
    pub metric_name: Option<String>,
    #[serde(default)]
    pub metric: Option<MetricRef>,
    pub timestamp: Time,
    #[serde(default)]
    pub window_seconds: Option<i64>,
    pub value: Quantity,
}

impl MetricValue {
    /// The metric's name in either item shape.
    pub fn name(&self) -> &str {
        self.metric
            .as_ref()
            .map(|m| m.name.as_str())
            .or(self.metric_name.as_deref())
            .unwrap_or("")
    }
}

/// A list of [`MetricValue`].
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct MetricValueList {
    #[serde(default)]
    pub items: Vec<MetricValue>,
}

/// One series of an external metric (`external.metrics.k8s.io/v1beta1`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ExternalMetricValue {
    pub metric_name: String,
    #[serde(default)]
    pub metric_labels: BTreeMap<String, String>,
    pub timestamp: Time,
    #[serde(default)]
    pub window: Option<i64>,
    pub value: Quantity,
}

/// A list of [`ExternalMetricValue`].
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct ExternalMetricValueList {
    #[serde(default)]
    pub items: Vec<ExternalMetricValue>,
}

/// The value a Prometheus query returned, as recorded in an `explain` snapshot
/// (`ferroscale.dev/v1alpha1` PrometheusSample).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct PrometheusSample {
    pub query: String,
    pub value: Quantity,
    /// For a predictive metric: the query's history as the range query returned it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<PrometheusHistory>,
}

/// A query's values at a regular step, as `/api/v1/query_range` returns them.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct PrometheusHistory {
    /// The step between points, a duration such as `15s`.
    pub step: String,
    /// `[unix seconds, "value"]` pairs, oldest first.
    pub values: Vec<(i64, String)>,
}
