//! `ferroscale run` as a process: what it writes when nobody watches it on a terminal.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A kubeconfig naming an API server that refuses every connection.
fn unreachable_kubeconfig(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        "apiVersion: v1\nkind: Config\ncurrent-context: x\n\
         clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n\
         users: [{name: u, user: {token: t}}]\n\
         contexts: [{name: x, context: {cluster: c, user: u}}]\n",
    )
    .unwrap();
    path
}

#[test]
fn logs_to_a_pipe_carry_no_colour_codes() {
    let dir = std::env::temp_dir().join(format!("ferroscale-run-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferroscale"))
        .args(["run", "--admin-addr", "127.0.0.1:0", "--log-format", "text"])
        .arg("--kubeconfig")
        .arg(unreachable_kubeconfig(&dir))
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut lines = Vec::new();
    for line in stderr.lines() {
        let line = line.unwrap();
        let warned = line.contains("WARN");
        lines.push(line);
        // The start line, then a warning about the unreachable server: both levels seen.
        if warned || Instant::now() > deadline {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(lines.iter().any(|l| l.contains("INFO")), "{lines:#?}");
    assert!(lines.iter().any(|l| l.contains("WARN")), "{lines:#?}");
    for line in &lines {
        assert!(!line.contains('\u{1b}'), "an escape code in {line:?}");
    }
}
