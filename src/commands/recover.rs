//! `recover`: put back what a killed run left half-changed.
//!
//! The executor's unwind covers failures and signals it can catch. The OOM
//! killer, `kill -9` or a power cut leave instead the journal of the undo
//! steps that had not run yet (see `engine::journal`), and maybe children
//! still running: an `apt-get` installing from the archive, valgrind with
//! Asterisk under it. `recover` names those children, shows the undo steps
//! as a script, asks once, stops the children, and runs the steps, innermost
//! first, with the same guarantees as any cleanup: never interrupted, each
//! taken out of the journal once it has run, a failure reported with the
//! commands left to run by hand.

use std::time::{Duration, Instant};

use clap::Args;

use crate::context::Context;
use crate::engine::command::Cmd;
use crate::engine::journal::{self, Journal, Orphan};
use crate::engine::plan::Plan;
use crate::error::Result;
use crate::host::sys::require_root;

/// How long the children of a killed run get to exit after SIGTERM.
const ORPHAN_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, Args)]
pub struct RecoverArgs {}

pub fn run(context: &Context, _args: &RecoverArgs) -> Result<()> {
    if !context.dry_run() {
        require_root("recover")?;
    }
    let state = if context.dry_run() {
        context.state_dir()
    } else {
        context.lock()?
    };
    let Some(left) = state.leftovers()? else {
        errln!(
            "Nothing to recover: no earlier run left anything to put back ({} holds no pending step).",
            state.path().display()
        );
        return Ok(());
    };
    let orphans = journal::orphans(&left.run);
    let plan = build_plan(&left, &orphans);
    let header = describe(&left, &orphans);
    if context.dry_run() {
        out!("{}", plan.script(&header));
        return Ok(());
    }
    err!("{}", plan.listing(&header));
    context.confirm(
        "recover",
        &format!(
            "Put back what the run of {} left ({} step(s){})?",
            left.started,
            left.pending.len(),
            if orphans.is_empty() {
                String::new()
            } else {
                format!(
                    ", after stopping {} process(es) it left running",
                    orphans.len()
                )
            }
        ),
    )?;
    stop_orphans(&orphans);
    let mut executor = context.recovery_executor(left.pending)?;
    executor.finish()?;
    if apt_was_cut(&orphans) {
        warn!(
            "an apt-get or dpkg of the killed run was stopped: run `dpkg --configure -a` and \
             `apt-get -f install` to finish what it left"
        );
    }
    errln!("\nDone: what the run of {} left is put back.", left.started);
    context.interrupt.check()
}

fn describe(left: &Journal, orphans: &[Orphan]) -> String {
    let mut lines = vec![
        "wazo-astdebug recover: put back what a killed run left".to_string(),
        format!(
            "Run: `{}`, pid {}, started {}; {} step(s) not undone.",
            left.command,
            left.pid,
            left.started,
            left.pending.len()
        ),
    ];
    if orphans.is_empty() {
        lines.push("None of the processes it started is still running.".to_string());
    } else {
        lines.push("Still running, started by that run (stopped first):".to_string());
        lines.extend(orphans.iter().map(|orphan| {
            format!(
                "  pid {} (group {}): {}",
                orphan.pid, orphan.group, orphan.command
            )
        }));
    }
    lines.join("\n")
}

/// The undo steps, innermost first, as the script `--dry-run` prints.
fn build_plan(left: &Journal, orphans: &[Orphan]) -> Plan {
    let mut plan = Plan::new();
    let mut targets: Vec<String> = orphans.iter().map(target).collect();
    targets.dedup();
    if !targets.is_empty() {
        plan.note("Stop what the killed run left running (SIGKILL after 10 s if need be).");
        for target in targets {
            plan.run(Cmd::new(["kill", "-TERM", "--", &target]));
        }
    }
    for entry in left.pending.iter().rev() {
        match &entry.needs {
            Some(path) => plan.note(format!(
                "Undo `{}` (only if {} is still there):",
                entry.after,
                path.display()
            )),
            None => plan.note(format!("Undo `{}`:", entry.after)),
        };
        for cmd in entry.commands() {
            plan.run(cmd);
        }
    }
    plan
}

/// What a signal goes to: the group of a child that leads its own (what it
/// started goes with it), else the process alone (valgrind shares the group
/// of the killed tool, which may hold the rest of the user's shell job).
fn target(orphan: &Orphan) -> String {
    if orphan.pid == orphan.group {
        format!("-{}", orphan.group)
    } else {
        orphan.pid.to_string()
    }
}

/// SIGTERM to each orphan, then SIGKILL to what is left.
fn stop_orphans(orphans: &[Orphan]) {
    let alive = |orphan: &Orphan| std::path::Path::new(&format!("/proc/{}", orphan.pid)).exists();
    let signal = |orphan: &Orphan, signal: i32| {
        let target = if orphan.pid == orphan.group {
            -orphan.group
        } else {
            orphan.pid
        };
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe {
            libc::kill(target, signal);
        }
    };
    for orphan in orphans {
        errln!("+ kill -TERM -- {}  ({})", target(orphan), orphan.command);
        signal(orphan, libc::SIGTERM);
    }
    let deadline = Instant::now() + ORPHAN_GRACE;
    while orphans.iter().any(alive) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    for orphan in orphans.iter().filter(|orphan| alive(orphan)) {
        errln!("+ kill -KILL -- {}  (it did not stop)", target(orphan));
        signal(orphan, libc::SIGKILL);
    }
}

fn apt_was_cut(orphans: &[Orphan]) -> bool {
    orphans.iter().any(|orphan| {
        let program = orphan.command.split_whitespace().next().unwrap_or_default();
        let name = program.rsplit('/').next().unwrap_or_default();
        matches!(name, "apt-get" | "apt" | "dpkg")
    })
}
