//! The analysis of a [`LockGraph`]: the wait-for edges ("waiter waits for
//! holder, on lock L"), the deadlock cycles (strongly connected components,
//! found by an iterative Tarjan pass: a dump can list 100,000 threads and a
//! recursive walk of a long wait chain would overflow the stack) and every
//! thread stuck behind them.

use std::collections::HashSet;
use std::hash::BuildHasherDefault;

use super::graph::{Claim, FastHasher, LockGraph, LockKind, LockRef, ThreadRef};
use super::scc::{Csr, behind_any, stuck_behind, tarjan, walk_cycle};

impl LockGraph {
    /// Builds the wait-for edges and finds the cycles and who is stuck
    /// behind them.
    pub fn analyze(&self) -> Analysis {
        let mut dropped_edges = 0;
        let edges = self.edges(&mut dropped_edges);
        let thread_count = self.threads.len();
        // One direction at a time, each dropped when done: the peak of a
        // big graph's run is here, beside the whole graph and its edges.
        let graph = Csr::new(thread_count, &edges, |edge| {
            edge.holder
                .map(|holder| (edge.waiter.index(), holder.index()))
        });
        let components = tarjan(&graph);

        let mut in_cycle = vec![false; thread_count];
        let mut blocked_on_cycle = vec![false; thread_count];
        let mut deadlocks = Vec::new();
        for (component, members) in &components.members {
            let component = *component;
            let cyclic = members.len() > 1
                || members
                    .first()
                    .is_some_and(|&node| graph.targets(node).any(|(target, _)| target == node));
            if !cyclic {
                continue;
            }
            for &member in members {
                if let Some(flag) = in_cycle.get_mut(member) {
                    *flag = true;
                }
            }
            let cycle = walk_cycle(&graph, &components.of, component, members);
            let steps: Vec<CycleStep> = cycle
                .into_iter()
                .filter_map(|(thread, edge)| {
                    edges.get(edge).map(|e| CycleStep {
                        thread: ThreadRef::at(thread),
                        lock: e.lock,
                        edge,
                    })
                })
                .collect();
            let mut sorted: Vec<usize> = members.clone();
            sorted.sort_unstable();
            let possible = steps
                .iter()
                .any(|step: &CycleStep| edges.get(step.edge).is_some_and(|e| e.probable));
            deadlocks.push(Deadlock {
                members: sorted.into_iter().map(ThreadRef::at).collect(),
                cycle: steps,
                behind: Vec::new(),
                possible,
            });
        }
        drop(graph);
        let reverse = Csr::new(thread_count, &edges, |edge| {
            edge.holder
                .map(|holder| (holder.index(), edge.waiter.index()))
        });
        // Thousands of deadlocks with a thread waiting on all of them made
        // deadlocks * threads entries (12 s for 4,000 + 4,000): the lists
        // share a budget, and the flags come from one search from all cycles.
        let mut budget = MAX_BEHIND;
        let mut behind_cut = 0;
        for deadlock in &mut deadlocks {
            let (behind, complete) =
                stuck_behind(&reverse, &components.of, &deadlock.members, &mut budget);
            behind_cut += usize::from(!complete);
            deadlock.behind = behind.into_iter().map(ThreadRef::at).collect();
        }
        for thread in behind_any(&reverse, &in_cycle) {
            if let Some(flag) = blocked_on_cycle.get_mut(thread) {
                *flag = true;
            }
        }
        drop(reverse);
        drop(components);
        // Oldest thread first: the cycle order then reads the same run after run.
        deadlocks.sort_by_key(|deadlock| deadlock.cycle.first().map(|step| step.thread));
        let mut deadlock_of = vec![None; thread_count];
        for (index, deadlock) in deadlocks.iter().enumerate() {
            for member in &deadlock.members {
                if let Some(slot) = deadlock_of.get_mut(member.index()) {
                    *slot = Some(index);
                }
            }
        }
        Analysis {
            edges,
            dropped_edges,
            deadlocks,
            behind_cut,
            in_cycle,
            blocked_on_cycle,
            deadlock_of,
        }
    }

    fn edges(&self, dropped: &mut usize) -> Vec<Edge> {
        // Holders grouped by lock in one flat array (a map of vectors costs
        // an allocation per lock), each thread once, in the order listed:
        // (lock, acquisition index), eight bytes a hold, allocated once.
        let is_hold = |claim: Claim| matches!(claim, Claim::Holds | Claim::ProbablyHolds);
        let count = self
            .acquisitions
            .iter()
            .filter(|acq| is_hold(acq.claim))
            .count();
        let mut holds: Vec<(LockRef, u32)> = Vec::with_capacity(count);
        holds.extend(
            self.acquisitions
                .iter()
                .enumerate()
                .filter(|(_, acq)| is_hold(acq.claim))
                .map(|(index, acq)| (acq.lock, u32::try_from(index).unwrap_or(u32::MAX))),
        );
        holds.sort_unstable();
        self.first_hold_per_thread(&mut holds);
        let mut start = vec![0u32; self.locks.len() + 1];
        for &(lock, _) in &holds {
            if let Some(slot) = start.get_mut(lock.index() + 1) {
                *slot += 1;
            }
        }
        for i in 1..start.len() {
            let previous = start.get(i - 1).copied().unwrap_or(0);
            if let Some(slot) = start.get_mut(i) {
                *slot += previous;
            }
        }
        let holders_of = |lock: usize| {
            let from = start.get(lock).copied().unwrap_or(0) as usize;
            let to = start.get(lock + 1).copied().unwrap_or(0) as usize;
            holds.get(from..to).unwrap_or(&[])
        };

        // Reserved once: at most one edge a holder of the awaited lock, or
        // one for none (exact on real dumps), within the budget.
        let bound: usize = self
            .acquisitions
            .iter()
            .filter(|acq| acq.claim == Claim::WaitsFor)
            .map(|acq| holders_of(acq.lock.index()).len().max(1))
            .sum();
        let waits = self
            .acquisitions
            .iter()
            .filter(|acq| acq.claim == Claim::WaitsFor)
            .count();
        let mut edges = Vec::with_capacity(bound.min(MAX_EDGES + waits));
        for (index, acq) in self.acquisitions.iter().enumerate() {
            if acq.claim != Claim::WaitsFor {
                continue;
            }
            let mut any = false;
            let mut only_self = false;
            for &(_, hold) in holders_of(acq.lock.index()) {
                let hold = hold as usize;
                let Some(holder) = self.acquisitions.get(hold).map(|held| held.thread) else {
                    continue;
                };
                // Asterisk mutexes are recursive: waiting for a mutex one
                // already holds does not block. An rwlock does (upgrade).
                if holder == acq.thread && acq.kind == LockKind::Mutex {
                    only_self = true;
                    continue;
                }
                // N readers and N writers of one rwlock made N * N edges
                // (16M, 2 s for N = 4,000). Past a budget a wait keeps its
                // first holder only (still blocked), the rest is counted.
                if any && edges.len() >= MAX_EDGES {
                    *dropped += 1;
                    continue;
                }
                any = true;
                let probable = self
                    .acquisitions
                    .get(hold)
                    .is_some_and(|held| held.claim == Claim::ProbablyHolds);
                edges.push(Edge {
                    waiter: acq.thread,
                    holder: Some(holder),
                    lock: acq.lock,
                    wait: index,
                    hold: Some(hold),
                    probable,
                });
            }
            if !any && !only_self {
                edges.push(Edge {
                    waiter: acq.thread,
                    holder: None,
                    lock: acq.lock,
                    wait: index,
                    hold: None,
                    probable: false,
                });
            }
        }
        edges
    }

    /// Keeps, in `holds` sorted by (lock, acquisition), the first hold of
    /// each thread of a lock (a thread listing a lock twice holds it once).
    fn first_hold_per_thread(&self, holds: &mut Vec<(LockRef, u32)>) {
        let thread_of = |index: u32| self.acquisitions.get(index as usize).map(|a| a.thread);
        // Past this many holders of one lock (readers), a set, not a scan.
        const SCAN: usize = 16;
        let mut kept = 0;
        let mut group = 0;
        let mut current = None;
        let mut seen: HashSet<Option<ThreadRef>, BuildHasherDefault<FastHasher>> =
            HashSet::default();
        for at in 0..holds.len() {
            let Some(&(lock, index)) = holds.get(at) else {
                break;
            };
            if current != Some(lock) {
                current = Some(lock);
                group = kept;
                seen.clear();
            }
            let thread = thread_of(index);
            let earlier = holds.get(group..kept).unwrap_or(&[]);
            let duplicate = if earlier.len() < SCAN {
                earlier.iter().any(|&(_, other)| thread_of(other) == thread)
            } else {
                if seen.is_empty() {
                    seen.extend(earlier.iter().map(|&(_, other)| thread_of(other)));
                }
                !seen.insert(thread)
            };
            if !duplicate {
                if let Some(slot) = holds.get_mut(kept) {
                    *slot = (lock, index);
                }
                kept += 1;
            }
        }
        holds.truncate(kept);
    }
}

/// Wait-for edges built in full (56 MB); past it a wait keeps one holder.
pub const MAX_EDGES: usize = 1 << 20;

/// The most threads listed behind deadlocks, all deadlocks together.
pub const MAX_BEHIND: usize = 1 << 20;

/// "`waiter` waits for `holder`, on `lock`"; `holder` is `None` when no
/// listed thread holds the lock (threads not created by Asterisk, or a
/// holder that was cut from the paste).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    pub waiter: ThreadRef,
    pub holder: Option<ThreadRef>,
    pub lock: LockRef,
    /// Index of the waiter's acquisition.
    pub wait: usize,
    /// Index of the holder's acquisition.
    pub hold: Option<usize>,
    /// The holder is inferred ([`Claim::ProbablyHolds`]), not recorded.
    pub probable: bool,
}

/// One step of a cycle: `thread` waits for `lock`, held by the next step's
/// thread (the last step's lock is held by the first thread).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CycleStep {
    pub thread: ThreadRef,
    pub lock: LockRef,
    /// Index into [`Analysis::edges`].
    pub edge: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deadlock {
    /// Every thread of the strongly connected component, by index.
    pub members: Vec<ThreadRef>,
    /// One cycle through the component, for the explanation.
    pub cycle: Vec<CycleStep>,
    /// Threads outside the component that wait on it, directly or not.
    pub behind: Vec<ThreadRef>,
    /// The cycle goes through an inferred hold: a possible deadlock.
    pub possible: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Analysis {
    pub edges: Vec<Edge>,
    /// Edges left out past [`MAX_EDGES`]; 0 on any real dump.
    pub dropped_edges: usize,
    pub deadlocks: Vec<Deadlock>,
    /// Deadlocks whose `behind` was cut at [`MAX_BEHIND`]; 0 on real dumps.
    pub behind_cut: usize,
    /// Per thread index: part of a cycle.
    pub in_cycle: Vec<bool>,
    /// Per thread index: not in a cycle but blocked on one, transitively.
    pub blocked_on_cycle: Vec<bool>,
    /// Per thread index: the index in `deadlocks` of its cycle.
    pub deadlock_of: Vec<Option<usize>>,
}

impl Analysis {
    pub fn in_cycle(&self, thread: ThreadRef) -> bool {
        self.in_cycle.get(thread.index()).copied().unwrap_or(false)
    }

    pub fn blocked_on_cycle(&self, thread: ThreadRef) -> bool {
        self.blocked_on_cycle
            .get(thread.index())
            .copied()
            .unwrap_or(false)
    }

    /// Whether this edge is one of a cycle (both ends in the same deadlock).
    pub fn edge_in_cycle(&self, edge: &Edge) -> bool {
        let of = |thread: ThreadRef| self.deadlock_of.get(thread.index()).copied().flatten();
        edge.holder
            .is_some_and(|holder| of(edge.waiter).is_some() && of(edge.waiter) == of(holder))
    }
}
