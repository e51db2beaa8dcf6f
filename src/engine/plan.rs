//! A procedure as data: the steps a command will take, built before anything
//! runs.
//!
//! The same plan is shown to the user before the confirmation prompt, printed
//! by `--dry-run` as a POSIX sh script, and walked by the executor. Showing,
//! dry-running and doing cannot drift apart because they read one list.

use std::path::{Path, PathBuf};

use crate::engine::command::Cmd;
use crate::engine::edit::FileEdit;
use crate::engine::script::{self, Vars};
use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub enum Step {
    /// An explanation: a `#` comment in the script.
    Note(String),
    /// A command that must succeed.
    Run(Cmd),
    /// A command that changes the system, and the commands that undo it.
    /// Once `run` succeeds, `undo` is guaranteed to run: at the matching
    /// [`Step::Undo`], or when a later step fails or is interrupted.
    /// `needs`: a path that exists only between `run` and the end of
    /// `undo` (a backup), telling `recover` whether there is anything to undo.
    Guarded {
        run: Cmd,
        undo: Vec<Cmd>,
        needs: Option<PathBuf>,
    },
    /// Runs the undo of the most recent [`Step::Guarded`] now (the success path).
    Undo,
    /// Rewrites a file in place, without an editor. Guard it with a backup
    /// first ([`crate::engine::backup::guarded_edit`]) when the file is the server's.
    Edit(FileEdit),
    /// A line of the script only, which the executor skips: it sets a
    /// shell variable the tool learns by itself when it runs (the source
    /// directory `apt-get source` made), so that the script can run too.
    Shell(String),
}

#[derive(Debug, Clone, Default)]
pub struct Plan {
    steps: Vec<Step>,
    /// Values at the top of the script that the user may have to fill in.
    vars: Vars,
    /// Directories the script creates first (the tool creates them itself).
    dirs: Vec<PathBuf>,
}

impl Plan {
    pub fn new() -> Plan {
        Plan::default()
    }

    pub fn note(&mut self, text: impl Into<String>) -> &mut Plan {
        self.steps.push(Step::Note(text.into()));
        self
    }

    pub fn run(&mut self, cmd: Cmd) -> &mut Plan {
        self.steps.push(Step::Run(cmd));
        self
    }

    pub fn guarded(&mut self, run: Cmd, undo: Vec<Cmd>) -> &mut Plan {
        self.steps.push(Step::Guarded {
            run,
            undo,
            needs: None,
        });
        self
    }

    /// A guarded step whose undo only applies while `needs` exists.
    pub fn guarded_while(&mut self, run: Cmd, undo: Vec<Cmd>, needs: PathBuf) -> &mut Plan {
        self.steps.push(Step::Guarded {
            run,
            undo,
            needs: Some(needs),
        });
        self
    }

    pub fn undo(&mut self) -> &mut Plan {
        self.steps.push(Step::Undo);
        self
    }

    pub fn edit(&mut self, edit: FileEdit) -> &mut Plan {
        self.steps.push(Step::Edit(edit));
        self
    }

    /// A script-only line (see [`Step::Shell`]).
    pub fn shell(&mut self, line: impl Into<String>) -> &mut Plan {
        self.steps.push(Step::Shell(line.into()));
        self
    }

    /// A value set at the top of the script as `NAME=${NAME:-value}`, under
    /// `what` (what to fill in); every word that starts with it uses `"$NAME"`.
    pub fn var(&mut self, name: &str, value: impl Into<String>, what: &str) -> &mut Plan {
        self.vars.push(name, value, what);
        self
    }

    /// A variable the script computes (see [`Vars::push_computed`]).
    pub fn var_computed(
        &mut self,
        name: &str,
        value: impl Into<String>,
        init: &str,
        what: &str,
    ) -> &mut Plan {
        self.vars.push_computed(name, value, init, what);
        self
    }

    /// A directory the script makes before its first step (`mkdir -p`).
    pub fn creates(&mut self, dir: impl AsRef<Path>) -> &mut Plan {
        self.dirs.push(dir.as_ref().to_path_buf());
        self
    }

    /// Appends the steps of `other` (its variables and directories too).
    pub fn append(&mut self, other: Plan) -> &mut Plan {
        self.steps.extend(other.steps);
        self.vars.extend(other.vars);
        self.dirs.extend(other.dirs);
        self
    }

    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    pub fn vars(&self) -> &Vars {
        &self.vars
    }

    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// Every command the plan may run, cleanup included, in plan order.
    pub fn commands(&self) -> Vec<&Cmd> {
        let mut commands = Vec::new();
        for step in &self.steps {
            match step {
                Step::Run(cmd) => commands.push(cmd),
                Step::Guarded { run, undo, .. } => {
                    commands.push(run);
                    commands.extend(undo);
                }
                Step::Note(_) | Step::Undo | Step::Edit(_) | Step::Shell(_) => {}
            }
        }
        commands
    }

    /// How many commands run on the success path.
    pub fn command_count(&self) -> usize {
        let mut pending: Vec<usize> = Vec::new();
        let mut count = 0;
        for step in &self.steps {
            match step {
                Step::Run(_) | Step::Edit(_) => count += 1,
                Step::Guarded { undo, .. } => {
                    count += 1;
                    pending.push(undo.len());
                }
                Step::Undo => count += pending.pop().unwrap_or(0),
                Step::Note(_) | Step::Shell(_) => {}
            }
        }
        count + pending.iter().sum::<usize>()
    }

    /// The plan as a POSIX sh script that runs as the tool would (see
    /// [`crate::engine::script`]): commands in execution order, the undo of
    /// each guarded step in an EXIT trap; everything else a `#` comment.
    pub fn script(&self, header: &str) -> String {
        script::render(self, header)
    }

    /// The plan as shown before the prompt (see [`script::listing`]).
    pub fn listing(&self, header: &str) -> String {
        script::listing(self, header)
    }
}

/// The header, plus the programs of the plan that this machine lacks.
pub fn with_missing(mut header: String, plan: &Plan) -> String {
    let missing = missing_tools(plan, &[]);
    if !missing.is_empty() {
        header.push_str(&format!(
            "\nWarning: not found on this machine's PATH: {}.",
            missing.join(", ")
        ));
    }
    header
}

/// Fails before anything runs when a program of the plan is not installed.
pub fn fail_on_missing(plan: &Plan, what: &str) -> Result<()> {
    match missing_tools(plan, &[]).into_iter().next() {
        Some(program) => Err(Error::MissingTool {
            program,
            hint: format!("{what} needs it before it can change anything; nothing was run"),
        }),
        None => Ok(()),
    }
}

/// The programs of the plan, and `also`, that are not on this machine's PATH.
pub fn missing_tools(plan: &Plan, also: &[&str]) -> Vec<String> {
    let extra: Vec<Cmd> = also.iter().map(|program| Cmd::new([*program])).collect();
    let mut missing: Vec<String> = plan
        .commands()
        .into_iter()
        .chain(&extra)
        .map(|cmd| cmd.program().to_string())
        .filter(|program| which::which(program).is_err())
        .collect();
    missing.sort();
    missing.dedup();
    missing
}

#[cfg(test)]
mod tests;
