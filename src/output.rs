//! Printing that never panics, at the verbosity the user asked for.
//!
//! `println!` panics when stdout is a closed pipe (`wazo-astdebug runbooks |
//! head`), and `eprintln!` when stderr is gone (a dropped SSH session). A
//! panic in the middle of a procedure would skip the restore of the apt
//! mirror, so everything the tool prints goes through these macros, which
//! drop what cannot be written.
//!
//! Colour is for a person at a terminal only: never in a pipe, a file or a
//! CI log, and never when `NO_COLOR` is set (<https://no-color.org>).

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU8, Ordering};

use serde::Serialize;

/// How much the tool says on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    /// `--quiet`: commands, warnings and results only.
    Quiet,
    Normal,
    /// `--verbose`: every line commands print, instead of a spinner.
    Verbose,
}

static VERBOSITY: AtomicU8 = AtomicU8::new(Verbosity::Normal as u8);

pub fn set_verbosity(level: Verbosity) {
    VERBOSITY.store(level as u8, Ordering::Relaxed);
}

pub fn verbosity() -> Verbosity {
    match VERBOSITY.load(Ordering::Relaxed) {
        0 => Verbosity::Quiet,
        1 => Verbosity::Normal,
        _ => Verbosity::Verbose,
    }
}

/// Whether stderr gets colours.
pub fn colour() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty())
        && std::env::var_os("TERM").is_none_or(|term| term != "dumb")
        && std::io::stderr().is_terminal()
}

/// `text` in bold red (errors, deadlocks, mismatches) when colour is on.
pub fn alarm(text: &str) -> String {
    paint(text, "1;31")
}

/// `text` in yellow (warnings) when colour is on.
pub fn caution(text: &str) -> String {
    paint(text, "33")
}

fn paint(text: &str, code: &str) -> String {
    if colour() {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

/// Like `println!`, on stdout, ignoring write errors.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// Like `print!`, on stdout, ignoring write errors.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}

/// Like `eprintln!`, ignoring write errors.
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// Like `eprint!`, ignoring write errors.
macro_rules! err {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr(), $($arg)*);
    }};
}

/// A warning on stderr, `wazo-astdebug: warning: ...`, shown even with --quiet.
macro_rules! warn {
    ($($arg:tt)*) => {{
        errln!("wazo-astdebug: {} {}", $crate::output::caution("warning:"), format!($($arg)*));
    }};
}

/// Progress chatter on stderr, hidden by --quiet.
macro_rules! note {
    ($($arg:tt)*) => {{
        if $crate::output::verbosity() > $crate::output::Verbosity::Quiet {
            errln!($($arg)*);
        }
    }};
}

/// The warnings of a run: each is printed on stderr the moment it is raised
/// (so a text-mode user sees it even if the run stops later), and kept for
/// `--json` and the bug report, so that both say what the terminal said.
#[derive(Debug, Default, Clone, Serialize)]
#[serde(transparent)]
pub struct Warnings(Vec<String>);

impl Warnings {
    pub fn new() -> Warnings {
        Warnings::default()
    }

    /// Prints `message` as a warning and keeps it.
    pub fn raise(&mut self, message: impl Into<String>) {
        let message = message.into();
        warn!("{message}");
        self.0.push(message);
    }

    /// Keeps `message` without printing it: for a warning already printed
    /// (by a child run, or by a layer that only prints).
    pub fn keep(&mut self, message: impl Into<String>) {
        self.0.push(message.into());
    }
}

/// The version of the JSON vocabulary (`docs/json.md`): keys may be added
/// within it, never renamed or given another meaning.
pub const JSON_SCHEMA: u32 = 1;

/// A command's JSON object with `"schema"` as its first key.
#[derive(Serialize)]
struct Versioned<'a, T: ?Sized> {
    schema: u32,
    #[serde(flatten)]
    object: &'a T,
}

/// `value` (a struct: its keys go beside `schema`) as pretty JSON.
pub fn json_text<T: serde::Serialize + ?Sized>(value: &T) -> crate::error::Result<String> {
    serde_json::to_string_pretty(&Versioned {
        schema: JSON_SCHEMA,
        object: value,
    })
    .map_err(|error| crate::error::Error::Encode(error.to_string()))
}

/// Prints a command's object as pretty JSON on stdout, for `--json`.
pub fn print_json<T: serde::Serialize + ?Sized>(value: &T) -> crate::error::Result<()> {
    let text = json_text(value)?;
    outln!("{text}");
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn no_colour_off_a_terminal() {
        // Tests run with stderr captured: never a terminal.
        assert_eq!(super::alarm("DEADLOCK"), "DEADLOCK");
    }

    #[test]
    fn schema_comes_first() {
        #[derive(serde::Serialize)]
        struct Object {
            pid: u32,
        }
        let text = super::json_text(&Object { pid: 7 }).unwrap();
        assert_eq!(text, "{\n  \"schema\": 1,\n  \"pid\": 7\n}");
    }
}
