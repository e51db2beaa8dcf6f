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
use std::hash::BuildHasherDefault;
use std::sync::Arc;

use serde::Serialize;

pub use super::hash::{FastHasher, FastMap};

pub use super::analysis::{Analysis, CycleStep, Deadlock, Edge, MAX_BEHIND, MAX_EDGES};
pub use values::{Addr, Site, SiteData, SiteList, ThreadId};

use lookup::{LocksByValue, ThreadsById};

mod lookup;
mod values;

/// A thread of the graph; only [`LockGraph::add_thread`] makes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ThreadRef(pub(super) u32);

impl ThreadRef {
    /// Position in [`LockGraph::threads`].
    pub fn index(self) -> usize {
        self.0 as usize
    }

    /// Four bytes, not eight, in every acquisition and edge: past u32::MAX
    /// threads (a dump of hundreds of GB) refs would stick at the last one.
    pub(super) fn at(index: usize) -> ThreadRef {
        ThreadRef(u32::try_from(index).unwrap_or(u32::MAX))
    }
}

/// A lock of the graph; only [`LockGraph::add_lock`] makes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LockRef(pub(super) u32);

impl LockRef {
    /// Position in [`LockGraph::locks`].
    pub fn index(self) -> usize {
        self.0 as usize
    }

    /// As [`ThreadRef::at`].
    pub(super) fn at(index: usize) -> LockRef {
        LockRef(u32::try_from(index).unwrap_or(u32::MAX))
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

/// Names are shared (`Arc<str>`): thousands of threads carry the same one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thread {
    /// As the source printed it (`0xb6cffb70`, `3077372784`, `LWP 1234`).
    pub id: ThreadId,
    pub lwp: Option<u64>,
    /// Asterisk's "start_fn started at [line] file caller()", spaces collapsed.
    pub name: Arc<str>,
}

impl Thread {
    /// The start function alone: the readable part of the name.
    pub fn short_name(&self) -> &str {
        // memchr's searcher: `str::find` builds a two-way searcher per call,
        // and JSON asks once per thread.
        match memchr::memmem::find(self.name.as_bytes(), b" started at") {
            Some(end) => self.name.get(..end).unwrap_or(&self.name),
            None => &self.name,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    /// Normalised address: the lock's identity.
    pub addr: Addr,
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
    /// Inferred, not recorded: glibc does not record an rwlock's readers, so
    /// a source may only guess that a thread holds one as reader.
    ProbablyHolds,
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
    pub locked_here: SiteList,
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

/// Past this many entries a graph's vectors grow by an eighth, not double:
/// a doubling at 600,000 acquisitions left 400,000 slots (13 MB) unused.
const GROW_STEP_FROM: usize = 1 << 16;

fn grow<T>(items: &mut Vec<T>) {
    if items.len() == items.capacity() && items.len() >= GROW_STEP_FROM {
        items.reserve_exact(items.len() / 8);
    }
}

enum LockKey {
    Value(u64),
    Text(String),
}

/// How a lock is looked up: by value when the address fits 64 bits (all of
/// them on real dumps), else by its normalised text, which is as unique.
fn lock_key(addr: &str) -> LockKey {
    match addr_value(addr).map(u64::try_from) {
        Some(Ok(value)) => LockKey::Value(value),
        _ => LockKey::Text(normalize_addr(addr)),
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
    pub(super) threads: Vec<Thread>,
    thread_by_id: ThreadsById,
    pub(super) locks: Vec<Lock>,
    /// Hex addresses by value, anything else (`(nil)`) by text.
    lock_by_value: LocksByValue,
    lock_by_text: FastMap<Arc<str>, u32>,
    pub(super) acquisitions: Vec<Acquisition>,
    strings: HashSet<Arc<str>, BuildHasherDefault<FastHasher>>,
    /// The strings interned last, by a cheap mix of their length and three
    /// bytes: a dump names the same files, functions and lock names on every
    /// line, and this spares hashing them each time.
    recent: Vec<Option<Arc<str>>>,
    /// Every site once: acquisitions hold a pointer to theirs.
    sites: HashSet<Site, BuildHasherDefault<FastHasher>>,
    /// The sites made last, as `recent` is for strings.
    recent_sites: Vec<Option<Site>>,
    /// Every "Locked Here" list once: waits hold a pointer to theirs.
    site_lists: HashSet<Arc<Vec<Site>>, BuildHasherDefault<FastHasher>>,
    /// The list made last, from which list and site: every wait of a dump
    /// often has the same one.
    last_list: Option<(SiteList, Site, SiteList)>,
    /// [`LockGraph::drop_lookups`] emptied the tables above: they are built
    /// again if anything is added.
    lookups_dropped: bool,
}

/// Slots of [`LockGraph::recent`].
const RECENT: usize = 256;

fn recent_slot(text: &str) -> usize {
    let bytes = text.as_bytes();
    let len = bytes.len();
    let at = |index: usize| usize::from(bytes.get(index).copied().unwrap_or(0));
    (len.wrapping_mul(31) ^ at(0) ^ at(len / 2).wrapping_mul(7) ^ at(len.wrapping_sub(1)) << 3)
        % RECENT
}

fn site_slot(file: &str, line: Option<u32>, func: &str) -> usize {
    (recent_slot(file) ^ recent_slot(func).rotate_left(3) ^ line.unwrap_or(0) as usize) % RECENT
}

impl LockGraph {
    pub fn new() -> LockGraph {
        LockGraph::default()
    }

    /// Adds a thread, or returns the one with the same id; a later call can
    /// fill in an LWP or name the first one lacked.
    pub fn add_thread(&mut self, id: &str, lwp: Option<u64>, name: &str) -> ThreadRef {
        if self.lookups_dropped {
            self.restore_lookups();
        }
        if let Some(index) = self.thread_by_id.get(&self.threads, id) {
            let index = index as usize;
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
            return ThreadRef::at(index);
        }
        let index = self.threads.len();
        let id = ThreadId::new(&clean(id));
        let name = self.intern(name);
        grow(&mut self.threads);
        self.threads.push(Thread { id, lwp, name });
        let key = self.threads.last().map_or(&[][..], |t| t.id.as_bytes());
        let slot = u32::try_from(index).unwrap_or(u32::MAX);
        self.thread_by_id.insert(&self.threads, key, slot);
        ThreadRef::at(index)
    }

    /// Adds a lock keyed by its address, or returns the one already there
    /// (keeping the first non-empty name).
    pub fn add_lock(&mut self, addr: &str, name: &str) -> LockRef {
        self.add_lock_keyed(lock_key(addr), name)
    }

    /// [`LockGraph::add_lock`] for an address already read as a number
    /// (`add_lock("0x10", …)` is `add_lock_value(0x10, …)`).
    pub fn add_lock_value(&mut self, addr: u64, name: &str) -> LockRef {
        self.add_lock_keyed(LockKey::Value(addr), name)
    }

    fn add_lock_keyed(&mut self, key: LockKey, name: &str) -> LockRef {
        if self.lookups_dropped {
            self.restore_lookups();
        }
        let found = match &key {
            LockKey::Value(value) => self.lock_by_value.get(&self.locks, *value),
            LockKey::Text(text) => self.lock_by_text.get(&**text).copied(),
        };
        if let Some(index) = found {
            let index = index as usize;
            let empty = self.locks.get(index).is_some_and(|l| l.name.is_empty());
            if empty && !name.is_empty() {
                let name = self.intern(name);
                if let Some(lock) = self.locks.get_mut(index) {
                    lock.name = name;
                }
            }
            return LockRef::at(index);
        }
        let index = self.locks.len();
        // Past u32::MAX locks the maps stop answering and a lock is listed
        // twice: no dump comes near it (it would weigh hundreds of GB).
        let slot = u32::try_from(index).unwrap_or(u32::MAX);
        let addr = match &key {
            LockKey::Value(value) => Addr::value(*value),
            LockKey::Text(text) => {
                self.lock_by_text.insert(Arc::from(&**text), slot);
                Addr::text(text)
            }
        };
        let name = self.intern(name);
        grow(&mut self.locks);
        self.locks.push(Lock { addr, name });
        if let LockKey::Value(value) = key {
            self.lock_by_value.insert(&self.locks, value, slot);
        }
        LockRef::at(index)
    }

    /// A [`Site`] shared with every other acquisition at the same place.
    pub fn site(&mut self, file: &str, line: Option<u32>, func: &str) -> Site {
        let slot = site_slot(file, line, func);
        if let Some(Some(site)) = self.recent_sites.get(slot) {
            if site.line == line && *site.file == *file && *site.func == *func {
                return site.clone();
            }
        }
        let data = SiteData {
            file: self.intern(file),
            line,
            func: self.intern(func),
        };
        let site = match self.sites.get(&data) {
            Some(site) => site.clone(),
            None => {
                let site = Site::from_data(data);
                self.sites.insert(site.clone());
                site
            }
        };
        if self.recent_sites.len() < RECENT {
            self.recent_sites.resize(RECENT, None);
        }
        if let Some(entry) = self.recent_sites.get_mut(slot) {
            *entry = Some(site.clone());
        }
        site
    }

    /// Every string of the graph comes through here (or `add_thread` for
    /// ids), so this is where control characters from a mangled or hostile
    /// dump are neutralised before any renderer or terminal sees them.
    fn intern(&mut self, text: &str) -> Arc<str> {
        let slot = recent_slot(text);
        if let Some(Some(shared)) = self.recent.get(slot) {
            if **shared == *text {
                return Arc::clone(shared);
            }
        }
        let shared = self.intern_slow(text);
        if self.recent.len() < RECENT {
            self.recent.resize(RECENT, None);
        }
        if let Some(entry) = self.recent.get_mut(slot) {
            *entry = Some(Arc::clone(&shared));
        }
        shared
    }

    fn intern_slow(&mut self, text: &str) -> Arc<str> {
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
    /// `thread` probably holds `lock` (see [`Claim::ProbablyHolds`]).
    pub fn probably_holds(&mut self, thread: ThreadRef, lock: LockRef, site: Site) -> usize {
        self.record(thread, lock, Claim::ProbablyHolds, LockKind::Rdlock, site)
    }

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
        let Some(before) = self
            .acquisitions
            .get(acquisition)
            .map(|a| a.locked_here.clone())
        else {
            return;
        };
        let cached = self
            .last_list
            .as_ref()
            .filter(|(from, with, _)| from.same(&before) && with.same(&site))
            .map(|(_, _, list)| list.clone());
        let list = match cached {
            Some(list) => list,
            None => {
                let mut sites = before.to_vec();
                sites.push(site.clone());
                let shared = match self.site_lists.get(&sites) {
                    Some(shared) => Arc::clone(shared),
                    None => {
                        let shared = Arc::new(sites);
                        self.site_lists.insert(Arc::clone(&shared));
                        shared
                    }
                };
                let list = SiteList::shared(shared);
                self.last_list = Some((before, site, list.clone()));
                list
            }
        };
        if let Some(acq) = self.acquisitions.get_mut(acquisition) {
            acq.locked_here = list;
        }
    }

    /// Frees what only reading needs (the lookup tables, the interning
    /// sets: a fifth of a big graph's memory) before the analysis and the
    /// renderers, which need none of it. Lookups still answer, by a scan;
    /// adding to the graph builds the tables again.
    pub fn drop_lookups(&mut self) {
        self.thread_by_id = ThreadsById::default();
        self.lock_by_value = LocksByValue::default();
        self.strings = HashSet::default();
        self.recent = Vec::new();
        self.sites = HashSet::default();
        self.recent_sites = Vec::new();
        self.site_lists = HashSet::default();
        self.last_list = None;
        self.lookups_dropped = true;
    }

    /// The tables [`LockGraph::drop_lookups`] freed, built again. Strings and
    /// sites interned from then on are not shared with the earlier ones,
    /// which only costs memory.
    fn restore_lookups(&mut self) {
        self.lookups_dropped = false;
        if self.thread_by_id.is_empty() {
            for (index, thread) in self.threads.iter().enumerate() {
                let slot = u32::try_from(index).unwrap_or(u32::MAX);
                self.thread_by_id
                    .insert(&self.threads, thread.id.as_bytes(), slot);
            }
        }
        if self.lock_by_value.is_empty() {
            for (index, lock) in self.locks.iter().enumerate() {
                if let Some(value) = lock.addr.as_value() {
                    let slot = u32::try_from(index).unwrap_or(u32::MAX);
                    self.lock_by_value.insert(&self.locks, value, slot);
                }
            }
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
        grow(&mut self.acquisitions);
        self.acquisitions.push(Acquisition {
            thread,
            lock,
            claim,
            kind,
            site,
            locked_here: SiteList::default(),
        });
        self.acquisitions.len() - 1
    }

    pub fn find_thread(&self, id: &str) -> Option<ThreadRef> {
        if self.lookups_dropped {
            // The last of equal ids, as the table answers.
            return self
                .threads
                .iter()
                .rposition(|thread| *thread.id == *id)
                .map(ThreadRef::at);
        }
        self.thread_by_id
            .get(&self.threads, id)
            .map(|index| ThreadRef::at(index as usize))
    }

    /// For sources that only know the owner's LWP (glibc's `__owner`).
    pub fn find_thread_by_lwp(&self, lwp: u64) -> Option<ThreadRef> {
        self.threads
            .iter()
            .position(|thread| thread.lwp == Some(lwp))
            .map(ThreadRef::at)
    }

    /// Gives the locks this graph has no name for the name `other` has for
    /// the same address: gdb without symbols knows a lock by its address
    /// alone, where the /proc reading named it by symbol or section.
    /// Returns how many were named.
    pub fn borrow_lock_names(&mut self, other: &LockGraph) -> usize {
        let mut named = 0;
        for lock in &mut self.locks {
            if !lock.name.is_empty() {
                continue;
            }
            let theirs = other
                .find_lock(&lock.addr.to_string())
                .and_then(|found| other.lock(found))
                .filter(|found| !found.name.is_empty());
            if let Some(found) = theirs {
                lock.name = found.name.clone();
                named += 1;
            }
        }
        named
    }

    pub fn find_lock(&self, addr: &str) -> Option<LockRef> {
        match lock_key(addr) {
            LockKey::Value(value) if self.lookups_dropped => self
                .locks
                .iter()
                .position(|lock| lock.addr.as_value() == Some(value))
                .and_then(|index| u32::try_from(index).ok()),
            LockKey::Value(value) => self.lock_by_value.get(&self.locks, value),
            LockKey::Text(text) => self.lock_by_text.get(&*text).copied(),
        }
        .map(|index| LockRef::at(index as usize))
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
        (index < self.threads.len()).then_some(ThreadRef::at(index))
    }

    /// The lock at a position of [`LockGraph::locks`].
    pub fn lock_at(&self, index: usize) -> Option<LockRef> {
        (index < self.locks.len()).then_some(LockRef::at(index))
    }

    pub fn thread(&self, thread: ThreadRef) -> Option<&Thread> {
        self.threads.get(thread.index())
    }

    pub fn lock(&self, lock: LockRef) -> Option<&Lock> {
        self.locks.get(lock.index())
    }

    pub fn is_empty(&self) -> bool {
        self.threads.is_empty()
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
pub(crate) mod fuzz_tests;
