//! The wait-for graph from gdb's reading of memory, for an Asterisk built
//! without DEBUG_THREADS.
//!
//! `gdb_locks.py` reports, per blocked thread, the lock's address and the
//! LWP glibc records as its owner (a mutex's `__owner`, a rwlock's writer).
//! That is exactly "waiter waits for lock L, held by owner": the same facts
//! `core show locks` gives, so the same graph, cycles and renderers apply.

use std::collections::{HashMap, HashSet};

use crate::gdb::threads::{Analysis, Wait};
use crate::locks::graph::{Analysis as LockAnalysis, LockGraph, LockKind, ThreadRef};
use crate::locks::holders::{self, Doing};
use crate::locks::render::{self, SourceInfo};

/// The graph, and how many blocked threads gdb could not place in it.
pub struct GdbGraph {
    pub graph: LockGraph,
    /// Threads blocked in a lock call whose lock address could not be read.
    pub unaddressed: Vec<i64>,
    /// What the graph rests on that is inferred, for the reader.
    pub notes: Vec<String>,
    /// What each thread is doing, from its innermost frames.
    pub doing: HashMap<ThreadRef, Doing>,
}

/// Why a lock's holder can be missing from gdb's reading.
pub const UNLISTED_WHY: &str = "glibc does not record which threads hold an rwlock as \
     readers, and a mutex's owner may have exited or be a thread gdb does not see";

pub fn build(analysis: &Analysis) -> GdbGraph {
    let mut graph = LockGraph::new();
    let mut by_lwp: HashMap<i64, ThreadRef> = HashMap::new();
    for thread in &analysis.threads {
        let name = thread.what().unwrap_or_default();
        let lwp = u64::try_from(thread.lwp).ok();
        // gdb's thread number, as in bt-threads.txt ("Thread 2 (... (LWP 8193))").
        let handle = graph.add_thread(&thread.num.to_string(), lwp, &name);
        by_lwp.insert(thread.lwp, handle);
    }
    let mut unaddressed = Vec::new();
    // One hold per owner and lock, however many threads wait for it.
    let mut held: HashSet<(i64, String)> = HashSet::new();
    for thread in &analysis.threads {
        let Some(wait) = &thread.waits else { continue };
        let Some(address) = &wait.address else {
            unaddressed.push(thread.lwp);
            continue;
        };
        let Some(&waiter) = by_lwp.get(&thread.lwp) else {
            continue;
        };
        let lock = graph.add_lock(address, wait.name.as_deref().unwrap_or_default());
        let site = match &wait.site {
            Some(site) => graph.site(
                site.file.as_deref().unwrap_or_default(),
                site.line,
                &site.function_or_place().unwrap_or_default(),
            ),
            None => graph.site("", None, ""),
        };
        let kind = wait_kind(wait);
        graph.waits_for(waiter, lock, kind, site);
        let owner = wait
            .owner_lwp
            .and_then(|lwp| by_lwp.get(&lwp).map(|owner| (lwp, *owner)));
        if let Some((lwp, owner)) = owner {
            if held.insert((lwp, address.clone())) {
                // glibc records only that the owner holds it, not where it took it.
                let held_as = if kind == LockKind::Rdlock {
                    LockKind::Wrlock
                } else {
                    kind
                };
                let nowhere = graph.site("", None, "");
                graph.holds(owner, lock, held_as, nowhere);
            }
        }
    }
    let notes = infer_readers(analysis, &mut graph, &by_lwp);
    let doing = analysis
        .threads
        .iter()
        .filter_map(|thread| {
            let handle = *by_lwp.get(&thread.lwp)?;
            let state = if thread.waits.is_some() {
                Doing::OnLock
            } else {
                let functions: Vec<&str> = thread
                    .frames
                    .iter()
                    .map(|frame| frame.function.as_str())
                    .collect();
                Doing::from_frames(&functions)
            };
            Some((handle, state))
        })
        .collect();
    GdbGraph {
        graph,
        unaddressed,
        notes,
        doing,
    }
}

/// The graph of `analysis`, analysed and explained in words (what
/// `freeze` prints after gdb, and `crash` for an abort() core).
pub fn explain(analysis: &Analysis, source: &str) -> String {
    let built = build(analysis);
    let result = built.graph.analyze();
    let info = source_info(&built, &result, source);
    render::text(&built.graph, &result, &info)
}

/// What gdb's reading rests on, for the text: why holders can be missing,
/// what was inferred, holders stuck on something else, unread addresses.
pub fn source_info(built: &GdbGraph, analysis: &LockAnalysis, source: &str) -> SourceInfo {
    let mut info = SourceInfo {
        source: source.to_string(),
        unlisted_why: Some(UNLISTED_WHY.to_string()),
        notes: built.notes.clone(),
        ..SourceInfo::default()
    };
    info.stuck = holders::stuck(&built.graph, analysis, &built.doing, &|thread| {
        render::thread_label(&built.graph, thread)
    });
    if !built.unaddressed.is_empty() {
        info.notes.push(format!(
            "{} threads are blocked in a lock call whose address gdb could not read \
             (install the debug symbols with `wazo-astdebug setup-dbg`)",
            built.unaddressed.len()
        ));
    }
    info
}

/// A writer blocked on an rwlock with no writer recorded waits for readers,
/// and glibc only counts them. A thread that is itself blocked waiting for
/// that writer is the likely reader (it took the rwlock, then a lock the
/// writer holds): recorded as a probable hold, so that the cycle shows as a
/// possible deadlock instead of "no deadlock".
fn infer_readers(
    analysis: &Analysis,
    graph: &mut LockGraph,
    by_lwp: &HashMap<i64, ThreadRef>,
) -> Vec<String> {
    let mut notes = Vec::new();
    for writer in &analysis.threads {
        let Some(wait) = &writer.waits else { continue };
        let (Some(address), None) = (&wait.address, wait.owner_lwp) else {
            continue;
        };
        if wait.kind != "rwlock" || wait.mode.as_deref() != Some("write") {
            continue;
        }
        let Some(lock) = graph.find_lock(address) else {
            continue;
        };
        let readers: Vec<&crate::gdb::threads::Thread> = analysis
            .threads
            .iter()
            .filter(|t| t.lwp != writer.lwp)
            .filter(|t| t.waits.as_ref().and_then(|w| w.owner_lwp) == Some(writer.lwp))
            .collect();
        for reader in &readers {
            if let Some(&handle) = by_lwp.get(&reader.lwp) {
                let nowhere = graph.site("", None, "");
                graph.probably_holds(handle, lock, nowhere);
            }
        }
        let counted = match wait.readers {
            Some(0) | None => String::new(),
            Some(1) => "; glibc counts 1 reader".to_string(),
            Some(n) => format!("; glibc counts {n} readers"),
        };
        let names: Vec<String> = readers.iter().map(|t| format!("LWP {}", t.lwp)).collect();
        notes.push(if names.is_empty() {
            format!(
                "LWP {} waits to write rwlock {address}, held by readers glibc does not name{counted}",
                writer.lwp
            )
        } else {
            format!(
                "LWP {} waits to write rwlock {address}, held by readers glibc does not name{counted}; \
                 {} probably among them (blocked waiting for LWP {} itself)",
                writer.lwp,
                names.join(", "),
                writer.lwp
            )
        });
    }
    notes
}

fn wait_kind(wait: &Wait) -> LockKind {
    match (wait.kind.as_str(), wait.mode.as_deref()) {
        ("mutex", _) => LockKind::Mutex,
        ("rwlock", Some("read")) => LockKind::Rdlock,
        ("rwlock", Some("write")) => LockKind::Wrlock,
        _ => LockKind::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_threads_on_each_others_mutex_are_a_deadlock() {
        let analysis: Analysis = serde_json::from_str(
            r#"{"pid": 1, "threads": [
                {"num": 1, "lwp": 10, "start": "a", "waits": {"kind": "mutex", "address": "0x100", "name": "lock_b", "owner_lwp": 11}},
                {"num": 2, "lwp": 11, "start": "b", "waits": {"kind": "mutex", "address": "0x200", "name": "lock_a", "owner_lwp": 10}},
                {"num": 3, "lwp": 12, "start": "c", "waits": {"kind": "mutex", "address": "0x200", "owner_lwp": 10}},
                {"num": 4, "lwp": 13, "start": "d", "waits": {"kind": "rwlock", "mode": "read", "address": "0x300", "owner_lwp": 14}},
                {"num": 5, "lwp": 14, "start": "e"},
                {"num": 6, "lwp": 15, "start": "f", "waits": {"kind": "mutex"}}
            ]}"#,
        )
        .unwrap();
        let built = build(&analysis);
        let result = built.graph.analyze();
        assert_eq!(result.deadlocks.len(), 1);
        let mut members: Vec<u64> = result.deadlocks[0]
            .members
            .iter()
            .filter_map(|&thread| built.graph.thread(thread)?.lwp)
            .collect();
        members.sort();
        assert_eq!(members, [10, 11]);
        let behind = built.graph.find_thread_by_lwp(12).unwrap();
        assert!(result.blocked_on_cycle(behind));
        assert!(!result.blocked_on_cycle(built.graph.find_thread_by_lwp(13).unwrap()));
        assert_eq!(built.unaddressed, [15]);
    }
}
