//! What every command gets: the global options, the host, the interrupt
//! flag, the output directory where artefacts and the run log go, and the
//! one-run-at-a-time lock of the commands that change the system.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use clap::Args;

use crate::engine::executor::Executor;
use crate::engine::interrupt::Interrupt;
use crate::engine::journal::{Entry, JournalFile, RunLock, StateDir};
use crate::engine::prompt;
use crate::error::{Error, Result};
use crate::host::Host;
use crate::host::files::private_dir;
use crate::host::sys::hostname;

/// Where runs go when `--output-dir` is not given.
pub const DEFAULT_OUTPUT_BASE: &str = "/var/local/wazo-astdebug";

#[derive(Debug, Clone, Args)]
pub struct GlobalOpts {
    /// Print the commands that would change the system, as a POSIX sh script, and change nothing
    #[arg(short = 'n', long, global = true)]
    pub dry_run: bool,

    /// Answer yes to every question (and pass -y to apt-get)
    #[arg(short = 'y', long, global = true)]
    pub yes: bool,

    /// Use this Wazo version (e.g. 25.15) instead of detecting it
    #[arg(long, value_name = "VER", global = true)]
    pub wazo_version: Option<String>,

    /// Read host files (version files, apt sources, logs, spool) under DIR instead of /
    #[arg(long, value_name = "DIR", global = true, default_value = "/")]
    pub root: PathBuf,

    /// Where artefacts and the run log go [default: /var/local/wazo-astdebug/<YYYYMMDD-HHMMSS>-<hostname>/]
    #[arg(short = 'o', long, value_name = "DIR", global = true)]
    pub output_dir: Option<PathBuf>,

    /// Machine-readable output on stdout, for commands that report
    #[arg(long, global = true)]
    pub json: bool,

    /// Read the version eras and procedures from DIR instead of the built-in ones
    #[arg(long, value_name = "DIR", global = true)]
    pub runbooks: Option<PathBuf>,

    /// Print only commands, warnings and results: no progress, no command output
    #[arg(short = 'q', long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Print every line the commands print, instead of a progress line
    #[arg(short = 'v', long, global = true)]
    pub verbose: bool,
}

/// A run directory's name: `<YYYYMMDD-HHMMSS>-<hostname>`.
pub fn run_dir_name() -> String {
    format!(
        "{}-{}",
        chrono::Local::now().format("%Y%m%d-%H%M%S"),
        hostname()
    )
}

pub struct Context {
    pub opts: GlobalOpts,
    pub host: Host,
    pub interrupt: Interrupt,
    output_dir: OnceLock<PathBuf>,
    lock: OnceLock<RunLock>,
}

impl Context {
    pub fn new(opts: GlobalOpts, interrupt: Interrupt) -> Context {
        let host = Host::new(opts.root.clone());
        Context {
            opts,
            host,
            interrupt,
            output_dir: OnceLock::new(),
            lock: OnceLock::new(),
        }
    }

    pub fn dry_run(&self) -> bool {
        self.opts.dry_run
    }

    /// Where this run's artefacts go; nothing is created (for `--dry-run`).
    pub fn output_path(&self) -> &Path {
        self.output_dir.get_or_init(|| match &self.opts.output_dir {
            Some(dir) => dir.clone(),
            None => Path::new(DEFAULT_OUTPUT_BASE).join(run_dir_name()),
        })
    }

    /// Where a command that makes several runs (`watch`: one per freeze)
    /// puts them: `--output-dir`, else the default base.
    pub fn output_base(&self) -> PathBuf {
        self.opts
            .output_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_OUTPUT_BASE))
    }

    /// The run's output directory, created (mode 0700) on first use: artefacts
    /// may hold backtraces with passwords in them. One that exists must be
    /// ours and closed to other accounts (see [`private_dir`]); so must the
    /// default base.
    pub fn output_dir(&self) -> Result<&Path> {
        let dir = self.output_path();
        if self.opts.output_dir.is_none() {
            private_dir(Path::new(DEFAULT_OUTPUT_BASE))?;
        }
        private_dir(dir)?;
        Ok(dir)
    }

    /// Where the journal and the lock live.
    pub fn state_dir(&self) -> StateDir {
        StateDir::of(&self.host)
    }

    /// Takes the one-run-at-a-time lock (kept until the process ends).
    pub fn lock(&self) -> Result<StateDir> {
        let state = self.state_dir();
        if self.lock.get().is_none() {
            let _ = self.lock.set(state.lock()?);
        }
        Ok(state)
    }

    /// Before a command changes the system: the lock, and no undo steps
    /// left by a killed run (those are `recover`'s to run first).
    pub fn claim(&self) -> Result<()> {
        let state = self.lock()?;
        if let Some(left) = state.leftovers()? {
            return Err(Error::PendingRecovery {
                command: left.command,
                pid: left.pid,
                started: left.started,
                count: left.pending.len(),
            });
        }
        Ok(())
    }

    /// An executor logging to `run.log` in this run's output directory,
    /// journalling each undo before its step.
    pub fn executor(&self) -> Result<Executor<'_>> {
        self.claim()?;
        let journal = JournalFile::new(&self.state_dir());
        Ok(Executor::new(self.output_dir()?, &self.interrupt)?.with_journal(journal))
    }

    /// An executor that takes over the undo steps a killed run left.
    pub fn recovery_executor(&self, pending: Vec<Entry>) -> Result<Executor<'_>> {
        let state = self.lock()?;
        let journal = JournalFile::adopt(&state, pending);
        Ok(Executor::new(self.output_dir()?, &self.interrupt)?.with_journal(journal))
    }

    /// Asks `question`, or answers it with `--yes` (see [`prompt::confirm`]).
    pub fn confirm(&self, what: &str, question: &str) -> Result<()> {
        prompt::confirm(self.opts.yes, what, question)
    }

    /// Whether a question can be asked (see [`prompt::can_ask`]).
    pub fn can_ask(&self) -> bool {
        prompt::can_ask(self.opts.yes)
    }
}
