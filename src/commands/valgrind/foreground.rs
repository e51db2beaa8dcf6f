//! valgrind on the terminal until it exits, and the minutes it needs to
//! write its leak report after Ctrl-C.

use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::engine::command::Cmd;
use crate::engine::interrupt::Interrupt;
use crate::engine::journal::{RUN_ENV, run_id};
use crate::error::{Error, Result};

/// How long valgrind may take to write its leak report after Ctrl-C
/// before it is stopped harder: a big Asterisk takes minutes.
const REPORT_GRACE: Duration = Duration::from_secs(300);
/// How long to let a terminal's own Ctrl-C reach the child before forwarding one.
const FORWARD_DELAY: Duration = Duration::from_secs(2);

/// How the foreground run ended.
pub enum Ended {
    /// After this signal reached us (and, through us or the terminal, the child).
    ByUser(i32),
    ByItself(ExitStatus),
}

/// Runs valgrind on the terminal until it exits. On Ctrl-C the terminal
/// has already sent SIGINT to it too; otherwise (a signal to us alone) it
/// is forwarded. Valgrind then gets minutes to write its report, not the
/// executor's seconds. With `json`, what the program prints goes to stderr:
/// stdout holds the JSON object alone.
pub fn run_foreground(cmd: &Cmd, interrupt: &Interrupt, json: bool) -> Result<Ended> {
    errln!("\n+ {cmd}");
    let mut command = Command::new(cmd.program());
    let stdout = if json {
        Stdio::from(std::io::stderr())
    } else {
        Stdio::inherit()
    };
    command
        .args(cmd.args())
        .stdin(Stdio::inherit())
        .stdout(stdout)
        .stderr(Stdio::inherit())
        .env(RUN_ENV, run_id());
    if let Some(dir) = cmd.dir() {
        command.current_dir(dir);
    }
    let mut child = command.spawn().map_err(|source| Error::Spawn {
        command: cmd.to_string(),
        source,
    })?;
    loop {
        if let Some(status) = child.try_wait().map_err(|source| Error::Spawn {
            command: cmd.to_string(),
            source,
        })? {
            return Ok(Ended::ByItself(status));
        }
        if let Some(signal) = interrupt.received() {
            errln!("\nStopping: valgrind is writing its report (this can take minutes)...");
            wait_report(&mut child);
            return Ok(Ended::ByUser(signal));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_report(child: &mut Child) {
    let started = Instant::now();
    let mut signals = vec![
        (FORWARD_DELAY, libc::SIGINT),
        (REPORT_GRACE, libc::SIGTERM),
        (REPORT_GRACE + Duration::from_secs(10), libc::SIGKILL),
    ]
    .into_iter();
    let mut next = signals.next();
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        if let Some((after, signal)) = next {
            if started.elapsed() >= after {
                if let Ok(pid) = libc::pid_t::try_from(child.id()) {
                    // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
                    unsafe {
                        libc::kill(pid, signal);
                    }
                }
                next = signals.next();
            }
        } else {
            let _ = child.wait();
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
