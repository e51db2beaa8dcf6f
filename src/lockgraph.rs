//! The wait-for graph of a frozen Asterisk, whatever the evidence came from.
//!
//! `core show locks` (see `lockdump`) is one source; a later gdb-based freeze
//! analysis of a live process or a core is another. Both only know facts of
//! the form "thread T holds lock L" and "thread T waits for lock L", so that is
//! the whole public API: [`LockGraph::add_thread`], [`LockGraph::add_lock`],
//! [`LockGraph::holds`], [`LockGraph::waits_for`]. [`LockGraph::analyze`] then
//! derives the edges "waiter waits for holder, on lock L", the deadlock cycles
//! and every thread stuck behind them; the renderers in `lockgraph_render`
//! only read the result.
//!
//! Locks are keyed by address, never by name: most channel locks are called
//! `chan` and keying by name (as the old `graph_ast_locks.py` did) merges
//! unrelated locks into fake cycles. Cycle detection is an iterative Tarjan
//! pass because a dump can list 100,000 threads and a recursive walk of a long
//! wait chain would overflow the stack.

use std::collections::HashMap;
use std::fmt;

use serde::Serialize;

#[path = "lockgraph_render.rs"]
pub mod render;

/// A thread of the graph; only [`LockGraph::add_thread`] makes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ThreadRef(usize);

impl ThreadRef {
    /// Position in [`LockGraph::threads`].
    pub fn index(self) -> usize {
        self.0
    }
}

/// A lock of the graph; only [`LockGraph::add_lock`] makes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LockRef(usize);

impl LockRef {
    /// Position in [`LockGraph::locks`].
    pub fn index(self) -> usize {
        self.0
    }
}

/// How a lock was taken (or is being taken).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum LockKind {
    #[serde(rename = "MUTEX")]
    Mutex,
    #[serde(rename = "RDLOCK")]
    Rdlock,
    #[serde(rename = "WRLOCK")]
    Wrlock,
    #[serde(rename = "UNKNOWN")]
    Unknown,
}

impl LockKind {
    pub fn parse(word: &str) -> LockKind {
        match word {
            "MUTEX" => LockKind::Mutex,
            "RDLOCK" => LockKind::Rdlock,
            "WRLOCK" => LockKind::Wrlock,
            _ => LockKind::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LockKind::Mutex => "MUTEX",
            LockKind::Rdlock => "RDLOCK",
            LockKind::Wrlock => "WRLOCK",
            LockKind::Unknown => "UNKNOWN",
        }
    }
}

/// A place in Asterisk's source: where a lock was taken or is awaited.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Site {
    pub file: String,
    pub line: Option<u32>,
    pub func: String,
}

impl Site {
    pub fn new(file: &str, line: Option<u32>, func: &str) -> Site {
        Site {
            file: file.to_string(),
            line,
            func: func.to_string(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.file.is_empty() && self.line.is_none() && self.func.is_empty()
    }
}

impl fmt::Display for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.func.is_empty() {
            write!(f, " {}", self.func)?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Thread {
    /// As the source printed it (`0xb6cffb70`, `3077372784`, `LWP 1234`).
    pub id: String,
    pub lwp: Option<u64>,
    /// Asterisk's "start_fn started at [line] file caller()", spaces collapsed.
    pub name: String,
}

impl Thread {
    /// The start function alone: the readable part of the name.
    pub fn short_name(&self) -> &str {
        match self.name.find(" started at") {
            Some(end) => self.name.get(..end).unwrap_or(&self.name),
            None => &self.name,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lock {
    /// Normalised address: the lock's identity.
    pub addr: String,
    /// The C expression Asterisk printed (`chan`, `&p->lock`), possibly empty.
    pub name: String,
}

/// What a thread does with a lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Claim {
    Holds,
    WaitsFor,
    /// A trylock that failed: the thread moved on, it is not blocked.
    TriedAndFailed,
}

/// One fact: `thread` holds / waits for / failed to trylock `lock`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acquisition {
    pub thread: ThreadRef,
    pub lock: LockRef,
    pub claim: Claim,
    pub kind: LockKind,
    /// Where this thread took (or is trying to take) the lock.
    pub site: Site,
    /// For a wait: where the current holder took the lock, one per
    /// reentrancy level (Asterisk's "Locked Here" lines, which do not name
    /// the holder).
    pub locked_here: Vec<Site>,
}

/// Turns `0x00007F..` and `0x7f..` into the same key, so that sources that
/// pad addresses differently still agree on which lock is which.
pub fn normalize_addr(addr: &str) -> String {
    let lower = addr.trim().to_ascii_lowercase();
    if let Some(hex) = lower.strip_prefix("0x") {
        if let Ok(value) = u128::from_str_radix(hex, 16) {
            return format!("{value:#x}");
        }
    }
    lower
}

#[derive(Debug, Default, Clone)]
pub struct LockGraph {
    threads: Vec<Thread>,
    thread_by_id: HashMap<String, usize>,
    locks: Vec<Lock>,
    lock_by_addr: HashMap<String, usize>,
    acquisitions: Vec<Acquisition>,
}

impl LockGraph {
    pub fn new() -> LockGraph {
        LockGraph::default()
    }

    /// Adds a thread, or returns the one with the same id; a later call can
    /// fill in an LWP or name the first one lacked.
    pub fn add_thread(&mut self, id: &str, lwp: Option<u64>, name: &str) -> ThreadRef {
        if let Some(&index) = self.thread_by_id.get(id) {
            if let Some(thread) = self.threads.get_mut(index) {
                if thread.lwp.is_none() {
                    thread.lwp = lwp;
                }
                if thread.name.is_empty() {
                    thread.name = name.to_string();
                }
            }
            return ThreadRef(index);
        }
        let index = self.threads.len();
        self.threads.push(Thread {
            id: id.to_string(),
            lwp,
            name: name.to_string(),
        });
        self.thread_by_id.insert(id.to_string(), index);
        ThreadRef(index)
    }

    /// Adds a lock keyed by its address, or returns the one already there
    /// (keeping the first non-empty name).
    pub fn add_lock(&mut self, addr: &str, name: &str) -> LockRef {
        let key = normalize_addr(addr);
        if let Some(&index) = self.lock_by_addr.get(&key) {
            if let Some(lock) = self.locks.get_mut(index) {
                if lock.name.is_empty() {
                    lock.name = name.to_string();
                }
            }
            return LockRef(index);
        }
        let index = self.locks.len();
        self.locks.push(Lock {
            addr: key.clone(),
            name: name.to_string(),
        });
        self.lock_by_addr.insert(key, index);
        LockRef(index)
    }

    /// Records that `thread` holds `lock`. Several holders of one lock are
    /// kept (readers of an rwlock).
    pub fn holds(&mut self, thread: ThreadRef, lock: LockRef, kind: LockKind, site: Site) -> usize {
        self.record(thread, lock, Claim::Holds, kind, site)
    }

    /// Records that `thread` is blocked waiting for `lock`.
    pub fn waits_for(
        &mut self,
        thread: ThreadRef,
        lock: LockRef,
        kind: LockKind,
        site: Site,
    ) -> usize {
        self.record(thread, lock, Claim::WaitsFor, kind, site)
    }

    /// Records a failed trylock: context for the reader, not a wait.
    pub fn tried_and_failed(
        &mut self,
        thread: ThreadRef,
        lock: LockRef,
        kind: LockKind,
        site: Site,
    ) -> usize {
        self.record(thread, lock, Claim::TriedAndFailed, kind, site)
    }

    /// Adds where the holder of an awaited lock took it (acquisition index
    /// as returned by [`LockGraph::waits_for`]); ignored for other indexes.
    pub fn add_locked_here(&mut self, acquisition: usize, site: Site) {
        if let Some(acq) = self.acquisitions.get_mut(acquisition) {
            acq.locked_here.push(site);
        }
    }

    fn record(
        &mut self,
        thread: ThreadRef,
        lock: LockRef,
        claim: Claim,
        kind: LockKind,
        site: Site,
    ) -> usize {
        self.acquisitions.push(Acquisition {
            thread,
            lock,
            claim,
            kind,
            site,
            locked_here: Vec::new(),
        });
        self.acquisitions.len() - 1
    }

    pub fn find_thread(&self, id: &str) -> Option<ThreadRef> {
        self.thread_by_id.get(id).copied().map(ThreadRef)
    }

    /// For sources that only know the owner's LWP (glibc's `__owner`).
    pub fn find_thread_by_lwp(&self, lwp: u64) -> Option<ThreadRef> {
        self.threads
            .iter()
            .position(|thread| thread.lwp == Some(lwp))
            .map(ThreadRef)
    }

    pub fn find_lock(&self, addr: &str) -> Option<LockRef> {
        self.lock_by_addr
            .get(&normalize_addr(addr))
            .copied()
            .map(LockRef)
    }

    pub fn threads(&self) -> &[Thread] {
        &self.threads
    }

    pub fn locks(&self) -> &[Lock] {
        &self.locks
    }

    pub fn acquisitions(&self) -> &[Acquisition] {
        &self.acquisitions
    }

    pub fn thread(&self, thread: ThreadRef) -> Option<&Thread> {
        self.threads.get(thread.0)
    }

    pub fn lock(&self, lock: LockRef) -> Option<&Lock> {
        self.locks.get(lock.0)
    }

    pub fn is_empty(&self) -> bool {
        self.threads.is_empty()
    }

    /// Builds the wait-for edges and finds the cycles and who is stuck
    /// behind them.
    pub fn analyze(&self) -> Analysis {
        let edges = self.edges();
        let thread_count = self.threads.len();
        let graph = Csr::new(thread_count, &edges, |edge| {
            edge.holder.map(|holder| (edge.waiter.0, holder.0))
        });
        let reverse = Csr::new(thread_count, &edges, |edge| {
            edge.holder.map(|holder| (holder.0, edge.waiter.0))
        });
        let components = tarjan(&graph);

        let mut in_cycle = vec![false; thread_count];
        let mut blocked_on_cycle = vec![false; thread_count];
        let mut deadlocks = Vec::new();
        for (component, members) in components.members.iter().enumerate() {
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
            let steps = cycle
                .into_iter()
                .filter_map(|(thread, edge)| {
                    edges.get(edge).map(|e| CycleStep {
                        thread: ThreadRef(thread),
                        lock: e.lock,
                        edge,
                    })
                })
                .collect();
            let mut sorted: Vec<usize> = members.clone();
            sorted.sort_unstable();
            deadlocks.push(Deadlock {
                members: sorted.into_iter().map(ThreadRef).collect(),
                cycle: steps,
                behind: Vec::new(),
            });
        }
        for deadlock in &mut deadlocks {
            let behind = stuck_behind(&reverse, &components.of, &deadlock.members);
            for &thread in &behind {
                if let Some(flag) = blocked_on_cycle.get_mut(thread) {
                    *flag = true;
                }
            }
            deadlock.behind = behind.into_iter().map(ThreadRef).collect();
        }
        for (flag, &cyclic) in blocked_on_cycle.iter_mut().zip(&in_cycle) {
            if cyclic {
                *flag = false;
            }
        }
        // Oldest thread first: the cycle order then reads the same run after run.
        deadlocks.sort_by_key(|deadlock| deadlock.cycle.first().map(|step| step.thread));
        Analysis {
            edges,
            deadlocks,
            in_cycle,
            blocked_on_cycle,
        }
    }

    fn edges(&self) -> Vec<Edge> {
        let mut holders: Vec<Vec<(ThreadRef, usize)>> = vec![Vec::new(); self.locks.len()];
        for (index, acq) in self.acquisitions.iter().enumerate() {
            if acq.claim == Claim::Holds {
                if let Some(list) = holders.get_mut(acq.lock.0) {
                    if !list.iter().any(|&(thread, _)| thread == acq.thread) {
                        list.push((acq.thread, index));
                    }
                }
            }
        }
        let mut edges = Vec::new();
        for (index, acq) in self.acquisitions.iter().enumerate() {
            if acq.claim != Claim::WaitsFor {
                continue;
            }
            let mut any = false;
            let mut only_self = false;
            for &(holder, hold) in holders.get(acq.lock.0).map(Vec::as_slice).unwrap_or(&[]) {
                // Asterisk mutexes are recursive: waiting for a mutex one
                // already holds does not block. An rwlock does (upgrade).
                if holder == acq.thread && acq.kind == LockKind::Mutex {
                    only_self = true;
                    continue;
                }
                any = true;
                edges.push(Edge {
                    waiter: acq.thread,
                    holder: Some(holder),
                    lock: acq.lock,
                    wait: index,
                    hold: Some(hold),
                });
            }
            if !any && !only_self {
                edges.push(Edge {
                    waiter: acq.thread,
                    holder: None,
                    lock: acq.lock,
                    wait: index,
                    hold: None,
                });
            }
        }
        edges
    }
}

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
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Analysis {
    pub edges: Vec<Edge>,
    pub deadlocks: Vec<Deadlock>,
    /// Per thread index: part of a cycle.
    pub in_cycle: Vec<bool>,
    /// Per thread index: not in a cycle but blocked on one, transitively.
    pub blocked_on_cycle: Vec<bool>,
}

impl Analysis {
    pub fn in_cycle(&self, thread: ThreadRef) -> bool {
        self.in_cycle.get(thread.0).copied().unwrap_or(false)
    }

    pub fn blocked_on_cycle(&self, thread: ThreadRef) -> bool {
        self.blocked_on_cycle
            .get(thread.0)
            .copied()
            .unwrap_or(false)
    }

    /// Whether this edge is one of a cycle (both ends in the same deadlock).
    pub fn edge_in_cycle(&self, edge: &Edge) -> bool {
        edge.holder.is_some_and(|holder| {
            self.deadlocks.iter().any(|deadlock| {
                deadlock.members.binary_search(&edge.waiter).is_ok()
                    && deadlock.members.binary_search(&holder).is_ok()
            })
        })
    }
}

/// Adjacency lists in two flat arrays: 100,000 threads stay a few MB.
struct Csr {
    start: Vec<usize>,
    /// (target node, edge index)
    targets: Vec<(usize, usize)>,
}

impl Csr {
    fn new(nodes: usize, edges: &[Edge], pick: impl Fn(&Edge) -> Option<(usize, usize)>) -> Csr {
        let mut count = vec![0usize; nodes + 1];
        for edge in edges {
            if let Some((from, to)) = pick(edge) {
                if from < nodes && to < nodes {
                    if let Some(slot) = count.get_mut(from + 1) {
                        *slot += 1;
                    }
                }
            }
        }
        for i in 1..count.len() {
            let previous = count.get(i - 1).copied().unwrap_or(0);
            if let Some(slot) = count.get_mut(i) {
                *slot += previous;
            }
        }
        let mut fill = count.clone();
        let mut targets = vec![(0, 0); count.last().copied().unwrap_or(0)];
        for (index, edge) in edges.iter().enumerate() {
            if let Some((from, to)) = pick(edge) {
                if from < nodes && to < nodes {
                    if let Some(pos) = fill.get_mut(from) {
                        if let Some(slot) = targets.get_mut(*pos) {
                            *slot = (to, index);
                        }
                        *pos += 1;
                    }
                }
            }
        }
        Csr {
            start: count,
            targets,
        }
    }

    fn targets(&self, node: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
        let from = self.start.get(node).copied().unwrap_or(0);
        let to = self.start.get(node + 1).copied().unwrap_or(from);
        self.targets.get(from..to).unwrap_or(&[]).iter().copied()
    }

    fn target_at(&self, node: usize, offset: usize) -> Option<usize> {
        let from = self.start.get(node).copied()?;
        let to = self.start.get(node + 1).copied()?;
        let pos = from + offset;
        if pos < to {
            self.targets.get(pos).map(|&(target, _)| target)
        } else {
            None
        }
    }
}

struct Components {
    /// Component of each node.
    of: Vec<usize>,
    members: Vec<Vec<usize>>,
}

const UNVISITED: usize = usize::MAX;

/// Tarjan's strongly connected components with an explicit call stack.
fn tarjan(graph: &Csr) -> Components {
    let nodes = graph.start.len().saturating_sub(1);
    let mut index = vec![UNVISITED; nodes];
    let mut low = vec![0usize; nodes];
    let mut on_stack = vec![false; nodes];
    let mut stack: Vec<usize> = Vec::new();
    let mut calls: Vec<(usize, usize)> = Vec::new();
    let mut of = vec![UNVISITED; nodes];
    let mut members: Vec<Vec<usize>> = Vec::new();
    let mut next_index = 0usize;

    for root in 0..nodes {
        if index.get(root).copied() != Some(UNVISITED) {
            continue;
        }
        visit(
            root,
            &mut next_index,
            &mut index,
            &mut low,
            &mut on_stack,
            &mut stack,
        );
        calls.push((root, 0));
        while let Some(&(node, offset)) = calls.last() {
            if let Some(target) = graph.target_at(node, offset) {
                if let Some(call) = calls.last_mut() {
                    call.1 += 1;
                }
                match index.get(target).copied() {
                    Some(UNVISITED) => {
                        visit(
                            target,
                            &mut next_index,
                            &mut index,
                            &mut low,
                            &mut on_stack,
                            &mut stack,
                        );
                        calls.push((target, 0));
                    }
                    Some(target_index) if on_stack.get(target).copied().unwrap_or(false) => {
                        if let Some(l) = low.get_mut(node) {
                            *l = (*l).min(target_index);
                        }
                    }
                    _ => {}
                }
                continue;
            }
            calls.pop();
            let node_low = low.get(node).copied().unwrap_or(0);
            if Some(node_low) == index.get(node).copied() {
                let component = members.len();
                let mut list = Vec::new();
                while let Some(member) = stack.pop() {
                    if let Some(flag) = on_stack.get_mut(member) {
                        *flag = false;
                    }
                    if let Some(slot) = of.get_mut(member) {
                        *slot = component;
                    }
                    list.push(member);
                    if member == node {
                        break;
                    }
                }
                members.push(list);
            }
            if let Some(&(parent, _)) = calls.last() {
                if let Some(l) = low.get_mut(parent) {
                    *l = (*l).min(node_low);
                }
            }
        }
    }
    Components { of, members }
}

fn visit(
    node: usize,
    next_index: &mut usize,
    index: &mut [usize],
    low: &mut [usize],
    on_stack: &mut [bool],
    stack: &mut Vec<usize>,
) {
    if let Some(slot) = index.get_mut(node) {
        *slot = *next_index;
    }
    if let Some(slot) = low.get_mut(node) {
        *slot = *next_index;
    }
    if let Some(flag) = on_stack.get_mut(node) {
        *flag = true;
    }
    *next_index += 1;
    stack.push(node);
}

/// Follows edges inside one component from its lowest thread until a thread
/// repeats: that loop is a real cycle to explain, as (thread, edge) steps.
fn walk_cycle(
    graph: &Csr,
    of: &[usize],
    component: usize,
    members: &[usize],
) -> Vec<(usize, usize)> {
    let Some(&start) = members.iter().min() else {
        return Vec::new();
    };
    let mut seen: HashMap<usize, usize> = HashMap::new();
    let mut path: Vec<(usize, usize)> = Vec::new();
    let mut node = start;
    loop {
        if let Some(&pos) = seen.get(&node) {
            let mut cycle = path.split_off(pos);
            if let Some(lowest) = (0..cycle.len()).min_by_key(|&i| cycle.get(i).map(|s| s.0)) {
                cycle.rotate_left(lowest);
            }
            return cycle;
        }
        let next = graph
            .targets(node)
            .find(|&(target, _)| of.get(target).copied() == Some(component));
        let Some((target, edge)) = next else {
            return path;
        };
        seen.insert(node, path.len());
        path.push((node, edge));
        node = target;
    }
}

/// Every thread that waits, directly or through others, on `members`.
fn stuck_behind(reverse: &Csr, of: &[usize], members: &[ThreadRef]) -> Vec<usize> {
    let component = members.first().and_then(|m| of.get(m.0).copied());
    let mut seen: HashMap<usize, ()> = HashMap::new();
    let mut queue: Vec<usize> = members.iter().map(|m| m.0).collect();
    let mut behind = Vec::new();
    while let Some(node) = queue.pop() {
        for (waiter, _) in reverse.targets(node) {
            if of.get(waiter).copied() == component || seen.contains_key(&waiter) {
                continue;
            }
            seen.insert(waiter, ());
            behind.push(waiter);
            queue.push(waiter);
        }
    }
    behind.sort_unstable();
    behind
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mutex(graph: &mut LockGraph, addr: &str) -> LockRef {
        graph.add_lock(addr, "m")
    }

    fn site() -> Site {
        Site::new("a.c", Some(1), "f")
    }

    #[test]
    fn two_thread_deadlock_and_followers() {
        let mut g = LockGraph::new();
        let a = g.add_thread("A", None, "");
        let b = g.add_thread("B", None, "");
        let c = g.add_thread("C", None, "");
        let d = g.add_thread("D", None, "");
        let l1 = mutex(&mut g, "0x1");
        let l2 = mutex(&mut g, "0x2");
        let l3 = mutex(&mut g, "0x3");
        g.holds(a, l1, LockKind::Mutex, site());
        g.waits_for(a, l2, LockKind::Mutex, site());
        g.holds(b, l2, LockKind::Mutex, site());
        g.waits_for(b, l1, LockKind::Mutex, site());
        g.holds(c, l3, LockKind::Mutex, site());
        g.waits_for(c, l1, LockKind::Mutex, site());
        g.waits_for(d, l3, LockKind::Mutex, site());
        let analysis = g.analyze();
        assert_eq!(analysis.deadlocks.len(), 1);
        let deadlock = &analysis.deadlocks[0];
        assert_eq!(deadlock.members, vec![a, b]);
        let order: Vec<_> = deadlock.cycle.iter().map(|s| (s.thread, s.lock)).collect();
        assert_eq!(order, vec![(a, l2), (b, l1)]);
        assert_eq!(deadlock.behind, vec![c, d]);
        assert!(analysis.blocked_on_cycle(d));
        assert!(!analysis.blocked_on_cycle(a));
        assert!(analysis.in_cycle(b));
    }

    #[test]
    fn unlisted_holder_is_an_edge_without_holder() {
        let mut g = LockGraph::new();
        let a = g.add_thread("A", None, "");
        let l = mutex(&mut g, "0x10");
        g.waits_for(a, l, LockKind::Mutex, site());
        let analysis = g.analyze();
        assert_eq!(analysis.edges.len(), 1);
        assert_eq!(analysis.edges[0].holder, None);
        assert!(analysis.deadlocks.is_empty());
    }

    #[test]
    fn every_reader_is_a_holder() {
        let mut g = LockGraph::new();
        let r1 = g.add_thread("R1", None, "");
        let r2 = g.add_thread("R2", None, "");
        let w = g.add_thread("W", None, "");
        let l = mutex(&mut g, "0x20");
        g.holds(r1, l, LockKind::Rdlock, site());
        g.holds(r2, l, LockKind::Rdlock, site());
        g.waits_for(w, l, LockKind::Wrlock, site());
        let holders: Vec<_> = g.analyze().edges.iter().map(|e| e.holder).collect();
        assert_eq!(holders, vec![Some(r1), Some(r2)]);
    }

    #[test]
    fn addresses_are_normalised() {
        let mut g = LockGraph::new();
        let a = g.add_lock("0x00007F00aa", "chan");
        let b = g.add_lock("0x7f00AA", "other");
        assert_eq!(a, b);
        assert_eq!(g.locks()[0].name, "chan");
        assert_ne!(g.add_lock("0x7f00ab", "chan"), a);
    }

    #[test]
    fn recursive_mutex_is_no_self_deadlock_but_rwlock_upgrade_is() {
        let mut g = LockGraph::new();
        let a = g.add_thread("A", None, "");
        let m = mutex(&mut g, "0x1");
        g.holds(a, m, LockKind::Mutex, site());
        g.waits_for(a, m, LockKind::Mutex, site());
        assert!(g.analyze().deadlocks.is_empty());
        assert!(g.analyze().edges.is_empty());

        let mut g = LockGraph::new();
        let a = g.add_thread("A", None, "");
        let rw = mutex(&mut g, "0x2");
        g.holds(a, rw, LockKind::Rdlock, site());
        g.waits_for(a, rw, LockKind::Wrlock, site());
        let analysis = g.analyze();
        assert_eq!(analysis.deadlocks.len(), 1);
        assert_eq!(analysis.deadlocks[0].cycle.len(), 1);
    }

    #[test]
    fn three_thread_cycle_in_order() {
        let mut g = LockGraph::new();
        let t: Vec<_> = (0..3)
            .map(|i| g.add_thread(&format!("T{i}"), None, ""))
            .collect();
        let l: Vec<_> = (0..3)
            .map(|i| mutex(&mut g, &format!("0x{}", i + 1)))
            .collect();
        for i in 0..3 {
            g.holds(t[i], l[i], LockKind::Mutex, site());
            g.waits_for(t[i], l[(i + 1) % 3], LockKind::Mutex, site());
        }
        let analysis = g.analyze();
        let order: Vec<_> = analysis.deadlocks[0]
            .cycle
            .iter()
            .map(|s| s.thread)
            .collect();
        assert_eq!(order, t);
    }

    #[test]
    fn long_chain_and_big_cycle_do_not_overflow_the_stack() {
        let mut g = LockGraph::new();
        let n = 100_000;
        let threads: Vec<_> = (0..n)
            .map(|i| g.add_thread(&i.to_string(), None, ""))
            .collect();
        let locks: Vec<_> = (0..n)
            .map(|i| mutex(&mut g, &format!("{:#x}", i + 16)))
            .collect();
        for i in 0..n {
            g.holds(threads[i], locks[i], LockKind::Mutex, site());
            g.waits_for(threads[i], locks[(i + 1) % n], LockKind::Mutex, site());
        }
        let analysis = g.analyze();
        assert_eq!(analysis.deadlocks.len(), 1);
        assert_eq!(analysis.deadlocks[0].cycle.len(), n);
    }

    #[test]
    fn long_chain_into_a_cycle() {
        let mut g = LockGraph::new();
        let n = 100_000;
        let threads: Vec<_> = (0..n)
            .map(|i| g.add_thread(&i.to_string(), None, ""))
            .collect();
        let locks: Vec<_> = (0..n)
            .map(|i| mutex(&mut g, &format!("{:#x}", i + 16)))
            .collect();
        for i in 0..n {
            g.holds(threads[i], locks[i], LockKind::Mutex, site());
        }
        // 0 <-> 1 deadlock, everyone else queues up behind.
        g.waits_for(threads[0], locks[1], LockKind::Mutex, site());
        for i in 1..n {
            g.waits_for(threads[i], locks[i - 1], LockKind::Mutex, site());
        }
        let analysis = g.analyze();
        assert_eq!(analysis.deadlocks.len(), 1);
        assert_eq!(analysis.deadlocks[0].behind.len(), n - 2);
    }
}
