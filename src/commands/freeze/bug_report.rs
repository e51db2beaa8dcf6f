//! The bug report of a freeze: symptoms, the lock analysis in words, where
//! the threads are, and what each attachment is.

use std::path::{Path, PathBuf};

use chrono::Local;

use crate::context::Context;
use crate::evidence::bugreport::BugReport;
use crate::evidence::symptoms::Symptom;
use crate::gdb::threads::{self, StackGroup};
use crate::host::asterisk;
use crate::host::version;

/// Stack groups shown in the text summary.
pub const GROUPS_SHOWN: usize = 5;
/// Frames named per group.
pub const GROUP_DEPTH: usize = 4;

pub fn bug_report(
    context: &Context,
    version: Option<version::Pending>,
    symptoms_seen: &[Symptom],
    summary: &str,
    groups: &[StackGroup],
    artefacts: &[PathBuf],
    core: Option<&Path>,
) -> BugReport {
    let version = version
        .unwrap_or_else(|| {
            version::Pending::start(&context.host, context.opts.wazo_version.as_deref())
        })
        .wait()
        .unwrap_or_else(|| "unknown".to_string());
    let mut findings = Vec::new();
    if !symptoms_seen.is_empty() {
        let lines: Vec<String> = symptoms_seen
            .iter()
            .map(|symptom| format!("- `{}`: {}", symptom.command, symptom.detail))
            .collect();
        findings.push(format!("Symptoms:\n\n{}", lines.join("\n")));
    }
    findings.push(format!(
        "Lock analysis:\n\n```\n{}\n```",
        summary.trim_end()
    ));
    if !groups.is_empty() {
        let lines: Vec<String> = groups
            .iter()
            .take(GROUPS_SHOWN)
            .map(|group| format!("- {}", threads::describe_group(group, GROUP_DEPTH)))
            .collect();
        findings.push(format!("Where the threads are:\n\n{}", lines.join("\n")));
    }
    let attachments = artefacts
        .iter()
        .filter_map(|path| path.file_name())
        .map(|name| {
            let name = name.to_string_lossy().to_string();
            let what = describe_artefact(&name);
            (name, what)
        })
        .collect();
    BugReport {
        subject: "Asterisk Freeze".to_string(),
        version,
        asterisk: asterisk::installed_version(&context.host),
        incident: Local::now()
            .format("%Y-%m-%d %H:%M:%S %:z (when the evidence was taken)")
            .to_string(),
        findings,
        attachments,
        cores: core
            .map(|core| core.display().to_string())
            .into_iter()
            .collect(),
    }
}

fn describe_artefact(name: &str) -> String {
    match name {
        "bt-threads.txt" => "gdb `thread apply all bt`",
        "bt-full.txt" => {
            "gdb `thread apply all bt full` (the core's locals, redacted in the bundle)"
        }
        "threads-log.txt" => "the log lines of the deadlocked threads and top lock holders, by LWP",
        "core-show-locks.txt" => "`asterisk -rx 'core show locks'`",
        "core-show-channels.txt" => "`asterisk -rx 'core show channels'`",
        "core-show-taskprocessors.txt" => "`asterisk -rx 'core show taskprocessors'`",
        "graph-locks.dot" | "graph-locks.svg" => "the lock wait-for graph",
        "samples.txt" => "the /proc samples compared (`--samples`): frozen, or only slow",
        _ if name.starts_with("asterisk-full-last") => "the Asterisk log just before the freeze",
        _ => "",
    }
    .to_string()
}
