//! `ferroscale migrate`: HorizontalPodAutoscalers, from files or from the cluster, printed as
//! Autoscalers (multi-document YAML) for `kubectl apply`. It never writes to the cluster.
//!
//! The conversion is the one the API server makes when it shows an HPA as `autoscaling/v2`:
//! `autoscaling/v2` and `v2beta2` specs are taken as they are, `autoscaling/v1` and `v2beta1`
//! through their annotations and older metric shapes. An Autoscaler's spec is a superset of
//! the `autoscaling/v2` spec, so the result is that spec under a new `apiVersion` and `kind`.

mod cluster;
mod convert;
mod input;
mod legacy;

use std::io::{Read as _, Write as _};
use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use clap::Args;
use ferroscale_api::FieldError;

use self::convert::convert;
use self::input::{Entry, Found};

/// Flags of `ferroscale migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Files of HorizontalPodAutoscalers (autoscaling/v2, v2beta2, v2beta1 or v1; multi-document
    /// YAML, List documents too); `-` reads standard input. Without any, the HPAs are read from
    /// the cluster of the usual kubeconfig (KUBECONFIG, ~/.kube/config).
    #[arg(value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Read the HPAs of this namespace of the cluster; defaults to the kubeconfig's namespace.
    #[arg(
        short = 'n',
        long,
        value_name = "NS",
        value_parser = clap::builder::NonEmptyStringValueParser::new(),
        conflicts_with_all = ["files", "all_namespaces"]
    )]
    namespace: Option<String>,
    /// Read the HPAs of every namespace of the cluster.
    #[arg(short = 'A', long, conflicts_with = "files")]
    all_namespaces: bool,
}

/// One line on standard error, `<source>: <field path>: <what>`.
fn line(source: &str, problem: &FieldError) -> String {
    if problem.path.is_empty() {
        format!("{source}: {}", problem.message)
    } else {
        format!("{source}: {}: {}", problem.path, problem.message)
    }
}

/// Prints the Autoscalers of the HPAs of the files, or of the cluster.
pub fn migrate(args: MigrateArgs) -> Result<()> {
    let mut errors = Vec::new();
    let mut out = String::new();
    let mut convert_one = |Found { source, object }: Found, errors: &mut Vec<String>| match convert(&object) {
        Ok(converted) => {
            for warning in &converted.warnings {
                eprintln!("warning: {}", line(&source, warning));
            }
            out.push_str("---\n");
            out.push_str(&converted.yaml);
        }
        Err(problem) => errors.push(line(&source, &problem)),
    };
    if args.files.is_empty() {
        let scope = if args.all_namespaces {
            cluster::Scope::All
        } else {
            cluster::Scope::Namespace(args.namespace)
        };
        let read = cluster::read(scope)?;
        if read.hpas.is_empty() {
            eprintln!(
                "no HorizontalPodAutoscalers in {} (read as {})",
                read.place,
                read.version.api_version()
            );
        }
        for found in read.hpas {
            convert_one(found, &mut errors);
        }
    } else {
        for file in &args.files {
            let (name, text) = match read_file(file) {
                Ok(read) => read,
                Err(e) => {
                    errors.push(format!("{e:#}"));
                    continue;
                }
            };
            for entry in input::documents(&name, &text) {
                match entry {
                    Entry::Hpa(found) => convert_one(found, &mut errors),
                    Entry::Warning(warning) => eprintln!("warning: {warning}"),
                    Entry::Error(error) => errors.push(error),
                }
            }
        }
    }
    match errors.len() {
        0 => {}
        1 => bail!("{}; nothing was printed", errors[0]),
        n => {
            for error in &errors {
                eprintln!("error: {error}");
            }
            bail!("{n} problems (above); nothing was printed");
        }
    }
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
        .context("cannot write to standard output")
}

/// The name to show for `file`, and its text; `-` is standard input.
fn read_file(file: &std::path::Path) -> Result<(String, String)> {
    if file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read standard input")?;
        return Ok(("<stdin>".into(), text));
    }
    let name = file.display().to_string();
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {name}"))?;
    Ok((name, text))
}
