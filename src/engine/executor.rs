//! Walks a [`Plan`]: echoes each command, runs it as argv, logs it, and
//! guarantees that the undo of every guarded step runs, on success, on
//! failure and on Ctrl-C.
//!
//! A child is polled rather than waited on, so that a signal recorded by
//! [`Interrupt`] can stop it (SIGINT first, as a terminal would, then
//! SIGTERM and SIGKILL if it will not go). Cleanup commands are never
//! interrupted: stopping a half-done restore is how servers end up
//! half-changed. A signal during cleanup only says what is being put back.
//!
//! The executor also decides how a run ends: a cleanup failure wins over
//! the error that caused the cleanup, and "bad input, nothing changed"
//! (exit 2) is only true while no step that changes the system has run.
//! Each undo is journalled before its step (see [`crate::engine::journal`]),
//! so that a SIGKILL leaves a way back.

use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::engine::child::{self, Streams, describe_status};
use crate::engine::command::Cmd;
use crate::engine::interrupt::Interrupt;
use crate::engine::journal::{Entry, JournalFile};
use crate::engine::plan::{Plan, Step};
use crate::error::{Error, Result};
use crate::host::sys::{Hold, create_private};
use crate::output::Verbosity;

/// Lines of a failed command's output shown to the user.
const TAIL_LINES: usize = 20;
/// The least free space the run log's file system must have before a run
/// starts: a log that fills the disk midway would hide what the cleanup did.
const LOG_MIN_FREE: u64 = 1 << 20;

/// Whether a step that changes the system has started in this process.
static CHANGED: AtomicBool = AtomicBool::new(false);
/// The run log that stopped being writable, and why.
static LOG_LOST: Mutex<Option<(PathBuf, String)>> = Mutex::new(None);

/// The error as the user must see it: "bad input, nothing was changed"
/// (exit 2) becomes a failed run (exit 1) once something has changed.
pub fn exit_class(error: Error) -> Error {
    if error.exit_code() == 2 && CHANGED.load(Ordering::SeqCst) {
        Error::AfterChanges(Box::new(error))
    } else {
        error
    }
}

/// The error to end an otherwise successful run with when its log was lost.
pub fn log_lost() -> Option<Error> {
    let lost = LOG_LOST.lock().ok()?.clone()?;
    Some(Error::LogLost {
        path: lost.0,
        error: lost.1,
    })
}

/// How a command ended and what it printed.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub lines: Vec<String>,
}

/// An undo waiting to run, and where it sits in the journal.
struct Pending {
    undo: Vec<Cmd>,
    entry: Entry,
    slot: usize,
}

pub struct Executor<'a> {
    interrupt: &'a Interrupt,
    log: Option<File>,
    log_path: PathBuf,
    log_failed: bool,
    /// Undo commands not yet run, innermost last.
    pending: Vec<Pending>,
    journal: Option<JournalFile>,
    /// Cleanup failures so far: the first error and every command left to run.
    failed: Option<(String, Vec<String>)>,
    /// The watchdog leaves the process to us while we exist.
    _hold: Hold,
}

impl<'a> Executor<'a> {
    /// An executor that logs every command to `run.log` in `log_dir`, and
    /// stops at the signals `interrupt` records. A log that cannot be
    /// written, or a disk too full to hold it, is an error before anything runs.
    pub fn new(log_dir: &Path, interrupt: &'a Interrupt) -> Result<Executor<'a>> {
        let path = log_dir.join("run.log");
        let unusable = |source| Error::OutputUnusable {
            path: path.clone(),
            source,
        };
        if free_bytes(log_dir).is_some_and(|free| free < LOG_MIN_FREE) {
            return Err(unusable(std::io::Error::from_raw_os_error(libc::ENOSPC)));
        }
        let mut log = create_private(&path)?;
        writeln!(
            log,
            "# wazo-astdebug {} run log, started {}\n# argv: {}",
            env!("CARGO_PKG_VERSION"),
            chrono::Local::now().to_rfc3339(),
            std::env::args().collect::<Vec<_>>().join(" ")
        )
        .and_then(|()| log.sync_all())
        .map_err(unusable)?;
        note!("Run log: {}", path.display());
        Ok(Executor {
            interrupt,
            log: Some(log),
            log_path: path,
            log_failed: false,
            pending: Vec::new(),
            journal: None,
            failed: None,
            _hold: Hold::new(),
        })
    }

    /// Journals every guarded step in `journal`, and takes over the undo
    /// steps it already holds (those of a killed run, for `recover`).
    pub fn with_journal(mut self, journal: JournalFile) -> Executor<'a> {
        for (slot, entry) in journal.pending().iter().enumerate() {
            self.pending.push(Pending {
                undo: entry.commands(),
                entry: entry.clone(),
                slot,
            });
        }
        self.journal = Some(journal);
        self
    }

    /// Runs every step; whatever happens, pending undo steps run before this
    /// returns. A cleanup failure wins over the error that led to it.
    pub fn execute(&mut self, plan: &Plan) -> Result<()> {
        let outcome = self.execute_steps(plan);
        let cleanup = self.unwind();
        cleanup.and(outcome)
    }

    /// Runs every step but keeps the undo of guarded steps pending, for a
    /// procedure that does something of its own between setting up and
    /// cleaning up (valgrind's foreground run). On failure, everything
    /// pending is undone before this returns; otherwise [`Executor::finish`]
    /// (or dropping the executor) undoes it.
    pub fn begin(&mut self, plan: &Plan) -> Result<()> {
        let outcome = self.execute_steps(plan);
        if outcome.is_err() {
            self.unwind()?;
        }
        outcome
    }

    /// Runs every pending undo, innermost first.
    pub fn finish(&mut self) -> Result<()> {
        self.unwind()
    }

    fn execute_steps(&mut self, plan: &Plan) -> Result<()> {
        for step in plan.steps() {
            self.interrupt.check()?;
            if matches!(step, Step::Run(_) | Step::Edit(_)) {
                CHANGED.store(true, Ordering::SeqCst);
            }
            match step {
                // The tool knows the value the script's line sets by itself.
                Step::Shell(_) => {}
                Step::Note(text) => {
                    errln!("\n{text}");
                    self.log_line(&format!("# {text}"));
                }
                Step::Run(cmd) => {
                    self.run(cmd)?;
                }
                Step::Guarded { run, undo, needs } => {
                    let entry = Entry::new(run, undo, needs.as_deref());
                    let slot = self.record(&entry)?;
                    CHANGED.store(true, Ordering::SeqCst);
                    if let Err(error) = self.run(run) {
                        // Its undo does not run; nor may `recover` run it.
                        self.forget(slot);
                        return Err(error);
                    }
                    self.pending.push(Pending {
                        undo: undo.clone(),
                        entry,
                        slot,
                    });
                }
                Step::Undo => {
                    if let Some(pending) = self.pending.pop() {
                        self.undo(pending);
                        self.cleanup_result()?;
                    }
                }
                Step::Edit(edit) => {
                    let what = format!("edit {}: {}", edit.path().display(), edit.description());
                    errln!("+ {what}");
                    self.log_line(&format!("$ {what}"));
                    let outcome = edit.apply();
                    match &outcome {
                        Ok(()) => self.log_line("# done"),
                        Err(error) => self.log_line(&format!("# {error}")),
                    }
                    outcome?;
                }
            }
        }
        Ok(())
    }

    /// Writes `entry` to the journal (fsynced) before its step runs.
    fn record(&mut self, entry: &Entry) -> Result<usize> {
        match &mut self.journal {
            Some(journal) => {
                journal.push(entry.clone())?;
                Ok(journal.pending().len() - 1)
            }
            None => Ok(self.pending.len()),
        }
    }

    /// Takes an undo out of the journal; a failure to is said, not fatal:
    /// `recover` would then run an undo that already ran, which is harmless.
    fn forget(&mut self, slot: usize) {
        if let Some(journal) = &mut self.journal {
            if let Err(error) = journal.remove(slot) {
                warn!("{error}: `wazo-astdebug recover` may offer to undo a step already undone");
            }
        }
    }

    /// Runs every pending undo, innermost first, even after a failure.
    fn unwind(&mut self) -> Result<()> {
        while let Some(pending) = self.pending.pop() {
            self.undo(pending);
        }
        self.sync_log();
        self.cleanup_result()
    }

    /// The cleanup failures so far, as one error.
    fn cleanup_result(&mut self) -> Result<()> {
        match self.failed.take() {
            Some((error, left)) => Err(Error::CleanupFailed { error, left }),
            None => Ok(()),
        }
    }

    fn undo(&mut self, pending: Pending) {
        CHANGED.store(true, Ordering::SeqCst);
        if !pending.entry.still_needed() {
            let gone = pending.entry.needs.as_deref().unwrap_or(Path::new("?"));
            errln!(
                "\nNothing to put back for `{}`: {} is gone (the step never ran, or was undone).",
                pending.entry.after,
                gone.display()
            );
            self.forget(pending.slot);
            return;
        }
        errln!("\nPutting things back as they were (this is not interrupted):");
        if self.run_cleanup(&pending.undo) {
            self.forget(pending.slot);
        }
    }

    /// Runs `undo` to the end, or until a command fails; true when all succeeded.
    fn run_cleanup(&mut self, undo: &[Cmd]) -> bool {
        for (index, cmd) in undo.iter().enumerate() {
            if let Err(error) = self.run_uninterrupted(cmd) {
                let left: Vec<String> = undo[index..].iter().map(ToString::to_string).collect();
                errln!(
                    "wazo-astdebug: {} {error}\n  \
                     The server is not back to how it was. Run by hand, as root:\n    {}",
                    crate::output::alarm("CLEANUP FAILED:"),
                    left.join("\n    ")
                );
                self.log_line(&format!(
                    "# CLEANUP FAILED; left to run by hand: {}",
                    left.join("; ")
                ));
                let (_, all_left) = self
                    .failed
                    .get_or_insert_with(|| (error.to_string(), Vec::new()));
                all_left.extend(left);
                return false;
            }
        }
        true
    }

    /// Runs a cleanup command to its end; a signal meanwhile is only told
    /// to wait, as many times as it comes.
    fn run_uninterrupted(&mut self, cmd: &Cmd) -> Result<Output> {
        let interrupt = self.interrupt.clone();
        let done = AtomicBool::new(false);
        let what = cmd.to_string();
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let mut seen = interrupt.count();
                while !done.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(50));
                    let now = interrupt.count();
                    if now > seen {
                        errln!("\nstill putting things back: {what}");
                        seen = now;
                    }
                }
            });
            let outcome = self.run_to_end(cmd, false);
            done.store(true, Ordering::SeqCst);
            outcome
        })
    }

    /// Runs one command that must succeed, stopping it if the user interrupts.
    pub fn run(&mut self, cmd: &Cmd) -> Result<Output> {
        self.run_to_end(cmd, true)
    }

    /// Runs a read-only command whose exit status the caller interprets
    /// (`dpkg-query -W` exits 1 when one of several packages is unknown).
    pub fn query(&mut self, cmd: &Cmd) -> Result<Output> {
        self.run_unchecked(cmd, true)
    }

    fn run_to_end(&mut self, cmd: &Cmd, interruptible: bool) -> Result<Output> {
        let output = self.run_unchecked(cmd, interruptible)?;
        if output.status.success() {
            return Ok(output);
        }
        let tail = output.lines.len().saturating_sub(TAIL_LINES);
        let hint = match &output.lines[tail..] {
            [] => String::new(),
            lines => format!("; its last lines:\n  {}", lines.join("\n  ")),
        };
        Err(Error::StepFailed {
            command: cmd.to_string(),
            status: describe_status(output.status),
            hint,
        })
    }

    fn run_unchecked(&mut self, cmd: &Cmd, interruptible: bool) -> Result<Output> {
        errln!("+ {cmd}");
        self.log_line(&format!("$ {cmd}"));
        let started = Instant::now();
        let result = if cmd.is_interactive() {
            self.run_interactive(cmd, interruptible)
        } else {
            self.run_captured(cmd, interruptible)
        };
        let elapsed = started.elapsed().as_secs_f64();
        match &result {
            Ok(output) => self.log_line(&format!(
                "# {} after {elapsed:.1} s",
                describe_status(output.status)
            )),
            Err(error) => self.log_line(&format!("# {error} after {elapsed:.1} s")),
        }
        result
    }

    fn run_interactive(&mut self, cmd: &Cmd, interruptible: bool) -> Result<Output> {
        // It owns the terminal (apt-get's question, an editor): a pipe would
        // take the terminal from it, so the log says where its output went.
        self.log_line("# on the terminal: its output is not captured in this log");
        let status = child::run_on_terminal(cmd, self.watch(interruptible).as_ref());
        Ok(Output {
            status: self.note_stop(status)?,
            lines: Vec::new(),
        })
    }

    fn run_captured(&mut self, cmd: &Cmd, interruptible: bool) -> Result<Output> {
        let verbosity = crate::output::verbosity();
        let pass_through = verbosity == Verbosity::Verbose
            || (verbosity == Verbosity::Normal && !std::io::stderr().is_terminal());
        let spinner = if pass_through || verbosity == Verbosity::Quiet {
            ProgressBar::hidden()
        } else {
            spinner(cmd)
        };
        let mut output = Vec::new();
        let interrupt = self.watch(interruptible);
        let status = child::run_lines(cmd, interrupt.as_ref(), Streams::Merged, &mut |_, line| {
            self.log_line(&format!("  {line}"));
            if pass_through {
                errln!("  {line}");
            } else {
                spinner.set_message(truncate(&line, 70));
            }
            output.push(line);
        });
        spinner.finish_and_clear();
        Ok(Output {
            status: self.note_stop(status)?,
            lines: output,
        })
    }

    /// The interrupt flag to watch while a command runs: none for cleanup.
    fn watch(&self, interruptible: bool) -> Option<Interrupt> {
        interruptible.then(|| self.interrupt.clone())
    }

    fn note_stop(&mut self, status: Result<ExitStatus>) -> Result<ExitStatus> {
        if let Err(Error::Interrupted) = &status {
            self.log_line("# interrupted: the command was stopped");
        }
        status
    }

    fn log_line(&mut self, line: &str) {
        let outcome = match &mut self.log {
            Some(log) => writeln!(log, "{line}"),
            None => Ok(()),
        };
        if let Err(error) = outcome {
            self.lose_log(&error);
        }
    }

    fn sync_log(&mut self) {
        let outcome = match &self.log {
            Some(log) => log.sync_all(),
            None => Ok(()),
        };
        if let Err(error) = outcome {
            self.lose_log(&error);
        }
    }

    /// A full disk must not stop a restore: the run goes on, unlogged, and
    /// says so loudly now and in its exit code.
    fn lose_log(&mut self, error: &std::io::Error) {
        if self.log_failed {
            return;
        }
        self.log_failed = true;
        errln!(
            "wazo-astdebug: {} cannot write the run log {}: {error}. The run goes on so that \
             its cleanup completes, but what follows is not logged; it will end with exit 1.",
            crate::output::alarm("WARNING:"),
            self.log_path.display()
        );
        if let Ok(mut lost) = LOG_LOST.lock() {
            lost.get_or_insert((self.log_path.clone(), error.to_string()));
        }
    }
}

/// Free space for an unprivileged writer, in bytes, on `dir`'s file system.
fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs(3) with a valid path and a zeroed struct it fills.
    unsafe {
        let mut stat: libc::statvfs = std::mem::zeroed();
        (libc::statvfs(path.as_ptr(), &mut stat) == 0)
            .then(|| stat.f_bavail as u64 * stat.f_frsize as u64)
    }
}

impl Drop for Executor<'_> {
    /// A panic must not skip the restore either.
    fn drop(&mut self) {
        let _ = self.unwind();
    }
}

fn spinner(cmd: &Cmd) -> ProgressBar {
    let spinner = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("  {spinner} [{elapsed}] {prefix} {wide_msg}") {
        spinner.set_style(style);
    }
    spinner.set_prefix(truncate(&cmd.to_string(), 40));
    spinner.enable_steady_tick(Duration::from_millis(120));
    spinner
}

fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_string()
    } else {
        let mut short: String = text.chars().take(width.saturating_sub(1)).collect();
        short.push('…');
        short
    }
}
