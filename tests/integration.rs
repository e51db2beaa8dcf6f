//! The integration tests: one test binary (so cargo links once and runs them
//! all in one process), one module per subcommand (and `safety` for what
//! crosses them: group signals, two runs, disks, hostile files), sharing the harness in
//! `common/` (the sandbox with its stand-ins, the C fixture compiler, the
//! signal helpers) and the real-Asterisk test bed in `testbed/`.

#[macro_use]
mod common;

mod bed_crash;
mod bed_freeze;
mod bed_watch;
mod completions;
mod crash;
mod dry_run;
mod fleet;
mod freeze;
mod freeze_samples;
mod freeze_taskprocessors;
mod graph;
mod json_vocabulary;
mod layout;
mod man;
mod rebuild;
mod recover;
mod report;
mod report_corpus;
mod safety;
mod segfaults;
mod setup_dbg;
mod valgrind;
mod vanilla;
mod watch;
