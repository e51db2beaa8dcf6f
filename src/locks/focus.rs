//! The few threads a developer reads first: those in a deadlock, and the
//! holders of the locks most threads wait for.
//!
//! Their LWPs are what the Wazo doc greps `full` for by hand
//! (`grep -E '(LWP1|LWP2)' full`); everything else in a freeze (hundreds of
//! threads queued behind) says only "waiting".

use std::collections::HashMap;

use crate::locks::graph::{Analysis, LockGraph, LockRef, ThreadRef};
use crate::locks::render::thread_label;

/// Locks, by number of waiters, whose holders are followed besides the cycles.
pub const TOP_LOCKS: usize = 3;

/// A thread worth following, and why in a few words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Focus {
    pub thread: ThreadRef,
    pub lwp: Option<u64>,
    pub label: String,
    pub why: String,
}

/// Every deadlocked thread, then the holders of the [`TOP_LOCKS`] locks with
/// the most waiters; each thread once, in that order.
pub fn threads_to_follow(graph: &LockGraph, analysis: &Analysis) -> Vec<Focus> {
    let mut chosen: Vec<Focus> = Vec::new();
    let take = |thread: ThreadRef, why: String, chosen: &mut Vec<Focus>| {
        if chosen.iter().any(|focus| focus.thread == thread) {
            return;
        }
        chosen.push(Focus {
            thread,
            lwp: graph.thread(thread).and_then(|t| t.lwp),
            label: thread_label(graph, thread),
            why,
        });
    };
    for deadlock in &analysis.deadlocks {
        for step in &deadlock.cycle {
            let why = format!(
                "in the {}deadlock, waits for {}",
                if deadlock.possible { "possible " } else { "" },
                lock_words(graph, step.lock)
            );
            take(step.thread, why, &mut chosen);
        }
        for &member in &deadlock.members {
            take(member, "in the deadlock".to_string(), &mut chosen);
        }
    }
    for (lock, holder, waiters) in most_waited(analysis).into_iter().take(TOP_LOCKS) {
        let why = format!(
            "holds {}, which {waiters} thread{} wait{} for",
            lock_words(graph, lock),
            if waiters == 1 { "" } else { "s" },
            if waiters == 1 { "s" } else { "" }
        );
        take(holder, why, &mut chosen);
    }
    chosen
}

/// (lock, its holder, how many wait for it), most waited first; ties by
/// lock order, so the answer does not change from run to run.
fn most_waited(analysis: &Analysis) -> Vec<(LockRef, ThreadRef, usize)> {
    let mut counts: HashMap<(LockRef, ThreadRef), usize> = HashMap::new();
    for edge in &analysis.edges {
        if let Some(holder) = edge.holder {
            *counts.entry((edge.lock, holder)).or_default() += 1;
        }
    }
    let mut ranked: Vec<_> = counts
        .into_iter()
        .map(|((lock, holder), waiters)| (lock, holder, waiters))
        .collect();
    ranked.sort_by(|a, b| {
        b.2.cmp(&a.2)
            .then(a.0.index().cmp(&b.0.index()))
            .then(a.1.index().cmp(&b.1.index()))
    });
    ranked
}

fn lock_words(graph: &LockGraph, lock: LockRef) -> String {
    match graph.lock(lock) {
        Some(l) if l.name.is_empty() => format!("lock {}", l.addr),
        Some(l) => format!("`{}` ({})", l.name, l.addr),
        None => "a lock".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::locks::graph::{LockKind, Site};

    fn site(graph: &mut LockGraph) -> Site {
        graph.site("f.c", Some(1), "f")
    }

    #[test]
    fn cycle_members_first_then_the_busiest_holder_once() {
        let mut graph = LockGraph::new();
        let a = graph.add_thread("1", Some(101), "a");
        let b = graph.add_thread("2", Some(102), "b");
        let c = graph.add_thread("3", Some(103), "c");
        let d = graph.add_thread("4", Some(104), "d");
        let e = graph.add_thread("5", Some(105), "e");
        let la = graph.add_lock("0x10", "lock_a");
        let lb = graph.add_lock("0x20", "lock_b");
        let lc = graph.add_lock("0x30", "channels");
        let s = site(&mut graph);
        graph.holds(a, la, LockKind::Mutex, s.clone());
        graph.waits_for(a, lb, LockKind::Mutex, s.clone());
        graph.holds(b, lb, LockKind::Mutex, s.clone());
        graph.waits_for(b, la, LockKind::Mutex, s.clone());
        graph.holds(c, lc, LockKind::Mutex, s.clone());
        graph.waits_for(d, lc, LockKind::Mutex, s.clone());
        graph.waits_for(e, lc, LockKind::Mutex, s);
        let analysis = graph.analyze();
        let followed = threads_to_follow(&graph, &analysis);
        let lwps: Vec<_> = followed.iter().map(|f| f.lwp).collect();
        assert_eq!(lwps[..2].len(), 2);
        assert!(lwps[..2].contains(&Some(101)) && lwps[..2].contains(&Some(102)));
        assert_eq!(lwps[2], Some(103));
        assert_eq!(lwps.len(), 3, "{followed:?}");
        assert!(
            followed[2].why.contains("2 threads wait for"),
            "{followed:?}"
        );
        assert!(followed[2].why.contains("`channels`"), "{followed:?}");
    }

    #[test]
    fn nothing_to_follow_in_an_empty_graph() {
        let graph = LockGraph::new();
        assert!(threads_to_follow(&graph, &graph.analyze()).is_empty());
    }
}
