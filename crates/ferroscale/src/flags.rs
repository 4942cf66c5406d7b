//! Flags shared by several commands, and the parsers of their values.

use std::time::Duration;

use clap::Args;
use ferroscale_api::quantity::ParsedQuantity;
use ferroscale_autoscaler::Settings;

/// Settings of the decision, shared by `explain`, `simulate` and `run`.
#[derive(Debug, Args, Clone)]
pub struct DecisionArgs {
    /// Default tolerance of the usage ratio in both directions, as a quantity (0.1, 100m).
    #[arg(long, value_name = "QUANTITY", default_value = "0.1", value_parser = parse_tolerance, env = "FERROSCALE_TOLERANCE")]
    tolerance: f64,
    /// How long after a pod starts its CPU samples need a settled Ready condition (Go duration).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration, env = "FERROSCALE_CPU_INITIALIZATION_PERIOD")]
    cpu_initialization_period: Duration,
    /// How long after start a never-ready pod counts as still initializing (Go duration).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration, env = "FERROSCALE_INITIAL_READINESS_DELAY")]
    initial_readiness_delay: Duration,
    /// Scale-down stabilization window of Autoscalers that set none (Go duration).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration, env = "FERROSCALE_DOWNSCALE_STABILIZATION")]
    downscale_stabilization: Duration,
}

impl DecisionArgs {
    /// The core's settings.
    pub fn settings(&self) -> Settings {
        Settings {
            tolerance: self.tolerance,
            cpu_initialization_period: self.cpu_initialization_period,
            initial_readiness_delay: self.initial_readiness_delay,
            downscale_stabilization: self.downscale_stabilization,
            ..Settings::default()
        }
    }
}

pub fn parse_tolerance(text: &str) -> Result<f64, String> {
    let q = ParsedQuantity::parse(text).map_err(|e| e.to_string())?;
    if q.is_negative() {
        return Err(format!("tolerance {text:?} must not be negative"));
    }
    Ok(q.as_f64())
}

/// Go duration syntax (`30s`, `5m`, `1m30s`), as Kubernetes flags take.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    ferroscale_api::duration::parse(text)
}

/// Where metrics are read from, shared by `run` and live `explain`.
#[derive(Debug, Args, Clone)]
pub struct SourceArgs {
    /// Prometheus for Prometheus metrics that name no serverAddress (e.g. http://prometheus.monitoring:9090).
    #[arg(long, value_name = "URL", env = "FERROSCALE_PROMETHEUS_URL")]
    pub prometheus_url: Option<String>,
    /// Other Prometheus servers Autoscalers may name in serverAddress, comma-separated base
    /// URLs matched exactly (scheme, host, port, path). Any other address is refused before a
    /// request is sent (ScalingActive=False, ForbiddenMetricSource).
    #[arg(
        long,
        value_name = "URL,...",
        value_delimiter = ',',
        env = "FERROSCALE_PROMETHEUS_ALLOWED_URLS"
    )]
    pub prometheus_allowed_urls: Vec<String>,
    /// How long a request to metrics.k8s.io, custom.metrics.k8s.io or external.metrics.k8s.io
    /// may take (Go duration); past it, the metric fails for that evaluation.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration, env = "FERROSCALE_METRICS_TIMEOUT")]
    pub metrics_timeout: Duration,
    /// How long a Prometheus query may take (Go duration).
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration, env = "FERROSCALE_PROMETHEUS_TIMEOUT")]
    pub prometheus_timeout: Duration,
}

impl SourceArgs {
    /// The metrics APIs and Prometheus, read through `client`.
    pub fn sources(&self, client: &kube::Client) -> anyhow::Result<ferroscale_metrics::Sources> {
        let prometheus = ferroscale_metrics::Prometheus::new(
            Some(client.clone()),
            self.prometheus_url.clone(),
            &self.prometheus_allowed_urls,
            self.prometheus_timeout,
        )
        .map_err(anyhow::Error::msg)?;
        Ok(ferroscale_metrics::Sources {
            apis: std::sync::Arc::new(ferroscale_metrics::MetricsApis::new(
                client.clone(),
                self.metrics_timeout,
            )),
            prometheus: std::sync::Arc::new(prometheus),
            // Upstream's way, one list per Autoscaler; `run` chooses its own.
            pod_metrics: std::sync::Arc::new(ferroscale_metrics::shared::SharedPodMetrics::new(
                ferroscale_metrics::shared::PodMetricsRead::Selector,
                Duration::ZERO,
                Duration::ZERO,
            )),
        })
    }
}
