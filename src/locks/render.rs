//! Renders an analysed [`LockGraph`]: the text explanation a support
//! engineer reads first, DOT for graphviz (the semantics of the old
//! `graph_ast_locks.py`: one node per thread, an edge from waiter to holder),
//! and JSON for scripts.
//!
//! Lists are capped in text (a dump can hold 100,000 threads; the reader needs
//! the cycle and a count, not every id); DOT and JSON are complete.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::io::{self, Write};

use crate::locks::graph::{Analysis, Claim, Edge, LockGraph, LockRef, Site, ThreadRef};

/// How many entries a text list shows before "and N more".
const TEXT_LIST_MAX: usize = 10;

/// Context for the text header, filled by the source.
#[derive(Debug, Default, Clone)]
pub struct SourceInfo {
    /// The file name, as the user gave it.
    pub source: String,
    pub version: Option<String>,
    pub taken_at: Option<String>,
    /// Lines worth a warning (cut lines, several dumps).
    pub notes: Vec<String>,
    /// Why a lock's holder can be missing from this source (default: a
    /// `core show locks` paste's reasons).
    pub unlisted_why: Option<String>,
    /// Holders that keep others waiting while doing something else (see
    /// `locks::holders`): they lead the explanation.
    pub stuck: Vec<String>,
    /// Why this source cannot tell who holds the locks (set: "no cycle"
    /// proves nothing, and is not said).
    pub holders_unknown: Option<String>,
}

/// `thread 5 LWP 1234 (name)`, or `LWP 1234 (name)` where the id is the LWP.
pub fn thread_label(graph: &LockGraph, thread: ThreadRef) -> String {
    match graph.thread(thread) {
        Some(t) => {
            let name = t.short_name();
            // A source that names threads by their LWP (/proc) says it once.
            if t.lwp.is_some_and(|lwp| *t.id == *lwp.to_string()) {
                return if name.is_empty() {
                    format!("LWP {}", t.id)
                } else {
                    format!("LWP {} ({name})", t.id)
                };
            }
            let lwp = t.lwp.map(|lwp| format!(" LWP {lwp}")).unwrap_or_default();
            if name.is_empty() {
                format!("thread {}{lwp}", t.id)
            } else {
                format!("thread {}{lwp} ({name})", t.id)
            }
        }
        None => "thread ?".to_string(),
    }
}

fn lock_label(graph: &LockGraph, lock: LockRef) -> String {
    match graph.lock(lock) {
        Some(l) if l.name.is_empty() => format!("lock {}", l.addr),
        Some(l) => format!("{} {}", l.name, l.addr),
        None => "lock ?".to_string(),
    }
}

fn site_suffix(site: Option<&Site>) -> String {
    match site {
        Some(site) if !site.is_empty() => format!(" ({site})"),
        _ => String::new(),
    }
}

fn list_threads(graph: &LockGraph, threads: &[ThreadRef]) -> String {
    let mut out: Vec<String> = threads
        .iter()
        .take(TEXT_LIST_MAX)
        .map(|&t| thread_label(graph, t))
        .collect();
    if threads.len() > TEXT_LIST_MAX {
        out.push(format!("and {} more", threads.len() - TEXT_LIST_MAX));
    }
    out.join(", ")
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

/// The explanation: deadlocks first, then what else blocks.
pub fn text(graph: &LockGraph, analysis: &Analysis, info: &SourceInfo) -> String {
    let mut out = String::new();
    let waits = graph
        .acquisitions()
        .iter()
        .filter(|a| a.claim == Claim::WaitsFor)
        .count();
    let mut header = format!(
        "{}: {}, {}, {} waiting",
        info.source,
        plural(graph.threads().len(), "thread", "threads"),
        plural(graph.locks().len(), "lock", "locks"),
        plural(waits, "thread", "threads"),
    );
    if let Some(version) = &info.version {
        let _ = write!(header, "; Asterisk {version}");
    }
    if let Some(time) = &info.taken_at {
        let _ = write!(header, "; taken at {time}");
    }
    let _ = writeln!(out, "{header}");
    for note in &info.notes {
        let _ = writeln!(out, "note: {note}");
    }
    // The analysis caps pathological graphs (every reader times every
    // writer); say so rather than pass a cut graph off as whole.
    if analysis.dropped_edges > 0 {
        let _ = writeln!(
            out,
            "note: {} left out (past {} edges, a wait keeps only its first holder): \
             a cycle through them may be missed",
            plural(analysis.dropped_edges, "edge was", "edges were"),
            crate::locks::graph::MAX_EDGES
        );
    }
    if analysis.behind_cut > 0 {
        let _ = writeln!(
            out,
            "note: the lists of threads stuck behind {} were cut short",
            plural(analysis.behind_cut, "deadlock", "deadlocks")
        );
    }
    let _ = writeln!(out);
    for line in &info.stuck {
        let _ = writeln!(out, "{line}");
    }
    if !info.stuck.is_empty() {
        let _ = writeln!(out);
    }

    let acquisitions = graph.acquisitions();
    for deadlock in &analysis.deadlocks {
        let steps = &deadlock.cycle;
        let Some(first) = steps.first() else {
            continue;
        };
        let Some(last) = steps.last() else {
            continue;
        };
        let mut line = String::from(if deadlock.possible {
            "POSSIBLE DEADLOCK: "
        } else {
            "DEADLOCK: "
        });
        // The first thread holds the lock the last one waits for.
        let first_hold = analysis
            .edges
            .get(last.edge)
            .and_then(|e| e.hold)
            .and_then(|h| acquisitions.get(h));
        let first_wait = analysis
            .edges
            .get(first.edge)
            .and_then(|e| acquisitions.get(e.wait));
        let _ = write!(
            line,
            "{} holds {}{} and waits for {}{}",
            thread_label(graph, first.thread),
            lock_label(graph, last.lock),
            site_suffix(first_hold.map(|a| &a.site)),
            lock_label(graph, first.lock),
            site_suffix(first_wait.map(|a| &a.site)),
        );
        for (step, next) in steps.iter().zip(steps.iter().skip(1)) {
            let edge = analysis.edges.get(step.edge);
            let hold = edge.and_then(|e| e.hold).and_then(|h| acquisitions.get(h));
            let how = if edge.is_some_and(|e| e.probable) {
                "probably held, as a reader, by"
            } else {
                "held by"
            };
            let _ = write!(
                line,
                ", {how} {}{}, which waits for {}",
                thread_label(graph, next.thread),
                site_suffix(hold.map(|a| &a.site)),
                lock_label(graph, next.lock),
            );
        }
        if analysis.edges.get(last.edge).is_some_and(|e| e.probable) {
            line.push_str(" (which it probably holds as a reader)");
        }
        if steps.len() == 1 {
            line.push_str(": it waits for itself (an rwlock upgrade)");
        }
        let _ = writeln!(out, "{line}.");
        if deadlock.possible {
            let _ = writeln!(
                out,
                "  glibc does not record which threads hold an rwlock as readers: that one is \
                 inferred (it waits for the thread that wants to write). Check its stack in the \
                 backtrace before calling it a deadlock."
            );
        }
        let in_steps: HashSet<ThreadRef> = steps.iter().map(|s| s.thread).collect();
        let others: Vec<ThreadRef> = deadlock
            .members
            .iter()
            .copied()
            .filter(|m| !in_steps.contains(m))
            .collect();
        if !others.is_empty() {
            let _ = writeln!(
                out,
                "  The same knot also ties {}.",
                list_threads(graph, &others)
            );
        }
        if deadlock.behind.is_empty() {
            let _ = writeln!(out, "  No other thread is stuck behind it.");
        } else {
            let _ = writeln!(
                out,
                "  {} stuck behind it: {}.",
                plural(deadlock.behind.len(), "thread is", "threads are"),
                list_threads(graph, &deadlock.behind)
            );
        }
        let _ = writeln!(out);
    }
    if let Some(why) = info
        .holders_unknown
        .as_ref()
        .filter(|_| analysis.deadlocks.is_empty())
    {
        let _ = writeln!(
            out,
            "Cannot tell whether there is a deadlock ({}): {why}.",
            plural(analysis.edges.len(), "wait edge", "wait edges")
        );
        let _ = writeln!(out);
    } else if analysis.deadlocks.is_empty() && info.stuck.is_empty() {
        let _ = writeln!(
            out,
            "No deadlock: no cycle in the wait-for graph ({}).",
            plural(analysis.edges.len(), "wait edge", "wait edges")
        );
        let _ = writeln!(out);
    } else if analysis.deadlocks.is_empty() {
        // Threads are stuck behind a holder that is not running: a freeze
        // all the same, so never "No deadlock".
        let _ = writeln!(
            out,
            "No cycle in the wait-for graph ({}): the threads above are stuck all the same.",
            plural(analysis.edges.len(), "wait edge", "wait edges")
        );
        let _ = writeln!(out);
    }
    if contended(&mut out, graph, analysis) {
        let _ = writeln!(out);
    }

    let unlisted: Vec<&Edge> = analysis
        .edges
        .iter()
        .filter(|e| e.holder.is_none())
        .collect();
    if !unlisted.is_empty() {
        let why = info
            .unlisted_why
            .as_deref()
            .unwrap_or("the holder was not created by Asterisk, or was cut from the paste");
        let _ = writeln!(
            out,
            "Waiting on a lock whose holder is not listed ({}; {why}):",
            unlisted.len()
        );
        for edge in unlisted.iter().take(TEXT_LIST_MAX) {
            let wait = acquisitions.get(edge.wait);
            let mut line = format!(
                "  {} waits for {}{}",
                thread_label(graph, edge.waiter),
                lock_label(graph, edge.lock),
                site_suffix(wait.map(|a| &a.site)),
            );
            let here: Vec<String> = wait
                .map(|a| a.locked_here.iter().map(ToString::to_string).collect())
                .unwrap_or_default();
            if !here.is_empty() {
                let _ = write!(line, "; locked at {}", here.join(", "));
            }
            let _ = writeln!(out, "{line}");
        }
        if unlisted.len() > TEXT_LIST_MAX {
            let _ = writeln!(out, "  and {} more", unlisted.len() - TEXT_LIST_MAX);
        }
        let _ = writeln!(out);
    }

    let failed: Vec<_> = acquisitions
        .iter()
        .filter(|a| a.claim == Claim::TriedAndFailed)
        .collect();
    if !failed.is_empty() {
        let _ = writeln!(
            out,
            "Failed trylocks ({}; not waits, the thread went on):",
            failed.len()
        );
        for acq in failed.iter().take(TEXT_LIST_MAX) {
            let _ = writeln!(
                out,
                "  {} tried {}{}",
                thread_label(graph, acq.thread),
                lock_label(graph, acq.lock),
                site_suffix(Some(&acq.site)),
            );
        }
        if failed.len() > TEXT_LIST_MAX {
            let _ = writeln!(out, "  and {} more", failed.len() - TEXT_LIST_MAX);
        }
        let _ = writeln!(out);
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

/// Who holds what most threads wait for: the question when there is no
/// cycle (a holder stuck elsewhere), and context when there is one.
fn contended(out: &mut String, graph: &LockGraph, analysis: &Analysis) -> bool {
    // Four bytes a lock, and the top five kept as the counts are read: the
    // list of every waited-for lock, sorted, was the peak of a text run.
    let mut waiting = vec![0u32; graph.locks().len()];
    for acq in graph.acquisitions() {
        if acq.claim == Claim::WaitsFor {
            if let Some(count) = waiting.get_mut(acq.lock.index()) {
                *count = count.saturating_add(1);
            }
        }
    }
    // Most waiters first, then the lock listed first (locks come in order,
    // so a tie never displaces an earlier one).
    let mut ranked: Vec<(usize, usize)> = Vec::with_capacity(6);
    for (lock, &count) in waiting.iter().enumerate() {
        let count = count as usize;
        if count == 0 {
            continue;
        }
        let at = ranked
            .iter()
            .position(|&(_, other)| other < count)
            .unwrap_or(ranked.len());
        if at < 5 {
            ranked.insert(at, (lock, count));
            ranked.truncate(5);
        }
    }
    drop(waiting);
    if ranked.is_empty() {
        return false;
    }
    let mut holders: Vec<Vec<ThreadRef>> = vec![Vec::new(); ranked.len()];
    let mut probable = vec![false; ranked.len()];
    for edge in &analysis.edges {
        let Some(holder) = edge.holder else {
            continue;
        };
        if edge.probable {
            if let Some(pos) = ranked
                .iter()
                .position(|&(lock, _)| lock == edge.lock.index())
            {
                if let Some(flag) = probable.get_mut(pos) {
                    *flag = true;
                }
            }
        }
        if let Some(pos) = ranked
            .iter()
            .position(|&(lock, _)| lock == edge.lock.index())
        {
            if let Some(list) = holders.get_mut(pos) {
                list.push(holder);
            }
        }
    }
    let _ = writeln!(out, "Most waited-for locks:");
    for (((lock, count), mut list), probable) in ranked.into_iter().zip(holders).zip(probable) {
        list.sort_unstable();
        list.dedup();
        let held = if list.is_empty() {
            "holder not listed".to_string()
        } else if probable {
            format!(
                "probably held, as a reader, by {}",
                list_threads(graph, &list)
            )
        } else {
            format!("held by {}", list_threads(graph, &list))
        };
        let label = graph
            .lock_at(lock)
            .map(|l| lock_label(graph, l))
            .unwrap_or_default();
        let _ = writeln!(out, "  {label}: {count} waiting, {held}");
    }
    true
}

/// A DOT string literal: quotes and backslashes escaped, line breaks as `\n`.
pub fn dot_quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// DOT: node per thread labelled with id and name, edge waiter -> holder
/// labelled with the lock name, cycles in red, a "holder not listed" node
/// per lock whose holder is missing.
pub fn dot(graph: &LockGraph, analysis: &Analysis, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "digraph \"core show locks\" {{")?;
    writeln!(out, "  node [shape=box, fontname=\"monospace\"];")?;
    writeln!(out, "  edge [fontname=\"monospace\", fontsize=10];")?;
    for (index, thread) in graph.threads().iter().enumerate() {
        let mut label = thread.id.to_string();
        if let Some(lwp) = thread.lwp {
            label.push_str(&format!(" LWP {lwp}"));
        }
        if !thread.short_name().is_empty() {
            label.push('\n');
            label.push_str(thread.short_name());
        }
        let style = if analysis.in_cycle.get(index).copied().unwrap_or(false) {
            ", color=red, fontcolor=red, penwidth=2"
        } else if analysis
            .blocked_on_cycle
            .get(index)
            .copied()
            .unwrap_or(false)
        {
            ", color=orange"
        } else {
            ""
        };
        writeln!(
            out,
            "  {} [label={}{style}];",
            dot_quote(&format!("t{index}")),
            dot_quote(&label)
        )?;
    }
    let mut unlisted_nodes: HashMap<LockRef, String> = HashMap::new();
    for edge in &analysis.edges {
        let target = match edge.holder {
            Some(holder) => dot_quote(&format!("t{}", holder.index())),
            None => {
                let count = unlisted_nodes.len();
                let node = unlisted_nodes
                    .entry(edge.lock)
                    .or_insert_with(|| dot_quote(&format!("unlisted{count}")))
                    .clone();
                if unlisted_nodes.len() > count {
                    writeln!(
                        out,
                        "  {node} [label={}, shape=ellipse, style=dashed];",
                        dot_quote(&format!(
                            "holder not listed\n{}",
                            lock_label(graph, edge.lock)
                        ))
                    )?;
                }
                node
            }
        };
        let lock_name = graph
            .lock(edge.lock)
            .map(|l| {
                if l.name.is_empty() {
                    l.addr.to_string()
                } else {
                    l.name.to_string()
                }
            })
            .unwrap_or_default();
        let style = match (analysis.edge_in_cycle(edge), edge.probable) {
            (true, false) => ", color=red, fontcolor=red, penwidth=2",
            (true, true) => ", color=red, fontcolor=red, penwidth=2, style=dashed",
            (false, true) => ", style=dashed",
            (false, false) => "",
        };
        writeln!(
            out,
            "  {} -> {target} [label={}{style}];",
            dot_quote(&format!("t{}", edge.waiter.index())),
            dot_quote(&lock_name)
        )?;
    }
    writeln!(out, "}}")
}

pub use json::{json, json_warned};

mod json;

#[cfg(test)]
mod tests;
