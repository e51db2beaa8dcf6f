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

/// The binary a `--dry-run` script names: the one found, or where it is on
/// a server (the script lets the user set it), never an error.
pub fn binary_for_script(host: &Host, given: &Path) -> PathBuf {
    binary(host, given).unwrap_or_else(|_| {
        if given == Path::new(ASTERISK_BIN) {
            host.path(ASTERISK_BIN)
        } else {
            given.to_path_buf()
        }
    })
}

/// Refuses, before anything runs, a pid that is not a live Asterisk: gdb
/// would stop whatever process it is, and "no deadlock" in it means nothing.
pub fn check_is_asterisk(pid: u32) -> Result<()> {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe"));
    let exe = match exe {
        Ok(exe) => exe,
        Err(_) if !Path::new(&format!("/proc/{pid}")).exists() => {
            return Err(Error::bad_input(format!(
                "no process with pid {pid} on this machine (has Asterisk just restarted? \
                 `pidof asterisk` gives its pid now)"
            )));
        }
        // A kernel thread has no exe; anything else unreadable is not ours to judge.
        Err(error) => {
            return Err(Error::bad_input(format!(
                "cannot tell what pid {pid} runs ({error}): give the pid of Asterisk \
                 (`pidof asterisk`)"
            )));
        }
    };
    let shown = exe.display().to_string();
    let name = exe
        .file_name()
        .map(|name| name.to_string_lossy().to_string())
        .unwrap_or_default();
    if name.starts_with("asterisk") {
        Ok(())
    } else {
        Err(Error::bad_input(format!(
            "pid {pid} runs {shown}, not Asterisk; nothing was done. Give the pid of Asterisk \
             (`pidof asterisk`), or leave --pid out to find it"
        )))
    }
}

/// The process already tracing `pid` (another gdb, strace), with its name:
/// a second tracer cannot attach.
pub fn tracer(pid: u32) -> Option<(u32, String)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let tracer: u32 = status
        .lines()
        .find_map(|line| line.strip_prefix("TracerPid:"))?
        .trim()
        .parse()
        .ok()?;
    if tracer == 0 {
        return None;
    }
    let name = std::fs::read_to_string(format!("/proc/{tracer}/comm"))
        .map(|name| name.trim().to_string())
        .unwrap_or_else(|_| "?".to_string());
    Some((tracer, name))
}

/// The installed Asterisk, from dpkg's status file (so it also works under
/// `--root`): `22.10.1 (asterisk 1:22.10.1+dfsg-1)`, or the vanilla build's.
pub fn installed_version(host: &Host) -> Option<String> {
    ["asterisk", "asterisk-vanilla"].iter().find_map(|package| {
        let full = crate::host::dpkg::installed_version(host, package)?;
        Some(format!("{} ({package} {full})", upstream(&full)))
    })
}

/// `1:22.10.1+dfsg+~cs6-1` -> `22.10.1`: the epoch, the repack and the
/// Debian revision are not Asterisk's version.
fn upstream(full: &str) -> &str {
    let without_epoch = full.split_once(':').map_or(full, |(_, rest)| rest);
    let end = without_epoch
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(without_epoch.len());
    &without_epoch[..end]
}

/// Where a library or module named in a kernel segfault line (`res_foo.so`)
/// is on this host, for `addr2line -e`.
pub fn library_path(host: &Host, name: &str) -> Option<PathBuf> {
    if name.is_empty() || name.contains('/') {
        return None;
    }
    const DIRS: &[&str] = &[
        "/usr/lib/x86_64-linux-gnu/asterisk/modules",
        "/usr/lib/asterisk/modules",
        "/usr/sbin",
        "/usr/lib/x86_64-linux-gnu",
        "/lib/x86_64-linux-gnu",
        "/usr/lib",
    ];
    DIRS.iter().find_map(|dir| {
        let path = host.path(dir).join(name);
        path.is_file().then(|| Path::new(dir).join(name))
    })
}

#[cfg(test)]
mod version_tests {
    #[test]
    fn upstream_drops_epoch_repack_and_revision() {
        assert_eq!(
            super::upstream("1:22.10.1+dfsg+~cs6.17.60671434-1"),
            "22.10.1"
        );
        assert_eq!(super::upstream("8:20.5.0-1wazo1"), "20.5.0");
        assert_eq!(super::upstream("22.1"), "22.1");
    }
}
