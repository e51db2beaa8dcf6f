//! wazo-astdebug: Wazo Platform's "Debugging Asterisk" procedures as guided,
//! version-aware, safe automation.
//!
//! The binary is a thin shell around [`main`]; every concept lives in its own
//! module so that each can be read (and tested) alone.

#[macro_use]
mod output;

mod apt_sources;
mod asterisk;
mod astlog;
mod backup;
mod bugreport;
mod changelog;
mod child;
pub mod cli;
mod command;
mod completions;
mod context;
mod cores;
mod crash;
mod debian_rules;
mod elf;
mod error;
mod executor;
mod freeze;
mod gdb;
mod gdb_graph;
mod graph;
mod host;
mod info;
mod interrupt;
mod lockdump;
pub mod lockgraph;
mod plan;
mod prompt;
mod rebuild;
mod redact;
mod report;
mod runbook;
mod runbooks_cmd;
mod segfault;
mod segfaults;
mod setup_dbg;
mod shell;
mod symptoms;
mod syslog;
mod threads;
mod valgrind;
mod valgrind_conf;
mod valgrind_report;
mod vanilla;
mod version;

use std::process::ExitCode;

use clap::Parser;

pub use error::{Error, Result};

use cli::{Cli, Command};
use context::Context;

/// Parses the command line, runs the command and turns its outcome into the
/// documented exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    output::set_verbosity(match (cli.global.quiet, cli.global.verbose) {
        (true, _) => output::QUIET,
        (_, true) => output::VERBOSE,
        _ => output::NORMAL,
    });
    let interrupt = match interrupt::Interrupt::install() {
        Ok(interrupt) => interrupt,
        Err(error) => return exit_with(&error),
    };
    let context = Context::new(cli.global, interrupt);
    let outcome = match cli.command {
        Command::SetupDbg => setup_dbg::run(&context),
        Command::Info => info::run(&context),
        Command::Runbooks(args) => runbooks_cmd::run(&context, &args),
        Command::Report(args) => report::run(&context, &args),
        Command::Segfaults(args) => segfaults::run(&context, &args),
        Command::Crash(args) => crash::run(&context, &args),
        Command::Graph(args) => graph::run(&context, &args),
        Command::Freeze(args) => freeze::run(&context, &args),
        Command::Vanilla(args) => vanilla::run(&context, &args),
        Command::Rebuild(args) => rebuild::run(&context, &args),
        Command::Valgrind(args) => valgrind::run(&context, &args),
        Command::Completions(args) => completions::run(&args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => exit_with(&error),
    }
}

fn exit_with(error: &Error) -> ExitCode {
    match error {
        Error::Declined => errln!("wazo-astdebug: {error}"),
        _ => errln!("wazo-astdebug: {} {error}", output::alarm("error:")),
    }
    ExitCode::from(error.exit_code())
}
