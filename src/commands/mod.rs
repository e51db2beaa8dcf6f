//! One file per subcommand: gather, decide, print. A command uses the layers
//! below (engine, locks, gdb, evidence, host) and never another command, so
//! each reads alone and shared pieces live where every command can reach them.

pub mod crash;
pub mod freeze;
pub mod graph;
pub mod info;
pub mod rebuild;
pub mod recover;
pub mod report;
pub mod runbooks;
pub mod segfaults;
pub mod setup_dbg;
pub mod valgrind;
pub mod vanilla;
pub mod watch;
