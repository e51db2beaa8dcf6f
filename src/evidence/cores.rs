//! Finding the core file an Asterisk crash left.
//!
//! Wazo sets `kernel.core_pattern=core.%p.%t`, so cores land in Asterisk's
//! working directory, `/var/spool/asterisk`, named by pid and time; other
//! setups write elsewhere or hand cores to systemd-coredump. Asterisk's own
//! `ast_coredumper` looks in `/tmp` and picks "the latest" alphabetically;
//! we look where the kernel was told to write, check the content is a core
//! (not the name), and rank by how well pid and time fit the incident.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, FixedOffset, Local, TimeZone};
use serde::Serialize;

use crate::engine::child::{self, Stream, Streams};
use crate::engine::command::Cmd;
use crate::engine::interrupt::Interrupt;
use crate::error::{Error, Result};
use crate::evidence::elf::{self, ElfKind};
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
    #[serde(serialize_with = "crate::evidence::cores::serialize_time")]
    pub time: Option<DateTime<FixedOffset>>,
    /// `bytes` in JSON, as every file size there.
    #[serde(rename = "bytes")]
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
    // A FIFO would block the open forever, /dev/zero never end.
    crate::host::files::open_input(path, "--core takes a core file")?;
    match elf::classify_file(path) {
        Err(error) => Err(Error::read(path, error)),
        Ok(Some(ElfKind::Core)) => inspect(path)
            .map_err(|error| Error::read(path, error))?
            .ok_or_else(|| Error::bad_input(format!("{} is not a core file", path.display()))),
        Ok(Some(kind)) => Err(Error::bad_input(format!(
            "{} is an {}, not a core file{}",
            path.display(),
            kind.describe(),
            if kind.is_program() {
                ": give the core as --core and the program as --asterisk-bin"
            } else {
                ""
            }
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

/// A core held by systemd-coredump, from `coredumpctl list`.
#[derive(Debug, Clone)]
pub struct Coredump {
    pub pid: u32,
    pub time: Option<DateTime<FixedOffset>>,
    pub signal: String,
    /// `present` when the core itself is still stored.
    pub state: String,
}

/// `coredumpctl` reads the journal of this machine, or of a copied tree's
/// `/var/log/journal` under `--root`.
fn coredumpctl(host: &Host, args: &[&str]) -> Cmd {
    let mut argv = vec!["coredumpctl".to_string(), "--no-pager".to_string()];
    if !host.is_live() {
        argv.push("-D".to_string());
        argv.push(host.path("/var/log/journal").display().to_string());
    }
    argv.extend(args.iter().map(|arg| arg.to_string()));
    Cmd::new(argv)
}

/// The cores systemd-coredump keeps for `process`, newest first.
pub fn coredumps(host: &Host, process: &str, interrupt: &Interrupt) -> Vec<Coredump> {
    if which::which("coredumpctl").is_err() {
        return Vec::new();
    }
    let cmd = coredumpctl(host, &["--no-legend", "list", process]).timeout(Duration::from_secs(60));
    let mut lines = Vec::new();
    let _ = child::run_lines(
        &cmd,
        Some(interrupt),
        Streams::Separate,
        &mut |stream, line| {
            if stream == Stream::Out {
                lines.push(line);
            }
        },
    );
    let mut dumps: Vec<Coredump> = lines
        .iter()
        .filter_map(|line| parse_coredump_line(line))
        .collect();
    dumps.sort_by_key(|dump| std::cmp::Reverse(dump.time));
    dumps
}

/// `Sat 2026-11-28 04:12:43 UTC 1255 999 999 SIGSEGV present /usr/sbin/asterisk 12.3M`
/// (systemd 241 to 252 print these columns; the time zone is a name we
/// cannot parse portably, so the time is read as local).
fn parse_coredump_line(line: &str) -> Option<Coredump> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let numeric = |word: &str| !word.is_empty() && word.bytes().all(|b| b.is_ascii_digit());
    let at = (0..words.len().saturating_sub(3))
        .find(|&i| numeric(words[i]) && numeric(words[i + 1]) && numeric(words[i + 2]))?;
    let pid = words[at].parse().ok()?;
    let time = words
        .iter()
        .position(|word| word.len() == 10 && word.as_bytes().get(4) == Some(&b'-'))
        .and_then(|date| {
            let text = format!("{} {}", words.get(date)?, words.get(date + 1)?);
            let naive = chrono::NaiveDateTime::parse_from_str(&text, "%Y-%m-%d %H:%M:%S").ok()?;
            Local
                .from_local_datetime(&naive)
                .earliest()
                .map(|time| time.fixed_offset())
        });
    Some(Coredump {
        pid,
        time,
        signal: words.get(at + 3).unwrap_or(&"").to_string(),
        state: words.get(at + 4).unwrap_or(&"").to_string(),
    })
}

/// The command that extracts a stored core into `dest`.
pub fn dump_command(host: &Host, pid: u32, dest: &Path) -> Cmd {
    coredumpctl(
        host,
        &["-o", &dest.display().to_string(), "dump", &pid.to_string()],
    )
}

/// Extracts the core of `dump` into `dir` (mode 0600: it holds the
/// process's memory, passwords included).
pub fn extract(
    host: &Host,
    dump: &Coredump,
    dir: &Path,
    interrupt: &Interrupt,
) -> Result<CoreFile> {
    let name = match dump.time {
        Some(time) => format!("core.{}.{}", dump.pid, time.timestamp()),
        None => format!("core.{}", dump.pid),
    };
    let dest = dir.join(name);
    let cmd = dump_command(host, dump.pid, &dest).timeout(Duration::from_secs(30 * 60));
    errln!("+ {cmd}");
    let status = child::run_lines(&cmd, Some(interrupt), Streams::Merged, &mut |_, line| {
        errln!("  {line}");
    })?;
    let _ = std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o600));
    if !status.success() || !dest.exists() {
        return Err(Error::StepFailed {
            command: cmd.to_string(),
            status: child::describe_status(status),
            hint: "; the core may have been removed by systemd-coredump's cleanup".to_string(),
        });
    }
    require_core(&dest)
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
    fn coredumpctl_lines() {
        let dump = parse_coredump_line(
            "Sat 2026-11-28 04:12:43 UTC  1255 999 999 SIGSEGV present  /usr/sbin/asterisk 12.3M",
        )
        .unwrap();
        assert_eq!(dump.pid, 1255);
        assert_eq!(dump.signal, "SIGSEGV");
        assert_eq!(dump.state, "present");
        assert_eq!(
            dump.time.unwrap().format("%H:%M:%S").to_string(),
            "04:12:43"
        );
        assert!(parse_coredump_line("No coredumps found.").is_none());
        assert!(parse_coredump_line("").is_none());
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
mod fuzz_tests;
