//! threads-log.txt: the last lines Asterisk's log has from each deadlocked
//! thread and from the holders of the most-waited locks, by LWP, and the
//! last few of them in the summary.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, FixedOffset, Local};

use crate::context::Context;
use crate::error::{Error, Result};
use crate::evidence::astlog;
use crate::evidence::thread_log::{self, Window};
use crate::host::sys::create_private;
use crate::locks::focus::{self, Focus};
use crate::locks::graph::{Analysis, LockGraph};

/// Threads whose last lines are shown in the summary, and lines each.
const SUMMARY_THREADS: usize = 6;
const SUMMARY_LINES: usize = 3;

/// What went into threads-log.txt, for the summary.
pub struct Followed {
    pub path: PathBuf,
    pub summary: String,
    pub warnings: Vec<String>,
}

/// The lines of the threads worth following into `out/threads-log.txt`;
/// `None` when no thread is worth following (no lock waited for).
pub fn follow(
    context: &Context,
    graph: &LockGraph,
    analysis: &Analysis,
    window: Window,
    per_thread: usize,
    out: &Path,
) -> Result<Option<Followed>> {
    let chosen: Vec<Focus> = focus::threads_to_follow(graph, analysis)
        .into_iter()
        .filter(|focus| focus.lwp.is_some())
        .collect();
    if chosen.is_empty() || per_thread == 0 {
        return Ok(None);
    }
    let lwps: Vec<u64> = chosen.iter().filter_map(|focus| focus.lwp).collect();
    let copies = astlog::copies(&context.host);
    let found = thread_log::last_lines(&copies, &lwps, per_thread, window);
    let path = out.join("threads-log.txt");
    let mut file = std::io::BufWriter::new(create_private(&path)?);
    let read: Vec<String> = found
        .read
        .iter()
        .map(|path| path.display().to_string())
        .collect();
    let mut text = format!(
        "# The last {per_thread} lines each of these threads logged, oldest first, found by \
         their LWP (`VERBOSE[LWP]`) in: {}\n",
        if read.is_empty() {
            format!(
                "nothing ({} has no log)",
                context.host.path(astlog::LOG_DIR).display()
            )
        } else {
            read.join(", ")
        }
    );
    text += &window_note(window);
    let mut summary = String::new();
    for (index, focus) in chosen.iter().enumerate() {
        let lines = focus
            .lwp
            .and_then(|lwp| found.lines.get(&lwp))
            .map(Vec::as_slice)
            .unwrap_or_default();
        let count = match lines.len() {
            1 => "1 line".to_string(),
            n => format!("{n} lines"),
        };
        text += &format!("\n== {}: {}; {count}\n", focus.label, focus.why);
        for line in lines {
            text += line;
            text.push('\n');
        }
        if index < SUMMARY_THREADS {
            summary += &format!("  {} ({}):\n", focus.label, focus.why);
            if lines.is_empty() {
                summary += "    (no line in the log)\n";
            }
            for line in &lines[lines.len().saturating_sub(SUMMARY_LINES)..] {
                summary += &format!("    {line}\n");
            }
        }
    }
    file.write_all(text.as_bytes())
        .and_then(|()| file.flush())
        .map_err(|error| Error::write(&path, error))?;
    Ok(Some(Followed {
        summary: format!(
            "Their last words in the log ({} has {per_thread} lines each):\n{summary}",
            path.display()
        ),
        path,
        warnings: found.warnings,
    }))
}

/// From when a live Asterisk started (lines before belong to an earlier
/// process that had the same LWPs), up to when a core was taken.
pub fn live_window(pid: u32) -> Window {
    Window {
        since: crate::host::sys::process_started(pid).map(local),
        until: None,
    }
}

pub fn core_window(core: &Path) -> Window {
    Window {
        since: None,
        until: std::fs::metadata(core)
            .and_then(|metadata| metadata.modified())
            .ok()
            .map(local),
    }
}

fn local(time: std::time::SystemTime) -> DateTime<FixedOffset> {
    DateTime::<Local>::from(time).fixed_offset()
}

fn window_note(window: Window) -> String {
    let mut note = String::new();
    if let Some(since) = window.since {
        note += &format!(
            "# Only lines since {} (when this Asterisk started: older lines with the same LWP are another thread's).\n",
            since.format("%Y-%m-%d %H:%M:%S %:z")
        );
    }
    if let Some(until) = window.until {
        note += &format!(
            "# Only lines up to {} (when the core was written: later lines are a new Asterisk's).\n",
            until.format("%Y-%m-%d %H:%M:%S %:z")
        );
    }
    note
}
