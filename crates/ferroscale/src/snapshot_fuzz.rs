//! Fuzzing `explain`'s input: the example snapshots, mutated (bytes flipped, lines dropped,
//! doubled, swapped, cut short, tokens put in), must parse to a snapshot or to an error, and a
//! snapshot that parses must replay to a decision and print, never panic. FUZZ_CASES sets the
//! number of cases (default 500, a short pass; `make fuzz` runs a million).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};

use crate::explain::{replay_snapshot, to_json, to_text};
use crate::snapshot::Snapshot;

fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(500)
}

/// The example snapshots, read once.
fn examples() -> &'static [String] {
    static EXAMPLES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    EXAMPLES.get_or_init(|| {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/explain");
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect();
        files.sort();
        files.iter().map(|p| std::fs::read_to_string(p).unwrap()).collect()
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    FlipByte(usize, u8),
    DropLine(usize),
    DoubleLine(usize),
    SwapLines(usize, usize),
    Truncate(usize),
    Insert(usize, &'static str),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let token = proptest::sample::select(vec![
        "-",
        "---\n",
        ":",
        "{",
        "[",
        "]",
        "}",
        "null",
        "~",
        "&a ",
        "*a",
        "!!binary ",
        "'",
        "\"",
        "\n  ",
        "\t",
        "-1",
        "1e400",
        "99999999999999999999",
        "0x",
        "9999-12-31T23:59:59Z",
        "\u{0}",
        "é",
        "? ",
        "| ",
        "> ",
        "#",
    ]);
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Mutation::FlipByte(at, b)),
        any::<usize>().prop_map(Mutation::DropLine),
        any::<usize>().prop_map(Mutation::DoubleLine),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), token).prop_map(|(at, t)| Mutation::Insert(at, t)),
    ]
}

fn apply(text: &str, mutation: &Mutation) -> String {
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let line = |at: usize| at % lines.len().max(1);
    match *mutation {
        Mutation::FlipByte(at, b) => {
            let mut bytes = text.as_bytes().to_vec();
            if !bytes.is_empty() {
                let i = at % bytes.len();
                bytes[i] ^= b;
            }
            return String::from_utf8_lossy(&bytes).into_owned();
        }
        Mutation::DropLine(at) if !lines.is_empty() => {
            lines.remove(line(at));
        }
        Mutation::DoubleLine(at) if !lines.is_empty() => {
            let i = line(at);
            lines.insert(i, lines[i].clone());
        }
        Mutation::SwapLines(a, b) if !lines.is_empty() => {
            let (a, b) = (line(a), line(b));
            lines.swap(a, b);
        }
        Mutation::Truncate(at) => {
            let cut = at % text.len().max(1);
            return text.chars().take(cut).collect();
        }
        Mutation::Insert(at, token) => {
            let mut chars: Vec<char> = text.chars().collect();
            let i = at % chars.len().max(1);
            chars.splice(i..i, token.chars());
            return chars.into_iter().collect();
        }
        _ => {}
    }
    lines.join("\n")
}

proptest! {
    #![proptest_config(Config {
        cases: cases(),
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..Config::default()
    })]

    #[test]
    fn fuzz_mutated_snapshots_parse_or_fail_cleanly(
        which in any::<usize>(),
        mutations in proptest::collection::vec(mutation(), 1..6),
    ) {
        let examples = examples();
        let mut text = examples[which % examples.len()].clone();
        for m in &mutations {
            text = apply(&text, m);
        }
        if let Ok(snapshot) = Snapshot::parse(&text) {
            let now = "2026-06-01T12:00:00Z".parse().unwrap();
            let replay = replay_snapshot(snapshot, now, &ferroscale_autoscaler::Settings::default());
            let _ = (to_json(&replay), to_text(&replay));
        }
    }
}

/// Found by the fuzzer: a PodMetrics window too long for a duration ("99999999999999999999s")
/// panicked in kube's duration parser; it is now that metric's error.
#[test]
fn regression_a_window_too_long_for_a_duration() {
    let text = examples()
        .iter()
        .find(|e| e.contains("window: 30s"))
        .expect("an example with a 30s window")
        .replacen("window: 30s", "window: 99999999999999999999s", 1);
    let snapshot = Snapshot::parse(&text).unwrap();
    let now = "2026-06-01T12:00:00Z".parse().unwrap();
    let replay = replay_snapshot(snapshot, now, &ferroscale_autoscaler::Settings::default());
    let json = to_json(&replay);
    assert!(
        json["metrics"][0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("longer than a duration can be")),
        "{json:#}"
    );
}
