//! Prometheus as a metric source, without an adapter: an instant query through the HTTP API
//! (`/api/v1/query`) that must return a scalar or a vector of exactly one element, and for a
//! predictive metric the same query over its history (`/api/v1/query_range`).
//!
//! The address comes from a tenant, so the operator guards it: only allowed servers are asked
//! ([`crate::destinations`]), no redirect is followed, an answer over [`MAX_ANSWER`] is not read,
//! and no part of an answer reaches an error message (which lands in status and events, where
//! the tenant reads it); what a server said is logged at debug level only.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ferroscale_api::PrometheusMetricSource;
use ferroscale_api::quantity::ParsedQuantity;
use ferroscale_autoscaler::predict::Range;
use ferroscale_autoscaler::samples::Series;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};
use serde::Deserialize;
use tracing::debug;
use url::Url;

use crate::destinations::{self, AllowedServers};

/// Credentials are re-read from their Secret after this long.
const SECRET_TTL: Duration = Duration::from_secs(30);

/// The largest answer read; a query's scalar needs a few hundred bytes, a range of
/// [`MAX_POINTS_PER_REQUEST`] points about 300 KB.
pub const MAX_ANSWER: usize = 1 << 20;

/// Points asked for in one range request: under Prometheus' own limit of 11,000.
pub const MAX_POINTS_PER_REQUEST: usize = 10_000;

/// The annotation by which a credentials Secret names the one server it may be sent to.
pub const SECRET_BINDING: &str = "ferroscale.dev/prometheus-url";

/// Prometheus' documented error types: safe to repeat, unlike its error text.
const ERROR_TYPES: [&str; 8] = [
    "bad_data",
    "timeout",
    "canceled",
    "execution",
    "internal",
    "unavailable",
    "not_found",
    "not_acceptable",
];

#[derive(Debug, Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
enum Data {
    Scalar((f64, String)),
    Vector(Vec<VectorSample>),
    Matrix(Vec<MatrixSeries>),
    String(serde::de::IgnoredAny),
}

#[derive(Debug, Deserialize)]
struct MatrixSeries {
    #[serde(default)]
    values: Vec<(f64, String)>,
}

#[derive(Debug, Deserialize)]
struct VectorSample {
    value: (f64, String),
}

/// Credentials and trust read from a Secret.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Auth {
    token: Option<String>,
    basic: Option<(String, String)>,
    ca: Option<Vec<u8>>,
    /// The one server the Secret may be sent to, when it says.
    bound_to: Option<Url>,
}

/// Queries Prometheus servers: the Autoscaler's `serverAddress` or the operator's default,
/// each only if allowed.
pub struct Prometheus {
    client: Option<Client>,
    /// `--prometheus-url`, read once.
    default_url: Option<Url>,
    allowed: AllowedServers,
    timeout: Duration,
    http: reqwest::Client,
    with_ca: Mutex<HashMap<Vec<u8>, reqwest::Client>>,
    secrets: Mutex<HashMap<(String, String), (Auth, Instant)>>,
}

impl std::fmt::Debug for Prometheus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prometheus")
            .field("default_url", &self.default_url)
            .field("allowed", &self.allowed)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

fn http_client(timeout: Duration, ca: Option<&[u8]>) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        // A redirect could lead anywhere, credentials and all: none is followed.
        .redirect(reqwest::redirect::Policy::none());
    if let Some(pem) = ca {
        let certificates =
            reqwest::Certificate::from_pem_bundle(pem).map_err(|e| format!("ca.crt is not a PEM bundle: {e}"))?;
        if certificates.is_empty() {
            return Err("ca.crt holds no PEM certificate".into());
        }
        for cert in certificates {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().map_err(|e| format!("cannot build an HTTP client: {e}"))
}

/// The content type, if it is a common one; any other is not repeated (it could carry
/// whatever the server chose to put there).
fn describe_content_type(response: &reqwest::Response) -> &'static str {
    const COMMON: [&str; 8] = [
        "application/json",
        "text/plain",
        "text/html",
        "application/xml",
        "text/xml",
        "application/octet-stream",
        "application/problem+json",
        "application/x-www-form-urlencoded",
    ];
    let Some(value) = response.headers().get(reqwest::header::CONTENT_TYPE) else {
        return "no content type";
    };
    let media = value.to_str().unwrap_or("").split(';').next().unwrap_or("").trim();
    COMMON
        .iter()
        .find(|common| common.eq_ignore_ascii_case(media))
        .copied()
        .unwrap_or("another content type")
}

/// Reads at most [`MAX_ANSWER`] bytes of the answer; a longer one is refused unread.
async fn read_bounded(mut response: reqwest::Response, server: &str) -> Result<Vec<u8>, String> {
    let too_long = || format!("Prometheus at {server} sent an answer over {MAX_ANSWER} bytes; it was not read");
    if response.content_length().is_some_and(|n| n > MAX_ANSWER as u64) {
        return Err(too_long());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("reading the answer of Prometheus at {server}: {}", transport_error(&e)))?
    {
        if body.len() + chunk.len() > MAX_ANSWER {
            return Err(too_long());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// What went wrong on the way, without the URL reqwest puts in its message: the kind of
/// failure and its innermost cause (such as "Connection refused").
fn transport_error(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else if error.is_body() || error.is_decode() {
        "the answer broke off"
    } else {
        "the request failed"
    };
    let mut innermost = None;
    let mut cause = std::error::Error::source(error);
    while let Some(next) = cause {
        innermost = Some(next);
        cause = next.source();
    }
    match innermost {
        Some(cause) => format!("{kind}: {cause}"),
        None => kind.to_string(),
    }
}

impl Prometheus {
    /// `client` reads credential Secrets; `default_url` serves Autoscalers without a
    /// `serverAddress`; `allowed_urls` are the other servers queries may go to; `timeout`
    /// bounds each query.
    pub fn new(
        client: Option<Client>,
        default_url: Option<String>,
        allowed_urls: &[String],
        timeout: Duration,
    ) -> Result<Self, String> {
        let allowed = AllowedServers::new(default_url.as_deref(), allowed_urls)?;
        let default_url = default_url
            .map(|url| destinations::parse_base_url(&url).map_err(|e| format!("--prometheus-url: {e}")))
            .transpose()?;
        Ok(Self {
            allowed,
            client,
            default_url,
            timeout,
            http: http_client(timeout, None)?,
            with_ca: Mutex::new(HashMap::new()),
            secrets: Mutex::new(HashMap::new()),
        })
    }

    async fn auth(&self, namespace: &str, secret: &str) -> Result<Auth, String> {
        let key = (namespace.to_string(), secret.to_string());
        if let Some((auth, at)) = self
            .secrets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .cloned()
            && at.elapsed() < SECRET_TTL
        {
            return Ok(auth);
        }
        let client = self
            .client
            .clone()
            .ok_or("no Kubernetes client to read the credentials Secret")?;
        let found = Api::<Secret>::namespaced(client, namespace)
            .get(secret)
            .await
            .map_err(|e| format!("cannot read Secret {namespace}/{secret}: {e}"))?;
        let bound_to = match found.metadata.annotations.as_ref().and_then(|a| a.get(SECRET_BINDING)) {
            Some(url) => Some(
                destinations::parse_base_url(url)
                    .map_err(|e| format!("Secret {namespace}/{secret}: annotation {SECRET_BINDING}: {e}"))?,
            ),
            None => None,
        };
        let data = found.data.unwrap_or_default();
        let text = |k: &str| data.get(k).map(|v| String::from_utf8_lossy(&v.0).trim().to_string());
        let auth = Auth {
            token: text("token"),
            basic: text("username").zip(text("password")),
            ca: data.get("ca.crt").map(|v| v.0.clone()),
            bound_to,
        };
        if auth.token.is_none() && auth.basic.is_none() && auth.ca.is_none() {
            return Err(format!(
                "Secret {namespace}/{secret} has none of the keys token, username and password, ca.crt"
            ));
        }
        self.secrets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, (auth.clone(), Instant::now()));
        Ok(auth)
    }

    fn client_for(&self, ca: Option<&[u8]>) -> Result<reqwest::Client, String> {
        let Some(pem) = ca else { return Ok(self.http.clone()) };
        let mut cache = self.with_ca.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(client) = cache.get(pem) {
            return Ok(client.clone());
        }
        let client = http_client(self.timeout, Some(pem))?;
        cache.insert(pem.to_vec(), client.clone());
        Ok(client)
    }

    /// The server to ask, if it is allowed: the Autoscaler's or the operator's default.
    fn server(&self, source: &PrometheusMetricSource) -> Result<Url, String> {
        match source.server_address.as_deref() {
            Some(address) => self.allowed.check("prometheus.serverAddress", address),
            None => self
                .default_url
                .clone()
                .ok_or_else(|| "no serverAddress, and the operator has no --prometheus-url".to_string()),
        }
    }

    /// Evaluates the query now; its single value in milli-units.
    pub async fn query(&self, namespace: &str, source: &PrometheusMetricSource) -> Result<i64, String> {
        let data = self
            .ask(namespace, source, |base| destinations::query_url(base, &source.query))
            .await?;
        let text = match data {
            Some(Data::Scalar((_, v))) => v,
            Some(Data::Vector(samples)) => match samples.len() {
                1 => samples.into_iter().next().map(|s| s.value.1).unwrap_or_default(),
                0 => return Err("the query returned no series".into()),
                n => {
                    return Err(format!(
                        "the query returned {n} series, it must return one (e.g. aggregate with sum())"
                    ));
                }
            },
            Some(Data::Matrix(_)) => {
                return Err("the query returned a range vector; use an instant vector or scalar".into());
            }
            Some(Data::String(_)) | None => return Err("the query returned no number".into()),
        };
        ParsedQuantity::parse(&text)
            .map(|q| q.milli_value())
            .map_err(|_| "the query returned a value that is not a finite number".to_string())
    }

    /// The query's values over `range` (`/api/v1/query_range`), in requests of at most
    /// [`MAX_POINTS_PER_REQUEST`] points: the history a predictive metric forecasts from.
    pub async fn query_range(
        &self,
        namespace: &str,
        source: &PrometheusMetricSource,
        range: &Range,
    ) -> Result<Series, String> {
        let step = range.step.as_secs().max(1) as i64;
        let mut points: Vec<(Timestamp, f64)> = Vec::new();
        let mut from = range.start.as_second();
        let end = range.end.as_second();
        while from <= end {
            let to = end.min(from + step * (MAX_POINTS_PER_REQUEST as i64 - 1));
            let data = self
                .ask(namespace, source, |base| {
                    destinations::query_range_url(base, &source.query, from, to, step)
                })
                .await?;
            match data {
                Some(Data::Matrix(series)) => match series.len() {
                    0 => {}
                    1 => {
                        for (t, v) in series.into_iter().flat_map(|s| s.values) {
                            let (Ok(t), Ok(v)) = (Timestamp::from_second(t as i64), v.parse::<f64>()) else {
                                return Err("the range query returned a point that is not a time and a number".into());
                            };
                            if v.is_finite() {
                                points.push((t, v));
                            }
                        }
                    }
                    n => {
                        return Err(format!(
                            "the range query returned {n} series, it must return one (e.g. aggregate with sum())"
                        ));
                    }
                },
                _ => return Err("the range query returned no range vector".into()),
            }
            from = to + step;
        }
        points.sort_by_key(|(t, _)| *t);
        points.dedup_by_key(|(t, _)| *t);
        Ok(Series {
            step: range.step,
            points,
        })
    }

    /// Sends one request built from the allowed server's base URL, with the source's
    /// credentials when they may go there, and reads the answer's data.
    async fn ask(
        &self,
        namespace: &str,
        source: &PrometheusMetricSource,
        url: impl FnOnce(&Url) -> Url,
    ) -> Result<Option<Data>, String> {
        let base = self.server(source)?;
        let server = base.as_str().trim_end_matches('/').to_string();
        let auth = match &source.auth_secret_ref {
            Some(secret) => {
                let auth = self.auth(namespace, &secret.name).await?;
                if let Some(bound) = &auth.bound_to
                    && !destinations::binds(bound, &base)
                {
                    return Err(format!(
                        "{}: Secret {namespace}/{} is bound to another Prometheus server by its \
                         {SECRET_BINDING} annotation; its credentials are not sent to {server}",
                        destinations::FORBIDDEN_METRIC_SOURCE,
                        secret.name
                    ));
                }
                auth
            }
            None => Auth::default(),
        };
        let mut request = self.client_for(auth.ca.as_deref())?.get(url(&base));
        if let Some(token) = &auth.token {
            request = request.bearer_auth(token);
        } else if let Some((user, password)) = &auth.basic {
            request = request.basic_auth(user, Some(password));
        }
        let response = request.send().await.map_err(|e| {
            if e.is_timeout() {
                format!("Prometheus at {server} did not answer within {:?}", self.timeout)
            } else {
                format!("cannot reach Prometheus at {server}: {}", transport_error(&e))
            }
        })?;
        let code = response.status();
        if code.is_redirection() {
            return Err(format!(
                "Prometheus at {server} answered {code}, a redirect; redirects are not followed"
            ));
        }
        let content_type = describe_content_type(&response);
        let body = read_bounded(response, &server).await?;
        let answer: Answer = serde_json::from_slice(&body).map_err(|_| {
            debug!(%server, %code, body = %String::from_utf8_lossy(&body[..body.len().min(512)]), "not Prometheus' JSON");
            format!(
                "Prometheus at {server} answered {code} with {content_type} ({} bytes), not Prometheus' JSON",
                body.len()
            )
        })?;
        if answer.status != "success" {
            let error_type = answer
                .error_type
                .as_deref()
                .filter(|t| ERROR_TYPES.contains(t))
                .unwrap_or("an unknown error type");
            debug!(%server, %code, error = answer.error.as_deref().unwrap_or(""), "Prometheus refused a query");
            return Err(format!(
                "Prometheus at {server} refused the query ({code}, {error_type}); \
                 the operator's debug log has its message"
            ));
        }
        Ok(answer.data)
    }
}
