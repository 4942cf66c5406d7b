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

// mimalloc rather than the C library's: at 10,000 Autoscalers glibc's malloc was 47% of the
// operator's CPU and held memory it had freed (50 MiB more RSS), and musl's, in the image
// built by the Dockerfile, is slower still.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    match cli::run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
