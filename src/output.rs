//! Printing that never panics.
//!
//! `println!` panics when stdout is a closed pipe (`wazo-astdebug runbooks |
//! head`), and `eprintln!` when stderr is gone (a dropped SSH session). A
//! panic in the middle of a procedure would skip the restore of the apt
//! mirror, so everything the tool prints goes through these macros, which
//! drop what cannot be written.

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
