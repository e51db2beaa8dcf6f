//! The freeze rules of `watch`: which successive samples of a live
//! process's wait-for graph (read from /proc, see `from_proc`) mean a freeze.
//!
//! A busy PBX always has threads waiting on mutexes: that is contention, and
//! it moves. Two shapes are a freeze once they last:
//! - **cycle**: threads that each wait for a lock another of them holds. It
//!   must be the same threads, none of which ran in between (same system
//!   call, same context-switch count), in `confirm` samples in a row. Through
//!   an rwlock whose readers glibc does not name, it is a *possible* cycle.
//! - **stalled lock**: the head of a wait chain (a thread that holds a lock
//!   others wait for, and waits for no held lock itself) that has not moved
//!   (same system call, same context-switch count: asleep the whole time)
//!   while the threads waiting behind it did not get fewer, in `confirm`
//!   samples in a row, and at least two: "did not move" is a comparison.
//!
//! An owner on a CPU is moving, whatever it holds: never a stall. (A thread
//! spinning forever with a lock held is therefore not caught: telling
//! spinning from working takes its stack, i.e. gdb.)

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::error::Result;
use crate::host::procfs::{Process, Syscall};
use crate::locks::from_proc::{self, ProcGraph};
use crate::locks::graph::{Analysis, LockGraph, ThreadRef};

/// Which rule a suspect answers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Rule {
    #[serde(rename = "cycle")]
    Cycle,
    /// A cycle through an rwlock whose readers are inferred.
    #[serde(rename = "possible-cycle")]
    PossibleCycle,
    #[serde(rename = "stalled-lock")]
    StalledLock,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Cycle => "wait-for cycle",
            Rule::PossibleCycle => "possible wait-for cycle (through an rwlock's readers)",
            Rule::StalledLock => "stalled lock",
        }
    }
}

/// What makes two samples' suspects the same one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    /// The cycle's LWPs, sorted.
    Cycle(Vec<u32>),
    /// The stalled owner's LWP.
    Stall(u32),
}

/// A thread as it was at one sample: unchanged between two samples, it has
/// not run in between.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stillness {
    pub syscall: Syscall,
    /// Context switches so far (None: unreadable, which never compares equal
    /// to a reading, see [`Stillness::same`]).
    pub switches: Option<u64>,
}

impl Stillness {
    /// Whether the thread did not move between `self` and `later`. An
    /// unreadable count is no proof of stillness.
    pub fn same(&self, later: &Stillness) -> bool {
        self.syscall == later.syscall && self.switches.is_some() && self.switches == later.switches
    }
}

/// One lock of a suspect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SuspectLock {
    pub address: String,
    /// Where the address is (`res_foo.so+0x4340`, `heap`), or empty.
    pub place: String,
}

/// One shape that would be a freeze if it lasts.
#[derive(Debug, Clone, Serialize)]
pub struct Suspect {
    #[serde(skip)]
    pub key: Key,
    pub rule: Rule,
    /// The cycle's LWPs, or the stalled owner's alone (`lwps` in JSON, as
    /// every list of LWPs there).
    #[serde(rename = "lwps")]
    pub threads: Vec<u32>,
    /// The cycle's locks, or those the owner holds that others wait for.
    pub locks: Vec<SuspectLock>,
    /// LWPs blocked behind it, directly or not.
    pub behind: Vec<u32>,
    /// Each of `threads`, as it was at this sample.
    #[serde(skip)]
    pub still: Vec<Stillness>,
    /// In words, without the confirmation.
    pub says: String,
}

/// One sample of a process: its threads and what they wait for.
pub struct Sample {
    pub threads: usize,
    /// Whether any thread's system call could be read: when none could,
    /// nothing can ever be seen (no right, or a kernel without the file).
    pub readable: bool,
    pub suspects: Vec<Suspect>,
    /// The graph, for the record of a capture.
    pub built: ProcGraph,
    pub analysis: Analysis,
}

/// Reads one sample of `process`: every thread's system call, the lock
/// words they sleep on, and, for the few threads a rule looks at, their
/// context-switch counts. /proc only: the process is never stopped.
pub fn sample(process: &Process) -> Result<Sample> {
    let tasks = process.syscalls()?;
    // Each word read once: a pool's idle threads share a condition variable.
    let words = process.word_cache();
    let read = |address: u64| words.read(address);
    // No mappings: naming every lock would read /proc/PID/maps each sample
    // (a thousand lines on Asterisk); only a suspect's locks are named.
    let built = from_proc::build(
        &tasks,
        &from_proc::Reader::words(&read, process.lock_layout()),
    );
    let analysis = built.graph.analyze();
    // The tasks come in tid order.
    let mut suspects = suspects(&built.graph, &analysis, &|tid| Stillness {
        syscall: tasks
            .binary_search_by_key(&tid, |task| task.tid)
            .map_or(Syscall::Unknown, |at| tasks[at].syscall.clone()),
        switches: process.switches(tid),
    });
    let addresses: Vec<u64> = suspects
        .iter()
        .flat_map(|s| s.locks.iter())
        .filter_map(|lock| u64::from_str_radix(lock.address.strip_prefix("0x")?, 16).ok())
        .collect();
    let places = process.places_of_waited(&addresses);
    for lock in suspects.iter_mut().flat_map(|s| s.locks.iter_mut()) {
        let address = lock
            .address
            .strip_prefix("0x")
            .and_then(|hex| u64::from_str_radix(hex, 16).ok());
        if let Some(place) = address.and_then(|address| places.get(&address)) {
            lock.place.clone_from(place);
        }
    }
    for suspect in &mut suspects {
        suspect.says = describe(suspect);
    }
    Ok(Sample {
        threads: tasks.len(),
        readable: tasks.is_empty() || tasks.iter().any(|t| t.syscall != Syscall::Unknown),
        suspects,
        built,
        analysis,
    })
}

/// The cycles and the stalled-lock candidates of one graph; `still` reads a
/// thread's state.
pub fn suspects(
    graph: &LockGraph,
    analysis: &Analysis,
    still: &dyn Fn(u32) -> Stillness,
) -> Vec<Suspect> {
    let lwp = |thread: ThreadRef| {
        graph
            .thread(thread)
            .and_then(|t| t.lwp)
            .and_then(|lwp| u32::try_from(lwp).ok())
    };
    let lock_of = |lock| {
        graph
            .lock(lock)
            .map(|l| SuspectLock {
                address: l.addr.to_string(),
                place: String::new(),
            })
            .unwrap_or(SuspectLock {
                address: "?".to_string(),
                place: String::new(),
            })
    };
    let mut found = Vec::new();
    for deadlock in &analysis.deadlocks {
        let mut threads: Vec<u32> = deadlock.members.iter().filter_map(|&m| lwp(m)).collect();
        threads.sort_unstable();
        let mut locks: Vec<SuspectLock> = Vec::new();
        for step in &deadlock.cycle {
            let lock = lock_of(step.lock);
            if !locks.contains(&lock) {
                locks.push(lock);
            }
        }
        let mut behind: Vec<u32> = deadlock.behind.iter().filter_map(|&t| lwp(t)).collect();
        behind.sort_unstable();
        let mut suspect = Suspect {
            key: Key::Cycle(threads.clone()),
            rule: if deadlock.possible {
                Rule::PossibleCycle
            } else {
                Rule::Cycle
            },
            still: threads.iter().map(|&tid| still(tid)).collect(),
            threads,
            locks,
            behind,
            says: String::new(),
        };
        suspect.says = describe(&suspect);
        found.push(suspect);
    }
    // The heads of wait chains: holders that wait for no held lock.
    let waiting: HashSet<ThreadRef> = analysis
        .edges
        .iter()
        .filter(|edge| edge.holder.is_some())
        .map(|edge| edge.waiter)
        .collect();
    let mut waiters_of: HashMap<ThreadRef, Vec<ThreadRef>> = HashMap::new();
    for edge in &analysis.edges {
        if let Some(holder) = edge.holder {
            waiters_of.entry(holder).or_default().push(edge.waiter);
        }
    }
    let mut heads: Vec<ThreadRef> = waiters_of
        .keys()
        .copied()
        .filter(|holder| !waiting.contains(holder) && !analysis.in_cycle(*holder))
        .collect();
    heads.sort_unstable();
    for head in heads {
        let Some(owner) = lwp(head) else { continue };
        let state = still(owner);
        // On a CPU, or unreadable: moving, or no way to tell.
        if !matches!(state.syscall, Syscall::Blocked { .. }) {
            continue;
        }
        let mut locks: Vec<SuspectLock> = Vec::new();
        for edge in analysis.edges.iter().filter(|e| e.holder == Some(head)) {
            let lock = lock_of(edge.lock);
            if !locks.contains(&lock) {
                locks.push(lock);
            }
        }
        // Asleep on the futex of a lock it is read as holding: a torn
        // reading (the lock changed hands between two reads), not a stall.
        if let Some((word, _)) = state.syscall.futex() {
            let torn = locks.iter().any(|lock| {
                u64::from_str_radix(lock.address.trim_start_matches("0x"), 16)
                    .is_ok_and(|start| (start..=start + 12).contains(&word))
            });
            if torn {
                continue;
            }
        }
        let mut seen: HashSet<ThreadRef> = HashSet::from([head]);
        let mut queue = vec![head];
        let mut behind = Vec::new();
        while let Some(holder) = queue.pop() {
            for &waiter in waiters_of.get(&holder).into_iter().flatten() {
                if seen.insert(waiter) {
                    behind.extend(lwp(waiter));
                    queue.push(waiter);
                }
            }
        }
        behind.sort_unstable();
        let mut suspect = Suspect {
            key: Key::Stall(owner),
            rule: Rule::StalledLock,
            threads: vec![owner],
            locks,
            behind,
            still: vec![state],
            says: String::new(),
        };
        suspect.says = describe(&suspect);
        found.push(suspect);
    }
    found
}

/// The suspect in words: the threads, the locks, who is stuck behind.
pub fn describe(suspect: &Suspect) -> String {
    let lwps = |tids: &[u32]| {
        tids.iter()
            .map(|tid| format!("LWP {tid}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let locks = suspect
        .locks
        .iter()
        .map(|lock| match lock.place.as_str() {
            "" => lock.address.clone(),
            place => format!("{} ({place})", lock.address),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let behind = match suspect.behind.len() {
        0 => "nobody else waits behind it".to_string(),
        1 => format!("1 thread waits behind it ({})", lwps(&suspect.behind)),
        n if n <= 8 => format!("{n} threads wait behind it ({})", lwps(&suspect.behind)),
        n => format!(
            "{n} threads wait behind it ({}, …)",
            lwps(&suspect.behind[..8])
        ),
    };
    match suspect.rule {
        Rule::Cycle | Rule::PossibleCycle => format!(
            "{} between {} on {locks}; {behind}",
            if suspect.rule == Rule::Cycle {
                "a deadlock"
            } else {
                "a possible deadlock (through an rwlock whose readers glibc does not name)"
            },
            lwps(&suspect.threads)
        ),
        Rule::StalledLock => format!(
            "{} holds {locks} and does not move ({}); {behind}",
            lwps(&suspect.threads),
            suspect
                .still
                .first()
                .map_or_else(String::new, |s| s.syscall.to_string())
        ),
    }
}

/// A suspect that lasted long enough: a freeze.
#[derive(Debug, Clone, Serialize)]
pub struct Confirmed {
    #[serde(flatten)]
    pub suspect: Suspect,
    /// Samples in a row it was seen in, unchanged.
    pub samples: usize,
}

/// What one sample changed.
#[derive(Debug, Default)]
pub struct Observed {
    /// Suspects that reached their confirmation and were not captured yet.
    pub confirmed: Vec<Confirmed>,
    /// Suspects seen for the first time (or again after they moved).
    pub started: Vec<Suspect>,
    /// Suspects that moved or went away, with why: contention, not a freeze.
    pub ended: Vec<(Suspect, &'static str)>,
}

/// The suspects across samples.
pub struct Tracker {
    confirm: usize,
    runs: HashMap<Key, (usize, Suspect)>,
    /// Keys of freezes already captured: not captured again until they go
    /// (absent from a sample) or move.
    captured: HashSet<Key>,
    /// The next sample sets a new baseline: the capture's gdb (or someone
    /// else's) stopped and resumed every thread, which counts as switches
    /// without being a move of the threads' own.
    rebaseline: bool,
}

impl Tracker {
    pub fn new(confirm: usize) -> Tracker {
        Tracker {
            confirm: confirm.max(1),
            runs: HashMap::new(),
            captured: HashSet::new(),
            rebaseline: false,
        }
    }

    /// Samples in a row a suspect of `rule` must last.
    pub fn needed(&self, rule: Rule) -> usize {
        match rule {
            Rule::StalledLock => self.confirm.max(2),
            Rule::Cycle | Rule::PossibleCycle => self.confirm,
        }
    }

    /// Takes one sample's suspects.
    pub fn observe(&mut self, suspects: Vec<Suspect>) -> Observed {
        let mut observed = Observed::default();
        let present: HashSet<Key> = suspects.iter().map(|s| s.key.clone()).collect();
        self.captured.retain(|key| present.contains(key));
        let rebaseline = std::mem::take(&mut self.rebaseline);
        let mut runs = HashMap::new();
        for suspect in suspects {
            let key = suspect.key.clone();
            let samples = match self.runs.remove(&key) {
                Some((samples, last)) if rebaseline || lasted(&last, &suspect) => samples + 1,
                Some((_, last)) => {
                    let why = if suspect.rule == Rule::StalledLock
                        && suspect.behind.len() < last.behind.len()
                    {
                        "fewer threads wait behind it"
                    } else {
                        "its threads moved"
                    };
                    observed.ended.push((last, why));
                    self.captured.remove(&key);
                    observed.started.push(suspect.clone());
                    1
                }
                None => {
                    observed.started.push(suspect.clone());
                    1
                }
            };
            runs.insert(key, (samples, suspect));
        }
        for (_, (_, last)) in self.runs.drain() {
            observed.ended.push((last, "gone"));
        }
        self.runs = runs;
        let mut confirmed: Vec<Confirmed> = self
            .runs
            .iter()
            .filter(|(key, (samples, suspect))| {
                *samples >= self.needed(suspect.rule) && !self.captured.contains(*key)
            })
            .map(|(_, (samples, suspect))| Confirmed {
                suspect: suspect.clone(),
                samples: *samples,
            })
            .collect();
        confirmed.sort_by(|a, b| a.suspect.key.cmp(&b.suspect.key));
        observed.confirmed = confirmed;
        observed
    }

    /// After a capture: everything seen now is part of it, and is not
    /// captured again until it moves or goes; the capture's own gdb is no
    /// move.
    pub fn captured_all(&mut self) {
        self.captured.extend(self.runs.keys().cloned());
        self.rebaseline = true;
    }

    /// Samples skipped (a debugger holds the process still): what was being
    /// confirmed starts over, what was captured stays captured.
    pub fn pause(&mut self) {
        self.runs.clear();
        self.rebaseline = false;
    }

    /// A new process: nothing of the old one carries over.
    pub fn reset(&mut self) {
        self.runs.clear();
        self.captured.clear();
        self.rebaseline = false;
    }
}

/// The same suspect, unchanged: its threads did not move, and for a stall,
/// the threads behind it did not get fewer.
fn lasted(before: &Suspect, now: &Suspect) -> bool {
    before.still.len() == now.still.len()
        && before
            .still
            .iter()
            .zip(&now.still)
            .all(|(before, now)| before.same(now))
        && (now.rule != Rule::StalledLock || now.behind.len() >= before.behind.len())
}

#[cfg(test)]
mod tests;
