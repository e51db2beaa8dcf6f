//! The wait-for graph of a live process from /proc alone: no gdb, no stop.
//!
//! A thread blocked on a glibc mutex sleeps in `futex(FUTEX_WAIT, word, 2)`
//! where `word` is the mutex's first field, and the mutex keeps its owner's
//! LWP 8 bytes further (`__data.__owner`, glibc 2.28 to 2.4x on x86-64). A
//! rwlock keeps its writer's LWP at +24 (`__cur_writer`); readers sleep on
//! +8, writers on +12 (or on +8 when they wait for readers to drain). That is
//! enough for "who waits for whom", read in microseconds while Asterisk
//! keeps running. The owners are read only where the target's glibc is one
//! whose layout this is (`host::glibc`); otherwise the waits are shown
//! without holders. Locks are named by the symbol tables of the files
//! mapped (`host::addresses`), when they are not stripped. What it cannot
//! see: which threads hold an rwlock as readers (glibc only counts them).
//!
//! Every guess is checked against the process: an "owner" must be one of its
//! threads, or the wait is not counted as a lock wait at all (condition
//! variables and semaphores sleep on futexes too: idle threads, not stuck ones).

use std::collections::{HashMap, HashSet};

use crate::host::glibc::LockLayout;
use crate::host::procfs::{Syscall, Task};
use crate::locks::graph::{LockGraph, LockKind, ThreadRef};
use crate::locks::holders::Doing;

/// `FUTEX_WAIT`, with or without `FUTEX_PRIVATE_FLAG`: what `lll_lock_wait`
/// (a contended mutex) uses. Condition variables and rwlocks use
/// `FUTEX_WAIT_BITSET`.
const FUTEX_WAIT: u64 = 0;
const FUTEX_LOCK_PI: u64 = 6;
const FUTEX_CMD_MASK: u64 = 0x7f;
/// An rwlock's `__readers`: bit 1 (`PTHREAD_RWLOCK_WRLOCKED`) says a writer
/// holds or waits for it, the reader count is above bit 3 (glibc 2.25+).
const RWLOCK_WRLOCKED: u32 = 2;
const RWLOCK_READER_SHIFT: u32 = 3;

/// The graph, and what the reading rests on.
#[derive(Debug, Default)]
pub struct ProcGraph {
    pub graph: LockGraph,
    /// Threads read.
    pub threads: usize,
    /// Threads asleep on a futex that is no lock we recognise: condition
    /// variables, semaphores (idle workers, mostly).
    pub other_futex: usize,
    /// Threads stopped (`T`/`t`): someone else is tracing or stopped it.
    pub stopped: Vec<u32>,
    /// What is inferred, for the reader.
    pub notes: Vec<String>,
    /// What each thread is doing, from its system call.
    pub doing: HashMap<ThreadRef, Doing>,
    /// Why no lock owner was read (see `host::glibc`), when none was.
    pub owners_unknown: Option<String>,
}

/// What one blocked thread waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LockWait {
    lock: u64,
    kind: LockKind,
    owner: Option<u32>,
    /// For an rwlock a writer waits on while readers hold it: their count.
    readers: Option<u32>,
}

/// What [`build`] reads from the process besides its threads' system calls.
pub struct Reader<'a> {
    /// A 32-bit word of its memory.
    pub word: &'a dyn Fn(u64) -> Option<u32>,
    /// An address in words (`agents_lock (res_foo.so)`).
    pub place: &'a dyn Fn(u64) -> Option<String>,
    /// What a file descriptor is (`a socket`).
    pub fd_kind: &'a dyn Fn(u64) -> Option<String>,
    /// A thread's name, asked only for the threads of a lock wait.
    pub thread_name: &'a dyn Fn(u32) -> Option<String>,
    /// Whether owners may be read.
    pub layout: &'a LockLayout,
    /// Whether every thread goes into the graph (a reading to show), or
    /// only those of a lock wait (`watch`'s samples, a thousand times less
    /// work on an idle PBX).
    pub all_threads: bool,
}

impl Reader<'_> {
    /// A reader of words alone: no names, no descriptors.
    pub fn words<'a>(word: &'a dyn Fn(u64) -> Option<u32>, layout: &'a LockLayout) -> Reader<'a> {
        Reader {
            word,
            place: &|_| None,
            fd_kind: &|_| None,
            thread_name: &|_| None,
            layout,
            all_threads: false,
        }
    }
}

/// Builds the graph from the threads of one process.
pub fn build(tasks: &[Task], reader: &Reader) -> ProcGraph {
    let read = reader.word;
    let layout = reader.layout;
    let tids: HashSet<u32> = tasks.iter().map(|task| task.tid).collect();
    let mut out = ProcGraph {
        threads: tasks.len(),
        ..ProcGraph::default()
    };
    out.notes.push(layout.note());
    let owners = layout.owners_readable();
    if let LockLayout::Unknown { why } = layout {
        out.owners_unknown = Some(format!("lock owners were not read ({why})"));
    }
    let mut waits: Vec<(u32, LockWait)> = Vec::new();
    for task in tasks {
        let Some((word, op)) = task.syscall.futex() else {
            continue;
        };
        match classify(word, op, task.tid, &tids, read, owners) {
            Some(wait) => waits.push((task.tid, wait)),
            None => out.other_futex += 1,
        }
    }
    let involved: HashSet<u32> = waits
        .iter()
        .flat_map(|(tid, wait)| [Some(*tid), wait.owner])
        .flatten()
        .collect();
    let mut refs: HashMap<u32, ThreadRef> = HashMap::new();
    for task in tasks {
        if !reader.all_threads && !involved.contains(&task.tid) {
            continue;
        }
        let asked;
        let name = if task.name.is_empty() && involved.contains(&task.tid) {
            asked = (reader.thread_name)(task.tid).unwrap_or_default();
            asked.as_str()
        } else {
            task.name.as_str()
        };
        // Asterisk leaves its threads' names as its own: no information.
        let name = if name == "asterisk" { "" } else { name };
        let handle = out
            .graph
            .add_thread(&task.tid.to_string(), Some(u64::from(task.tid)), name);
        refs.insert(task.tid, handle);
        if matches!(task.state, 'T' | 't') {
            out.stopped.push(task.tid);
        }
    }
    let on_lock: HashSet<u32> = waits.iter().map(|(tid, _)| *tid).collect();
    for task in tasks {
        let Some(&thread) = refs.get(&task.tid) else {
            continue;
        };
        let doing = match &task.syscall {
            Syscall::Blocked { number, args } => {
                // Most I/O calls take the file descriptor first (poll and
                // select take arrays: no kind then).
                let fd = match number {
                    0 | 1 | 17 | 18 | 19 | 20 | 43 | 44 | 45 | 46 | 47 | 288 | 295 | 299 => {
                        args.first().and_then(|fd| (reader.fd_kind)(*fd))
                    }
                    _ => None,
                };
                Doing::from_syscall(Some(*number), on_lock.contains(&task.tid), fd.as_deref())
            }
            Syscall::Running => Doing::Running,
            Syscall::Unknown => continue,
        };
        out.doing.insert(thread, doing);
    }
    let mut held: HashSet<(u32, u64)> = HashSet::new();
    for (tid, wait) in &waits {
        let address = format!("0x{:x}", wait.lock);
        let name = (reader.place)(wait.lock).unwrap_or_default();
        let lock = out.graph.add_lock(&address, &name);
        let nowhere = out.graph.site("", None, "");
        let waiter = refs[tid];
        out.graph
            .waits_for(waiter, lock, wait.kind, nowhere.clone());
        if let Some(owner) = wait.owner.filter(|owner| held.insert((*owner, wait.lock))) {
            let kind = match wait.kind {
                LockKind::Mutex => LockKind::Mutex,
                _ => LockKind::Wrlock,
            };
            out.graph.holds(refs[&owner], lock, kind, nowhere);
        }
    }
    // A writer waiting while readers hold the rwlock: the threads waiting
    // for that writer are the likely readers (see `from_gdb`).
    for (writer, wait) in &waits {
        let Some(readers) = wait.readers else {
            continue;
        };
        let Some(lock) = out.graph.find_lock(&format!("0x{:x}", wait.lock)) else {
            continue;
        };
        let likely: Vec<u32> = waits
            .iter()
            .filter(|(tid, other)| tid != writer && other.owner == Some(*writer))
            .map(|(tid, _)| *tid)
            .collect();
        for tid in &likely {
            let nowhere = out.graph.site("", None, "");
            out.graph.probably_holds(refs[tid], lock, nowhere);
        }
        let names: Vec<String> = likely.iter().map(|tid| format!("LWP {tid}")).collect();
        out.notes.push(format!(
            "LWP {writer} waits to write rwlock 0x{:x}, held by {readers} reader(s) glibc does \
             not name{}",
            wait.lock,
            if names.is_empty() {
                String::new()
            } else {
                format!(
                    "; {} probably among them (blocked waiting for LWP {writer} itself)",
                    names.join(", ")
                )
            }
        ));
    }
    out
}

/// What a thread asleep on futex `word` with operation `op` waits for, or
/// None when it is no lock we can recognise. Without `owners`, only the
/// lock word itself is read: a contended mutex's (0, 1 or 2, the same in
/// every glibc) and a priority-inheritance mutex's (the kernel's format).
fn classify(
    word: u64,
    op: u64,
    tid: u32,
    tids: &HashSet<u32>,
    read: &dyn Fn(u64) -> Option<u32>,
    owners: bool,
) -> Option<LockWait> {
    let owner_of = |address: u64| read(address).filter(|lwp| *lwp != tid && tids.contains(lwp));
    match op & FUTEX_CMD_MASK {
        FUTEX_WAIT if !owners => matches!(read(word), Some(1 | 2)).then_some(LockWait {
            lock: word,
            kind: LockKind::Mutex,
            owner: None,
            readers: None,
        }),
        FUTEX_WAIT => {
            // lll_lock_wait: the word is a mutex's `__lock`, 2 when contended.
            if matches!(read(word), Some(1 | 2)) {
                if let Some(owner) = owner_of(word + 8) {
                    return Some(LockWait {
                        lock: word,
                        kind: LockKind::Mutex,
                        owner: Some(owner),
                        readers: None,
                    });
                }
            }
            rwlock_wait(word, tid, tids, read)
        }
        FUTEX_LOCK_PI => {
            // A priority-inheritance mutex: the owner is in the word itself.
            let owner = read(word).map(|value| value & 0x3fff_ffff);
            Some(LockWait {
                lock: word,
                kind: LockKind::Mutex,
                owner: owner.filter(|lwp| *lwp != tid && tids.contains(lwp)),
                readers: None,
            })
        }
        _ if !owners => None,
        _ => rwlock_wait(word, tid, tids, read),
    }
}

/// An rwlock wait: a reader on `__wrphase_futex` (+8) or a writer on
/// `__writers_futex` (+12) with the writer recorded at +24; or the primary
/// writer on +8 waiting for readers to drain (`__readers` has WRLOCKED and a
/// reader count, no writer recorded).
fn rwlock_wait(
    word: u64,
    tid: u32,
    tids: &HashSet<u32>,
    read: &dyn Fn(u64) -> Option<u32>,
) -> Option<LockWait> {
    let owner_of = |address: u64| read(address).filter(|lwp| *lwp != tid && tids.contains(lwp));
    for (offset, kind) in [(8, LockKind::Rdlock), (12, LockKind::Wrlock)] {
        let Some(base) = word.checked_sub(offset) else {
            continue;
        };
        if !looks_like_rwlock(base, read) {
            continue;
        }
        if let Some(writer) = owner_of(base + 24) {
            return Some(LockWait {
                lock: base,
                kind,
                owner: Some(writer),
                readers: None,
            });
        }
    }
    let base = word.checked_sub(8)?;
    if !looks_like_rwlock(base, read) {
        return None;
    }
    let readers = read(base)?;
    let count = readers >> RWLOCK_READER_SHIFT;
    let writer = read(base + 24)?;
    if readers & RWLOCK_WRLOCKED != 0 && count > 0 && count < 1 << 20 && writer == 0 {
        return Some(LockWait {
            lock: base,
            kind: LockKind::Wrlock,
            owner: None,
            readers: Some(count),
        });
    }
    None
}

/// Whether the 56 bytes at `base` have the shape of a glibc (2.25+) rwlock:
/// its padding words are zero, `__shared` is 0 or 1 and `__flags` a known
/// preference. A condition variable's futex sits inside other data, and a
/// thread id that happens to lie 24 bytes further must not pass for a
/// writer.
fn looks_like_rwlock(base: u64, read: &dyn Fn(u64) -> Option<u32>) -> bool {
    let zero = |offset: u64| read(base + offset) == Some(0);
    zero(16)
        && zero(20)
        && zero(40)
        && zero(44)
        && matches!(read(base + 28), Some(0 | 1))
        && matches!(read(base + 48), Some(0..=2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::procfs::Syscall;

    fn task(tid: u32, futex: Option<(u64, u64)>) -> Task {
        Task {
            tid,
            name: "asterisk".to_string(),
            state: 'S',
            syscall: match futex {
                Some((word, op)) => Syscall::Blocked {
                    number: 202,
                    args: vec![word, op, 2],
                },
                None => Syscall::Running,
            },
        }
    }

    fn known() -> LockLayout {
        LockLayout::Known {
            glibc: "2.36".to_string(),
        }
    }

    fn memory(words: &[(u64, u32)]) -> impl Fn(u64) -> Option<u32> + '_ {
        move |address| words.iter().find(|(at, _)| *at == address).map(|(_, v)| *v)
    }

    #[test]
    fn an_abba_pair_and_a_bystander() {
        // Mutex A at 0x100 owned by 11, B at 0x200 owned by 10.
        let mem = [(0x100, 2), (0x108, 11), (0x200, 2), (0x208, 10)];
        let tasks = [
            task(10, Some((0x100, 0x80))),
            task(11, Some((0x200, 0x80))),
            task(12, Some((0x100, 0x80))),
            // A condition variable: not a lock wait.
            task(13, Some((0x300, 0x189))),
            task(14, None),
        ];
        let read = memory(&mem);
        let built = build(&tasks, &Reader::words(&read, &known()));
        let analysis = built.graph.analyze();
        assert_eq!(analysis.deadlocks.len(), 1);
        assert_eq!(analysis.deadlocks[0].members.len(), 2);
        assert_eq!(analysis.deadlocks[0].behind.len(), 1);
        assert_eq!(built.other_futex, 1);
    }

    #[test]
    fn without_a_known_layout_waits_are_kept_and_owners_not_read() {
        let mem = [(0x100, 2), (0x108, 11), (0x200, 2), (0x208, 10)];
        let tasks = [task(10, Some((0x100, 0x80))), task(11, Some((0x200, 0x80)))];
        let read = memory(&mem);
        let unknown = LockLayout::Unknown {
            why: "cannot tell".to_string(),
        };
        let built = build(&tasks, &Reader::words(&read, &unknown));
        let analysis = built.graph.analyze();
        assert!(analysis.deadlocks.is_empty());
        assert_eq!(analysis.edges.len(), 2);
        assert!(analysis.edges.iter().all(|e| e.holder.is_none()));
        assert!(built.owners_unknown.is_some());
        assert!(built.notes[0].contains("NOT read"), "{:?}", built.notes);
    }

    #[test]
    fn an_owner_that_is_not_a_thread_is_no_owner() {
        let mem = [(0x100, 2), (0x108, 999)];
        let tasks = [task(10, Some((0x100, 0x80)))];
        let read = memory(&mem);
        let built = build(&tasks, &Reader::words(&read, &known()));
        assert!(
            built
                .graph
                .analyze()
                .edges
                .iter()
                .all(|e| e.holder.is_none())
        );
    }

    #[test]
    fn a_writer_waiting_for_readers_makes_a_possible_deadlock() {
        // rwlock R at 0x400: 1 reader, WRLOCKED, no writer; the writer (20)
        // sleeps on R+8. Mutex M at 0x500 is owned by the writer; the reader
        // (21) waits for M.
        let mem = [
            (0x400, (1 << 3) | 2),
            (0x410, 0),
            (0x414, 0),
            (0x418, 0),
            (0x41c, 0),
            (0x428, 0),
            (0x42c, 0),
            (0x430, 0),
            (0x500, 2),
            (0x508, 20),
        ];
        let tasks = [
            task(20, Some((0x408, 0x189))),
            task(21, Some((0x500, 0x80))),
        ];
        let read = memory(&mem);
        let built = build(&tasks, &Reader::words(&read, &known()));
        let analysis = built.graph.analyze();
        assert_eq!(analysis.deadlocks.len(), 1);
        assert!(analysis.deadlocks[0].possible);
        assert!(
            built
                .notes
                .iter()
                .any(|note| note.contains("LWP 21 probably")),
            "{:?}",
            built.notes
        );
    }
}
