//! A procedure as data: the steps a command will take, built before anything
//! runs.
//!
//! The same plan is shown to the user before the confirmation prompt, printed
//! by `--dry-run` as a POSIX sh script, and walked by the executor. Showing,
//! dry-running and doing cannot drift apart because they read one list.

use std::path::PathBuf;

use crate::engine::command::Cmd;
use crate::engine::edit::FileEdit;
use crate::engine::shell;
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
}

#[derive(Debug, Clone, Default)]
pub struct Plan {
    steps: Vec<Step>,
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

    pub fn steps(&self) -> &[Step] {
        &self.steps
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
                Step::Note(_) | Step::Undo | Step::Edit(_) => {}
            }
        }
        commands
    }

    /// How many commands run on the success path.
    pub fn command_count(&self) -> usize {
        self.script_lines()
            .iter()
            .filter(|line| !line.starts_with('#'))
            .count()
    }

    /// The plan as a POSIX sh script: commands one per line, in execution
    /// order, cleanup included; everything else is a `#` comment.
    pub fn script(&self, header: &str) -> String {
        let mut out = String::from("#!/bin/sh\n");
        if !header.is_empty() {
            out.push_str(&shell::comment(header));
            out.push('\n');
        }
        for line in self.script_lines() {
            out.push_str(&line);
            out.push('\n');
        }
        out
    }

    fn script_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        let mut pending: Vec<&[Cmd]> = Vec::new();
        for step in &self.steps {
            match step {
                Step::Note(text) => lines.push(shell::comment(text)),
                // The rewrite is done in-process; the script says what it does.
                Step::Edit(edit) => lines.push(shell::comment(&format!(
                    "wazo-astdebug edits {}: {}",
                    edit.path().display(),
                    edit.description()
                ))),
                Step::Run(cmd) => lines.push(cmd.to_string()),
                Step::Guarded { run, undo, .. } => {
                    lines.push(run.to_string());
                    let undo_text: Vec<String> =
                        undo.iter().map(|cmd| format!("`{cmd}`")).collect();
                    lines.push(shell::comment(&format!(
                        "From here on, {} will run even if a step fails or is interrupted.",
                        undo_text.join(" then ")
                    )));
                    pending.push(undo);
                }
                Step::Undo => {
                    if let Some(undo) = pending.pop() {
                        lines.extend(undo.iter().map(ToString::to_string));
                    }
                }
            }
        }
        // Undo that the plan never releases still runs at the end.
        while let Some(undo) = pending.pop() {
            lines.extend(undo.iter().map(ToString::to_string));
        }
        lines
            .into_iter()
            .flat_map(|block| block.lines().map(str::to_string).collect::<Vec<_>>())
            .collect()
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
mod tests {
    use super::*;

    #[test]
    fn script_lists_cleanup_in_execution_order() {
        let mut plan = Plan::new();
        plan.note("switch")
            .guarded(
                Cmd::new(["dist", "-a", "x"]),
                vec![
                    Cmd::new(["dist", "-m", "p"]),
                    Cmd::new(["apt-get", "update"]),
                ],
            )
            .run(Cmd::new(["apt-get", "install", "it's"]))
            .undo();
        let script = plan.script("header\nline two");
        assert_eq!(
            script,
            "#!/bin/sh\n# header\n# line two\n# switch\ndist -a x\n\
             # From here on, `dist -m p` then `apt-get update` will run even if a step fails or is interrupted.\n\
             apt-get install 'it'\\''s'\ndist -m p\napt-get update\n"
        );
        assert_eq!(plan.command_count(), 4);
        assert_eq!(plan.commands().len(), 4);
    }

    #[test]
    fn unreleased_undo_is_still_in_the_script() {
        let mut plan = Plan::new();
        plan.guarded(Cmd::new(["a"]), vec![Cmd::new(["b"])])
            .run(Cmd::new(["c"]));
        assert!(plan.script("").ends_with(
            "a\n# From here on, `b` will run even if a step fails or is interrupted.\nc\nb\n"
        ));
    }
}
