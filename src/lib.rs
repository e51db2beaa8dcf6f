//! wazo-astdebug: Wazo Platform's "Debugging Asterisk" procedures as guided,
//! version-aware, safe automation.
//!
//! The binary is a thin shell around [`main`]; every concept lives in its own
//! module so that each can be read (and tested) alone.

pub mod cli;
mod context;
mod error;
mod host;
mod info;
mod interrupt;
mod prompt;
mod runbook;
mod runbooks_cmd;
mod setup_dbg;
mod shell;
mod executor;
mod apt_sources;
mod asterisk;
mod version;

mod graph;
mod lockdump;
pub mod lockgraph;

use std::process::ExitCode;

use clap::Parser;

pub use error::{Error, Result};

use cli::{Cli, Command};
use context::Context;

/// Parses the command line, runs the command and turns its outcome into the
/// documented exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let interrupt = match interrupt::Interrupt::install() {
        Ok(interrupt) => interrupt,
        Err(error) => return report(&error),
    };
    let context = Context::new(cli.global, interrupt);
    let outcome = match cli.command {
        Command::SetupDbg => setup_dbg::run(&context),
        Command::Info => info::run(&context),
        Command::Runbooks(args) => runbooks_cmd::run(&context, &args),
        Command::Graph(args) => graph::run(&context, &args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => report(&error),
    }
}

fn report(error: &Error) -> ExitCode {
    match error {
        Error::Declined => eprintln!("wazo-astdebug: {error}"),
        _ => eprintln!("wazo-astdebug: error: {error}"),
    }
    ExitCode::from(error.exit_code())
}
