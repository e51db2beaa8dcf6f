//! Running one child process under supervision.
//!
//! A child is polled rather than waited on, so that a signal recorded by
//! [`Interrupt`] can stop it (SIGINT first, then SIGTERM and SIGKILL if it
//! will not go; SIGKILL alone for gdb, see [`Cmd::kill_only`]), and so that
//! a command with a time limit (every `asterisk -rx`: a frozen Asterisk
//! never answers, and may ignore SIGINT and SIGTERM) is killed when it
//! passes: the limit is the bound. Output arrives line by line, as it is
//! printed, for spinners, logs and artefact files.
//!
//! A terminal's Ctrl-C and an SSH hangup go to the whole foreground process
//! group (see casey/just's `signal_handler.rs`), so a child in the tool's own
//! group gets them directly, whatever the tool decides: a restore command
//! would die half-done, and gdb would pass the SIGINT on to Asterisk. So every
//! child that does not need the terminal runs in a process group of its own;
//! the tool alone receives the terminal's signals, and decides. A child that
//! needs the terminal (an `apt-get` asking a question) stays in the
//! foreground group, and is never part of a cleanup.
//!
//! Every child carries the run's id in its environment
//! ([`crate::engine::journal::RUN_ENV`]): after a SIGKILL of the tool, that is
//! how `recover` finds what it left running.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Sender, TryRecvError};
use std::time::{Duration, Instant};

use crate::engine::command::Cmd;
use crate::engine::interrupt::Interrupt;
use crate::engine::journal::{RUN_ENV, run_id};
use crate::error::{Error, Result};
use crate::host::sys::Hold;

/// How long a child gets to exit after each signal before the next, harder one.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// How long to wait for output after a child exited: a daemon it started may
/// keep the pipe open forever.
const DRAIN_GRACE: Duration = Duration::from_millis(500);
const POLL: Duration = Duration::from_millis(50);
/// The first poll's wait, doubled up to [`WAIT_POLL`]: most children
/// (systemctl, a CLI check, dpkg-query) are done in a few milliseconds, and a
/// 50 ms poll would make each one a 50 ms wait.
const FIRST_POLL: Duration = Duration::from_millis(1);
/// How long a running child may have exited unseen. Output is read in
/// batches at each poll, not line by line: waking for each of gdb's ten
/// thousand lines would cost more than gdb's wait for the pipe.
const WAIT_POLL: Duration = Duration::from_millis(10);

/// Which output a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Out,
    Err,
}

/// Whether stderr is kept apart from stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Streams {
    /// One pipe for both, so lines keep the order they were printed in
    /// (every line is then reported as [`Stream::Out`]).
    Merged,
    Separate,
}

/// Runs `cmd` with stdin closed, calling `on_line` for each line of output
/// as it arrives.
pub fn run_lines(
    cmd: &Cmd,
    interrupt: Option<&Interrupt>,
    streams: Streams,
    on_line: &mut dyn FnMut(Stream, String),
) -> Result<ExitStatus> {
    let (sender, lines) = mpsc::channel();
    let mut command = Command::new(cmd.program());
    command
        .args(cmd.args())
        .stdin(Stdio::null())
        .env(RUN_ENV, run_id())
        .process_group(0)
        .envs(cmd.envs().iter().map(|(key, value)| (key, value)));
    if let Some(dir) = cmd.dir() {
        command.current_dir(dir);
    }
    let (out_reader, out_writer) = os_pipe::pipe().map_err(|source| spawn_error(cmd, source))?;
    match streams {
        Streams::Merged => {
            let err_writer = out_writer
                .try_clone()
                .map_err(|source| spawn_error(cmd, source))?;
            command.stdout(out_writer).stderr(err_writer);
        }
        Streams::Separate => {
            let (err_reader, err_writer) =
                os_pipe::pipe().map_err(|source| spawn_error(cmd, source))?;
            command.stdout(out_writer).stderr(err_writer);
            read_lines_in_background(err_reader, Stream::Err, sender.clone());
        }
    }
    read_lines_in_background(out_reader, Stream::Out, sender);
    let mut child = spawn(&mut command, cmd)?;
    // Drop our copies of the pipes' write ends, or they never reach EOF.
    drop(command);

    let mut open = true;
    let status = wait(&mut child, cmd, Group::Own, interrupt, &mut |step| {
        std::thread::sleep(step);
        loop {
            match lines.try_recv() {
                Ok((stream, line)) => on_line(stream, line),
                Err(TryRecvError::Empty) => return false,
                // Both outputs just closed: the child is exiting, look again soon.
                Err(TryRecvError::Disconnected) => return std::mem::replace(&mut open, false),
            }
        }
    });
    let deadline = Instant::now() + DRAIN_GRACE;
    while let Ok((stream, line)) =
        lines.recv_timeout(deadline.saturating_duration_since(Instant::now()))
    {
        on_line(stream, line);
    }
    status
}

/// Runs `cmd` on the user's terminal (it may ask questions). Its stdout goes
/// to our stderr: our stdout is kept for `--json` and `--dry-run` scripts.
pub fn run_on_terminal(cmd: &Cmd, interrupt: Option<&Interrupt>) -> Result<ExitStatus> {
    let mut command = Command::new(cmd.program());
    command
        .args(cmd.args())
        .stdin(Stdio::inherit())
        .stdout(std::io::stderr())
        .stderr(Stdio::inherit())
        .env(RUN_ENV, run_id());
    if let Some(dir) = cmd.dir() {
        command.current_dir(dir);
    }
    let mut child = spawn(&mut command, cmd)?;
    wait(&mut child, cmd, Group::Foreground, interrupt, &mut |step| {
        std::thread::sleep(step);
        false
    })
}

/// Where a child runs, and so what a stop signal is sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Group {
    /// Its own process group, of which it is the leader: signals go to the
    /// group, so what it started stops with it.
    Own,
    /// The tool's (the terminal's foreground) group: signals go to the child only.
    Foreground,
}

/// Polls `child` until it exits, `pause` passing the time between polls (it
/// returns true when the child is about to exit: look again soon); stops it
/// when `interrupt` fires or the command's time limit passes.
fn wait(
    child: &mut Child,
    cmd: &Cmd,
    group: Group,
    interrupt: Option<&Interrupt>,
    pause: &mut dyn FnMut(Duration) -> bool,
) -> Result<ExitStatus> {
    let _hold = Hold::new();
    let started = Instant::now();
    let mut step = FIRST_POLL;
    loop {
        match child.try_wait() {
            // Ctrl-C at a terminal reaches the child too, which may die of it
            // before we look: a failure then is the interrupt, not the step.
            Ok(Some(status))
                if !status.success()
                    && interrupt.is_some_and(|interrupt| interrupt.received().is_some()) =>
            {
                return Err(Error::Interrupted);
            }
            Ok(Some(status)) => return Ok(status),
            Ok(None) => {}
            Err(source) => return Err(spawn_error(cmd, source)),
        }
        if interrupt.is_some_and(|interrupt| interrupt.received().is_some()) {
            errln!("\nInterrupted: stopping `{cmd}`...");
            let signals: &[i32] = if cmd.is_kill_only() {
                &[]
            } else {
                &[libc::SIGINT, libc::SIGTERM]
            };
            stop(child, group, signals);
            return Err(Error::Interrupted);
        }
        if let Some(limit) = cmd.time_limit() {
            if started.elapsed() >= limit {
                stop(child, group, &[]);
                return Err(Error::Timeout {
                    command: cmd.to_string(),
                    seconds: limit.as_secs(),
                });
            }
        }
        step = if pause(step) {
            FIRST_POLL
        } else {
            (step * 2).min(WAIT_POLL)
        };
    }
}

fn spawn(command: &mut Command, cmd: &Cmd) -> Result<Child> {
    command.spawn().map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            Error::MissingTool {
                program: cmd.program().to_string(),
                hint: "install it, or check PATH".to_string(),
            }
        } else {
            spawn_error(cmd, source)
        }
    })
}

fn spawn_error(cmd: &Cmd, source: std::io::Error) -> Error {
    Error::Spawn {
        command: cmd.to_string(),
        source,
    }
}

/// "exit status 100" or "killed by signal 9".
pub fn describe_status(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => "unknown status".to_string(),
    }
}

/// Each of `signals` in turn, with a grace period after each, then SIGKILL:
/// to the child's process group when it has its own, else to the child.
fn stop(child: &mut Child, group: Group, signals: &[i32]) {
    let Ok(pid) = libc::pid_t::try_from(child.id()) else {
        let _ = child.kill();
        let _ = child.wait();
        return;
    };
    let target = match group {
        Group::Own => -pid,
        Group::Foreground => pid,
    };
    for &signal in signals {
        // SAFETY: kill(2) on our own child (or its group) has no memory-safety preconditions.
        unsafe {
            libc::kill(target, signal);
        }
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(POLL);
        }
    }
    // SAFETY: as above.
    unsafe {
        libc::kill(target, libc::SIGKILL);
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn read_lines_in_background(
    reader: os_pipe::PipeReader,
    stream: Stream,
    sender: Sender<(Stream, String)>,
) {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(reader);
        let mut buffer = Vec::new();
        loop {
            buffer.clear();
            match reader.read_until(b'\n', &mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buffer);
                    // apt redraws progress with \r: keep the last state.
                    let line = line.trim_end().rsplit('\r').next().unwrap_or_default();
                    if sender.send((stream, line.to_string())).is_err() {
                        break;
                    }
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_that_dies_of_the_users_ctrl_c_is_an_interrupt_not_a_failed_step() {
        let interrupt = Interrupt::fired(libc::SIGINT);
        let outcome = run_lines(
            &Cmd::new(["false"]),
            Some(&interrupt),
            Streams::Merged,
            &mut |_, _| {},
        );
        assert!(matches!(outcome, Err(Error::Interrupted)), "{outcome:?}");
    }

    #[test]
    fn without_an_interrupt_a_failure_is_the_commands() {
        let outcome = run_lines(&Cmd::new(["false"]), None, Streams::Merged, &mut |_, _| {});
        assert!(matches!(outcome, Ok(status) if status.code() == Some(1)));
        let cmd = Cmd::new(["sleep", "5"]).timeout(Duration::from_millis(200));
        let outcome = run_lines(&cmd, None, Streams::Merged, &mut |_, _| {});
        assert!(matches!(outcome, Err(Error::Timeout { .. })), "{outcome:?}");
    }

    #[test]
    fn a_time_limit_is_the_bound_even_for_a_child_that_ignores_sigint_and_sigterm() {
        let cmd = Cmd::new(["sh", "-c", "trap '' INT TERM; sleep 30"])
            .timeout(Duration::from_millis(300));
        let started = Instant::now();
        let outcome = run_lines(&cmd, None, Streams::Merged, &mut |_, _| {});
        assert!(matches!(outcome, Err(Error::Timeout { .. })), "{outcome:?}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
}
