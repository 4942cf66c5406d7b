//! Command-line interface.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use ferroscale_api::crd::{KubeVersion, OLDEST_SUPPORTED};
use ferroscale_autoscaler::Settings;

use crate::flags::{DecisionArgs, SourceArgs, parse_duration};
use jiff::Timestamp;

/// The Kubernetes autoscaler with the HorizontalPodAutoscaler's exact semantics, for any
/// workload with a scale subresource.
#[derive(Debug, Parser)]
#[command(name = "ferroscale", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the operator against the cluster of the usual kubeconfig (KUBECONFIG,
    /// ~/.kube/config) or the in-cluster configuration.
    Run(crate::run::RunArgs),
    /// Print the CustomResourceDefinitions (Autoscaler, PodSet) as YAML.
    Crds {
        /// Write one file per CRD into this directory instead of printing them.
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
        /// Leave out the schema fields a server of this version does not know (CEL validation
        /// rules before 1.25, some of their members before 1.28), so that `kubectl apply
        /// --server-side` works there too. Without it, every field is kept.
        #[arg(long, value_name = "VERSION", value_parser = parse_kube_version)]
        kube_version: Option<KubeVersion>,
        /// Print the Helm chart's templates/crds.yaml instead (`make crds` writes it).
        #[arg(long, hide = true, conflicts_with_all = ["out_dir", "kube_version"])]
        helm_template: bool,
    },
    /// Explain the decision the controller would take now for an Autoscaler in the cluster
    /// (NAMESPACE/NAME), or replay one offline from a snapshot file.
    Explain(ExplainArgs),
    /// Run the decision core against a modelled workload over time (no cluster needed).
    Simulate(SimulateArgs),
    /// Convert HorizontalPodAutoscalers (files, or the cluster's) into Autoscalers, printed as YAML.
    Migrate(crate::migrate::MigrateArgs),
}

#[derive(Debug, Args)]
struct SimulateArgs {
    /// A scenario (kind: Simulation); without one, the built-in scenario runs.
    scenario: Option<PathBuf>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = SimulateFormat::Table)]
    output: SimulateFormat,
    /// Also draw load and replicas over time into this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
    #[command(flatten)]
    decision: DecisionArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum SimulateFormat {
    Table,
    Json,
    Csv,
}

#[derive(Debug, Args)]
struct ExplainArgs {
    /// NAMESPACE/NAME (or NAME with -n) of an Autoscaler in the cluster of the usual
    /// kubeconfig; or a snapshot file: multi-document YAML with one Autoscaler, the target's
    /// autoscaling/v1 Scale, Pods, and the metric values (PodMetrics, MetricValueList,
    /// ExternalMetricValueList, PrometheusSample), as `--save` writes it.
    target: String,
    /// The Autoscaler's namespace (live); default: the kubeconfig's.
    #[arg(short = 'n', long, value_name = "NAMESPACE")]
    namespace: Option<String>,
    /// Also write what the live explanation read as a snapshot file, to replay offline.
    #[arg(long, value_name = "FILE")]
    save: Option<PathBuf>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Text)]
    output: Format,
    /// The evaluation time of a snapshot (RFC 3339); defaults to the current time.
    #[arg(long, value_name = "RFC3339", value_parser = parse_timestamp)]
    now: Option<Timestamp>,
    /// The operator's sync period (Go duration): when the current recommendation in status
    /// changes, the previous one is taken as last made one period earlier.
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = parse_duration)]
    sync_period: Duration,
    #[command(flatten)]
    decision: DecisionArgs,
    #[command(flatten)]
    sources: SourceArgs,
}

impl ExplainArgs {
    /// Whether `target` names an Autoscaler in the cluster rather than a snapshot file: with
    /// -n, or when no such file exists and it reads as NAMESPACE/NAME.
    fn is_live(&self) -> bool {
        if self.namespace.is_some() {
            return true;
        }
        let path = std::path::Path::new(&self.target);
        let dns = |part: &str| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        };
        !path.exists()
            && !self.target.ends_with(".yaml")
            && !self.target.ends_with(".yml")
            && self
                .target
                .split_once('/')
                .is_some_and(|(ns, name)| dns(ns) && dns(name))
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

fn parse_kube_version(text: &str) -> Result<KubeVersion, String> {
    let version: KubeVersion = text.parse()?;
    if version < OLDEST_SUPPORTED {
        return Err(format!(
            "Kubernetes {version} is older than {OLDEST_SUPPORTED}, the oldest ferroscale supports"
        ));
    }
    Ok(version)
}

fn parse_timestamp(text: &str) -> Result<Timestamp, String> {
    text.parse()
        .map_err(|e| format!("invalid RFC 3339 timestamp {text:?}: {e}"))
}

/// Parses the command line and runs the command.
pub fn run() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => crate::run::run(args),
        Command::Simulate(args) => simulate(args),
        Command::Migrate(args) => crate::migrate::migrate(args),
        Command::Crds {
            helm_template: true, ..
        } => {
            print!("{}", ferroscale_api::crd::helm_template());
            Ok(())
        }
        Command::Crds {
            out_dir, kube_version, ..
        } => crds(out_dir, kube_version),
        Command::Explain(args) => explain(args),
    }
}

fn explain(args: ExplainArgs) -> Result<()> {
    let settings = Settings {
        sync_period: args.sync_period,
        ..args.decision.settings()
    };
    if !args.is_live() {
        if args.save.is_some() {
            bail!(
                "--save writes what a live explain read; {} is a snapshot already",
                args.target
            );
        }
        let snapshot = PathBuf::from(&args.target);
        let now = args.now.unwrap_or_else(Timestamp::now);
        let replay = crate::explain::replay(&snapshot, now, &settings)?;
        for warning in &replay.snapshot.rest.ignored {
            eprintln!("warning: {}: {warning}", snapshot.display());
        }
        return print_replay(&replay, args.output);
    }
    if args.now.is_some() {
        bail!("--now sets the time of a snapshot replay; a live explain decides as of now");
    }
    let mut warnings = Vec::new();
    let live = crate::cluster::block_on(async {
        let client = crate::cluster::client().await?;
        let (namespace, name) = crate::live::target(&args.target, args.namespace.as_deref(), &client)?;
        crate::live::explain(client, &namespace, &name, &settings, &args.sources, &mut warnings).await
    })??;
    for warning in &warnings {
        eprintln!("warning: {warning}");
    }
    match live {
        crate::live::Live::Decided(replay) => {
            if let Some(path) = &args.save {
                let yaml = crate::capture::to_yaml(&replay.snapshot, replay.now)?;
                std::fs::write(path, yaml).with_context(|| format!("cannot write {}", path.display()))?;
                eprintln!(
                    "snapshot written to {}; replay it with: ferroscale explain {} --now {}",
                    path.display(),
                    path.display(),
                    replay.now
                );
            }
            print_replay(&replay, args.output)
        }
        crate::live::Live::NoScale {
            autoscaler,
            error,
            status,
        } => {
            let reference = ferroscale_autoscaler::status::reference(&autoscaler.spec);
            match args.output {
                Format::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({"error": error, "status": status}))?
                ),
                Format::Text => println!(
                    "Autoscaler {}/{}: the scale of its target {reference} cannot be read: {error}\n\
                     The controller reports AbleToScale=False (FailedGetScale), changes nothing, and tries again after one sync period.",
                    autoscaler.metadata.namespace.as_deref().unwrap_or_default(),
                    autoscaler.metadata.name.as_deref().unwrap_or_default(),
                ),
            }
            if args.save.is_some() {
                bail!("no snapshot written: a snapshot needs the target's scale");
            }
            Ok(())
        }
    }
}

fn print_replay(replay: &crate::explain::Replay, output: Format) -> Result<()> {
    match output {
        Format::Json => println!("{}", serde_json::to_string_pretty(&crate::explain::to_json(replay))?),
        Format::Text => print!("{}", crate::explain::to_text(replay)),
    }
    Ok(())
}

fn simulate(args: SimulateArgs) -> Result<()> {
    let scenario = crate::simulate::load(args.scenario.as_deref())?;
    let name = scenario
        .metadata
        .as_ref()
        .and_then(|m| m.get("name"))
        .and_then(|n| n.as_str())
        .unwrap_or("scenario")
        .to_string();
    let run = crate::simulate::run(&scenario.spec, &args.decision.settings());
    match args.output {
        SimulateFormat::Table => print!("{}", crate::simulate::table(&name, &run)),
        SimulateFormat::Csv => print!("{}", crate::simulate::csv(&run.run)),
        SimulateFormat::Json => println!("{}", serde_json::to_string_pretty(&run)?),
    }
    if let Some(path) = args.plot {
        crate::simulate::plot(&run, &name, &path)?;
        eprintln!("plot written to {}", path.display());
    }
    Ok(())
}

fn crds(out_dir: Option<PathBuf>, kube_version: Option<KubeVersion>) -> Result<()> {
    let crds = match kube_version {
        Some(version) => ferroscale_api::crd::for_kube_version(version),
        None => ferroscale_api::crd::crds(),
    };
    let documents = ferroscale_api::crd::documents(&crds);
    match out_dir {
        None => {
            for (_, yaml) in documents {
                print!("---\n{yaml}");
            }
        }
        Some(dir) => {
            if !dir.is_dir() {
                bail!("--out-dir {}: not a directory", dir.display());
            }
            for (file, yaml) in documents {
                let path = dir.join(file);
                std::fs::write(&path, yaml).with_context(|| format!("cannot write {}", path.display()))?;
            }
        }
    }
    Ok(())
}
