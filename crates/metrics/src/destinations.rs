//! Where Prometheus queries may go. An Autoscaler is written by a tenant, and the operator has
//! the network reach of a pod in the cluster: a `serverAddress` must be one of the servers the
//! operator's owner allowed (`--prometheus-url` and `--prometheus-allowed-urls`), or nothing is
//! sent. Addresses are read strictly, so that no spelling reaches somewhere else: no user-info,
//! query, fragment, percent-encoding, backslash, whitespace, dot segments, nor any scheme but
//! http and https. An allowed address is a base URL matched exactly (scheme, host, port and
//! path; a trailing slash aside); the query path `/api/v1/query` is appended to it.

use url::Url;

/// The start of every error message for an address that is refused, which the core reports as
/// `ScalingActive=False` reason `ForbiddenMetricSource`.
pub use ferroscale_autoscaler::samples::FORBIDDEN_METRIC_SOURCE;

/// Reads `text` as a base URL for a Prometheus server; the error says what is wrong with it.
pub fn parse_base_url(text: &str) -> Result<Url, String> {
    if let Some(c) = text
        .chars()
        .find(|c| matches!(c, '#' | '?' | '@' | '%' | '\\') || c.is_whitespace() || c.is_control())
    {
        let what = match c {
            '#' => "a fragment (#)".to_string(),
            '?' => "a query (?)".to_string(),
            '@' => "user-info (@)".to_string(),
            '%' => "percent-encoding (%)".to_string(),
            '\\' => "a backslash".to_string(),
            _ => format!("the character {c:?}"),
        };
        return Err(format!(
            "{text:?} has {what}, which a Prometheus base URL must not have"
        ));
    }
    let url = Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{text:?} is not an http:// or https:// URL"));
    }
    if url.host().is_none() {
        return Err(format!("{text:?} names no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "{text:?} has user-info, which a Prometheus base URL must not have"
        ));
    }
    // Dot segments are resolved by the parser; refuse them rather than guess what was meant.
    let after_authority = text.split_once("://").map_or("", |(_, rest)| rest);
    if after_authority
        .split('/')
        .skip(1)
        .any(|segment| segment == "." || segment == "..")
    {
        return Err(format!("{text:?} has a . or .. path segment"));
    }
    Ok(url)
}

/// Two base URLs name the same server and path: scheme, host, port (the scheme's default when
/// absent) and path, a trailing slash aside.
fn same_base(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host() == b.host()
        && a.port_or_known_default() == b.port_or_known_default()
        && a.path().trim_end_matches('/') == b.path().trim_end_matches('/')
}

/// The Prometheus servers queries may go to.
#[derive(Debug, Clone, Default)]
pub struct AllowedServers {
    allowed: Vec<Url>,
}

impl AllowedServers {
    /// `default_url` (the operator's `--prometheus-url`) and `others`
    /// (`--prometheus-allowed-urls`); the error names the flag and the URL that is wrong.
    pub fn new(default_url: Option<&str>, others: &[String]) -> Result<Self, String> {
        let mut allowed = Vec::new();
        if let Some(url) = default_url {
            allowed.push(parse_base_url(url).map_err(|e| format!("--prometheus-url: {e}"))?);
        }
        for url in others.iter().map(|u| u.trim()).filter(|u| !u.is_empty()) {
            allowed.push(parse_base_url(url).map_err(|e| format!("--prometheus-allowed-urls: {e}"))?);
        }
        Ok(Self { allowed })
    }

    /// The base URL to query for `address`, the value of `field`, if it is allowed.
    pub fn check(&self, field: &str, address: &str) -> Result<Url, String> {
        let refused = |why: String| format!("{FORBIDDEN_METRIC_SOURCE}: {field} {why}");
        let url = parse_base_url(address).map_err(refused)?;
        if self.allowed.iter().any(|a| same_base(a, &url)) {
            Ok(url)
        } else {
            Err(refused(format!(
                "{address:?} is not among the Prometheus servers this operator may query \
                 (its --prometheus-url and --prometheus-allowed-urls)"
            )))
        }
    }
}

/// Whether `bound` (a Secret's binding) names the server `url`.
pub fn binds(bound: &Url, url: &Url) -> bool {
    same_base(bound, url)
}

/// The query endpoint under a base URL: `/api/v1/query` appended to its path.
pub fn query_url(base: &Url, query: &str) -> Url {
    let mut url = base.clone();
    if let Ok(mut segments) = url.path_segments_mut() {
        segments.pop_if_empty().extend(["api", "v1", "query"]);
    }
    url.query_pairs_mut().append_pair("query", query);
    url
}

/// `/api/v1/query_range` under `base`, for `query` from `start` to `end` (Unix seconds) every
/// `step` seconds.
pub fn query_range_url(base: &Url, query: &str, start: i64, end: i64, step: i64) -> Url {
    let mut url = base.clone();
    if let Ok(mut segments) = url.path_segments_mut() {
        segments.pop_if_empty().extend(["api", "v1", "query_range"]);
    }
    url.query_pairs_mut()
        .append_pair("query", query)
        .append_pair("start", &start.to_string())
        .append_pair("end", &end.to_string())
        .append_pair("step", &step.to_string());
    url
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn allowed() -> AllowedServers {
        AllowedServers::new(
            Some("http://prometheus.monitoring:9090"),
            &["https://thanos.example/tenant-a/prometheus/".to_string()],
        )
        .unwrap()
    }

    #[test]
    fn allowed_servers_are_matched_exactly() {
        let servers = allowed();
        for ok in [
            "http://prometheus.monitoring:9090",
            "http://prometheus.monitoring:9090/",
            "HTTP://Prometheus.Monitoring:9090",
            "https://thanos.example/tenant-a/prometheus",
            "https://thanos.example:443/tenant-a/prometheus/",
        ] {
            assert!(servers.check("prometheus.serverAddress", ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn every_other_spelling_is_refused_and_named() {
        let servers = allowed();
        for (bad, why) in [
            ("http://127.0.0.1:8080/internal/credentials#", "fragment"),
            ("http://prometheus.monitoring:9090#", "fragment"),
            ("http://prometheus.monitoring:9090/?x=", "query"),
            ("http://evil@prometheus.monitoring:9090", "user-info"),
            ("http://prometheus.monitoring:9090@evil.example", "user-info"),
            ("http://prometheus.monitoring:9090/%2e%2e/x", "percent-encoding"),
            ("http://prometheus%2emonitoring:9090", "percent-encoding"),
            ("http://prometheus.monitoring:9090\\@evil", "backslash"),
            ("http://prometheus.monitoring:9090/x/..", ". or .."),
            ("https://thanos.example/tenant-a/prometheus/../../tenant-b", ". or .."),
            ("file:///etc/passwd", "not an http"),
            ("gopher://prometheus.monitoring:9090", "not an http"),
            ("http://prometheus.monitoring:9091", "not among"),
            ("https://prometheus.monitoring:9090", "not among"),
            ("http://prometheus.monitoring:9090/other", "not among"),
            ("https://thanos.example/tenant-a", "not among"),
            ("https://thanos.example/tenant-a/prometheus/sub", "not among"),
            ("http://169.254.169.254/latest/meta-data", "not among"),
            ("http://2130706433:9090", "not among"),
            (" http://prometheus.monitoring:9090", "character"),
            ("http://prometheus.monitoring:9090\n", "character"),
            ("prometheus.monitoring:9090", "not an http"),
        ] {
            let error = servers.check("prometheus.serverAddress", bad).unwrap_err();
            assert!(error.starts_with(FORBIDDEN_METRIC_SOURCE), "{bad}: {error}");
            assert!(error.contains("prometheus.serverAddress"), "{bad}: {error}");
            assert!(error.contains(why), "{bad}: {error}");
        }
    }

    #[test]
    fn without_any_allowed_server_nothing_is_allowed() {
        let none = AllowedServers::new(None, &[]).unwrap();
        assert!(none.check("f", "http://prometheus.monitoring:9090").is_err());
    }

    #[test]
    fn a_bad_allowed_url_names_its_flag() {
        let error = AllowedServers::new(Some("http://p:9090#x"), &[]).unwrap_err();
        assert!(error.starts_with("--prometheus-url:"), "{error}");
        let error = AllowedServers::new(None, &["ftp://p".into()]).unwrap_err();
        assert!(error.starts_with("--prometheus-allowed-urls:"), "{error}");
    }

    #[test]
    fn the_query_goes_under_the_base_path_with_the_query_encoded() {
        let base = parse_base_url("https://thanos.example/tenant-a/prometheus/").unwrap();
        assert_eq!(
            query_url(&base, "sum(rate(x[1m])) # y&z=1").as_str(),
            "https://thanos.example/tenant-a/prometheus/api/v1/query?query=sum%28rate%28x%5B1m%5D%29%29+%23+y%26z%3D1"
        );
        let root = parse_base_url("http://p:9090").unwrap();
        assert_eq!(query_url(&root, "up").as_str(), "http://p:9090/api/v1/query?query=up");
    }
}
