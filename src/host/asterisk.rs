//! Finding the running Asterisk.
//!
//! The pidfile is what systemd trusts, but it can be stale after a crash, so
//! on a live host we check that the pid really is an `asterisk` process, and
//! fall back to looking for one by name.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::host::Host;

/// Where Wazo's Debian package installs Asterisk.
pub const ASTERISK_BIN: &str = "/usr/sbin/asterisk";

pub const PIDFILES: [&str; 2] = [
    "/run/asterisk/asterisk.pid",
    "/var/run/asterisk/asterisk.pid",
];

#[derive(Debug, Clone, Serialize)]
pub struct AsteriskPid {
    pub pid: u32,
    /// The pidfile it came from, or `None` when found by process name.
    pub pidfile: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct PidLookup {
    pub found: Option<AsteriskPid>,
    /// Why a pidfile was not trusted, for the user to see.
    pub warnings: Vec<String>,
}

pub fn find(host: &Host) -> PidLookup {
    let mut lookup = PidLookup::default();
    for pidfile in PIDFILES {
        let path = host.path(pidfile);
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let Ok(pid) = text.trim().parse::<u32>() else {
            lookup.warnings.push(format!(
                "{} does not hold a pid: {}",
                path.display(),
                crate::host::version::quote_excerpt(text.lines().next().unwrap_or_default())
            ));
            continue;
        };
        if host.is_live() && !is_asterisk(pid) {
            lookup.warnings.push(format!(
                "{} names pid {pid}, which is not a running asterisk (stale after a crash?)",
                path.display()
            ));
            continue;
        }
        lookup.found = Some(AsteriskPid {
            pid,
            pidfile: Some(path),
        });
        return lookup;
    }
    if host.is_live() {
        lookup.found = by_name().map(|pid| AsteriskPid { pid, pidfile: None });
    }
    lookup
}

fn is_asterisk(pid: u32) -> bool {
    comm(&Path::new("/proc").join(pid.to_string())).as_deref() == Some("asterisk")
}

fn comm(proc_dir: &Path) -> Option<String> {
    std::fs::read_to_string(proc_dir.join("comm"))
        .ok()
        .map(|name| name.trim_end().to_string())
}

/// The oldest process named `asterisk` (the main one; `asterisk -rx` clients
/// are newer).
fn by_name() -> Option<u32> {
    let entries = std::fs::read_dir("/proc").ok()?;
    entries
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            (comm(&entry.path()).as_deref() == Some("asterisk")).then_some(pid)
        })
        .filter(|&pid| !is_cli_client(pid))
        .min()
}

/// `asterisk -r`/`-rx` are remote consoles, not the daemon.
fn is_cli_client(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|cmdline| {
            cmdline
                .split(|&b| b == 0)
                .any(|arg| arg.starts_with(b"-r") || arg.starts_with(b"-R"))
        })
        .unwrap_or(false)
}

/// The Asterisk binary to give gdb: the host's, or the one named.
pub fn binary(host: &Host, given: &Path) -> Result<PathBuf> {
    // The default names the host's binary; an explicit path is taken as is.
    let path = if given == Path::new(ASTERISK_BIN) {
        host.path(ASTERISK_BIN)
    } else {
        given.to_path_buf()
    };
    if !path.is_file() {
        return Err(Error::bad_input(format!(
            "{} does not exist or is not a file: give the Asterisk binary with --asterisk-bin",
            path.display()
        )));
    }
    Ok(path)
}
