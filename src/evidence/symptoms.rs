//! The freeze symptoms the doc lists, checked with a time limit each.
//!
//! "service asterisk status says running", "core show channels returns only
//! headers": on a frozen Asterisk the CLI itself can hang forever, so every
//! `asterisk -rx` runs under a timeout, and a timeout is recorded as what it
//! is, the strongest symptom of all.

use std::time::Duration;

use serde::Serialize;

use crate::engine::child::{self, Streams};
use crate::engine::command::Cmd;
use crate::engine::interrupt::Interrupt;
use crate::error::{Error, Result};

/// What one check saw.
#[derive(Debug, Clone, Serialize)]
pub struct Symptom {
    pub check: String,
    pub command: String,
    /// `ok`, `freeze`, `down` or `unknown`.
    pub verdict: String,
    pub detail: String,
}

/// The outcome of `asterisk -rx COMMAND`.
#[derive(Debug, Clone)]
pub enum CliAnswer {
    Output(Vec<String>),
    /// No answer in time: the CLI thread is stuck.
    Timeout,
    /// The command could not run, or failed (Asterisk down, not installed).
    Failed(String),
}

/// Runs `asterisk -rx COMMAND` with a time limit.
pub fn asterisk_rx(command: &str, timeout: Duration, interrupt: &Interrupt) -> Result<CliAnswer> {
    let cmd = Cmd::new(["asterisk", "-rx", command]).timeout(timeout);
    errln!("+ {cmd}");
    let mut lines = Vec::new();
    let status = child::run_lines(&cmd, Some(interrupt), Streams::Merged, &mut |_, line| {
        lines.push(line)
    });
    match status {
        Ok(status) if status.success() => Ok(CliAnswer::Output(lines)),
        Ok(status) => Ok(CliAnswer::Failed(format!(
            "{}{}",
            child::describe_status(status),
            lines
                .first()
                .map(|line| format!(": {line}"))
                .unwrap_or_default()
        ))),
        Err(Error::Timeout { .. }) => Ok(CliAnswer::Timeout),
        Err(Error::Interrupted) => Err(Error::Interrupted),
        Err(error) => Ok(CliAnswer::Failed(error.to_string())),
    }
}

/// Is the service running? `systemctl is-active asterisk`, else `service asterisk status`.
pub fn service_status(timeout: Duration, interrupt: &Interrupt) -> Result<Symptom> {
    let candidates = [
        Cmd::new(["systemctl", "is-active", "asterisk"]),
        Cmd::new(["service", "asterisk", "status"]),
    ];
    for cmd in candidates {
        if which::which(cmd.program()).is_err() {
            continue;
        }
        let cmd = cmd.timeout(timeout);
        errln!("+ {cmd}");
        let mut lines = Vec::new();
        let status = child::run_lines(&cmd, Some(interrupt), Streams::Merged, &mut |_, line| {
            lines.push(line)
        });
        // A container or chroot without systemd: ask `service` instead.
        if lines
            .iter()
            .any(|line| line.contains("has not been booted with systemd"))
        {
            continue;
        }
        let (verdict, detail) = match status {
            Ok(status) if status.success() => ("ok", format!("running ({})", first(&lines))),
            Ok(_) => ("down", format!("not running ({})", first(&lines))),
            Err(Error::Interrupted) => return Err(Error::Interrupted),
            Err(Error::Timeout { .. }) => (
                "freeze",
                format!("no answer within {} s", timeout.as_secs()),
            ),
            Err(error) => ("unknown", error.to_string()),
        };
        return Ok(Symptom {
            check: "service".to_string(),
            command: cmd.to_string(),
            verdict: verdict.to_string(),
            detail,
        });
    }
    Ok(Symptom {
        check: "service".to_string(),
        command: "systemctl is-active asterisk".to_string(),
        verdict: "unknown".to_string(),
        detail: "neither systemctl nor service is installed".to_string(),
    })
}

fn first(lines: &[String]) -> String {
    lines.first().cloned().unwrap_or_default()
}

/// The doc's symptom: `core show channels` "returns only headers", or nothing in time.
pub fn judge_channels(answer: &CliAnswer, timeout: Duration) -> Symptom {
    let (verdict, detail) = match answer {
        CliAnswer::Timeout => (
            "freeze",
            format!(
                "no answer within {} s: the CLI is stuck, a freeze symptom",
                timeout.as_secs()
            ),
        ),
        CliAnswer::Failed(why) => ("unknown", format!("could not ask Asterisk: {why}")),
        CliAnswer::Output(lines) => match channel_count(lines) {
            // A complete answer (its footer came) means the channel list was
            // readable: an idle PBX, not a frozen one, which hangs after the headers.
            Some(0) => (
                "idle",
                "answered, no active channel: the PBX is idle, or calls do not reach it"
                    .to_string(),
            ),
            Some(count) => ("ok", format!("{count} active channels")),
            None if lines.iter().all(|line| line.trim().is_empty()) => {
                ("freeze", "an empty answer: a freeze symptom".to_string())
            }
            None if lines.iter().any(|line| line.starts_with("Channel ")) => (
                "freeze",
                "only headers, and no count line: a freeze symptom".to_string(),
            ),
            None => ("unknown", format!("unexpected answer: {}", first(lines))),
        },
    };
    Symptom {
        check: "channels".to_string(),
        command: "asterisk -rx 'core show channels'".to_string(),
        verdict: verdict.to_string(),
        detail,
    }
}

/// `N active channels` from the footer of `core show channels`.
fn channel_count(lines: &[String]) -> Option<u64> {
    lines.iter().find_map(|line| {
        let rest = line
            .trim()
            .strip_suffix("active channels")
            .or_else(|| line.trim().strip_suffix("active channel"))?;
        rest.trim().parse().ok()
    })
}

/// `core show locks` exists only in builds with DEBUG_THREADS.
pub fn lacks_debug_threads(lines: &[String]) -> bool {
    lines
        .iter()
        .any(|line| line.contains("No such command") && line.contains("core show locks"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(text: &str) -> CliAnswer {
        CliAnswer::Output(text.lines().map(str::to_string).collect())
    }

    #[test]
    fn judges_channels() {
        let timeout = Duration::from_secs(10);
        let headers = "Channel              Location             State   Application(Data)\n0 active channels\n0 active calls\n3 calls processed\n";
        assert_eq!(judge_channels(&output(headers), timeout).verdict, "idle");
        let cut = "Channel              Location             State   Application(Data)\n";
        assert_eq!(judge_channels(&output(cut), timeout).verdict, "freeze");
        let busy = "Channel  Location  State  Application(Data)\nPJSIP/a-0001 s@default:1 Up Dial\n1 active channel\n1 active call\n";
        assert_eq!(judge_channels(&output(busy), timeout).verdict, "ok");
        assert_eq!(
            judge_channels(&CliAnswer::Timeout, timeout).verdict,
            "freeze"
        );
        assert_eq!(
            judge_channels(&CliAnswer::Failed("x".into()), timeout).verdict,
            "unknown"
        );
    }

    #[test]
    fn spots_a_build_without_debug_threads() {
        assert!(lacks_debug_threads(&["No such command 'core show locks' (type 'core show help core show' for other possible commands)".to_string()]));
        assert!(!lacks_debug_threads(&[
            "=== Currently Held Locks ===".to_string()
        ]));
    }
}

#[cfg(test)]
mod fuzz_tests;
