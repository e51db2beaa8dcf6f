//! The wait-for graph of a frozen Asterisk, whatever the evidence came from.
//!
//! `core show locks` (see `locks::dump`) is one source; gdb's reading of a
//! live process or a core (`locks::from_gdb`, no DEBUG_THREADS needed) is
//! another. Both only know facts of
//! the form "thread T holds lock L" and "thread T waits for lock L", so that is
//! the whole public API: [`LockGraph::add_thread`], [`LockGraph::add_lock`],
//! [`LockGraph::holds`], [`LockGraph::waits_for`]. [`LockGraph::analyze`] then
//! derives the edges "waiter waits for holder, on lock L", the deadlock cycles
//! and every thread stuck behind them; the renderers (`locks::render`: text, DOT,
//! JSON) only read the result.
//!
//! `from_gdb` does, per thread: `add_thread("LWP 1234", Some(1234),
//! start_fn)`; per blocked mutex: `add_lock(addr, "")` then `waits_for(thread,
//! lock, LockKind::Mutex, site)`, and with the owner LWP from
//! `__data.__owner`: `holds(owner_thread, lock, ...)`.
//!
//! Locks are keyed by address, never by name: most channel locks are called
//! `chan` and keying by name (as the old `graph_ast_locks.py` did) merges
//! unrelated locks into fake cycles. Cycle detection is an iterative Tarjan
//! pass because a dump can list 100,000 threads and a recursive walk of a long
//! wait chain would overflow the stack.

use std::collections::HashSet;
use std::fmt;
use std::hash::BuildHasherDefault;
use std::sync::Arc;

use serde::Serialize;

pub use super::hash::{FastHasher, FastMap};

use super::scc::{Csr, behind_any, stuck_behind, tarjan, walk_cycle};

/// A thread of the graph; only [`LockGraph::add_thread`] makes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ThreadRef(pub(super) usize);

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
///
/// The strings are shared: a dump names a few hundred files and functions
/// hundreds of thousands of times ([`LockGraph::site`] interns them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Site {
    pub file: Arc<str>,
    pub line: Option<u32>,
    pub func: Arc<str>,
}

impl Serialize for Site {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut site = serializer.serialize_struct("Site", 3)?;
        site.serialize_field("file", &*self.file)?;
        site.serialize_field("line", &self.line)?;
        site.serialize_field("func", &*self.func)?;
        site.end()
    }
}

impl Site {
    /// A site with its own strings; [`LockGraph::site`] shares them instead.
    pub fn new(file: &str, line: Option<u32>, func: &str) -> Site {
        Site {
            file: Arc::from(file),
            line,
            func: Arc::from(func),
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

/// Strings are shared (`Arc<str>`): thousands of threads carry the same
/// name, and the id doubles as the lookup key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thread {
    /// As the source printed it (`0xb6cffb70`, `3077372784`, `LWP 1234`).
    pub id: Arc<str>,
    pub lwp: Option<u64>,
    /// Asterisk's "start_fn started at [line] file caller()", spaces collapsed.
    pub name: Arc<str>,
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    /// Normalised address: the lock's identity.
    pub addr: String,
    /// The C expression Asterisk printed (`chan`, `&p->lock`), possibly empty
    /// (shared: most are called `chan`).
    pub name: Arc<str>,
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
    let addr = addr.trim();
    // What %p prints is already normal: skip the number round trip.
    if let Some(hex) = addr.strip_prefix("0x") {
        if !hex.is_empty()
            && !hex.starts_with('0')
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return addr.to_string();
        }
    }
    match addr_value(addr) {
        Some(value) => format!("{value:#x}"),
        None => clean(addr.trim()).to_ascii_lowercase(),
    }
}

/// Control characters (a terminal escape in a thread name) replaced by
/// spaces; borrowed when there are none, which is always on real dumps.
pub fn clean(text: &str) -> std::borrow::Cow<'_, str> {
    let dirty = text.bytes().any(|b| b < 0x20 || b == 0x7f)
        || (!text.is_ascii() && text.chars().any(char::is_control));
    if dirty {
        text.chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect::<String>()
            .into()
    } else {
        text.into()
    }
}

fn addr_value(addr: &str) -> Option<u128> {
    let addr = addr.trim();
    let hex = addr
        .strip_prefix("0x")
        .or_else(|| addr.strip_prefix("0X"))?;
    u128::from_str_radix(hex, 16).ok()
}

#[derive(Debug, Default, Clone)]
pub struct LockGraph {
    threads: Vec<Thread>,
    thread_by_id: FastMap<Arc<str>, usize>,
    locks: Vec<Lock>,
    /// Hex addresses by value, anything else (`(nil)`) by text.
    lock_by_value: FastMap<u128, usize>,
    lock_by_text: FastMap<String, usize>,
    acquisitions: Vec<Acquisition>,
    strings: HashSet<Arc<str>, BuildHasherDefault<FastHasher>>,
}

impl LockGraph {
    pub fn new() -> LockGraph {
        LockGraph::default()
    }

    /// Adds a thread, or returns the one with the same id; a later call can
    /// fill in an LWP or name the first one lacked.
    pub fn add_thread(&mut self, id: &str, lwp: Option<u64>, name: &str) -> ThreadRef {
        if let Some(&index) = self.thread_by_id.get(id) {
            let empty = self.threads.get(index).is_some_and(|t| t.name.is_empty());
            let name = if empty { Some(self.intern(name)) } else { None };
            if let Some(thread) = self.threads.get_mut(index) {
                if thread.lwp.is_none() {
                    thread.lwp = lwp;
                }
                if let Some(name) = name {
                    thread.name = name;
                }
            }
            return ThreadRef(index);
        }
        let index = self.threads.len();
        let id: Arc<str> = Arc::from(&*clean(id));
        let name = self.intern(name);
        self.threads.push(Thread {
            id: Arc::clone(&id),
            lwp,
            name,
        });
        self.thread_by_id.insert(id, index);
        ThreadRef(index)
    }

    /// Adds a lock keyed by its address, or returns the one already there
    /// (keeping the first non-empty name).
    pub fn add_lock(&mut self, addr: &str, name: &str) -> LockRef {
        let value = addr_value(addr);
        let found = match value {
            Some(value) => self.lock_by_value.get(&value),
            None => self.lock_by_text.get(&normalize_addr(addr)),
        };
        if let Some(&index) = found {
            let empty = self.locks.get(index).is_some_and(|l| l.name.is_empty());
            if empty && !name.is_empty() {
                let name = self.intern(name);
                if let Some(lock) = self.locks.get_mut(index) {
                    lock.name = name;
                }
            }
            return LockRef(index);
        }
        let index = self.locks.len();
        let key = normalize_addr(addr);
        match value {
            Some(value) => self.lock_by_value.insert(value, index),
            None => self.lock_by_text.insert(key.clone(), index),
        };
        let name = self.intern(name);
        self.locks.push(Lock { addr: key, name });
        LockRef(index)
    }

    /// A [`Site`] whose strings are shared with the graph's other sites.
    pub fn site(&mut self, file: &str, line: Option<u32>, func: &str) -> Site {
        Site {
            file: self.intern(file),
            line,
            func: self.intern(func),
        }
    }

    /// Every string of the graph comes through here (or `add_thread` for
    /// ids), so this is where control characters from a mangled or hostile
    /// dump are neutralised before any renderer or terminal sees them.
    fn intern(&mut self, text: &str) -> Arc<str> {
        if let Some(shared) = self.strings.get(text) {
            return Arc::clone(shared);
        }
        let text = clean(text);
        if let Some(shared) = self.strings.get(&*text) {
            return Arc::clone(shared);
        }
        let shared: Arc<str> = Arc::from(&*text);
        self.strings.insert(Arc::clone(&shared));
        shared
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
        match addr_value(addr) {
            Some(value) => self.lock_by_value.get(&value),
            None => self.lock_by_text.get(&normalize_addr(addr)),
        }
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

    /// The thread at a position of [`LockGraph::threads`].
    pub fn thread_at(&self, index: usize) -> Option<ThreadRef> {
        (index < self.threads.len()).then_some(ThreadRef(index))
    }

    /// The lock at a position of [`LockGraph::locks`].
    pub fn lock_at(&self, index: usize) -> Option<LockRef> {
        (index < self.locks.len()).then_some(LockRef(index))
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
        let mut dropped_edges = 0;
        let edges = self.edges(&mut dropped_edges);
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
        // Thousands of deadlocks with a thread waiting on all of them made
        // deadlocks * threads entries (12 s for 4,000 + 4,000): the lists
        // share a budget, and the flags come from one search from all cycles.
        let mut budget = MAX_BEHIND;
        let mut behind_cut = 0;
        for deadlock in &mut deadlocks {
            let (behind, complete) =
                stuck_behind(&reverse, &components.of, &deadlock.members, &mut budget);
            behind_cut += usize::from(!complete);
            deadlock.behind = behind.into_iter().map(ThreadRef).collect();
        }
        for thread in behind_any(&reverse, &in_cycle) {
            if let Some(flag) = blocked_on_cycle.get_mut(thread) {
                *flag = true;
            }
        }
        // Oldest thread first: the cycle order then reads the same run after run.
        deadlocks.sort_by_key(|deadlock| deadlock.cycle.first().map(|step| step.thread));
        let mut deadlock_of = vec![None; thread_count];
        for (index, deadlock) in deadlocks.iter().enumerate() {
            for member in &deadlock.members {
                if let Some(slot) = deadlock_of.get_mut(member.0) {
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
        // an allocation per lock), each thread once, in the order listed.
        let mut holds: Vec<(usize, ThreadRef, usize)> = self
            .acquisitions
            .iter()
            .enumerate()
            .filter(|(_, acq)| acq.claim == Claim::Holds)
            .map(|(index, acq)| (acq.lock.0, acq.thread, index))
            .collect();
        holds.sort_unstable();
        holds.dedup_by_key(|&mut (lock, thread, _)| (lock, thread));
        holds.sort_unstable_by_key(|&(lock, _, index)| (lock, index));
        let mut start = vec![0usize; self.locks.len() + 1];
        for &(lock, _, _) in &holds {
            if let Some(slot) = start.get_mut(lock + 1) {
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
            let from = start.get(lock).copied().unwrap_or(0);
            let to = start.get(lock + 1).copied().unwrap_or(from);
            holds.get(from..to).unwrap_or(&[])
        };

        let mut edges = Vec::new();
        for (index, acq) in self.acquisitions.iter().enumerate() {
            if acq.claim != Claim::WaitsFor {
                continue;
            }
            let mut any = false;
            let mut only_self = false;
            for &(_, holder, hold) in holders_of(acq.lock.0) {
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
        let of = |thread: ThreadRef| self.deadlock_of.get(thread.0).copied().flatten();
        edge.holder
            .is_some_and(|holder| of(edge.waiter).is_some() && of(edge.waiter) == of(holder))
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
pub(crate) mod fuzz_tests;
