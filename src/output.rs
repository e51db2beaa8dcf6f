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

/// `--quiet`: commands, warnings and results only.
pub const QUIET: u8 = 0;
pub const NORMAL: u8 = 1;
/// `--verbose`: every line commands print, instead of a spinner.
pub const VERBOSE: u8 = 2;

static VERBOSITY: AtomicU8 = AtomicU8::new(NORMAL);

pub fn set_verbosity(level: u8) {
    VERBOSITY.store(level, Ordering::Relaxed);
}

pub fn verbosity() -> u8 {
    VERBOSITY.load(Ordering::Relaxed)
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
        if $crate::output::verbosity() > $crate::output::QUIET {
            errln!($($arg)*);
        }
    }};
}

/// Prints `value` as pretty JSON on stdout, for `--json`.
pub fn print_json<T: serde::Serialize + ?Sized>(value: &T) -> crate::error::Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|error| {
        crate::error::Error::bad_input(format!("cannot encode the output as JSON: {error}"))
    })?;
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
}
