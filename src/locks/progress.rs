//! Progress between samples: `freeze --samples N` reads the wait-for graph
//! from /proc N times and compares the readings, to tell a freeze from a
//! server that is only slow.
//!
//! One reading cannot tell them apart: 60 threads waiting on a lock look the
//! same whether its holder will let go in a millisecond or never. Across
//! readings, a lock makes progress when it changes hands (another owner), or
//! when one of its waiters gets it (leaves the queue) or is woken (the lock
//! was released and taken again before the next reading). A thread whose
//! system call and context-switch count are the same in two readings did not
//! run in between (the idea of `watch`'s `Stillness`). A lock that none of
//! this happened to, in every sample, is frozen, however many threads join
//! its queue.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::Result;
use crate::host::procfs::{Mapping, Process, Syscall};
use crate::locks::from_proc;
use crate::locks::graph::{Analysis, LockGraph};
use crate::locks::watch::Stillness;

/// Frozen locks whose holder is described, the most waited-for first.
const HOLDERS_SHOWN: usize = 5;

/// One reading of the process's locks.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// When the reading began, from the start of the first one.
    pub at: Duration,
    /// How long the reading took (the process ran on meanwhile).
    pub took: Duration,
    pub threads: usize,
    /// Whether any thread's system call could be read.
    pub readable: bool,
    /// Every lock some thread waits for, by address.
    pub locks: BTreeMap<String, LockSeen>,
    /// The waiters and holders, as they were.
    pub still: HashMap<u32, Stillness>,
    /// Threads stopped (`T`/`t`) by a debugger or a signal.
    pub stopped: Vec<u32>,
    /// Every thread's system call.
    pub syscalls: HashMap<u32, Syscall>,
}

/// One lock at one reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockSeen {
    /// Where it is (`res_foo.so+0x4340`), or empty.
    pub name: String,
    /// Its owner's LWP, when memory says (an rwlock's readers are never named).
    pub owner: Option<u32>,
    pub waiters: BTreeSet<u32>,
}

/// The locks of one graph and the state of the threads around them; the
/// caller fills in the timing.
pub fn snapshot(
    graph: &LockGraph,
    analysis: &Analysis,
    still: &dyn Fn(u32) -> Stillness,
) -> Snapshot {
    let lwp = |thread| {
        graph
            .thread(thread)
            .and_then(|t| t.lwp)
            .and_then(|lwp| u32::try_from(lwp).ok())
    };
    let mut locks: BTreeMap<String, LockSeen> = BTreeMap::new();
    for edge in &analysis.edges {
        let Some(lock) = graph.lock(edge.lock) else {
            continue;
        };
        let seen = locks
            .entry(lock.addr.to_string())
            .or_insert_with(|| LockSeen {
                name: lock.name.to_string(),
                owner: None,
                waiters: BTreeSet::new(),
            });
        seen.waiters.extend(lwp(edge.waiter));
        // A probable reader is a guess, not an owner.
        if !edge.probable && seen.owner.is_none() {
            seen.owner = edge.holder.and_then(lwp);
        }
    }
    let involved: BTreeSet<u32> = locks
        .values()
        .flat_map(|lock| lock.waiters.iter().copied().chain(lock.owner))
        .collect();
    Snapshot {
        readable: true,
        still: involved.into_iter().map(|tid| (tid, still(tid))).collect(),
        locks,
        ..Snapshot::default()
    }
}

/// Reads one snapshot of `process` from /proc (never stopping it); `maps`
/// names the locks, `since` is when the first reading began.
pub fn sample(process: &Process, maps: &[Mapping], since: Instant) -> Result<Snapshot> {
    let began = Instant::now();
    let tasks = process.tasks()?;
    // Each word read once: a pool's idle threads share a condition variable.
    let words = process.word_cache();
    let read = |address: u64| words.read(address);
    // Every thread (a thread stopped on its own counts), named where the
    // maps tell, owners only on a glibc whose layout is known.
    let built = from_proc::build(
        &tasks,
        &from_proc::Reader {
            word: &read,
            place: &|address| process.name_of(maps, address),
            fd_kind: &|_| None,
            thread_name: &|_| None,
            layout: process.lock_layout_from(maps),
            all_threads: true,
        },
    );
    let analysis = built.graph.analyze();
    let syscalls: HashMap<u32, &Syscall> =
        tasks.iter().map(|task| (task.tid, &task.syscall)).collect();
    let mut snapshot = snapshot(&built.graph, &analysis, &|tid| Stillness {
        syscall: syscalls
            .get(&tid)
            .map_or(Syscall::Unknown, |syscall| (*syscall).clone()),
        switches: process.switches(tid),
    });
    snapshot.at = began.saturating_duration_since(since);
    snapshot.took = began.elapsed();
    snapshot.threads = tasks.len();
    snapshot.readable = tasks.is_empty() || tasks.iter().any(|t| t.syscall != Syscall::Unknown);
    snapshot.stopped = built.stopped;
    snapshot.syscalls = tasks
        .into_iter()
        .map(|task| (task.tid, task.syscall))
        .collect();
    Ok(snapshot)
}

/// The answer, in three words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Verdict {
    #[serde(rename = "frozen")]
    Frozen,
    #[serde(rename = "slow")]
    Slow,
    #[serde(rename = "cannot-tell")]
    CannotTell,
}

/// What became of one lock across the samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Course {
    /// Same owner, no waiter served or woken, in every sample.
    #[serde(rename = "stuck")]
    Stuck,
    /// It changed hands, or served a waiter, or had none at some sample.
    #[serde(rename = "moved")]
    Moved,
    /// Nothing seen moved, but a waiter's switch count could not be read.
    #[serde(rename = "unclear")]
    Unclear,
}

/// One lock over the samples.
#[derive(Debug, Clone, Serialize)]
pub struct LockSeries {
    pub address: String,
    pub name: String,
    /// Its owner at each sample (null: unknown, or nobody waited for it then).
    pub owners: Vec<Option<u32>>,
    /// How many threads waited for it at each sample.
    pub waiters: Vec<usize>,
    pub course: Course,
    /// Why, in words.
    pub why: String,
}

/// One sample's cost and size.
#[derive(Debug, Clone, Serialize)]
pub struct SampleCost {
    pub at_seconds: f64,
    pub took_ms: f64,
    pub threads: usize,
    /// Threads waiting for a lock.
    pub waiting: usize,
    pub locks: usize,
}

/// The comparison.
#[derive(Debug, Clone, Serialize)]
pub struct Progress {
    pub verdict: Verdict,
    /// The verdict in words.
    pub says: String,
    /// Which samples it rests on, what each cost, what was compared.
    pub rests_on: String,
    pub samples: Vec<SampleCost>,
    /// Every lock waited for in some sample, the most waited-for first.
    pub locks: Vec<LockSeries>,
    /// What else the reader should know (a holder on a CPU, contention elsewhere).
    pub notes: Vec<String>,
}

/// A verdict that rests on no comparison at all.
pub fn cannot_tell(why: &str, samples: &[Snapshot]) -> Progress {
    Progress {
        verdict: Verdict::CannotTell,
        says: format!("cannot tell: {why}"),
        rests_on: rests_on(samples),
        samples: costs(samples),
        locks: Vec::new(),
        notes: Vec::new(),
    }
}

/// Compares the samples, oldest first.
pub fn compare(samples: &[Snapshot]) -> Progress {
    if samples.len() < 2 {
        return cannot_tell(
            "one sample shows who waits, not whether anything moves; take two or more \
             (--samples)",
            samples,
        );
    }
    if !samples.iter().any(|sample| sample.readable) {
        return cannot_tell(
            "no thread's system call could be read from /proc in any sample (a kernel without \
             /proc/PID/task/TID/syscall, or no right to read it)",
            samples,
        );
    }
    let mut series = lock_series(samples);
    series.sort_by(|a, b| {
        let most = |s: &LockSeries| s.waiters.iter().copied().max().unwrap_or(0);
        most(b)
            .cmp(&most(a))
            .then_with(|| a.address.cmp(&b.address))
    });
    let mut progress = Progress {
        verdict: Verdict::CannotTell,
        says: String::new(),
        rests_on: rests_on(samples),
        samples: costs(samples),
        locks: Vec::new(),
        notes: Vec::new(),
    };
    let involved: BTreeSet<u32> = samples
        .iter()
        .flat_map(|sample| sample.still.keys().copied())
        .collect();
    let stopped: BTreeSet<u32> = samples
        .iter()
        .flat_map(|sample| sample.stopped.iter().copied())
        .filter(|tid| involved.contains(tid))
        .collect();
    let with = |course| series.iter().filter(move |s| s.course == course);
    let stuck: Vec<&LockSeries> = with(Course::Stuck).collect();
    let moved: Vec<&LockSeries> = with(Course::Moved).collect();
    let k = samples.len();
    (progress.verdict, progress.says) = if !stopped.is_empty() {
        (
            Verdict::CannotTell,
            format!(
                "cannot tell: {} stopped (T) at some sample: a debugger or a signal holds it \
                 still, and a stopped thread moves no lock whatever the locks",
                lwps(&stopped.iter().copied().collect::<Vec<_>>())
            ),
        )
    } else if !stuck.is_empty() {
        (Verdict::Frozen, frozen_says(&stuck, samples))
    } else if let Some(first) = moved.first() {
        (
            Verdict::Slow,
            format!(
                "slow, not frozen: {}; waiters {}",
                first.why,
                arrows(&first.waiters)
            ),
        )
    } else if series.is_empty() {
        (
            Verdict::CannotTell,
            format!(
                "cannot tell: no thread waited for a lock in any of the {k} samples, so there \
                 is no lock progress to compare (a freeze outside locks, in I/O or a busy loop, \
                 does not show here)"
            ),
        )
    } else {
        let why = with(Course::Unclear)
            .next()
            .map_or_else(String::new, |lock| lock.why.clone());
        (
            Verdict::CannotTell,
            format!("cannot tell: nothing seen moved, and {why}"),
        )
    };
    if progress.verdict == Verdict::Slow {
        progress.notes.push(
            "a single look cannot tell this from a freeze: at any one moment a holder asleep \
             with the lock held looks stuck; across the samples the lock changes hands"
                .to_string(),
        );
    }
    if progress.verdict == Verdict::Frozen {
        for lock in stuck.iter().take(HOLDERS_SHOWN) {
            progress.notes.extend(holder_note(lock, samples));
        }
        if stuck.len() > HOLDERS_SHOWN {
            progress.notes.push(format!(
                "{} more frozen locks, with fewer waiters: their holders are in each lock's series",
                stuck.len() - HOLDERS_SHOWN
            ));
        }
        if !moved.is_empty() {
            progress.notes.push(format!(
                "meanwhile {} other lock(s) moved (contention, not the freeze): {}",
                moved.len(),
                moved
                    .iter()
                    .map(|lock| label(&lock.name, &lock.address))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    progress.locks = series;
    progress
}

/// Each lock's owners and waiters over the samples, and its course.
fn lock_series(samples: &[Snapshot]) -> Vec<LockSeries> {
    let addresses: BTreeSet<&String> = samples.iter().flat_map(|s| s.locks.keys()).collect();
    addresses
        .into_iter()
        .map(|address| {
            let seen: Vec<Option<&LockSeen>> =
                samples.iter().map(|s| s.locks.get(address)).collect();
            let name = seen
                .iter()
                .flatten()
                .map(|lock| lock.name.clone())
                .find(|name| !name.is_empty())
                .unwrap_or_default();
            let (course, why) = course(&name, address, &seen, samples);
            LockSeries {
                address: address.clone(),
                owners: seen.iter().map(|lock| lock.and_then(|l| l.owner)).collect(),
                waiters: seen
                    .iter()
                    .map(|lock| lock.map_or(0, |l| l.waiters.len()))
                    .collect(),
                name,
                course,
                why,
            }
        })
        .collect()
}

/// Whether one lock moved, and the first sign of it.
fn course(
    name: &str,
    address: &str,
    seen: &[Option<&LockSeen>],
    samples: &[Snapshot],
) -> (Course, String) {
    let label = label(name, address);
    // Across a reading that missed the lock too: a new owner is a new owner.
    let present: Vec<&LockSeen> = seen.iter().flatten().copied().collect();
    let owners: Vec<Option<u32>> = present.iter().map(|lock| lock.owner).collect();
    // An owner that turns unknown is no new holder: the old one exited, or
    // its word could not be read. Its waiters' stillness decides.
    if owners
        .windows(2)
        .any(|pair| pair[0] != pair[1] && pair[1].is_some())
    {
        return (
            Course::Moved,
            format!(
                "the holder of {label} changed between samples ({})",
                owner_changes(&owners)
            ),
        );
    }
    if let Some(absent) = seen.iter().position(Option::is_none) {
        // Waiters still asleep where they were, on a lock that no longer
        // reads as one: its owner is no thread any more (it exited holding
        // it?), which /proc alone cannot confirm.
        let before = absent
            .checked_sub(1)
            .and_then(|i| seen[i].map(|lock| (i, lock)));
        if let Some((i, lock)) = before {
            let asleep = |tid: &u32| {
                let then = samples[i].syscalls.get(tid);
                then.is_some_and(|then| {
                    then.futex().is_some() && samples[absent].syscalls.get(tid) == Some(then)
                })
            };
            if lock.waiters.iter().all(asleep) {
                return (
                    Course::Unclear,
                    format!(
                        "{label} no longer reads as a held lock at sample {}, yet its waiters \
                         still sleep on it: its holder may have exited holding it",
                        absent + 1
                    ),
                );
            }
        }
        let why = if before.is_some() {
            "its waiters got it, and nobody waited for it any more"
        } else {
            "nobody waited for it yet"
        };
        return (
            Course::Moved,
            format!("{label} had no waiter at sample {}: {why}", absent + 1),
        );
    }
    let seen = present;
    let mut unclear = false;
    for (i, pair) in seen.windows(2).enumerate() {
        let (before, after) = (pair[0], pair[1]);
        if let Some(left) = before.waiters.difference(&after.waiters).next() {
            return (
                Course::Moved,
                format!(
                    "LWP {left} stopped waiting for {label} between samples {} and {} (it got \
                     the lock, or gave up)",
                    i + 1,
                    i + 2
                ),
            );
        }
        for waiter in before.waiters.intersection(&after.waiters) {
            let (Some(then), Some(now)) = (
                samples[i].still.get(waiter),
                samples[i + 1].still.get(waiter),
            ) else {
                unclear = true;
                continue;
            };
            if then.switches.is_none() || now.switches.is_none() {
                unclear = true;
            } else if !then.same(now) {
                return (
                    Course::Moved,
                    format!(
                        "LWP {waiter}, waiting for {label}, woke between samples {} and {}: the \
                         lock was released and taken again",
                        i + 1,
                        i + 2
                    ),
                );
            }
        }
    }
    if unclear {
        return (
            Course::Unclear,
            format!(
                "the context-switch counts of some waiters of {label} could not be read \
                 (threads that exited, or no right to read their status)"
            ),
        );
    }
    let holder = match (
        owners.first().copied().flatten(),
        owners.iter().position(Option::is_none),
    ) {
        (Some(owner), None) => format!("held by LWP {owner} in all {} samples", samples.len()),
        (Some(owner), Some(gone)) => format!(
            "held by LWP {owner}, not a thread of the process (or unreadable) from sample {} \
             on: it may have exited holding it",
            gone + 1
        ),
        (None, _) => format!(
            "its holder unknown (an rwlock's readers, or an owner that exited) in all {} samples",
            samples.len()
        ),
    };
    (
        Course::Stuck,
        format!("{label}: {holder}; none of its waiters got it or woke"),
    )
}

/// The frozen verdict: which threads, which locks, over how many samples.
fn frozen_says(stuck: &[&LockSeries], samples: &[Snapshot]) -> String {
    let k = samples.len();
    let span = samples.last().map_or(0.0, |last| last.at.as_secs_f64());
    let waiting_at = |i: usize| -> BTreeSet<u32> {
        stuck
            .iter()
            .filter_map(|lock| samples[i].locks.get(&lock.address))
            .flat_map(|lock| lock.waiters.iter().copied())
            .collect()
    };
    let sets: Vec<BTreeSet<u32>> = (0..k).map(waiting_at).collect();
    let locks = match stuck.len() {
        1 => format!("lock {}", label(&stuck[0].name, &stuck[0].address)),
        n => format!("{n} locks"),
    };
    if sets.windows(2).all(|pair| pair[0] == pair[1]) {
        let n = sets[0].len();
        format!(
            "frozen: the same {n} thread{} wait{} on the same {locks} in all {k} samples (over \
             {span:.2} s), and no holder changed",
            if n == 1 { "" } else { "s" },
            if n == 1 { "s" } else { "" },
        )
    } else {
        let counts: Vec<usize> = sets.iter().map(BTreeSet::len).collect();
        format!(
            "frozen: no holder changed and no waiter got its lock in all {k} samples (over \
             {span:.2} s), on {locks}; the threads waiting went {} (more pile up behind it)",
            arrows(&counts)
        )
    }
}

/// What a frozen lock's holder did: a holder that runs may be working
/// through something long, or spinning; only its stack tells.
fn holder_note(lock: &LockSeries, samples: &[Snapshot]) -> Option<String> {
    let owner = lock.owners.first().copied().flatten()?;
    let states: Vec<&Stillness> = samples
        .iter()
        .filter_map(|sample| sample.still.get(&owner))
        .collect();
    let label = label(&lock.name, &lock.address);
    if let Some(at) = states.iter().position(|s| s.syscall == Syscall::Running) {
        return Some(format!(
            "LWP {owner}, the holder of {label}, was on a CPU at sample {}: it may be working \
             through something long, or spinning with the lock held (its stack tells which)",
            at + 1
        ));
    }
    let last = states.last()?;
    let ran = states.len() == samples.len() && states.windows(2).any(|pair| !pair[0].same(pair[1]));
    Some(if ran {
        format!(
            "LWP {owner}, the holder of {label}, ran between samples but never let go of it \
             ({} at the last)",
            last.syscall
        )
    } else {
        format!(
            "LWP {owner}, the holder of {label}, did not run between samples ({})",
            last.syscall
        )
    })
}

/// "at 0.00, 1.00, 2.00 s, each read in 1.2, 0.9, 1.0 ms".
fn rests_on(samples: &[Snapshot]) -> String {
    if samples.is_empty() {
        return "no sample could be taken".to_string();
    }
    let at: Vec<String> = samples
        .iter()
        .map(|s| format!("{:.2}", s.at.as_secs_f64()))
        .collect();
    let took: Vec<String> = samples
        .iter()
        .map(|s| format!("{:.1}", s.took.as_secs_f64() * 1000.0))
        .collect();
    let which = match samples.len() {
        1 => "sample 1".to_string(),
        n => format!("samples 1 to {n}"),
    };
    format!(
        "{which} from /proc, at {} s, read in {} ms each, Asterisk never stopped: each lock's \
         owner word, and each waiter's and holder's system call and context-switch count \
         (both unchanged: it did not run); no frames, /proc has none",
        at.join(", "),
        took.join(", ")
    )
}

fn costs(samples: &[Snapshot]) -> Vec<SampleCost> {
    samples
        .iter()
        .map(|s| SampleCost {
            at_seconds: s.at.as_secs_f64(),
            took_ms: s.took.as_secs_f64() * 1000.0,
            threads: s.threads,
            waiting: waiting(s),
            locks: s.locks.len(),
        })
        .collect()
}

/// Threads waiting for a lock in one sample.
fn waiting(sample: &Snapshot) -> usize {
    sample
        .locks
        .values()
        .flat_map(|lock| lock.waiters.iter())
        .collect::<BTreeSet<_>>()
        .len()
}

fn label(name: &str, address: &str) -> String {
    if name.is_empty() {
        address.to_string()
    } else {
        format!("{name} {address}")
    }
}

fn arrows(counts: &[usize]) -> String {
    counts
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(" → ")
}

/// "LWP 10 → 12 → 15", consecutive repeats once.
fn owner_changes(owners: &[Option<u32>]) -> String {
    let mut shown: Vec<String> = Vec::new();
    for owner in owners {
        let word = owner.map_or_else(|| "unknown".to_string(), |o| o.to_string());
        if shown.last() != Some(&word) {
            shown.push(word);
        }
    }
    format!("LWP {}", shown.join(" → "))
}

fn lwps(tids: &[u32]) -> String {
    let mut shown: Vec<String> = tids.iter().take(8).map(|t| format!("LWP {t}")).collect();
    if tids.len() > 8 {
        shown.push("…".to_string());
    }
    shown.join(", ")
}

mod text;
pub use text::{text, verdict_text};

#[cfg(test)]
mod tests;
