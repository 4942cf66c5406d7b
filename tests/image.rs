//! The two ways to build the image agree: the final stage of the `Dockerfile` COPYs exactly the
//! files that `make image` (hack/image/build.sh) takes from hack/image/files, and both set the
//! same user, entrypoint and command. (Shared libraries are the one difference: the Dockerfile's
//! binary is static, so it needs none; build.sh adds what `ldd` names for its binary and checks
//! the archive it writes against that list.) No cluster, no container engine needed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::collections::BTreeSet;
use std::path::PathBuf;

fn repo_file(path: &str) -> String {
    let full = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("reading {}: {e}", full.display()))
}

/// What an image definition puts in the image: files by destination, and the run-time config.
#[derive(Debug, PartialEq, Eq)]
struct Image {
    files: BTreeSet<String>,
    user: String,
    entrypoint: Vec<String>,
    cmd: Vec<String>,
    labels: BTreeSet<String>,
}

/// The final stage of a Dockerfile. Fails on what it does not understand rather than guessing.
fn dockerfile_image(text: &str) -> Result<Image, String> {
    // Join continuation lines, drop comments.
    let mut lines = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if let Some(head) = line.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
        } else {
            current.push_str(line);
            lines.push(std::mem::take(&mut current));
        }
    }
    let last_from = lines
        .iter()
        .rposition(|l| l.to_ascii_uppercase().starts_with("FROM "))
        .ok_or("no FROM")?;
    let stage = &lines[last_from..];
    if stage[0].split_whitespace().nth(1) != Some("scratch") {
        return Err(format!("the final stage must start from scratch: {}", stage[0]));
    }
    let mut image = Image {
        files: BTreeSet::new(),
        user: String::new(),
        entrypoint: Vec::new(),
        cmd: Vec::new(),
        labels: BTreeSet::new(),
    };
    for line in &stage[1..] {
        let (instruction, rest) = line.split_once(' ').unwrap_or((line, ""));
        match instruction.to_ascii_uppercase().as_str() {
            "COPY" | "ADD" => {
                let words: Vec<&str> = rest.split_whitespace().filter(|w| !w.starts_with("--")).collect();
                if words.len() != 2 || rest.trim_start().starts_with('[') {
                    return Err(format!("expected COPY [--from=...] SRC DEST with one file: {line}"));
                }
                if words[1].ends_with('/') {
                    return Err(format!("COPY into a directory hides which files it holds: {line}"));
                }
                image.files.insert(words[1].to_string());
            }
            "USER" => image.user = rest.trim().to_string(),
            "ENTRYPOINT" => image.entrypoint = serde_json::from_str(rest).map_err(|e| format!("{line}: {e}"))?,
            "CMD" => image.cmd = serde_json::from_str(rest).map_err(|e| format!("{line}: {e}"))?,
            "LABEL" => {
                for pair in rest.split_whitespace() {
                    let (key, _) = pair.split_once('=').ok_or(format!("LABEL without '=': {line}"))?;
                    image.labels.insert(key.to_string());
                }
            }
            "ARG" | "EXPOSE" | "ENV" | "WORKDIR" => {}
            other => return Err(format!("unexpected {other} in the final stage: {line}")),
        }
    }
    Ok(image)
}

/// hack/image/build.sh's image: the files of hack/image/files and the flags of `buildah config`.
fn buildah_image(files: &str, script: &str) -> Result<Image, String> {
    let files = files
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split_whitespace().next().unwrap_or_default().to_string())
        .collect();
    let flag = |name: &str| -> Result<Vec<String>, String> {
        let values: Vec<String> = script
            .lines()
            .filter_map(|l| l.trim().strip_prefix(&format!("--{name} ")))
            .map(|v| {
                v.trim_end_matches('\\')
                    .trim()
                    .trim_matches('\'')
                    .trim_matches('"')
                    .to_string()
            })
            .collect();
        if values.is_empty() {
            return Err(format!("build.sh sets no --{name}"));
        }
        Ok(values)
    };
    let entrypoint = flag("entrypoint")?;
    Ok(Image {
        files,
        user: flag("user")?.remove(0),
        entrypoint: serde_json::from_str(&entrypoint[0]).map_err(|e| format!("--entrypoint: {e}"))?,
        cmd: flag("cmd")?,
        labels: flag("label")?
            .iter()
            .map(|l| l.split_once('=').map_or(l.as_str(), |(k, _)| k).to_string())
            .collect(),
    })
}

#[test]
fn dockerfile_and_make_image_build_the_same_image() {
    let docker = dockerfile_image(&repo_file("Dockerfile")).unwrap();
    let buildah = buildah_image(&repo_file("hack/image/files"), &repo_file("hack/image/build.sh")).unwrap();
    assert_eq!(
        docker.files, buildah.files,
        "files: Dockerfile (left) vs hack/image/files (right)"
    );
    assert_eq!(docker.user, buildah.user);
    assert_eq!(docker.entrypoint, buildah.entrypoint);
    assert_eq!(docker.cmd, buildah.cmd);
    for label in ["org.opencontainers.image.version", "org.opencontainers.image.source"] {
        assert!(docker.labels.contains(label), "Dockerfile lacks the label {label}");
        assert!(buildah.labels.contains(label), "build.sh lacks the label {label}");
    }
    assert_eq!(docker.user, "65532:65532");
    assert_eq!(docker.entrypoint, ["/ferroscale"]);
    assert_eq!(docker.cmd, ["run"]);
}

#[test]
fn the_comparison_sees_a_file_only_the_dockerfile_copies() {
    let dockerfile = repo_file("Dockerfile").replace(
        "USER 65532:65532",
        "COPY --from=build /usr/share/zoneinfo/UTC /usr/share/zoneinfo/UTC\nUSER 65532:65532",
    );
    let docker = dockerfile_image(&dockerfile).unwrap();
    let buildah = buildah_image(&repo_file("hack/image/files"), &repo_file("hack/image/build.sh")).unwrap();
    assert_ne!(docker.files, buildah.files);
    assert!(dockerfile_image("FROM rust AS build\nFROM debian\nCOPY a /a\n").is_err());
    assert!(dockerfile_image("FROM scratch\nCOPY dir/ /etc/\n").is_err());
}
