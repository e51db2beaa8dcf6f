//! The layers of `src/` (see CONTRIBUTING.md), checked on the source: a
//! command never imports another command, and the layers below the commands
//! never reach back up to them, to the command line or to the run context.

use std::fs;
use std::path::{Path, PathBuf};

fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The lines of `path` outside `#[cfg(test)]` code (tests may build a
/// Context to drive the code they test).
fn code_lines(path: &Path) -> Vec<(usize, String)> {
    let text = fs::read_to_string(path).unwrap();
    let mut lines = Vec::new();
    for (number, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("#[cfg(test)]") {
            break;
        }
        lines.push((number + 1, line.to_string()));
    }
    lines
}

fn offenders(layer: &str, forbidden: &[&str]) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src")
        .join(layer);
    let mut found = Vec::new();
    for file in sources(&root) {
        if file
            .components()
            .any(|c| c.as_os_str() == "fuzz_tests.rs" || c.as_os_str() == "tests.rs")
        {
            continue;
        }
        for (number, line) in code_lines(&file) {
            for path in forbidden {
                if line.contains(path) {
                    found.push(format!("{}:{number}: {}", file.display(), line.trim()));
                }
            }
        }
    }
    found
}

#[test]
fn no_command_imports_another_command() {
    let found = offenders("commands", &["crate::commands", "super::"]);
    assert!(
        found.is_empty(),
        "commands import commands:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_layers_below_the_commands_never_reach_up() {
    for layer in ["engine", "locks", "gdb", "evidence", "host"] {
        let found = offenders(layer, &["crate::commands", "crate::cli", "crate::context"]);
        assert!(
            found.is_empty(),
            "{layer}/ reaches up:\n{}",
            found.join("\n")
        );
    }
}

#[test]
fn host_is_the_floor() {
    let found = offenders(
        "host",
        &[
            "crate::engine",
            "crate::locks",
            "crate::gdb",
            "crate::evidence",
        ],
    );
    assert!(
        found.is_empty(),
        "host/ imports a layer above it:\n{}",
        found.join("\n")
    );
}
