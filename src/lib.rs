//! wazo-astdebug: Wazo Platform's "Debugging Asterisk" procedures as guided,
//! version-aware, safe automation.
//!
//! The binary is a thin shell around [`main`]; every concept lives in its own
//! module so that each can be read (and tested) alone.

#[macro_use]
mod output;

pub mod cli;
mod commands;
mod context;
mod engine;
mod error;
mod evidence;
mod gdb;
mod host;
pub mod locks;
#[cfg(test)]
mod test_support;

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
        (true, _) => output::Verbosity::Quiet,
        (_, true) => output::Verbosity::Verbose,
        _ => output::Verbosity::Normal,
    });
    let interrupt = match engine::interrupt::Interrupt::install() {
        Ok(interrupt) => interrupt,
        Err(error) => return exit_with(&error),
    };
    let context = Context::new(cli.global, interrupt);
    let outcome = match cli.command {
        Command::SetupDbg => commands::setup_dbg::run(&context),
        Command::Info => commands::info::run(&context),
        Command::Runbooks(args) => commands::runbooks::run(&context, &args),
        Command::Report(args) => commands::report::run(&context, &args),
        Command::Segfaults(args) => commands::segfaults::run(&context, &args),
        Command::Crash(args) => commands::crash::run(&context, &args),
        Command::Graph(args) => commands::graph::run(&context, &args),
        Command::Freeze(args) => commands::freeze::run(&context, &args),
        Command::Watch(args) => commands::watch::run(&context, &args),
        Command::Vanilla(args) => commands::vanilla::run(&context, &args),
        Command::Rebuild(args) => commands::rebuild::run(&context, &args),
        Command::Valgrind(args) => commands::valgrind::run(&context, &args),
        Command::Recover(args) => commands::recover::run(&context, &args),
        Command::Completions(args) => cli::completions::run(&args),
    };
    match outcome.map_err(engine::executor::exit_class) {
        Ok(()) => match engine::executor::log_lost() {
            Some(error) => exit_with(&error),
            None => ExitCode::SUCCESS,
        },
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
