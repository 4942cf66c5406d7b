//! The `ferroscale` binary.

mod admin;
mod capture;
mod cli;
mod cluster;
mod explain;
mod flags;
mod gather;
mod live;
mod migrate;
mod run;
mod simulate;
mod snapshot;
#[cfg(test)]
mod snapshot_fuzz;

use std::process::ExitCode;

fn main() -> ExitCode {
    match cli::run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
