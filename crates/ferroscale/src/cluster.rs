//! What the commands that read the cluster once (`explain`, `migrate`) share: an async runtime
//! for the one call, a client of the usual kubeconfig, and lists read page by page.

use anyhow::{Context as _, Result, anyhow};
use kube::Client;
use kube::api::{Api, ListParams};

/// Runs `future` to completion on a runtime of its own.
pub fn block_on<F: std::future::Future>(future: F) -> Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    Ok(runtime.block_on(future))
}

/// A client of the usual kubeconfig (KUBECONFIG, ~/.kube/config) or the in-cluster one.
pub async fn client() -> Result<Client> {
    Client::try_default().await.map_err(|e| {
        anyhow!(
            "cannot connect to a cluster: no usable kubeconfig (KUBECONFIG, ~/.kube/config) or in-cluster \
             configuration: {e}"
        )
    })
}

/// Every object `params` selects, read in pages of 500 so that a large list never arrives at once.
pub async fn list_pages<K>(api: &Api<K>, params: &ListParams) -> Result<Vec<K>, kube::Error>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let mut items = Vec::new();
    let mut params = params.clone().limit(500);
    loop {
        let page = api.list(&params).await?;
        items.extend(page.items);
        match page.metadata.continue_.filter(|token| !token.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(items),
        }
    }
}
