//! Prometheus as a metric source, without an adapter: an instant query through the HTTP API
//! (`/api/v1/query`) that must return a scalar or a vector of exactly one element.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ferroscale_api::PrometheusMetricSource;
use ferroscale_api::quantity::ParsedQuantity;
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};
use serde::Deserialize;

/// Credentials are re-read from their Secret after this long.
const SECRET_TTL: Duration = Duration::from_secs(30);

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
    Matrix(serde::de::IgnoredAny),
    String(serde::de::IgnoredAny),
}

#[derive(Debug, Deserialize)]
struct VectorSample {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    value: (f64, String),
}

/// Credentials and trust read from a Secret.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Auth {
    token: Option<String>,
    basic: Option<(String, String)>,
    ca: Option<Vec<u8>>,
}

/// Queries Prometheus servers: the Autoscaler's `serverAddress` or the operator's default.
pub struct Prometheus {
    client: Option<Client>,
    default_url: Option<String>,
    timeout: Duration,
    http: reqwest::Client,
    with_ca: Mutex<HashMap<Vec<u8>, reqwest::Client>>,
    secrets: Mutex<HashMap<(String, String), (Auth, Instant)>>,
}

impl std::fmt::Debug for Prometheus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prometheus")
            .field("default_url", &self.default_url)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

fn http_client(timeout: Duration, ca: Option<&[u8]>) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder().timeout(timeout).connect_timeout(timeout);
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

impl Prometheus {
    /// `client` reads credential Secrets; `default_url` serves Autoscalers without a
    /// `serverAddress`; `timeout` bounds each query.
    pub fn new(client: Option<Client>, default_url: Option<String>, timeout: Duration) -> Result<Self, String> {
        Ok(Self {
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
        let data = found.data.unwrap_or_default();
        let text = |k: &str| data.get(k).map(|v| String::from_utf8_lossy(&v.0).trim().to_string());
        let auth = Auth {
            token: text("token"),
            basic: text("username").zip(text("password")),
            ca: data.get("ca.crt").map(|v| v.0.clone()),
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

    /// Evaluates the query now; its single value in milli-units.
    pub async fn query(&self, namespace: &str, source: &PrometheusMetricSource) -> Result<i64, String> {
        let base = source
            .server_address
            .as_deref()
            .or(self.default_url.as_deref())
            .ok_or("no serverAddress, and the operator has no --prometheus-url")?;
        let auth = match &source.auth_secret_ref {
            Some(secret) => self.auth(namespace, &secret.name).await?,
            None => Auth::default(),
        };
        let url = format!("{}/api/v1/query", base.trim_end_matches('/'));
        let mut request = self
            .client_for(auth.ca.as_deref())?
            .get(&url)
            .query(&[("query", source.query.as_str())]);
        if let Some(token) = &auth.token {
            request = request.bearer_auth(token);
        } else if let Some((user, password)) = &auth.basic {
            request = request.basic_auth(user, Some(password));
        }
        let response = request.send().await.map_err(|e| {
            if e.is_timeout() {
                format!("Prometheus at {base} did not answer within {:?}", self.timeout)
            } else {
                format!("cannot reach Prometheus at {base}: {e}")
            }
        })?;
        let code = response.status();
        let body = response
            .text()
            .await
            .map_err(|e| format!("reading Prometheus' answer: {e}"))?;
        let answer: Answer = serde_json::from_str(&body).map_err(|_| {
            format!(
                "Prometheus at {base} answered {code} with a body that is not its API's JSON: {}",
                body.chars().take(200).collect::<String>()
            )
        })?;
        if answer.status != "success" {
            return Err(format!(
                "Prometheus rejected the query ({code}, {}): {}",
                answer.error_type.unwrap_or_default(),
                answer.error.unwrap_or_default()
            ));
        }
        let text = match answer.data {
            Some(Data::Scalar((_, v))) => v,
            Some(Data::Vector(samples)) => match samples.len() {
                1 => samples.into_iter().next().map(|s| s.value.1).unwrap_or_default(),
                0 => return Err("the query returned no series".into()),
                n => {
                    let shown: Vec<String> = samples.iter().take(3).map(|s| format!("{:?}", s.metric)).collect();
                    return Err(format!(
                        "the query returned {n} series, it must return one (e.g. aggregate with sum()): {}",
                        shown.join(", ")
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
            .map_err(|_| format!("the query returned {text}, not a finite number"))
    }
}
