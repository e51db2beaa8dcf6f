//! What the holder of a waited-for lock is doing: most freezes are not a
//! clean cycle. A holder that waits on a condition variable only a waiter
//! could signal, sleeps in a poll loop, or sits in I/O keeps every waiter
//! stuck just as surely, and "No deadlock" would be the wrong answer.
//!
//! The state comes from whatever the source knows: the holder's system call
//! in /proc (no stop), or its innermost frames in gdb. The lines this module
//! writes lead the explanation (see `SourceInfo::stuck`).

use std::collections::HashMap;

use crate::locks::graph::{Analysis, LockGraph, ThreadRef};

/// A thread's state, as far as the source tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Doing {
    /// Blocked on another lock: the wait-for graph already follows it.
    OnLock,
    /// In `pthread_cond_wait` (or `ast_cond_wait`, a semaphore): only
    /// another thread can wake it.
    CondWait,
    /// In `nanosleep`/`usleep`: a poll loop.
    Sleeping,
    /// Waiting for I/O; the words say on what (`a socket`, `a pipe`).
    Io(String),
    /// On a CPU or between system calls: it may be slow, or spinning.
    Running,
    /// Something else, said as is (a system call number, a function).
    Other(String),
}

impl Doing {
    /// From the holder's system call (x86-64 numbers), for the /proc source.
    /// `futex_is_lock` says whether the futex it sleeps on is a lock.
    pub fn from_syscall(number: Option<i64>, futex_is_lock: bool, fd_kind: Option<&str>) -> Doing {
        let io = |what: &str| match fd_kind {
            Some(kind) => Doing::Io(format!("{what} on {kind}")),
            None => Doing::Io(what.to_string()),
        };
        match number {
            None => Doing::Running,
            Some(202) if futex_is_lock => Doing::OnLock,
            Some(202) => Doing::CondWait,
            Some(35 | 230) => Doing::Sleeping,
            Some(7 | 271) => io("poll"),
            Some(23 | 270) => io("select"),
            Some(232 | 281 | 441) => io("epoll_wait"),
            Some(0 | 17 | 19 | 295) => io("read"),
            Some(45 | 47 | 299) => io("recv"),
            Some(43 | 288) => io("accept"),
            Some(1 | 18 | 20 | 44 | 46) => io("write"),
            Some(61) => Doing::Other("waits for a child process (wait4)".to_string()),
            Some(other) => Doing::Other(format!("is in system call {other}")),
        }
    }

    /// From the innermost frames, for the gdb source (libc's names).
    pub fn from_frames(functions: &[&str]) -> Doing {
        for function in functions.iter().take(8) {
            let name = function.trim_start_matches('_');
            let name = name
                .strip_prefix("GI_")
                .unwrap_or(name)
                .trim_start_matches('_');
            if name.contains("cond_wait")
                || name.contains("cond_timedwait")
                || name.starts_with("sem_")
            {
                return Doing::CondWait;
            }
            if name.contains("nanosleep") || name == "usleep" || name == "sleep" {
                return Doing::Sleeping;
            }
            if name.starts_with("poll") || name.starts_with("ppoll") {
                return Doing::Io("poll".to_string());
            }
            if name.starts_with("epoll_wait") || name.starts_with("epoll_pwait") {
                return Doing::Io("epoll_wait".to_string());
            }
            if name.starts_with("select") || name.starts_with("pselect") {
                return Doing::Io("select".to_string());
            }
            if matches!(
                name,
                "read" | "recv" | "recvfrom" | "recvmsg" | "accept" | "accept4"
            ) {
                return Doing::Io(name.to_string());
            }
            if name.contains("mutex_lock") || name.contains("rwlock_") || name.starts_with("lll_") {
                return Doing::OnLock;
            }
        }
        Doing::Other("stack not recognised (see bt-threads.txt)".to_string())
    }

    /// The words after "which ...".
    fn words(&self) -> String {
        match self {
            Doing::OnLock => "waits for another lock".to_string(),
            Doing::CondWait => {
                "waits on a condition variable while holding it (only another thread can wake it; \
                 if that thread is one of the waiters, nothing will)"
                    .to_string()
            }
            Doing::Sleeping => "sleeps while holding it (a usleep/nanosleep poll loop)".to_string(),
            Doing::Io(what) => format!("waits for I/O ({what}) while holding it"),
            Doing::Running => {
                "is running: slow or spinning, cannot tell from one look (compare two, a few \
                 seconds apart)"
                    .to_string()
            }
            Doing::Other(what) => format!("{what}, while holding it"),
        }
    }
}

/// Lines for each lock others wait for whose holder is outside any cycle
/// and is doing something other than waiting for a lock: the lock most
/// waited for first.
pub fn stuck(
    graph: &LockGraph,
    analysis: &Analysis,
    doing: &HashMap<ThreadRef, Doing>,
    label: &dyn Fn(ThreadRef) -> String,
) -> Vec<String> {
    let mut waiters: HashMap<(usize, ThreadRef), usize> = HashMap::new();
    for edge in &analysis.edges {
        let Some(holder) = edge.holder else { continue };
        if analysis.in_cycle(holder) {
            continue;
        }
        *waiters.entry((edge.lock.index(), holder)).or_default() += 1;
    }
    let mut ranked: Vec<((usize, ThreadRef), usize)> = waiters.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut lines = Vec::new();
    for ((lock, holder), count) in ranked.into_iter().take(5) {
        let Some(state) = doing.get(&holder) else {
            continue;
        };
        if *state == Doing::OnLock {
            continue;
        }
        let lock = graph
            .lock_at(lock)
            .and_then(|lock| graph.lock(lock))
            .map(|lock| {
                if lock.name.is_empty() {
                    format!("lock {}", lock.addr)
                } else {
                    format!("{} {}", lock.name, lock.addr)
                }
            })
            .unwrap_or_default();
        let threads = if count == 1 {
            "thread waits"
        } else {
            "threads wait"
        };
        let verdict = if *state == Doing::Running {
            "SLOW?"
        } else {
            "STUCK:"
        };
        lines.push(format!(
            "{verdict} {count} {threads} for {lock}, held by {}, which {}.",
            label(holder),
            state.words()
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::locks::graph::{LockKind, Site};

    #[test]
    fn a_holder_in_a_condition_wait_leads_the_answer() {
        let mut g = LockGraph::new();
        let holder = g.add_thread("1", Some(1), "");
        let lock = g.add_lock("0x10", "channels");
        g.holds(holder, lock, LockKind::Mutex, Site::default());
        for id in ["2", "3"] {
            let waiter = g.add_thread(id, None, "");
            g.waits_for(waiter, lock, LockKind::Mutex, Site::default());
        }
        let analysis = g.analyze();
        let doing = HashMap::from([(holder, Doing::CondWait)]);
        let lines = stuck(&g, &analysis, &doing, &|t| format!("T{}", t.index()));
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].starts_with("STUCK: 2 threads wait for channels 0x10, held by T0, which waits on a condition variable"), "{lines:?}");
    }

    #[test]
    fn states_from_syscalls_and_frames() {
        assert_eq!(Doing::from_syscall(Some(202), false, None), Doing::CondWait);
        assert_eq!(Doing::from_syscall(Some(230), false, None), Doing::Sleeping);
        assert_eq!(
            Doing::from_syscall(Some(7), false, Some("a socket")),
            Doing::Io("poll on a socket".to_string())
        );
        assert_eq!(Doing::from_syscall(None, false, None), Doing::Running);
        assert_eq!(
            Doing::from_frames(&["__futex_abstimed_wait_common", "___pthread_cond_wait"]),
            Doing::CondWait
        );
        assert_eq!(
            Doing::from_frames(&["clock_nanosleep", "usleep"]),
            Doing::Sleeping
        );
    }
}
