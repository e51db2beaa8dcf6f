//! One error type for the whole tool.
//!
//! Every message is written for the person at the keyboard of a broken PBX:
//! it names the file or command involved and says what to do next. The
//! variant decides the exit code, so that scripts can tell "a step failed"
//! (1) from "you asked for something impossible" (2) and "interrupted" (130).

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input given to the tool (a file, a version, an option) is unusable.
    #[error("{0}")]
    BadInput(String),

    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A file or directory could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A runbook file is malformed.
    #[error("runbook {file}, line {line}: {message}")]
    Runbook {
        file: String,
        line: usize,
        message: String,
    },

    /// A prompt was needed but nobody can answer it.
    #[error(
        "{what}: this needs a yes/no answer, but standard input is not a terminal; \
         nothing was changed. Run it again with --yes to answer yes, or --dry-run to only see the commands"
    )]
    NeedsYes { what: String },

    /// The user answered no.
    #[error("stopped at your request; nothing was changed")]
    Declined,

    /// Changing the system needs root.
    #[error(
        "{what} changes the system and must run as root; nothing was run. \
         Try `sudo wazo-astdebug ...`, or add --dry-run to only print the commands"
    )]
    NotRoot { what: String },

    /// A program the step needs is not installed.
    #[error("`{program}` was not found on PATH; {hint}")]
    MissingTool { program: String, hint: String },

    /// A command could not be started at all.
    #[error("could not start `{command}`: {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },

    /// A command ran and failed.
    #[error("`{command}` failed ({status}){hint}")]
    StepFailed {
        command: String,
        status: String,
        hint: String,
    },

    /// A command did not answer in time.
    #[error("`{command}` did not finish within {seconds} s and was stopped")]
    Timeout { command: String, seconds: u64 },

    /// The debug symbols installed do not match the installed binaries.
    #[error("{0}")]
    SymbolsMismatch(String),

    /// The output could not be encoded (JSON): a bug, not the user's input.
    #[error("cannot encode the output as JSON: {0}")]
    Encode(String),

    /// A file given as a `core show locks` output is something else.
    #[error(
        "{name} {what}; save one with `asterisk -rx \"core show locks\" > core-show-locks.txt`{hint}"
    )]
    NotALockDump {
        name: String,
        what: String,
        hint: String,
    },

    /// A path that must be a regular file is something else.
    #[error("{} is {kind}, not a regular file; {hint}", path.display())]
    NotARegularFile {
        path: PathBuf,
        kind: String,
        hint: String,
    },

    /// An earlier run left a backup where this run would make one.
    #[error(
        "{backup} already exists: an earlier run was probably stopped before it could put \
         {file} back. Nothing was changed. Compare them, then either restore it \
         (`cp {backup} {file} && rm {backup}`) or remove it, and run this again \
         (when `wazo-astdebug info` lists it as left behind, `wazo-astdebug recover` does it)"
    )]
    LeftoverBackup { backup: String, file: String },

    /// gdb could not attach to the process: nothing was analysed.
    #[error(
        "gdb could not attach to pid {pid}: {reason}. Nothing was analysed, and no bug report \
         was written"
    )]
    AttachFailed { pid: u32, reason: String },

    /// A path the tool would write to, or read from as root, is not safe to use.
    #[error("{}: {reason}; nothing was changed", path.display())]
    UnsafeFile { path: PathBuf, reason: String },

    /// The output directory or the run log cannot be made or written, found
    /// before anything ran.
    #[error("cannot write {}: {source}; nothing was run", path.display())]
    OutputUnusable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The run log stopped being writable midway: the run went on, unlogged.
    #[error(
        "the run log {} could not be written from some point on ({error}): what ran after \
         that is not in it",
        path.display()
    )]
    LogLost { path: PathBuf, error: String },

    /// Putting something back failed: the server is not as it was.
    #[error(
        "{error}\n  CLEANUP FAILED: the server is NOT back to how it was. Run by hand, as root:\n    {}",
        left.join("\n    ")
    )]
    CleanupFailed { error: String, left: Vec<String> },

    /// An error of the kind "bad input" that came after steps changing the
    /// system had run: it is a failed run, not an untouched server.
    #[error("{0} (after steps that change the system had run: see the run log)")]
    AfterChanges(Box<Error>),

    /// Another run that changes the system holds the lock.
    #[error(
        "another wazo-astdebug run is changing this server (pid {pid}); one at a time. \
         Nothing was changed. Wait for it to end, then run this again"
    )]
    Busy { pid: String },

    /// An earlier run was killed before it could put everything back.
    #[error(
        "an earlier run ({command}, pid {pid}, started {started}) was stopped before it could \
         put {count} change(s) back; nothing was changed. `wazo-astdebug info` lists them, \
         `wazo-astdebug recover` puts them back"
    )]
    PendingRecovery {
        command: String,
        pid: u32,
        started: String,
        count: usize,
    },

    /// Ctrl-C, SIGTERM or SIGHUP.
    #[error("interrupted; whatever had been changed is put back")]
    Interrupted,
}

impl Error {
    /// The process exit code documented in `--help`.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::BadInput(_)
            | Error::Read { .. }
            | Error::Runbook { .. }
            | Error::NeedsYes { .. }
            | Error::NotRoot { .. }
            | Error::NotALockDump { .. }
            | Error::NotARegularFile { .. }
            | Error::LeftoverBackup { .. }
            | Error::UnsafeFile { .. }
            | Error::OutputUnusable { .. }
            | Error::Busy { .. }
            | Error::PendingRecovery { .. } => 2,
            Error::Interrupted => 130,
            Error::Declined => 0,
            Error::Write { .. }
            | Error::MissingTool { .. }
            | Error::Spawn { .. }
            | Error::StepFailed { .. }
            | Error::Timeout { .. }
            | Error::SymbolsMismatch(_)
            | Error::Encode(_)
            | Error::AttachFailed { .. }
            | Error::LogLost { .. }
            | Error::CleanupFailed { .. }
            | Error::AfterChanges(_) => 1,
        }
    }

    pub fn bad_input(message: impl Into<String>) -> Error {
        Error::BadInput(message.into())
    }

    pub fn read(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Read {
            path: path.into(),
            source,
        }
    }

    pub fn write(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Write {
            path: path.into(),
            source,
        }
    }
}
