//! Which resource serves a kind, from API discovery, remembered for a while. Failures are not
//! remembered, so a CRD installed later is found on the next try.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kube::Client;
use kube::core::GroupVersionKind;
use kube::core::discovery::{ApiCapabilities, ApiResource};

/// Discovery answers are reused this long.
const TTL: Duration = Duration::from_secs(300);

type Found = (ApiResource, ApiCapabilities);
/// (group, version, kind) → what discovery found, and when.
type Cache = HashMap<(String, String, String), (Found, Instant)>;

/// Kinds resolved to resources, cached.
pub struct Kinds {
    client: Client,
    cache: Mutex<Cache>,
}

impl std::fmt::Debug for Kinds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kinds").finish_non_exhaustive()
    }
}

impl Kinds {
    pub fn new(client: Client) -> Self {
        Self {
            client,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The resource (and its capabilities) serving `kind` in `api_version` (`apps/v1`, `v1`).
    pub async fn resolve(&self, api_version: &str, kind: &str) -> Result<Found, String> {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let key = (group.to_string(), version.to_string(), kind.to_string());
        if let Some((found, at)) = self.cache.lock().unwrap_or_else(|p| p.into_inner()).get(&key).cloned()
            && at.elapsed() < TTL
        {
            return Ok(found);
        }
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let found = kube::discovery::pinned_kind(&self.client, &gvk).await.map_err(|e| {
            let reason = match e {
                kube::Error::Api(status) => status.message,
                other => other.to_string(),
            };
            format!("no kind {kind} is served in {api_version}: {reason}")
        })?;
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, (found.clone(), Instant::now()));
        Ok(found)
    }
}
