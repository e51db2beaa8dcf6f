//! Finding the core file an Asterisk crash left.
//!
//! Wazo sets `kernel.core_pattern=core.%p.%t`, so cores land in Asterisk's
//! working directory, `/var/spool/asterisk`, named by pid and time; other
//! setups write elsewhere or hand cores to systemd-coredump. Asterisk's own
//! `ast_coredumper` looks in `/tmp` and picks "the latest" alphabetically;
//! we look where the kernel was told to write, check the content is a core
//! (not the name), and rank by how well pid and time fit the incident.

use std::path::{Path, PathBuf};

use chrono::{DateTime, FixedOffset, Local, TimeZone};
use serde::Serialize;

use crate::elf::{self, ElfKind};
use crate::error::{Error, Result};
use crate::host::Host;

/// Where Wazo's Asterisk runs, and so where its cores land.
pub const SPOOL: &str = "/var/spool/asterisk";
const CORE_PATTERN: &str = "/proc/sys/kernel/core_pattern";

#[derive(Debug, Clone, Serialize)]
pub struct CoreFile {
    pub path: PathBuf,
    /// From the name (`core.<pid>.<time>`), when it says.
    pub pid: Option<u32>,
    /// From the name, else the file's mtime.
    #[serde(serialize_with = "crate::cores::serialize_time")]
    pub time: Option<DateTime<FixedOffset>>,
    pub size: u64,
}

pub fn serialize_time<S: serde::Serializer>(
    time: &Option<DateTime<FixedOffset>>,
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    match time {
        Some(time) => serializer.serialize_str(&time.to_rfc3339()),
        None => serializer.serialize_none(),
    }
}

/// What the search found, and where it looked.
#[derive(Debug, Default)]
pub struct Search {
    /// Newest first.
    pub cores: Vec<CoreFile>,
    pub searched: Vec<PathBuf>,
    /// Set when the kernel pipes cores to systemd-coredump.
    pub coredumpctl: bool,
}

/// Every core file in the spool and in the directory `core_pattern` names.
pub fn search(host: &Host) -> Search {
    let mut search = Search::default();
    let pattern = std::fs::read_to_string(host.path(CORE_PATTERN)).unwrap_or_default();
    let pattern = pattern.trim();
    search.coredumpctl = pattern.starts_with('|') && pattern.contains("systemd-coredump");
    let mut dirs = vec![host.path(SPOOL)];
    if let Some(dir) = pattern_dir(pattern) {
        let dir = host.path(dir);
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    for dir in dirs {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.filter_map(|entry| entry.ok()) {
                let path = entry.path();
                let is_candidate = entry
                    .file_name()
                    .to_str()
                    .is_some_and(|name| name.starts_with("core"));
                if is_candidate && path.is_file() {
                    if let Ok(Some(core)) = inspect(&path) {
                        search.cores.push(core);
                    }
                }
            }
        }
        search.searched.push(dir);
    }
    search
        .cores
        .sort_by(|a, b| b.time.cmp(&a.time).then_with(|| b.path.cmp(&a.path)));
    search
}

/// The directory of an absolute `core_pattern` (`/var/crash/core.%e.%p`).
fn pattern_dir(pattern: &str) -> Option<&str> {
    if !pattern.starts_with('/') {
        return None;
    }
    let (dir, _) = pattern.rsplit_once('/')?;
    (!dir.contains('%') && !dir.is_empty()).then_some(dir)
}

/// A core file's details, `None` when the file is not an ELF core.
pub fn inspect(path: &Path) -> std::io::Result<Option<CoreFile>> {
    if !elf::is_core_file(path)? {
        return Ok(None);
    }
    let metadata = std::fs::metadata(path)?;
    let name = path
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or_default();
    let (pid, named_time) = parse_name(name);
    let time = named_time.or_else(|| {
        metadata
            .modified()
            .ok()
            .map(|mtime| DateTime::<Local>::from(mtime).fixed_offset())
    });
    Ok(Some(CoreFile {
        path: path.to_path_buf(),
        pid,
        time,
        size: metadata.len(),
    }))
}

/// `core.<pid>.<unix time>` (Wazo), `core.<pid>`, `core`.
fn parse_name(name: &str) -> (Option<u32>, Option<DateTime<FixedOffset>>) {
    let mut parts = name.split('.').skip(1);
    let pid = parts.next().and_then(|pid| pid.parse().ok());
    let time = parts
        .next()
        .and_then(|time| time.parse::<i64>().ok())
        .and_then(|seconds| Local.timestamp_opt(seconds, 0).single())
        .map(|time| time.fixed_offset());
    (pid, time)
}

/// Checks a core given with `--core`: a clear refusal for anything else.
pub fn require_core(path: &Path) -> Result<CoreFile> {
    if path.is_dir() {
        return Err(Error::bad_input(format!(
            "{} is a directory; --core takes a core file, e.g. /var/spool/asterisk/core.1255.1700000000",
            path.display()
        )));
    }
    match elf::classify_file(path) {
        Err(error) => Err(Error::read(path, error)),
        Ok(Some(ElfKind::Core)) => inspect(path)
            .map_err(|error| Error::read(path, error))?
            .ok_or_else(|| Error::bad_input(format!("{} is not a core file", path.display()))),
        Ok(Some(kind)) => Err(Error::bad_input(format!(
            "{} is an {}, not a core file: give the core as --core and the program as --asterisk-bin",
            path.display(),
            kind.describe()
        ))),
        Ok(None) => Err(Error::bad_input(format!(
            "{} is not a core file (no ELF core header; empty, truncated or another kind of file)",
            path.display()
        ))),
    }
}

/// How well a core fits an incident: its pid is the segfaulting one, or its
/// time is close. Lower is better; `None` does not fit.
pub fn fit(
    core: &CoreFile,
    pid: Option<u32>,
    incident: Option<DateTime<FixedOffset>>,
) -> Option<i64> {
    if pid.is_some() && core.pid == pid {
        return Some(0);
    }
    let (Some(time), Some(incident)) = (core.time, incident) else {
        return None;
    };
    let distance = (time - incident).num_seconds().abs();
    // A core is written right after the crash; a big one can take minutes.
    (distance <= 15 * 60).then_some(1 + distance)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_give_pid_and_time() {
        let (pid, time) = parse_name("core.1255.1700000000");
        assert_eq!(pid, Some(1255));
        assert_eq!(time.unwrap().timestamp(), 1_700_000_000);
        assert_eq!(parse_name("core"), (None, None));
        assert_eq!(parse_name("core.42").0, Some(42));
        assert_eq!(parse_name("core.x.y"), (None, None));
    }

    #[test]
    fn pattern_directories() {
        assert_eq!(pattern_dir("/var/crash/core.%e.%p"), Some("/var/crash"));
        assert_eq!(pattern_dir("core.%p.%t"), None);
        assert_eq!(pattern_dir("|/lib/systemd/systemd-coredump %P"), None);
        assert_eq!(pattern_dir("/var/%h/core"), None);
    }
}

#[cfg(test)]
#[path = "fuzz_tests/cores.rs"]
mod fuzz_tests;
