//! The Kubernetes metrics APIs, read as the HPA reads them: `metrics.k8s.io` PodMetrics by
//! label selector, `custom.metrics.k8s.io` per-pod and per-object metrics (v1beta2, or v1beta1
//! where discovery says only that is served), and `external.metrics.k8s.io`.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use ferroscale_api::CrossVersionObjectReference;
use ferroscale_api::metrics_apis::{ExternalMetricValueList, MetricValueList};
use ferroscale_api::quantity::milli_value;
use ferroscale_autoscaler::PodSample;
use ferroscale_autoscaler::samples::PodUsage;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{APIGroup, LabelSelector};
use kube::Client;
use serde::de::DeserializeOwned;

use crate::discovery::Kinds;
use crate::namespace_list::{Builder, NamespaceList};
use crate::pod_metrics::read_list;

/// Discovery answers are reused this long.
const DISCOVERY_TTL: Duration = Duration::from_secs(300);
/// An answer that does not parse; what it held is not repeated.
const NOT_METRICS_JSON: &str = "the answer is not the JSON of a metrics API";
/// A value that does not parse; the value itself is not repeated.
const NOT_A_QUANTITY: &str = "the metrics API answered a value that is not a quantity";

/// Custom metrics carry no window; the HPA assumes one minute.
const DEFAULT_CUSTOM_METRIC_WINDOW: Duration = Duration::from_secs(60);

/// Percent-encodes a query parameter value (RFC 3986 unreserved characters pass).
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A label selector in the string form the metrics APIs take.
pub fn selector_string(selector: Option<&LabelSelector>) -> Result<String, String> {
    match selector {
        None => Ok(String::new()),
        Some(s) => ferroscale_autoscaler::selector::from_label_selector(s).map(|s| s.to_string()),
    }
}

fn query(params: &[(&str, &str)]) -> String {
    let parts: Vec<String> = params
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// What went wrong, in words of the operator's own: status code and reason, never the message
/// or body a metrics server sent (an adapter's answer can carry anything, and this text lands
/// in status and events, where tenants read it). The message is logged at debug level.
fn describe_error(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => {
            tracing::debug!(code = status.code, message = %status.message, "a metrics API refused a request");
            let reason = &status.reason;
            let plain = !reason.is_empty() && reason.len() <= 40 && reason.chars().all(|c| c.is_ascii_alphabetic());
            if status.code == 0 {
                "the server answered an error that is not a Kubernetes Status".into()
            } else if plain {
                format!("the server answered {} {reason}", status.code)
            } else {
                format!("the server answered {}", status.code)
            }
        }
        // A decoding error would quote the value it choked on.
        kube::Error::SerdeError(_) => NOT_METRICS_JSON.into(),
        // The others are the transport's own (connection refused, TLS, timeouts).
        other => other.to_string(),
    }
}

/// A PodMetrics read that failed, in the HPA's words.
fn pod_metrics_failed(reason: impl std::fmt::Display) -> String {
    format!("unable to fetch metrics from resource metrics API: {reason}")
}

/// A PodMetrics list that does not parse. The parser's error quotes what it choked on; the
/// answer is not repeated.
fn not_pod_metrics(_: serde_json::Error) -> String {
    pod_metrics_failed(NOT_METRICS_JSON)
}

/// Reads the three metrics APIs through the operator's Kubernetes client.
pub struct MetricsApis {
    client: Client,
    custom_version: Mutex<Option<(String, Instant)>>,
    kinds: Kinds,
    /// Bound on each request: an unresponsive metrics server is a metric error, not a stall.
    timeout: Duration,
}

impl std::fmt::Debug for MetricsApis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsApis").finish_non_exhaustive()
    }
}

impl MetricsApis {
    /// Reads through `client`, each request bounded by `timeout`. The client should not retry
    /// on its own: an unavailable metrics API (503) must fail this evaluation's metric at once.
    pub fn new(client: Client, timeout: Duration) -> Self {
        Self {
            kinds: Kinds::new(client.clone()),
            client,
            custom_version: Mutex::new(None),
            timeout,
        }
    }

    /// The body of a GET, as text.
    async fn get_text(&self, path: &str) -> Result<String, String> {
        let request = http::Request::get(path)
            .body(Vec::new())
            .map_err(|e| format!("invalid request {path}: {e}"))?;
        match tokio::time::timeout(self.timeout, self.client.request_text(request)).await {
            Err(_) => Err(format!("no answer within {:?}", self.timeout)),
            Ok(Ok(text)) => Ok(text),
            Ok(Err(error)) => Err(describe_error(&error)),
        }
    }

    /// A GET's answer, parsed. The parser's error quotes what it choked on; the answer is not
    /// repeated.
    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, String> {
        let text = self.get_text(path).await?;
        serde_json::from_str(&text).map_err(|_| NOT_METRICS_JSON.to_string())
    }

    /// The PodMetrics list of the pods matching `selector`, as text.
    async fn pod_metrics_body(&self, namespace: &str, selector: &str) -> Result<String, String> {
        let path = format!(
            "/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods{}",
            query(&[("labelSelector", selector)])
        );
        self.get_text(&path).await.map_err(pod_metrics_failed)
    }

    /// PodMetrics of the pods matching `selector` (`unable to fetch metrics from resource
    /// metrics API` on failure, as the HPA says).
    pub async fn pod_metrics(&self, namespace: &str, selector: &str) -> Result<Vec<PodUsage>, String> {
        let body = self.pod_metrics_body(namespace, selector).await?;
        let mut pods = Vec::new();
        read_list(&body, |item| pods.push(item.usage())).map_err(not_pod_metrics)?;
        Ok(pods)
    }

    /// Every PodMetrics of a namespace, indexed by label (metrics-server copies each pod's
    /// labels), parsed straight into the index.
    pub async fn namespace_pod_metrics(&self, namespace: &str) -> Result<NamespaceList, String> {
        let body = self.pod_metrics_body(namespace, "").await?;
        let mut builder = Builder::default();
        read_list(&body, |item| builder.push(item)).map_err(not_pod_metrics)?;
        builder.finish().map_err(pod_metrics_failed)
    }

    /// The served custom metrics version: v1beta2 when available.
    async fn custom_metrics_version(&self) -> Result<String, String> {
        if let Some((version, at)) = self.custom_version.lock().unwrap_or_else(|p| p.into_inner()).clone()
            && at.elapsed() < DISCOVERY_TTL
        {
            return Ok(version);
        }
        let group: APIGroup = self
            .get("/apis/custom.metrics.k8s.io")
            .await
            .map_err(|e| format!("custom metrics API not available: {e}"))?;
        let served: Vec<&str> = group.versions.iter().map(|v| v.version.as_str()).collect();
        let version = if served.contains(&"v1beta2") {
            "v1beta2"
        } else if served.contains(&"v1beta1") {
            "v1beta1"
        } else {
            return Err(format!(
                "custom metrics API serves none of v1beta2, v1beta1 (serves {served:?})"
            ));
        };
        *self.custom_version.lock().unwrap_or_else(|p| p.into_inner()) = Some((version.to_string(), Instant::now()));
        Ok(version.to_string())
    }

    /// Values of a per-pod custom metric for the pods matching `selector`.
    pub async fn pods_metric(
        &self,
        namespace: &str,
        metric: &str,
        selector: &str,
        metric_selector: Option<&LabelSelector>,
    ) -> Result<Vec<PodSample>, String> {
        let version = self.custom_metrics_version().await?;
        let metric_selector = selector_string(metric_selector)?;
        let path = format!(
            "/apis/custom.metrics.k8s.io/{version}/namespaces/{namespace}/pods/*/{}{}",
            encode(metric),
            query(&[("labelSelector", selector), ("metricLabelSelector", &metric_selector)])
        );
        let list: MetricValueList = self
            .get(&path)
            .await
            .map_err(|e| format!("unable to fetch metrics from custom metrics API: {e}"))?;
        if list.items.is_empty() {
            return Err("no metrics returned from custom metrics API".into());
        }
        list.items
            .into_iter()
            .map(|v| {
                let value = milli_value(&v.value.0).map_err(|_| NOT_A_QUANTITY.to_string())?;
                let window = v
                    .window_seconds
                    .map_or(DEFAULT_CUSTOM_METRIC_WINDOW, |s| Duration::from_secs(s.max(0) as u64));
                Ok(PodSample {
                    pod: v.described_object.name,
                    value,
                    timestamp: v.timestamp.0,
                    window,
                })
            })
            .collect()
    }

    /// The resource name (plural) of a kind, from discovery.
    async fn resource_of(&self, reference: &CrossVersionObjectReference) -> Result<String, String> {
        let api_version = reference.api_version.as_deref().unwrap_or("v1");
        let (resource, _) = self.kinds.resolve(api_version, &reference.kind).await?;
        Ok(resource.plural)
    }

    /// The value of a custom metric describing one object.
    pub async fn object_metric(
        &self,
        namespace: &str,
        described: &CrossVersionObjectReference,
        metric: &str,
        metric_selector: Option<&LabelSelector>,
    ) -> Result<i64, String> {
        let version = self.custom_metrics_version().await?;
        let metric_selector = selector_string(metric_selector)?;
        let params = query(&[("metricLabelSelector", &metric_selector)]);
        let path = if described.kind == "Namespace" {
            format!(
                "/apis/custom.metrics.k8s.io/{version}/namespaces/{}/metrics/{}{params}",
                described.name,
                encode(metric)
            )
        } else {
            let resource = self.resource_of(described).await?;
            format!(
                "/apis/custom.metrics.k8s.io/{version}/namespaces/{namespace}/{resource}/{}/{}{params}",
                described.name,
                encode(metric)
            )
        };
        let list: MetricValueList = self
            .get(&path)
            .await
            .map_err(|e| format!("unable to fetch metrics from custom metrics API: {e}"))?;
        let item = list
            .items
            .into_iter()
            .next()
            .ok_or_else(|| "no metrics returned from custom metrics API".to_string())?;
        milli_value(&item.value.0).map_err(|_| NOT_A_QUANTITY.to_string())
    }

    /// Every series of an external metric matching the selector.
    pub async fn external_metric(
        &self,
        namespace: &str,
        metric: &str,
        selector: Option<&LabelSelector>,
    ) -> Result<Vec<i64>, String> {
        let selector = selector_string(selector)?;
        let path = format!(
            "/apis/external.metrics.k8s.io/v1beta1/namespaces/{namespace}/{}{}",
            encode(metric),
            query(&[("labelSelector", &selector)])
        );
        let list: ExternalMetricValueList = self
            .get(&path)
            .await
            .map_err(|e| format!("unable to fetch metrics from external metrics API: {e}"))?;
        if list.items.is_empty() {
            return Err("no metrics returned from external metrics API".into());
        }
        list.items
            .iter()
            .map(|v| milli_value(&v.value.0).map_err(|_| NOT_A_QUANTITY.to_string()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_selectors_for_query_strings() {
        assert_eq!(encode("app=web,tier in (a,b)"), "app%3Dweb%2Ctier%20in%20%28a%2Cb%29");
        assert_eq!(
            query(&[("labelSelector", "app=web"), ("metricLabelSelector", "")]),
            "?labelSelector=app%3Dweb"
        );
        assert_eq!(query(&[("labelSelector", "")]), "");
    }
}
