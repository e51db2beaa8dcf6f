//! Walks a [`Plan`]: echoes each command, runs it as argv, logs it, and
//! guarantees that the undo of every guarded step runs, on success, on
//! failure and on Ctrl-C.
//!
//! A child is polled rather than waited on, so that a signal recorded by
//! [`Interrupt`] can stop it (SIGINT first, as a terminal would, then
//! SIGTERM and SIGKILL if it will not go). Cleanup commands are never
//! interrupted: stopping a half-done restore is how servers end up
//! half-changed.

use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::engine::child::{self, Streams, describe_status};
use crate::engine::command::Cmd;
use crate::engine::interrupt::Interrupt;
use crate::engine::plan::{Plan, Step};
use crate::error::{Error, Result};
use crate::host::sys::create_private;
use crate::output::Verbosity;

/// Lines of a failed command's output shown to the user.
const TAIL_LINES: usize = 20;

/// How a command ended and what it printed.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub lines: Vec<String>,
}

pub struct Executor<'a> {
    interrupt: &'a Interrupt,
    log: Option<File>,
    /// Undo commands not yet run, innermost last.
    pending: Vec<Vec<Cmd>>,
}

impl<'a> Executor<'a> {
    /// An executor that logs every command to `run.log` in `log_dir`, and
    /// stops at the signals `interrupt` records.
    pub fn new(log_dir: &Path, interrupt: &'a Interrupt) -> Result<Executor<'a>> {
        let path = log_dir.join("run.log");
        let mut log = create_private(&path)?;
        let _ = writeln!(
            log,
            "# wazo-astdebug {} run log, started {}\n# argv: {}",
            env!("CARGO_PKG_VERSION"),
            chrono::Local::now().to_rfc3339(),
            std::env::args().collect::<Vec<_>>().join(" ")
        );
        note!("Run log: {}", path.display());
        Ok(Executor {
            interrupt,
            log: Some(log),
            pending: Vec::new(),
        })
    }

    /// Runs every step; whatever happens, pending undo steps run before this
    /// returns.
    pub fn execute(&mut self, plan: &Plan) -> Result<()> {
        let outcome = self.execute_steps(plan);
        let cleanup = self.unwind();
        match (outcome, cleanup) {
            (Err(error), _) => Err(error),
            (Ok(()), cleanup) => cleanup,
        }
    }

    /// Runs every step but keeps the undo of guarded steps pending, for a
    /// procedure that does something of its own between setting up and
    /// cleaning up (valgrind's foreground run). On failure, everything
    /// pending is undone before this returns; otherwise [`Executor::finish`]
    /// (or dropping the executor) undoes it.
    pub fn begin(&mut self, plan: &Plan) -> Result<()> {
        let outcome = self.execute_steps(plan);
        if outcome.is_err() {
            let _ = self.unwind();
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
            match step {
                Step::Note(text) => {
                    errln!("\n{text}");
                    self.log_line(&format!("# {text}"));
                }
                Step::Run(cmd) => {
                    self.run(cmd)?;
                }
                Step::Guarded { run, undo } => {
                    self.run(run)?;
                    self.pending.push(undo.clone());
                }
                Step::Undo => {
                    if let Some(undo) = self.pending.pop() {
                        self.run_cleanup(&undo)?;
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

    /// Runs every pending undo, innermost first, even after a failure.
    fn unwind(&mut self) -> Result<()> {
        let mut first_error = None;
        while let Some(undo) = self.pending.pop() {
            errln!("\nPutting things back as they were (this is not interrupted):");
            if let Err(error) = self.run_cleanup(&undo) {
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn run_cleanup(&mut self, undo: &[Cmd]) -> Result<()> {
        for (index, cmd) in undo.iter().enumerate() {
            if let Err(error) = self.run_to_end(cmd, false) {
                let left: Vec<String> = undo[index..].iter().map(ToString::to_string).collect();
                errln!(
                    "wazo-astdebug: CLEANUP FAILED: {error}\n  \
                     The server is not back to how it was. Run by hand, as root:\n    {}",
                    left.join("\n    ")
                );
                return Err(error);
            }
        }
        Ok(())
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
        if let Some(log) = &mut self.log {
            // A full disk must not stop a restore: the log is best effort.
            let _ = writeln!(log, "{line}");
        }
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
