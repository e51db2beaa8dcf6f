//! A command to run: an argv, never a string for a shell to split.

use std::fmt;
use std::time::Duration;

use crate::shell;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    argv: Vec<String>,
    /// Needs the user's terminal (e.g. apt-get asking "Do you want to continue?").
    interactive: bool,
    /// Stopped, and reported as a timeout, after this long.
    timeout: Option<Duration>,
}

impl Cmd {
    pub fn new<I, S>(argv: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Cmd {
            argv: argv.into_iter().map(Into::into).collect(),
            interactive: false,
            timeout: None,
        }
    }

    pub fn interactive(mut self, interactive: bool) -> Cmd {
        self.interactive = interactive;
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Cmd {
        self.timeout = Some(timeout);
        self
    }

    pub fn program(&self) -> &str {
        self.argv.first().map(String::as_str).unwrap_or_default()
    }

    pub fn args(&self) -> &[String] {
        self.argv.get(1..).unwrap_or_default()
    }

    pub fn is_interactive(&self) -> bool {
        self.interactive
    }

    pub fn time_limit(&self) -> Option<Duration> {
        self.timeout
    }
}

impl fmt::Display for Cmd {
    /// The command as a POSIX sh line that means exactly this argv.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&shell::join(&self.argv))
    }
}
