//! How a procedure is shown, run and undone: the plan (data), the file edits
//! and their backups, the executor that always unwinds, the children it runs,
//! the shell script `--dry-run` prints, the interrupt flag, the journal that
//! survives a SIGKILL, and the prompts.
//! Nothing here knows about a command or the command line.

pub mod backup;
pub mod child;
pub mod command;
pub mod edit;
pub mod executor;
pub mod interrupt;
pub mod journal;
pub mod plan;
pub mod prompt;
pub mod script;
pub mod shell;
