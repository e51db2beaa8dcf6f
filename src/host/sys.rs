//! The few facts about the running process and machine that every layer
//! needs: are we root, this host's name, whether a signal has arrived, and
//! how a private artefact is made (in [`crate::host::files`]).

use std::fs;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::{Error, Result};

pub use crate::host::files::create_private;

/// The last of SIGINT, SIGTERM or SIGHUP received (0: none), set by the
/// handler `engine::interrupt` installs. Global so that a parser or a scan
/// in any layer can give up within a second without being handed a flag.
static SIGNAL: AtomicUsize = AtomicUsize::new(0);
/// How many parts of the tool are supervising a child or putting things back
/// right now: while one is, a signal is theirs to act on (see [`Hold`]).
static HOLDS: AtomicUsize = AtomicUsize::new(0);

/// Records `signal`; async-signal-safe (an atomic store).
pub fn note_signal(signal: i32) {
    SIGNAL.store(signal as usize, Ordering::SeqCst);
}

/// Whether SIGINT, SIGTERM or SIGHUP has arrived.
pub fn interrupted() -> bool {
    SIGNAL.load(Ordering::SeqCst) != 0
}

/// While one lives, the tool is stopping a child or undoing a change, and
/// must not be ended from outside the code doing it (the watchdog waits).
pub struct Hold(());

impl Hold {
    pub fn new() -> Hold {
        HOLDS.fetch_add(1, Ordering::SeqCst);
        Hold(())
    }
}

impl Default for Hold {
    fn default() -> Hold {
        Hold::new()
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        HOLDS.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Whether any [`Hold`] is alive.
pub fn held() -> bool {
    HOLDS.load(Ordering::SeqCst) != 0
}

/// Whether we run as root, as every procedure that changes the server must.
pub fn is_root() -> bool {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    unsafe { libc::geteuid() == 0 }
}

/// Refuses, before anything runs, to change the system without root.
pub fn require_root(what: &str) -> Result<()> {
    if is_root() {
        Ok(())
    } else {
        Err(Error::NotRoot {
            what: what.to_string(),
        })
    }
}

/// This machine's host name, for artefact names as the doc makes them.
pub fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// What a file is, in words, for an error that refuses it ("a FIFO").
pub fn file_kind(metadata: &fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let kind = metadata.file_type();
    if kind.is_file() {
        "a regular file"
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_symlink() {
        "a symbolic link"
    } else if kind.is_fifo() {
        "a FIFO (named pipe)"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else {
        "a special file"
    }
}

/// A process's state letter from /proc (R, S, D, T, t, Z), or None once gone.
pub fn process_state(pid: u32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: the state follows the last ')'.
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Whether any thread of `pid` is stopped (`T`) or in a tracing stop (`t`):
/// the main thread's state alone misses a thread stopped on its own.
pub fn any_thread_stopped(pid: u32) -> bool {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.filter_map(|task| task.ok()).any(|task| {
        fs::read_to_string(task.path().join("stat"))
            .ok()
            .and_then(|stat| stat.rsplit_once(')')?.1.trim_start().chars().next())
            .is_some_and(|state| matches!(state, 'T' | 't'))
    })
}

/// When a process started: `/proc/PID/stat`'s start time (clock ticks after
/// boot) added to `/proc/stat`'s boot time. `None` when either is unreadable.
pub fn process_started(pid: u32) -> Option<std::time::SystemTime> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 22 overall; the 20th after the state, which follows the last ')'.
    let ticks: u64 = stat
        .rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(19)?
        .parse()
        .ok()?;
    let boot: u64 = fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    // SAFETY: sysconf has no memory-safety preconditions.
    let hertz = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) })
        .ok()
        .filter(|&hz| hz > 0)?;
    let since_epoch = std::time::Duration::from_secs(boot)
        + std::time::Duration::from_millis(ticks.checked_mul(1000)? / hertz);
    Some(std::time::UNIX_EPOCH + since_epoch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_started_before_now_and_after_boot() {
        let started = process_started(std::process::id()).expect("our own start time");
        let now = std::time::SystemTime::now();
        assert!(started <= now + std::time::Duration::from_secs(1));
        assert!(now.duration_since(started).unwrap_or_default().as_secs() < 86_400 * 365);
        assert_eq!(process_started(u32::MAX), None);
    }

    #[test]
    fn a_stopped_process_is_seen_stopped_and_then_running() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id();
        let signal = |signal| unsafe { libc::kill(pid as libc::pid_t, signal) };
        let settled = |want: bool| {
            (0..100).any(|_| {
                std::thread::sleep(std::time::Duration::from_millis(10));
                any_thread_stopped(pid) == want
            })
        };
        assert!(settled(false));
        signal(libc::SIGSTOP);
        assert!(settled(true), "SIGSTOP not seen");
        signal(libc::SIGCONT);
        assert!(settled(false), "SIGCONT not seen");
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!any_thread_stopped(u32::MAX));
    }
}
