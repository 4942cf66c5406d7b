//! Command-line interface.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use ferroscale_api::crd::{KubeVersion, OLDEST_SUPPORTED};
use ferroscale_api::quantity::ParsedQuantity;
use ferroscale_autoscaler::Settings;
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
    /// Replay one decision offline from a snapshot of cluster objects, and explain it.
    Explain(ExplainArgs),
    /// Run the decision core against a modelled workload over time (no cluster needed).
    Simulate(SimulateArgs),
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

#[derive(Debug, Args)]
struct ExplainArgs {
    /// Multi-document YAML: one Autoscaler, the target's autoscaling/v1 Scale, Pods, and the
    /// metric values (PodMetrics, MetricValueList, ExternalMetricValueList, PrometheusSample).
    snapshot: PathBuf,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Text)]
    output: Format,
    /// The evaluation time (RFC 3339); defaults to the current time.
    #[arg(long, value_name = "RFC3339", value_parser = parse_timestamp)]
    now: Option<Timestamp>,
    /// The operator's sync period (Go duration): when the current recommendation in status
    /// changes, the previous one is taken as last made one period earlier.
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = parse_duration)]
    sync_period: Duration,
    #[command(flatten)]
    decision: DecisionArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

fn parse_tolerance(text: &str) -> Result<f64, String> {
    let q = ParsedQuantity::parse(text).map_err(|e| e.to_string())?;
    if q.is_negative() {
        return Err(format!("tolerance {text:?} must not be negative"));
    }
    Ok(q.as_f64())
}

/// Go duration syntax (`30s`, `5m`, `1m30s`), as Kubernetes flags take.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let d: kube::core::Duration = text.parse().map_err(|e| format!("invalid duration {text:?}: {e}"))?;
    if d.is_negative() {
        return Err(format!("duration {text:?} must not be negative"));
    }
    Ok(d.into())
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
        Command::Crds {
            helm_template: true, ..
        } => {
            print!("{}", ferroscale_api::crd::helm_template());
            Ok(())
        }
        Command::Crds {
            out_dir, kube_version, ..
        } => crds(out_dir, kube_version),
        Command::Explain(args) => {
            let now = args.now.unwrap_or_else(Timestamp::now);
            let settings = Settings {
                sync_period: args.sync_period,
                ..args.decision.settings()
            };
            let replay = crate::explain::replay(&args.snapshot, now, &settings)?;
            for warning in &replay.snapshot.rest.ignored {
                eprintln!("warning: {}: {warning}", args.snapshot.display());
            }
            match args.output {
                Format::Json => println!("{}", serde_json::to_string_pretty(&crate::explain::to_json(&replay))?),
                Format::Text => print!("{}", crate::explain::to_text(&replay)),
            }
            Ok(())
        }
    }
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
    let run = crate::simulate::engine::simulate(&scenario.spec, &args.decision.settings());
    match args.output {
        SimulateFormat::Table => print!("{}", crate::simulate::table(&name, &run)),
        SimulateFormat::Csv => print!("{}", crate::simulate::csv(&run)),
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
