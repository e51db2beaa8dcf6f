//! The wait-for graph from gdb's reading of memory, for an Asterisk built
//! without DEBUG_THREADS.
//!
//! `gdb_locks.py` reports, per blocked thread, the lock's address and the
//! LWP glibc records as its owner (a mutex's `__owner`, a rwlock's writer).
//! That is exactly "waiter waits for lock L, held by owner": the same facts
//! `core show locks` gives, so the same graph, cycles and renderers apply.

use std::collections::HashMap;

use crate::gdb::threads::{Analysis, Wait};
use crate::locks::graph::{LockGraph, LockKind, ThreadRef};

/// The graph, and how many blocked threads gdb could not place in it.
pub struct GdbGraph {
    pub graph: LockGraph,
    /// Threads blocked in a lock call whose lock address could not be read.
    pub unaddressed: Vec<i64>,
}

pub fn build(analysis: &Analysis) -> GdbGraph {
    let mut graph = LockGraph::new();
    let mut by_lwp: HashMap<i64, ThreadRef> = HashMap::new();
    for thread in &analysis.threads {
        let name = thread
            .start
            .as_deref()
            .or(thread.name.as_deref())
            .unwrap_or_default();
        let lwp = u64::try_from(thread.lwp).ok();
        // gdb's thread number, as in bt-threads.txt ("Thread 2 (... (LWP 8193))").
        let handle = graph.add_thread(&thread.num.to_string(), lwp, name);
        by_lwp.insert(thread.lwp, handle);
    }
    let mut unaddressed = Vec::new();
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
                site.function.as_deref().unwrap_or_default(),
            ),
            None => graph.site("", None, ""),
        };
        let kind = wait_kind(wait);
        graph.waits_for(waiter, lock, kind, site);
        if let Some(owner) = wait.owner_lwp.and_then(|owner| by_lwp.get(&owner)) {
            // glibc records only that the owner holds it, not where it took it.
            let held_as = if kind == LockKind::Rdlock {
                LockKind::Wrlock
            } else {
                kind
            };
            let nowhere = graph.site("", None, "");
            graph.holds(*owner, lock, held_as, nowhere);
        }
    }
    GdbGraph { graph, unaddressed }
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
