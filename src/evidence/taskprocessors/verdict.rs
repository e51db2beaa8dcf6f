//! Which taskprocessors a freeze report names, who serves each, and what
//! each statement rests on.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Listing, QueueWarning, Row};
use crate::gdb::threads::Thread;

/// A queue this long is named even below its high water mark: on a PBX that
/// answers, queues drain in milliseconds.
const LARGE_QUEUE: u64 = 100;
/// Taskprocessors shown in the text; the JSON has them all.
const SHOWN: usize = 10;

/// One taskprocessor the report names.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub name: String,
    /// Queued when asked (null: not asked, or not listed).
    pub in_queue: Option<u64>,
    pub max_depth: Option<u64>,
    pub high_water: Option<i64>,
    /// The most the log's warnings say the queue reached in the window.
    pub log_reached: Option<u64>,
    /// The thread inside `ast_taskprocessor_execute` for it, when one is found.
    pub served_by_lwp: Option<i64>,
    pub rests_on: String,
}

/// The taskprocessor part of a freeze report.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub text: String,
    pub queues: Vec<Verdict>,
}

/// A thread found running a task of a named taskprocessor.
struct Server<'a> {
    thread: &'a Thread,
    how: &'static str,
}

/// The taskprocessor each thread inside `ast_taskprocessor_execute` runs a
/// task of, keyed by name. Without symbols, memory only says which of the
/// `known` names (from the CLI and the log) it holds.
fn servers<'a>(threads: &'a [Thread], known: &[String]) -> BTreeMap<String, Vec<Server<'a>>> {
    let mut by_name: BTreeMap<String, Vec<Server>> = BTreeMap::new();
    for thread in threads {
        let Some(task) = &thread.task else { continue };
        let claim = if let Some(name) = task.name.as_ref().filter(|name| !name.is_empty()) {
            Some((
                name.clone(),
                "gdb read `tps->name` in its ast_taskprocessor_execute frame (debug symbols)",
            ))
        } else {
            let names = |own_only: bool| {
                let mut names: Vec<&String> = task
                    .candidates
                    .iter()
                    .filter(|candidate| candidate.holds_self || !own_only)
                    .flat_map(|candidate| candidate.strings.iter())
                    .filter(|string| known.contains(string))
                    .collect();
                names.sort();
                names.dedup();
                names
            };
            let (own, any) = (names(true), names(false));
            match (own.as_slice(), any.as_slice()) {
                ([name], _) => Some((
                    (*name).clone(),
                    "the memory its ast_taskprocessor_execute frame points to holds this \
                     taskprocessor's name and this thread's own id, as Asterisk sets it \
                     while a task runs (read without symbols)",
                )),
                ([], [name]) => Some((
                    (*name).clone(),
                    "the memory its ast_taskprocessor_execute frame points to holds this \
                     name (without the thread's id: a weaker sign)",
                )),
                _ => None,
            }
        };
        if let Some((name, how)) = claim {
            by_name
                .entry(name)
                .or_default()
                .push(Server { thread, how });
        }
    }
    by_name
}

/// Where a serving thread is: the frame inside its task, and the lock it waits for.
fn doing(thread: &Thread) -> String {
    let mut said = thread.label();
    let task_frame = thread
        .task
        .as_ref()
        .and_then(|task| task.frame.checked_sub(1))
        .and_then(|frame| thread.frames.get(..=frame))
        .and_then(|frames| frames.iter().rev().find(|frame| !frame.in_libc()));
    if let Some(frame) = task_frame {
        said.push_str(&format!(", in the task {}", frame.short()));
    }
    if let Some(wait) = &thread.waits {
        said.push_str(&format!(", blocked on a {}", wait.kind));
    }
    said
}

/// The report: the taskprocessors whose queue is large or warned about in
/// the window, largest first. `gdb`: the threads gdb read, when it ran.
/// `window`: the log window in words ("the last 10 min").
pub fn judge(
    listing: &Listing,
    warnings: &[QueueWarning],
    gdb: Option<&[Thread]>,
    window: &str,
) -> Report {
    let rows: &[Row] = match listing {
        Listing::Listed(table) => &table.rows,
        _ => &[],
    };
    // The names memory is matched against: the CLI's, and the log's (all a
    // core has).
    let known: Vec<String> = rows
        .iter()
        .map(|row| row.name.clone())
        .chain(warnings.iter().map(|warning| warning.name.clone()))
        .collect();
    let served = gdb
        .map(|threads| servers(threads, &known))
        .unwrap_or_default();
    let mut warned: BTreeMap<&str, Vec<&QueueWarning>> = BTreeMap::new();
    for warning in warnings {
        warned.entry(&warning.name).or_default().push(warning);
    }
    let mut names: Vec<&str> = rows
        .iter()
        .filter(|row| {
            let threshold = row
                .high_water
                .and_then(|high| u64::try_from(high).ok())
                .filter(|high| *high > 0)
                .map_or(LARGE_QUEUE, |high| high.min(LARGE_QUEUE));
            row.in_queue >= threshold
        })
        .map(|row| row.name.as_str())
        .collect();
    for name in warned.keys() {
        if !names.contains(name) {
            names.push(name);
        }
    }
    let mut queues: Vec<Verdict> = names
        .into_iter()
        .map(|name| {
            verdict(
                name,
                rows.iter().find(|row| row.name == name),
                warned.get(name).map(Vec::as_slice).unwrap_or_default(),
                served.get(name).map(Vec::as_slice),
                gdb.is_some(),
            )
        })
        .collect();
    queues.sort_by_key(|queue| {
        std::cmp::Reverse(
            queue
                .in_queue
                .unwrap_or(0)
                .max(queue.log_reached.unwrap_or(0)),
        )
    });
    let text = text(listing, &queues, warnings, window);
    Report { text, queues }
}

fn verdict(
    name: &str,
    row: Option<&Row>,
    warned: &[&QueueWarning],
    served: Option<&[Server]>,
    gdb_ran: bool,
) -> Verdict {
    let mut rests_on = Vec::new();
    match row {
        Some(row) => rests_on.push(format!(
            "`core show taskprocessors`: {} in queue{}",
            row.in_queue,
            row.high_water
                .map(|high| format!(" (high water {high})"))
                .unwrap_or_default()
        )),
        None => rests_on.push("not in `core show taskprocessors`'s answer".to_string()),
    }
    let log_reached = warned.iter().map(|warning| warning.reached).max();
    if let Some(last) = warned.last() {
        let when = last
            .at
            .map(|at| format!(" at {}", at.format("%H:%M:%S")))
            .unwrap_or_default();
        // Only Asterisk's " again" says the same queue drained and refilled:
        // two warnings may come from two runs of Asterisk.
        let again = warned.iter().filter(|warning| warning.again).count();
        let times = match (warned.len(), again) {
            (1, 0) => String::new(),
            (count, 0) => format!(", {count} warnings"),
            (count, again) => {
                format!(", {count} warnings, {again} saying \"again\": it drained and filled again")
            }
        };
        rests_on.push(format!(
            "the `full` log: reached {}{when}{times}",
            last.reached
        ));
    }
    let served_by_lwp = match served {
        Some([server]) => {
            rests_on.push(format!(
                "served by {}: {}",
                doing(server.thread),
                server.how
            ));
            Some(server.thread.lwp)
        }
        Some(several) => {
            let lwps: Vec<String> = several
                .iter()
                .map(|server| server.thread.lwp.to_string())
                .collect();
            rests_on.push(format!(
                "cannot tell its thread: LWPs {} each look like it",
                lwps.join(", ")
            ));
            None
        }
        None if gdb_ran => {
            rests_on.push(
                "cannot tell its thread: no thread inside ast_taskprocessor_execute could be \
                 matched to it (its thread may be idle, or memory did not say)"
                    .to_string(),
            );
            None
        }
        None => {
            rests_on.push("cannot tell its thread: gdb gave no stacks".to_string());
            None
        }
    };
    Verdict {
        name: name.to_string(),
        in_queue: row.map(|row| row.in_queue),
        max_depth: row.and_then(|row| row.max_depth),
        high_water: row.and_then(|row| row.high_water).or_else(|| {
            warned
                .iter()
                .find_map(|warning| warning.high_water)
                .and_then(|high| i64::try_from(high).ok())
        }),
        log_reached,
        served_by_lwp,
        rests_on: rests_on.join("; "),
    }
}

fn text(listing: &Listing, queues: &[Verdict], warnings: &[QueueWarning], window: &str) -> String {
    let asked = match listing {
        Listing::Listed(table) => format!(
            "`core show taskprocessors` listed {}",
            table.count.unwrap_or(table.rows.len())
        ),
        Listing::Unanswered(why) => format!("`core show taskprocessors`: {why}"),
        Listing::NotAsked => "no `core show taskprocessors`: a core has no CLI".to_string(),
    };
    let logged = match warnings.len() {
        0 => format!("no queue warning in the `full` log over {window}"),
        1 => format!("1 queue warning in the `full` log over {window}"),
        count => format!("{count} queue warnings in the `full` log over {window}"),
    };
    let mut text = format!("Taskprocessors ({asked}; {logged}):\n");
    if queues.is_empty() {
        let verdict = match listing {
            Listing::Listed(_) => format!(
                "  no queue is large (none at {LARGE_QUEUE} or more, or at its high water \
                 mark) and none was warned about: no backlog in this one reading (a \
                 taskprocessor stuck with only a few tasks queued would not show here)"
            ),
            _ => "  cannot tell: no queue sizes, and the log names none".to_string(),
        };
        text.push_str(&verdict);
        text.push('\n');
        return text;
    }
    for queue in queues.iter().take(SHOWN) {
        let size = match (queue.in_queue, queue.log_reached) {
            (Some(queued), _) => format!("{queued} queued"),
            (None, Some(reached)) => format!("reached {reached} (log)"),
            (None, None) => "size unknown".to_string(),
        };
        let by = queue
            .served_by_lwp
            .map(|lwp| format!(", served by LWP {lwp}"))
            .unwrap_or_default();
        text.push_str(&format!(
            "  {}: {size}{by}\n    rests on: {}\n",
            queue.name, queue.rests_on
        ));
    }
    if queues.len() > SHOWN {
        text.push_str(&format!(
            "  … and {} more (see the JSON)\n",
            queues.len() - SHOWN
        ));
    }
    text
}
