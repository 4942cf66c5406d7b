//! `ferroscale run`: the operator process.

use std::sync::Arc;

use anyhow::{Context as _, Result};
use clap::{Args, ValueEnum};
use ferroscale_api::{Autoscaler, PodSet};
use ferroscale_autoscaler::Settings;
use ferroscale_controller::autoscaler;
use ferroscale_controller::backoff::Backoff;
use ferroscale_controller::events::{Recorder, Reporter};
use ferroscale_controller::fairness::Fairness;
use ferroscale_controller::leader;
use ferroscale_controller::pod_cache;
use ferroscale_controller::shard::{Claims, GROUP_LABEL, Ownership, Shard};
use ferroscale_controller::telemetry::Telemetry;
use ferroscale_metrics::shared::{PodMetricsRead, SharedPodMetrics};
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::admin::Admin;
use ferroscale_controller::podset::{self, expectations::Expectations};
use futures::StreamExt;
use k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler;
use k8s_openapi::api::coordination::v1::Lease;
use kube::runtime::WatchStreamExt;
use kube::{Api, Client};
use tracing::info;

/// How long reconciles in flight may take to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// Flags of `ferroscale run`; each has an environment variable fallback.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Kubeconfig to use; without it (and without KUBECONFIG), ~/.kube/config, then the
    /// in-cluster configuration.
    #[arg(long, value_name = "PATH", env = "KUBECONFIG")]
    kubeconfig: Option<std::path::PathBuf>,
    /// Controllers to run, comma-separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "autoscaler,podset",
        env = "FERROSCALE_CONTROLLERS"
    )]
    controllers: Vec<ControllerKind>,
    /// How often every Autoscaler is evaluated (Go duration); spec changes are acted on at once.
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = crate::flags::parse_duration, env = "FERROSCALE_SYNC_PERIOD")]
    sync_period: std::time::Duration,
    #[command(flatten)]
    sources: crate::flags::SourceArgs,
    /// How CPU and memory usage (metrics.k8s.io PodMetrics) is read: `selector`, one list per
    /// Autoscaler with its target's selector, as upstream reads; `namespace`, one list per
    /// namespace shared by its Autoscalers; `auto`, whichever costs less in each namespace,
    /// judged by how many Autoscalers read there and how many pods they and the namespace hold.
    #[arg(long, value_enum, default_value_t = PodMetricsReadArg::Auto, env = "FERROSCALE_POD_METRICS_READ")]
    pod_metrics_read: PodMetricsReadArg,
    /// How old a shared namespace list may be and still serve (Go duration); never more than
    /// half the sync period.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = crate::flags::parse_duration, env = "FERROSCALE_POD_METRICS_MAX_AGE")]
    pod_metrics_max_age: Duration,
    /// How many Autoscalers are evaluated at once. Each evaluation in flight holds a connection
    /// to the API server, so this also bounds the connections (kube's client speaks HTTP/1.1).
    #[arg(long, value_name = "N", default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..), env = "FERROSCALE_CONCURRENCY")]
    concurrency: u16,
    /// How many Autoscalers of one namespace are evaluated at once (default: half of
    /// --concurrency, at least 1), so that a tenant whose metric sources hang cannot take
    /// every slot.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..), env = "FERROSCALE_CONCURRENCY_PER_NAMESPACE")]
    concurrency_per_namespace: Option<u16>,
    #[command(flatten)]
    decision: crate::flags::DecisionArgs,
    /// Address of the admin server (/metrics, /livez, /readyz).
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "0.0.0.0:8080",
        env = "FERROSCALE_ADMIN_ADDR"
    )]
    admin_addr: std::net::SocketAddr,
    /// Run the controllers only while holding a Lease, so that several replicas can run and
    /// one acts.
    #[arg(long, env = "FERROSCALE_LEADER_ELECT")]
    leader_elect: bool,
    /// Name of the leader election Lease.
    #[arg(
        long,
        value_name = "NAME",
        default_value = "ferroscale",
        env = "FERROSCALE_LEADER_ELECTION_LEASE"
    )]
    leader_election_lease: String,
    /// Namespace of the Lease (default: the operator's own, from POD_NAMESPACE, else `default`).
    #[arg(long, value_name = "NAMESPACE", env = "FERROSCALE_LEADER_ELECTION_NAMESPACE")]
    leader_election_namespace: Option<String>,
    /// How long a standby waits after the Lease last changed before taking it over (Go duration).
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = crate::flags::parse_duration, env = "FERROSCALE_LEADER_ELECTION_LEASE_DURATION")]
    leader_election_lease_duration: Duration,
    /// How long the leader goes on without renewing the Lease before it stops acting; shorter
    /// than the lease duration, so that it stops before a standby may take over (Go duration).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = crate::flags::parse_duration, env = "FERROSCALE_LEADER_ELECTION_RENEW_DEADLINE")]
    leader_election_renew_deadline: Duration,
    /// How often the leader renews the Lease and a standby tries to take it (Go duration).
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = crate::flags::parse_duration, env = "FERROSCALE_LEADER_ELECTION_RETRY_PERIOD")]
    leader_election_retry_period: Duration,
    /// How many shards split the Autoscalers and PodSets: each shard is its own deployment of
    /// the operator, evaluating the objects a stable hash of namespace/name gives it, with
    /// leader election on a Lease of its own (the Lease name followed by -INDEX).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..), env = "FERROSCALE_SHARDS")]
    shards: u32,
    /// The shard this replica runs, from 0 to --shards minus 1.
    #[arg(long, value_name = "I", default_value_t = 0, env = "FERROSCALE_SHARD_INDEX")]
    shard_index: u32,
    /// Watch only these namespaces, comma-separated or repeated (default: all namespaces).
    #[arg(
        long = "namespace",
        value_name = "NAMESPACE",
        value_delimiter = ',',
        env = "FERROSCALE_NAMESPACE"
    )]
    namespaces: Vec<String>,
    /// Log filter, in tracing's EnvFilter syntax (e.g. `info,ferroscale_controller=debug`).
    #[arg(long, value_name = "FILTER", default_value = "info", env = "FERROSCALE_LOG_FILTER")]
    log_filter: String,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, env = "FERROSCALE_LOG_FORMAT")]
    log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ControllerKind {
    /// Scales the targets of Autoscalers.
    Autoscaler,
    /// Keeps PodSets' pods running.
    Podset,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum PodMetricsReadArg {
    Auto,
    Selector,
    Namespace,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn init_logging(args: &RunArgs) -> Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log_filter)
        .with_context(|| format!("--log-filter {:?}", args.log_filter))?;
    // Colour only on a terminal: in a file, a pipe or `kubectl logs` escapes are noise.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    Ok(())
}

/// Resolves, for every clone, on SIGTERM or Ctrl-C.
type Shutdown = futures::future::Shared<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + Sync>>>;

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM; stopping on Ctrl-C only");
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// Runs the operator until a shutdown signal.
pub fn run(args: RunArgs) -> Result<()> {
    init_logging(&args)?;
    refuse_transparent_huge_pages();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(operate(args))
}

/// Keeps this process's memory in 4 KiB pages. The operator's heap is many small objects that
/// come and go with each evaluation; where the kernel backs the allocator's arenas with 2 MiB
/// pages (THP `always`, or `madvise` as mimalloc asks for), a page stays resident while any of it
/// is used: at 10,000 Autoscalers that was 50–75 MiB more RSS for no CPU saved. Kernels before
/// 3.15 do not know the call; there the pages stay as they are.
fn refuse_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    if let Err(error) = rustix::thread::disable_transparent_huge_pages(true) {
        tracing::debug!(%error, "transparent huge pages stay as the kernel sets them");
    }
}

/// The API of `K` in one namespace, or in all.
fn scoped<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// This process's name in events and the Lease: the pod's name when run in a cluster.
fn identity() -> String {
    std::env::var("POD_NAME").unwrap_or_else(|_| format!("ferroscale-{}", std::process::id()))
}

async fn operate(args: RunArgs) -> Result<()> {
    if args.controllers.contains(&ControllerKind::Autoscaler) && args.sync_period.is_zero() {
        anyhow::bail!("--sync-period must be longer than 0s");
    }
    let mut config = match &args.kubeconfig {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("--kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                .await
                .with_context(|| format!("--kubeconfig {}", path.display()))?
        }
        None => kube::Config::infer()
            .await
            .context("cannot reach the Kubernetes API (tried ~/.kube/config and the in-cluster config)")?,
    };
    // No client-side retries: kube's would retry a 503 from an unavailable metrics API for
    // minutes inside one reconcile, hiding the failure. Every evaluation is retried anyway.
    config.default_retry = false;
    let client = Client::try_from(config).context("cannot build a Kubernetes client")?;
    let shard = Shard::new(args.shards, args.shard_index).map_err(anyhow::Error::msg)?;
    let mut registry = Registry::default();
    let telemetry = Arc::new(Telemetry::new(&mut registry));
    telemetry.shards.set(i64::from(shard.count));
    telemetry.shard_index.set(i64::from(shard.index));
    // The metric sources serve every term; building them reads the Prometheus flags strictly,
    // before anything starts (the error names the flag).
    let sources = if args.controllers.contains(&ControllerKind::Autoscaler) {
        let mode = match args.pod_metrics_read {
            PodMetricsReadArg::Auto => PodMetricsRead::Auto,
            PodMetricsReadArg::Selector => PodMetricsRead::Selector,
            PodMetricsReadArg::Namespace => PodMetricsRead::Namespace,
        };
        let max_age = args.pod_metrics_max_age.min(args.sync_period / 2);
        Some(Arc::new(ferroscale_metrics::Sources {
            pod_metrics: Arc::new(
                SharedPodMetrics::new(mode, max_age, args.sync_period)
                    .with_counters(telemetry.pod_metrics_lists.clone()),
            ),
            ..args.sources.sources(&client)?
        }))
    } else {
        None
    };

    let admin = Arc::new(Admin {
        registry,
        ready: AtomicBool::new(false),
        last_metrics_len: AtomicUsize::new(0),
    });
    let admin_server = tokio::spawn(crate::admin::bind(args.admin_addr, admin.clone()).await?);

    // The pod cache runs on every replica, so a standby is ready to take over at once.
    let (pods, drivers) = pod_cache::watch(client.clone(), &args.namespaces);
    let scopes = pod_cache::scopes(&args.namespaces);
    let mut watch_tasks = tokio::task::JoinSet::new();
    for driver in drivers {
        watch_tasks.spawn(driver);
    }
    let readiness = {
        let (pods, admin) = (pods.clone(), admin.clone());
        tokio::spawn(async move {
            pods.wait_until_ready().await;
            admin.ready.store(true, Ordering::SeqCst);
            info!("pod cache synced");
        })
    };
    let signal: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + Sync>> = Box::pin(shutdown_signal());
    let shutdown: Shutdown = futures::future::FutureExt::shared(signal);

    // With leader election, act only while holding the Lease. A replica that stops leading
    // (the Lease lost, or not renewed within the renew deadline) stops its controllers at once
    // and becomes a standby again; its caches stay warm for the next term.
    let mut ownership = Arc::new(Ownership::by_hash(shard));
    let mut elector = if args.leader_elect {
        let timing = leader::Timing {
            lease_duration: args.leader_election_lease_duration,
            renew_deadline: args.leader_election_renew_deadline,
            retry_period: args.leader_election_retry_period,
        };
        timing.check().map_err(anyhow::Error::msg)?;
        let lease_namespace = args
            .leader_election_namespace
            .clone()
            .or_else(|| std::env::var("POD_NAMESPACE").ok())
            .unwrap_or_else(|| "default".into());
        let lease = shard.lease_name(&args.leader_election_lease);
        info!(%lease, namespace = %lease_namespace, identity = %identity(), %shard, "leader election on");
        // Every shard's Lease, watched on every replica: a reshard hands an Autoscaler over only
        // once the shard that evaluated it has let its Lease go.
        let claims = Arc::new(Claims::new(&args.leader_election_lease, timing.lease_duration));
        let lease_watch = {
            let claims = claims.clone();
            kube::runtime::watcher(
                Api::<Lease>::namespaced(client.clone(), &lease_namespace),
                kube::runtime::watcher::Config::default()
                    .labels(&format!("{GROUP_LABEL}={}", args.leader_election_lease)),
            )
            .default_backoff()
            .for_each(move |event| {
                match event {
                    Ok(event) => claims.apply(&event),
                    Err(error) => tracing::warn!(%error, "Lease watch error; retrying with backoff"),
                }
                std::future::ready(())
            })
        };
        watch_tasks.spawn(lease_watch);
        ownership = Arc::new(Ownership::elected(shard, claims, lease.clone(), timing.retry_period));
        let (labels, annotations) = shard.lease_marks(&args.leader_election_lease);
        Some(
            leader::Elector::new(client.clone(), &lease_namespace, &lease, identity(), timing)
                .with_marks(labels, annotations),
        )
    } else {
        None
    };
    let watched = if args.namespaces.is_empty() {
        "(all)".to_string()
    } else {
        args.namespaces.join(",")
    };
    loop {
        if let Some(elector) = elector.as_mut() {
            tokio::select! {
                _ = elector.acquire() => {}
                _ = shutdown.clone() => break,
            }
        }
        // Before any reconcile: a term that does not know its Lease's age defers to every other.
        ownership.acquired(elector.as_ref().and_then(leader::Elector::acquired_at));
        let Term {
            controllers: mut tasks,
            watches: mut term_watches,
        } = start_term(
            &args,
            &Lasting {
                client: &client,
                pods: &pods,
                scopes: &scopes,
                sources: sources.as_ref(),
                telemetry: &telemetry,
                ownership: &ownership,
            },
            &shutdown,
        );
        telemetry.acting.set(1);
        info!(controllers = ?args.controllers, namespaces = %watched, %shard, "ferroscale started");
        let held = async {
            match elector.as_mut() {
                Some(elector) => elector.hold().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shutdown.clone() => {
                info!("shutting down: finishing reconciles in flight");
                // The Lease is not renewed meanwhile: a leader stops within its deadline.
                let grace = elector.as_ref().map_or(SHUTDOWN_GRACE, |e| e.acting_margin().min(SHUTDOWN_GRACE));
                let drained =
                    tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
                if drained.is_err() {
                    tracing::warn!("reconciles still running after {grace:?}; stopping anyway");
                    tasks.abort_all();
                }
                term_watches.abort_all();
                if let Some(elector) = elector.as_mut() {
                    elector.release().await;
                }
                break;
            }
            _ = held => {
                // Stop before a standby may take over: no reconcile of this term goes on.
                tasks.abort_all();
                term_watches.abort_all();
                while tasks.join_next().await.is_some() {}
                telemetry.acting.set(0);
                telemetry.forget_all();
                tracing::error!("stopped acting: this replica no longer leads; campaigning again");
            }
        }
    }
    readiness.abort();
    watch_tasks.abort_all();
    admin_server.abort();
    Ok(())
}

/// One term of the controllers.
struct Term {
    /// Everything that acts; drained at shutdown.
    controllers: tokio::task::JoinSet<()>,
    /// The HPA watches whose index the term's conflict checks read; they never end on their
    /// own, so they are stopped, not drained.
    watches: tokio::task::JoinSet<()>,
}

/// What outlives terms: the client, the pod cache and its scopes, the metric sources (when the
/// Autoscaler controller runs), the metrics and this replica's shard.
struct Lasting<'a> {
    client: &'a Client,
    pods: &'a pod_cache::PodCache,
    scopes: &'a [Option<String>],
    sources: Option<&'a Arc<ferroscale_metrics::Sources>>,
    telemetry: &'a Arc<Telemetry>,
    ownership: &'a Arc<Ownership>,
}

/// Starts one term of the controllers, on top of the pod cache that outlives terms.
fn start_term(args: &RunArgs, lasting: &Lasting<'_>, shutdown: &Shutdown) -> Term {
    let Lasting {
        client,
        pods,
        scopes,
        sources,
        telemetry,
        ownership,
    } = *lasting;
    let mut tasks = tokio::task::JoinSet::new();
    let mut watches = tokio::task::JoinSet::new();
    // One controller of each kind per watched namespace (or one for all).
    if args.controllers.contains(&ControllerKind::Podset) {
        let reporter = Reporter {
            controller: "ferroscale-podset".into(),
            instance: identity(),
        };
        let ctx = Arc::new(podset::Context {
            client: client.clone(),
            pods: pods.clone(),
            expectations: Expectations::default(),
            recorder: Recorder::new(client.clone(), reporter),
            backoff: Backoff::default(),
            telemetry: telemetry.clone(),
            ownership: ownership.clone(),
        });
        for (i, namespace) in scopes.iter().enumerate() {
            let Some(pod_events) = pods.subscribe(i) else { continue };
            tasks.spawn(podset::run(
                scoped::<PodSet>(client, namespace.as_deref()),
                ctx.clone(),
                pod_events,
                shutdown.clone(),
            ));
        }
    }
    // Sources are there exactly when the Autoscaler controller runs.
    if let Some(sources) = sources {
        let reporter = Reporter {
            controller: "ferroscale-autoscaler".into(),
            instance: identity(),
        };
        let ctx = Arc::new(autoscaler::Context {
            readers: autoscaler::observe::Readers {
                client: client.clone(),
                pods: pods.clone(),
                targets: autoscaler::target::Targets::new(client.clone()),
                metrics: sources.clone(),
                neighbours: Default::default(),
            },
            settings: Settings {
                sync_period: args.sync_period,
                ..args.decision.settings()
            },
            memory: Default::default(),
            fairness: {
                let global = usize::from(args.concurrency);
                let per_namespace = args
                    .concurrency_per_namespace
                    .map_or_else(|| Fairness::default_per_namespace(global), usize::from);
                Fairness::new(global, per_namespace)
            },
            recorder: Recorder::new(client.clone(), reporter),
            backoff: Backoff::default(),
            telemetry: telemetry.clone(),
            ownership: ownership.clone(),
        });
        // Every watch feeding the conflict checks is numbered before any reconcile runs, so
        // that the first evaluations wait for all of their lists.
        let sources: Vec<(usize, usize)> = scopes
            .iter()
            .map(|_| (ctx.readers.neighbours.source(), ctx.readers.neighbours.source()))
            .collect();
        for (namespace, (source, autoscaler_source)) in scopes.iter().zip(sources) {
            // Upstream HPAs of the namespace, so that no Autoscaler fights one over a target.
            let neighbours = ctx.clone();
            let hpa_watch = kube::runtime::watcher(
                scoped::<HorizontalPodAutoscaler>(client, namespace.as_deref()),
                kube::runtime::watcher::Config::default().any_semantic(),
            )
            .default_backoff()
            .for_each(move |event| {
                match event {
                    Ok(event) => neighbours.readers.neighbours.hpa_event(source, &event),
                    Err(error) => {
                        tracing::warn!(%error, "HorizontalPodAutoscaler watch error; retrying with backoff")
                    }
                }
                std::future::ready(())
            });
            watches.spawn(hpa_watch);
            tasks.spawn(autoscaler::run(
                scoped::<Autoscaler>(client, namespace.as_deref()),
                ctx.clone(),
                autoscaler_source,
                shutdown.clone(),
            ));
        }
    }
    Term {
        controllers: tasks,
        watches,
    }
}
