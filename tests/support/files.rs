//! Fixture files in a stable order; shared by the end-to-end tests and, through `#[path]`, by
//! the command-line tests of crates/ferroscale/tests.

use std::path::{Path, PathBuf};

/// The files of `dir` whose names end in `suffix`, sorted.
pub fn files_ending(dir: &Path, suffix: &str) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.to_string_lossy().ends_with(suffix) {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}
