//! A command to run: an argv, never a string for a shell to split.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::engine::shell;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    argv: Vec<String>,
    /// Needs the user's terminal (e.g. apt-get asking "Do you want to continue?").
    interactive: bool,
    /// Stopped, and reported as a timeout, after this long.
    timeout: Option<Duration>,
    /// Runs in this directory (`apt-get source` unpacks where it runs).
    dir: Option<PathBuf>,
    /// Stopped with SIGKILL alone, never a gentler signal first: gdb passes
    /// a SIGINT on to the process it is attached to, and Asterisk takes
    /// SIGINT as "shut down".
    kill_only: bool,
    /// Set in its environment (`watch --on-freeze` tells its command where
    /// the evidence is). Not shown in the sh line: nothing that prints a
    /// script sets any.
    env: Vec<(String, String)>,
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
            dir: None,
            kill_only: false,
            env: Vec::new(),
        }
    }

    /// Stop it with SIGKILL only (see the field).
    pub fn kill_only(mut self) -> Cmd {
        self.kill_only = true;
        self
    }

    pub fn is_kill_only(&self) -> bool {
        self.kill_only
    }

    /// Sets `key` to `value` in its environment.
    pub fn env(mut self, key: &str, value: &str) -> Cmd {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    pub fn envs(&self) -> &[(String, String)] {
        &self.env
    }

    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Cmd {
        self.dir = Some(dir.into());
        self
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
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

    /// The whole argv, as the journal keeps it.
    pub fn argv(&self) -> Vec<String> {
        self.argv.clone()
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
        match &self.dir {
            // A subshell, so that the `cd` does not leak into the next line of a script.
            Some(dir) => write!(
                f,
                "(cd {} && {})",
                shell::quote(&dir.to_string_lossy()),
                shell::join(&self.argv)
            ),
            None => f.write_str(&shell::join(&self.argv)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_working_directory_is_a_subshell_in_scripts() {
        let cmd = Cmd::new(["apt-get", "source", "asterisk"]).current_dir("/root/ast rebuild");
        assert_eq!(
            cmd.to_string(),
            "(cd '/root/ast rebuild' && apt-get source asterisk)"
        );
        assert_eq!(cmd.program(), "apt-get");
    }
}
