//! Fuzzing `LockGraph::analyze` on random graphs, checked against a
//! brute-force model, and the renderers on what it finds.

use std::collections::BTreeSet;

use crate::test_support::*;
use proptest::prelude::*;

use super::*;
use crate::locks::render::{SourceInfo, dot, json, text};

/// (thread, lock, claim 0 hold / 1 wait / 2 tried, kind)
type Fact = (usize, usize, u8, u8);

fn build(threads: usize, locks: usize, facts: &[Fact]) -> LockGraph {
    let mut g = LockGraph::new();
    let t: Vec<ThreadRef> = (0..threads)
        .map(|i| {
            g.add_thread(
                &format!("0x{i:x}"),
                Some(i as u64),
                &format!("t{i} started at [1] a.c f()"),
            )
        })
        .collect();
    let l: Vec<LockRef> = (0..locks)
        .map(|i| g.add_lock(&format!("0x{:x}", 0x1000 + i), "chan"))
        .collect();
    for &(thread, lock, claim, kind) in facts {
        let kind = [
            LockKind::Mutex,
            LockKind::Rdlock,
            LockKind::Wrlock,
            LockKind::Unknown,
        ][kind as usize % 4];
        let (thread, lock) = (t[thread % threads], l[lock % locks]);
        let site = g.site("a.c", Some(1), "f");
        match claim % 3 {
            0 => g.holds(thread, lock, kind, site),
            1 => g.waits_for(thread, lock, kind, site),
            _ => g.tried_and_failed(thread, lock, kind, site),
        };
    }
    g
}

fn graphs() -> impl Strategy<Value = (usize, usize, Vec<Fact>)> {
    (1usize..24, 1usize..12).prop_flat_map(|(threads, locks)| {
        let fact = (0..threads, 0..locks, 0u8..3, 0u8..4);
        (
            Just(threads),
            Just(locks),
            proptest::collection::vec(fact, 0..60),
        )
    })
}

/// The edges as the model says: each wait points at every distinct holder
/// of its lock, except a mutex's own holder (Asterisk mutexes are
/// recursive); a wait with no holder at all points nowhere.
fn model_edges(g: &LockGraph) -> BTreeSet<(usize, Option<usize>)> {
    let mut out = BTreeSet::new();
    for (index, wait) in g.acquisitions().iter().enumerate() {
        if wait.claim != Claim::WaitsFor {
            continue;
        }
        let holders: BTreeSet<ThreadRef> = g
            .acquisitions()
            .iter()
            .filter(|a| {
                matches!(a.claim, Claim::Holds | Claim::ProbablyHolds) && a.lock == wait.lock
            })
            .map(|a| a.thread)
            .collect();
        let mut any = false;
        let mut only_self = false;
        for holder in holders {
            if holder == wait.thread && wait.kind == LockKind::Mutex {
                only_self = true;
            } else {
                any = true;
                out.insert((index, Some(holder.index())));
            }
        }
        if !any && !only_self {
            out.insert((index, None));
        }
    }
    out
}

/// reach[a][b]: a path of one edge or more goes from a to b.
fn reachability(n: usize, edges: &[Edge]) -> Vec<Vec<bool>> {
    let mut reach = vec![vec![false; n]; n];
    for e in edges {
        if let Some(h) = e.holder {
            reach[e.waiter.index()][h.index()] = true;
        }
    }
    for k in 0..n {
        let through = reach[k].clone();
        for row in reach.iter_mut() {
            if row[k] {
                for (cell, &via) in row.iter_mut().zip(&through) {
                    *cell |= via;
                }
            }
        }
    }
    reach
}

/// Checks `g.analyze()` against the model (also used by the lockdump and
/// gdb fuzzers on the graphs they build).
pub(crate) fn check(g: &LockGraph) -> Result<(), TestCaseError> {
    let a = timed("analyze", CASE_BUDGET, || g.analyze());
    let n = g.threads().len();
    // Edges are exactly the model's, each pointing at a real acquisition.
    let got: BTreeSet<(usize, Option<usize>)> = a
        .edges
        .iter()
        .map(|e| (e.wait, e.holder.map(|h| h.index())))
        .collect();
    prop_assert_eq!(&got, &model_edges(g));
    prop_assert_eq!(got.len(), a.edges.len(), "duplicate edges");
    for e in &a.edges {
        let wait = &g.acquisitions()[e.wait];
        prop_assert!(
            wait.claim == Claim::WaitsFor && wait.thread == e.waiter && wait.lock == e.lock
        );
        if let Some(hold) = e.hold {
            let hold = &g.acquisitions()[hold];
            prop_assert!(
                matches!(hold.claim, Claim::Holds | Claim::ProbablyHolds)
                    && Some(hold.thread) == e.holder
                    && hold.lock == e.lock
            );
        }
    }
    let reach = reachability(n, &a.edges);
    for t in 0..n {
        // In a cycle exactly when a thread reaches itself.
        prop_assert_eq!(a.in_cycle[t], reach[t][t], "in_cycle of {}", t);
        // Blocked on a cycle exactly when not in one but reaching one.
        let reaches_cycle = (0..n).any(|c| reach[t][c] && reach[c][c]);
        prop_assert_eq!(
            a.blocked_on_cycle[t],
            !reach[t][t] && reaches_cycle,
            "blocked_on_cycle of {}",
            t
        );
    }
    for (index, deadlock) in a.deadlocks.iter().enumerate() {
        prop_assert!(!deadlock.cycle.is_empty());
        // Every step is a real edge, and the steps close a loop.
        for (i, step) in deadlock.cycle.iter().enumerate() {
            let edge = &a.edges[step.edge];
            let next = &deadlock.cycle[(i + 1) % deadlock.cycle.len()];
            prop_assert_eq!(edge.waiter, step.thread);
            prop_assert_eq!(edge.lock, step.lock);
            prop_assert_eq!(edge.holder, Some(next.thread));
            prop_assert!(a.edge_in_cycle(edge));
        }
        // Members are one strongly connected component.
        for m in &deadlock.members {
            prop_assert_eq!(a.deadlock_of[m.index()], Some(index));
            for o in &deadlock.members {
                prop_assert!(reach[m.index()][o.index()]);
            }
        }
        // Behind: exactly the threads outside that reach the component.
        let first = deadlock.members[0].index();
        let expected: Vec<ThreadRef> = (0..n)
            .filter(|&t| reach[t][first] && a.deadlock_of[t] != Some(index))
            .map(ThreadRef::at)
            .collect();
        prop_assert_eq!(&deadlock.behind, &expected);
    }
    Ok(())
}

pub(crate) fn render_all(g: &LockGraph) {
    let a = g.analyze();
    let info = SourceInfo::default();
    text(g, &a, &info);
    dot(g, &a, &mut Vec::new()).unwrap();
    let mut out = Vec::new();
    json(g, &a, &mut out).unwrap();
    serde_json::from_slice::<serde_json::Value>(&out).unwrap();
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn fuzz_lockgraph_analyze_matches_model((threads, locks, facts) in graphs()) {
        let g = build(threads, locks, &facts);
        check(&g)?;
        timed("render", CASE_BUDGET, || render_all(&g));
    }
}

/// 100,000 threads in one wait chain ending in a 2-thread deadlock.
fn chain(n: usize) -> LockGraph {
    let mut g = LockGraph::new();
    let t: Vec<ThreadRef> = (0..n)
        .map(|i| g.add_thread(&i.to_string(), None, ""))
        .collect();
    let l: Vec<LockRef> = (0..n)
        .map(|i| g.add_lock(&format!("0x{:x}", i + 1), ""))
        .collect();
    for i in 0..n {
        let site = Site::default();
        g.holds(t[i], l[i], LockKind::Mutex, site.clone());
        let next = if i + 1 == n { n - 2 } else { i + 1 };
        g.waits_for(t[i], l[next], LockKind::Mutex, site);
    }
    g
}

#[test]
fn fuzz_lockgraph_large_graphs_are_linear() {
    assert_linear("chain", 12_500, chain, |g| {
        let a = g.analyze();
        assert_eq!(a.deadlocks.len(), 1);
    });
    let g = chain(100_000);
    let a = timed("100k chain", BIG_BUDGET, || g.analyze());
    assert_eq!(a.deadlocks[0].behind.len(), 99_998);
    drop(g);
    assert_linear("chain render", 5_000, chain, render_all);
}

/// `readers` threads hold a rwlock for reading, `writers` wait for it.
fn readers_and_writers(n: usize) -> LockGraph {
    let mut g = LockGraph::new();
    let lock = g.add_lock("0x10", "rw");
    for i in 0..n {
        let t = g.add_thread(&format!("r{i}"), None, "");
        g.holds(t, lock, LockKind::Rdlock, Site::default());
    }
    for i in 0..n {
        let t = g.add_thread(&format!("w{i}"), None, "");
        g.waits_for(t, lock, LockKind::Wrlock, Site::default());
    }
    g
}

/// `n` self-deadlocked threads (a rwlock upgrade), one thread waiting on
/// all of them, and `n` threads queued behind that one.
fn many_cycles_one_queue(n: usize) -> LockGraph {
    let mut g = LockGraph::new();
    let hub = g.add_thread("hub", None, "");
    let hub_lock = g.add_lock("0x1", "");
    g.holds(hub, hub_lock, LockKind::Mutex, Site::default());
    for i in 0..n {
        let t = g.add_thread(&format!("c{i}"), None, "");
        let l = g.add_lock(&format!("0x{:x}", 0x100 + i), "");
        g.holds(t, l, LockKind::Wrlock, Site::default());
        g.waits_for(t, l, LockKind::Wrlock, Site::default());
        g.waits_for(hub, l, LockKind::Wrlock, Site::default());
    }
    for i in 0..n {
        let t = g.add_thread(&format!("q{i}"), None, "");
        g.waits_for(t, hub_lock, LockKind::Mutex, Site::default());
    }
    g
}

#[test]
fn fuzz_lockgraph_adversarial_shapes() {
    assert_linear("readers and writers", 500, readers_and_writers, |g| {
        g.analyze();
    });
    assert_linear("many cycles, one queue", 500, many_cycles_one_queue, |g| {
        g.analyze();
    });
}

/// Found by `fuzz_lockgraph_adversarial_shapes`: 4,000 readers holding one
/// rwlock and 4,000 writers waiting for it made 16M edges (2.2 s, and
/// gigabytes for a 40,000-thread dump). Past MAX_EDGES a wait keeps one
/// holder edge, and the rest is counted.
#[test]
fn regression_lockgraph_readers_times_writers_edges() {
    let g = readers_and_writers(4_000);
    let a = timed("readers and writers", BIG_BUDGET, || g.analyze());
    assert!(a.edges.len() <= MAX_EDGES + 4_000);
    assert_eq!(a.edges.len() + a.dropped_edges, 4_000 * 4_000);
    // Every writer is still shown blocked on the lock.
    let waiters: BTreeSet<ThreadRef> = a.edges.iter().map(|e| e.waiter).collect();
    assert_eq!(waiters.len(), 4_000);
    // Small graphs are untouched.
    assert_eq!(readers_and_writers(100).analyze().dropped_edges, 0);
}

/// Found by `fuzz_lockgraph_adversarial_shapes`: 4,000 self-deadlocks
/// with one thread waiting on all of them and 4,000 threads queued behind
/// it took 12 s (one search per deadlock, 16M `behind` entries).
#[test]
fn regression_lockgraph_many_deadlocks_one_queue() {
    let g = many_cycles_one_queue(4_000);
    let a = timed("many cycles", BIG_BUDGET, || g.analyze());
    assert_eq!(a.deadlocks.len(), 4_000);
    let listed: usize = a.deadlocks.iter().map(|d| d.behind.len()).sum();
    assert!(listed <= MAX_BEHIND);
    assert!(a.behind_cut > 0);
    // The flags stay exact: the hub and its 4,000 followers.
    assert_eq!(a.blocked_on_cycle.iter().filter(|&&b| b).count(), 4_001);
    let small = many_cycles_one_queue(50).analyze();
    assert_eq!(small.behind_cut, 0);
    assert!(small.deadlocks.iter().all(|d| d.behind.len() == 51));
}
