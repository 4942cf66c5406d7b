//! A TCP proxy on 127.0.0.1 between the operator and the API server, which a test controls:
//! `cut` partitions them (open connections are dropped, new ones are accepted and never
//! forwarded, so requests hang as across a lost network), `heal` ends it, and `reset` drops
//! every open connection once (watches included), as a flaky load balancer does.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The proxy; it stops when dropped.
pub struct Proxy {
    pub port: u16,
    cut: Arc<AtomicBool>,
    /// Bumped to drop every open connection.
    generation: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Forwards 127.0.0.1:`port` to `upstream` (host:port).
    pub async fn start(upstream: String) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let cut = Arc::new(AtomicBool::new(false));
        let (generation, _) = watch::channel(0u64);
        let (cut_flag, generations) = (cut.clone(), generation.clone());
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let mut dropped = generations.subscribe();
                let (cut, upstream) = (cut_flag.clone(), upstream.clone());
                tokio::spawn(async move {
                    let relay = async {
                        if cut.load(Ordering::SeqCst) {
                            // A partition: the connection goes nowhere.
                            std::future::pending::<()>().await;
                        }
                        let Ok(server) = TcpStream::connect(&upstream).await else {
                            return;
                        };
                        let (mut client, mut server) = (client, server);
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    };
                    tokio::select! {
                        _ = relay => {}
                        _ = dropped.changed() => {}
                    }
                });
            }
        });
        Ok(Self {
            port,
            cut,
            generation,
            task,
        })
    }

    /// Partitions the operator from the API server.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        self.reset();
    }

    /// Ends the partition; connections opened during it are dropped, so clients reconnect.
    pub fn heal(&self) {
        self.cut.store(false, Ordering::SeqCst);
        self.reset();
    }

    /// Drops every open connection once.
    pub fn reset(&self) {
        self.generation.send_modify(|g| *g += 1);
    }

    /// A copy of `kubeconfig` whose server is this proxy, written next to `dir`'s other files.
    pub fn kubeconfig(&self, kubeconfig: &Path, dir: &Path) -> Result<PathBuf> {
        let text = std::fs::read_to_string(kubeconfig).with_context(|| format!("reading {}", kubeconfig.display()))?;
        let mut config: serde_yaml::Value = serde_yaml::from_str(&text)?;
        for cluster in config["clusters"].as_sequence_mut().into_iter().flatten() {
            cluster["cluster"]["server"] = serde_yaml::Value::from(format!("https://127.0.0.1:{}", self.port));
        }
        let path = dir.join(format!("kubeconfig-proxy-{}", self.port));
        std::fs::write(&path, serde_yaml::to_string(&config)?)?;
        Ok(path)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.reset();
        self.task.abort();
    }
}

/// The host:port of the API server a kubeconfig names (its first cluster).
pub fn upstream(kubeconfig: &Path) -> Result<String> {
    let text = std::fs::read_to_string(kubeconfig)?;
    let config: serde_yaml::Value = serde_yaml::from_str(&text)?;
    let server = config["clusters"][0]["cluster"]["server"]
        .as_str()
        .context("the kubeconfig names no server")?;
    let address = server
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/');
    Ok(address.to_string())
}
