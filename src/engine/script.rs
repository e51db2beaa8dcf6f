//! A [`Plan`] as a POSIX sh script that really runs, for `--dry-run`.
//!
//! The script behaves as the tool's own run does: it stops at the first
//! failing step (`set -e`), and the undo of every guarded step that ran is
//! then run by its EXIT trap, also after Ctrl-C, a TERM or a hangup. Undo
//! steps ignore those signals while they run (stopping a half-done restore
//! is how servers end up half-changed), stop at their first failing command
//! and say what is left to run by hand, and the script then ends with exit 1.
//!
//! Values the machine could not give (no Asterisk binary on a laptop, a
//! source directory that exists only once `apt-get source` ran) are shell
//! variables set at the top, `NAME=${NAME:-value}`, with a comment saying
//! what to fill in; every word of a command that starts with one of those
//! values is written with the variable instead, so one edit at the top
//! changes every line.

use std::path::{Path, PathBuf};

use crate::engine::command::Cmd;
use crate::engine::plan::{Plan, Step};
use crate::engine::shell::{comment, quote};

/// A value the user may have to fill in at the top of a script.
#[derive(Debug, Clone)]
pub struct Var {
    pub name: String,
    pub value: String,
    /// What it is and what to put there.
    pub what: String,
    /// How the script computes it when not given, as raw sh
    /// (`$(cat /run/asterisk/asterisk.pid)`), instead of `value`; or `None`
    /// once set at the top, `Some("")` for a variable a later line sets.
    pub init: Option<String>,
}

/// The variables of a script, and how words are written with them.
#[derive(Debug, Clone, Default)]
pub struct Vars(Vec<Var>);

impl Vars {
    pub fn new() -> Vars {
        Vars::default()
    }

    pub fn push(&mut self, name: &str, value: impl Into<String>, what: &str) {
        self.0.push(Var {
            name: name.to_string(),
            value: value.into(),
            what: what.to_string(),
            init: None,
        });
    }

    /// A variable whose default is computed by the script (`init` is raw sh,
    /// trusted text of the tool), written for the words equal to `value`;
    /// with an empty `init`, a later line of the script sets it.
    pub fn push_computed(&mut self, name: &str, value: impl Into<String>, init: &str, what: &str) {
        self.0.push(Var {
            name: name.to_string(),
            value: value.into(),
            what: what.to_string(),
            init: Some(init.to_string()),
        });
    }

    pub fn extend(&mut self, other: Vars) {
        for var in other.0 {
            if !self.0.iter().any(|known| known.name == var.name) {
                self.0.push(var);
            }
        }
    }

    /// One word, with the longest variable value it starts with (whole, or
    /// followed by `/`), after an optional `--option=`, written as `"$NAME"`.
    pub fn word(&self, word: &str) -> String {
        let (prefix, value) = match word.split_once('=') {
            Some((key, value)) if key.starts_with('-') => (format!("{key}="), value),
            _ => (String::new(), word),
        };
        let best = self
            .0
            .iter()
            .filter(|var| {
                !var.value.is_empty()
                    && value.starts_with(&var.value)
                    && (value.len() == var.value.len() || value[var.value.len()..].starts_with('/'))
            })
            .max_by_key(|var| var.value.len());
        match best {
            Some(var) => {
                let rest = &value[var.value.len()..];
                let rest = if rest.is_empty() {
                    String::new()
                } else {
                    quote(rest)
                };
                format!("{}\"${}\"{rest}", quote_prefix(&prefix), var.name)
            }
            None => quote(word),
        }
    }

    pub fn path(&self, path: &Path) -> String {
        self.word(&path.to_string_lossy())
    }

    /// A command as a script line.
    pub fn cmd(&self, cmd: &Cmd) -> String {
        let argv: Vec<String> = std::iter::once(cmd.program())
            .chain(cmd.args().iter().map(String::as_str))
            .map(|word| self.word(word))
            .collect();
        match cmd.dir() {
            // A subshell, so that the `cd` does not leak into the next line.
            Some(dir) => format!("(cd {} && {})", self.path(dir), argv.join(" ")),
            None => argv.join(" "),
        }
    }

    /// The assignments, each under the comment saying what to fill in.
    fn assignments(&self) -> String {
        let mut out = String::new();
        for var in &self.0 {
            let init = match &var.init {
                None => quote(&var.value),
                Some(init) if init.is_empty() => continue,
                Some(init) => init.clone(),
            };
            out.push_str(&comment(&var.what));
            out.push('\n');
            out.push_str(&format!("{}=${{{}:-{init}}}\n", var.name, var.name));
        }
        out
    }
}

fn quote_prefix(prefix: &str) -> String {
    if prefix.is_empty() {
        String::new()
    } else {
        quote(prefix)
    }
}

/// The top of every script: `#!/bin/sh`, the header, `set -e`, the
/// variables, and the directories the script writes into.
pub fn preamble(header: &str, vars: &Vars, dirs: &[PathBuf]) -> String {
    let mut out = String::from("#!/bin/sh\n");
    if !header.is_empty() {
        out.push_str(&comment(header));
        out.push('\n');
    }
    out.push_str("# Stops at the first command that fails, as wazo-astdebug does.\nset -e\n");
    out.push_str(&vars.assignments());
    for dir in dirs {
        // The tool makes its output directory closed to other accounts: so does the script.
        out.push_str(&format!("mkdir -p -m 700 {}\n", vars.path(dir)));
    }
    out
}

const SIGNALS: &str = "\
# A failed undo command stops its block; what is left is said, to run by hand.
undo_failed() { cleanup_failed=1; echo 'wazo-astdebug: CLEANUP FAILED; the server is not back to how it was. Run by hand, as root:' >&2; printf '    %s\\n' \"$@\" >&2; }
# Ctrl-C, TERM and a hangup end the script through its EXIT trap, which puts things back.
on_signals() { trap 'exit 130' INT; trap 'exit 143' TERM; trap 'exit 129' HUP; }
cleanup_failed=0
on_signals
";

/// The whole script of `plan`.
pub fn render(plan: &Plan, header: &str) -> String {
    let vars = plan.vars();
    let mut out = preamble(header, vars, plan.dirs());
    let guarded = plan
        .steps()
        .iter()
        .any(|step| matches!(step, Step::Guarded { .. }));
    if guarded {
        out.push_str(SIGNALS);
    }
    let mut pending: Vec<String> = Vec::new();
    let mut count = 0;
    for step in plan.steps() {
        match step {
            Step::Note(text) => push(&mut out, &comment(text)),
            Step::Shell(line) => push(&mut out, line),
            Step::Edit(edit) => {
                push(
                    &mut out,
                    &comment(&format!(
                        "Edit {}: {}",
                        edit.path().display(),
                        edit.description()
                    )),
                );
                match edit.shell() {
                    Some(cmd) => push(&mut out, &vars.cmd(cmd)),
                    None => push(&mut out, "# (wazo-astdebug does this edit itself)"),
                }
            }
            Step::Run(cmd) => push(&mut out, &vars.cmd(cmd)),
            Step::Guarded { run, undo, .. } => {
                count += 1;
                let name = format!("undo_{count}");
                push(&mut out, &vars.cmd(run));
                let undo_text: Vec<String> = undo.iter().map(|cmd| vars.cmd(cmd)).collect();
                push(
                    &mut out,
                    &comment(&format!(
                        "From here on, {} will run even if a step fails or is interrupted.",
                        undo_text
                            .iter()
                            .map(|line| format!("`{line}`"))
                            .collect::<Vec<_>>()
                            .join(" then ")
                    )),
                );
                push(&mut out, &undo_function(&name, &undo_text));
                pending.push(name);
                push(&mut out, &exit_trap(&pending));
            }
            Step::Undo => {
                if let Some(name) = pending.pop() {
                    // Run first, then drop from the trap: an undo runs twice
                    // at worst (they are repeatable), never not at all.
                    push(&mut out, &name);
                    push(&mut out, &exit_trap(&pending));
                }
            }
        }
    }
    // Undo that the plan never releases still runs at the end.
    while let Some(name) = pending.pop() {
        push(&mut out, &name);
        push(&mut out, &exit_trap(&pending));
    }
    if guarded {
        out.push_str("exit \"$cleanup_failed\"\n");
    }
    out
}

/// The plan as shown before the confirmation prompt: its commands in
/// execution order, cleanup included, the rest `#` comments; without the
/// scaffolding that makes the `--dry-run` script run alone.
pub fn listing(plan: &Plan, header: &str) -> String {
    let vars = Vars::new();
    let mut out = String::new();
    if !header.is_empty() {
        push(&mut out, &comment(header));
    }
    let mut pending: Vec<&[Cmd]> = Vec::new();
    for step in plan.steps() {
        match step {
            Step::Note(text) => push(&mut out, &comment(text)),
            Step::Shell(_) => {}
            Step::Edit(edit) => push(
                &mut out,
                &comment(&format!(
                    "wazo-astdebug edits {}: {}",
                    edit.path().display(),
                    edit.description()
                )),
            ),
            Step::Run(cmd) => push(&mut out, &vars.cmd(cmd)),
            Step::Guarded { run, undo, .. } => {
                push(&mut out, &vars.cmd(run));
                let undo_text: Vec<String> = undo
                    .iter()
                    .map(|cmd| format!("`{}`", vars.cmd(cmd)))
                    .collect();
                push(
                    &mut out,
                    &comment(&format!(
                        "From here on, {} will run even if a step fails or is interrupted.",
                        undo_text.join(" then ")
                    )),
                );
                pending.push(undo);
            }
            Step::Undo => {
                for cmd in pending.pop().unwrap_or_default() {
                    push(&mut out, &vars.cmd(cmd));
                }
            }
        }
    }
    while let Some(undo) = pending.pop() {
        for cmd in undo {
            push(&mut out, &vars.cmd(cmd));
        }
    }
    out
}

fn push(out: &mut String, text: &str) {
    out.push_str(text);
    out.push('\n');
}

/// Runs `undo` to its end or its first failure, deaf to signals meanwhile.
fn undo_function(name: &str, undo: &[String]) -> String {
    let mut lines = vec![
        format!("{name}() {{"),
        "    trap '' INT TERM HUP".to_string(),
    ];
    for (index, line) in undo.iter().enumerate() {
        let left: Vec<String> = undo[index..].iter().map(|line| quote(line)).collect();
        lines.push(format!(
            "    {} ! {line}; then undo_failed {}",
            if index == 0 { "if" } else { "elif" },
            left.join(" ")
        ));
    }
    if !undo.is_empty() {
        lines.push("    fi".to_string());
    }
    lines.push("    on_signals".to_string());
    lines.push("}".to_string());
    lines.join("\n")
}

/// The EXIT trap that runs every pending undo, innermost first.
fn exit_trap(pending: &[String]) -> String {
    if pending.is_empty() {
        return "trap - EXIT".to_string();
    }
    let calls: Vec<&str> = pending.iter().rev().map(String::as_str).collect();
    format!(
        "trap 'status=$?; {}; [ \"$cleanup_failed\" = 0 ] || status=1; exit \"$status\"' EXIT",
        calls.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_under_a_variable_use_it() {
        let mut vars = Vars::new();
        vars.push("OUT", "/var/out", "the run directory");
        vars.push("BIN", "/usr/sbin/asterisk", "the binary");
        assert_eq!(vars.word("/var/out"), "\"$OUT\"");
        assert_eq!(vars.word("/var/out/bt.txt"), "\"$OUT\"/bt.txt");
        assert_eq!(vars.word("/var/out/a b"), "\"$OUT\"'/a b'");
        assert_eq!(vars.word("/var/outside"), "/var/outside");
        assert_eq!(vars.word("--log=/var/out/x"), "--log=\"$OUT\"/x");
        assert_eq!(vars.word("it's"), "'it'\\''s'");
    }

    #[test]
    fn the_preamble_sets_variables_and_makes_directories() {
        let mut vars = Vars::new();
        vars.push("OUT", "/var/out", "where it goes");
        let text = preamble("head", &vars, &[PathBuf::from("/var/out")]);
        assert_eq!(
            text,
            "#!/bin/sh\n# head\n# Stops at the first command that fails, as wazo-astdebug does.\n\
             set -e\n# where it goes\nOUT=${OUT:-/var/out}\nmkdir -p -m 700 \"$OUT\"\n"
        );
    }
}
