use super::*;
use crate::host::procfs::Task;

/// A thread asleep on mutex word `word`, or in `poll`.
fn futex(tid: u32, word: u64) -> Task {
    Task {
        tid,
        name: String::new(),
        state: 'S',
        syscall: Syscall::Blocked {
            number: 202,
            args: vec![word, 0x80, 2],
        },
    }
}

fn in_poll(tid: u32) -> Task {
    Task {
        tid,
        name: String::new(),
        state: 'S',
        syscall: Syscall::Blocked {
            number: 7,
            args: vec![0x7000, 1, 0xffff_ffff],
        },
    }
}

/// One reading of `tasks` over memory `mem`, at second `at`; thread
/// `tid`'s switch count is `switches(tid)`.
fn reading(
    at: u64,
    tasks: &[Task],
    mem: &[(u64, u32)],
    switches: &dyn Fn(u32) -> Option<u64>,
) -> Snapshot {
    let read = |address: u64| mem.iter().find(|(a, _)| *a == address).map(|(_, v)| *v);
    let layout = crate::host::glibc::LockLayout::Known {
        glibc: "2.36".to_string(),
    };
    let built = from_proc::build(tasks, &from_proc::Reader::words(&read, &layout));
    let analysis = built.graph.analyze();
    let mut snapshot = snapshot(&built.graph, &analysis, &|tid| Stillness {
        syscall: tasks
            .iter()
            .find(|t| t.tid == tid)
            .map_or(Syscall::Unknown, |t| t.syscall.clone()),
        switches: switches(tid),
    });
    snapshot.at = Duration::from_secs(at);
    snapshot.took = Duration::from_micros(1500);
    snapshot.threads = tasks.len();
    snapshot.stopped = built.stopped;
    snapshot.syscalls = tasks.iter().map(|t| (t.tid, t.syscall.clone())).collect();
    snapshot
}

/// Holder 10 in poll with mutex 0x100; `waiters` queued behind it.
fn queue(waiters: &[u32]) -> Vec<Task> {
    let mut tasks = vec![in_poll(10)];
    tasks.extend(waiters.iter().map(|&tid| futex(tid, 0x100)));
    tasks
}

const HELD_BY_10: [(u64, u32); 2] = [(0x100, 2), (0x108, 10)];

#[test]
fn nothing_moves_in_three_samples_is_frozen() {
    let samples: Vec<Snapshot> = (0..3)
        .map(|at| reading(at, &queue(&[11, 12, 13]), &HELD_BY_10, &|_| Some(7)))
        .collect();
    let progress = compare(&samples);
    assert_eq!(progress.verdict, Verdict::Frozen, "{progress:#?}");
    assert!(
        progress
            .says
            .starts_with("frozen: the same 3 threads wait on the same lock 0x100 in all 3 samples (over 2.00 s), and no holder changed"),
        "{}",
        progress.says
    );
    assert!(progress.rests_on.contains("samples 1 to 3"));
    assert!(progress.rests_on.contains("at 0.00, 1.00, 2.00 s"));
    assert_eq!(progress.locks[0].owners, vec![Some(10); 3]);
    assert_eq!(progress.locks[0].waiters, vec![3, 3, 3]);
    assert!(
        progress.notes[0].contains("LWP 10, the holder of 0x100, did not run"),
        "{:?}",
        progress.notes
    );
}

#[test]
fn a_queue_growing_behind_a_holder_that_never_changes_is_frozen() {
    let samples = [
        reading(0, &queue(&[11]), &HELD_BY_10, &|_| Some(7)),
        reading(1, &queue(&[11, 12]), &HELD_BY_10, &|_| Some(7)),
        reading(2, &queue(&[11, 12, 13]), &HELD_BY_10, &|_| Some(7)),
    ];
    let progress = compare(&samples);
    assert_eq!(progress.verdict, Verdict::Frozen, "{progress:#?}");
    assert!(
        progress.says.contains("went 1 → 2 → 3"),
        "{}",
        progress.says
    );
}

#[test]
fn a_holder_that_changes_while_waiters_grow_is_slow() {
    let tasks = |holder: u32, waiters: &[u32]| {
        let mut tasks = vec![in_poll(holder)];
        tasks.extend(waiters.iter().map(|&tid| futex(tid, 0x100)));
        tasks
    };
    let samples = [
        reading(
            0,
            &tasks(10, &[11, 12]),
            &[(0x100, 2), (0x108, 10)],
            &|_| Some(1),
        ),
        reading(
            1,
            &tasks(11, &[10, 12, 13]),
            &[(0x100, 2), (0x108, 11)],
            &|_| Some(2),
        ),
        reading(
            2,
            &tasks(12, &[10, 11, 13, 14]),
            &[(0x100, 2), (0x108, 12)],
            &|_| Some(3),
        ),
    ];
    let progress = compare(&samples);
    assert_eq!(progress.verdict, Verdict::Slow, "{progress:#?}");
    assert_eq!(
        progress.says,
        "slow, not frozen: the holder of 0x100 changed between samples (LWP 10 → 11 → 12); \
         waiters 2 → 3 → 4"
    );
}

#[test]
fn a_waiter_that_woke_under_the_same_holder_is_progress() {
    // The holder took the lock again before the reading: only the waiter's
    // switch count shows it was released in between.
    let samples = [
        reading(0, &queue(&[11]), &HELD_BY_10, &|_| Some(1)),
        reading(1, &queue(&[11]), &HELD_BY_10, &|tid| Some(u64::from(tid))),
    ];
    let progress = compare(&samples);
    assert_eq!(progress.verdict, Verdict::Slow, "{progress:#?}");
    assert!(progress.says.contains("LWP 11, waiting for 0x100, woke"));
}

#[test]
fn a_waiter_that_left_is_progress() {
    let samples = [
        reading(0, &queue(&[11, 12]), &HELD_BY_10, &|_| Some(1)),
        reading(1, &queue(&[12]), &HELD_BY_10, &|_| Some(1)),
    ];
    let progress = compare(&samples);
    assert_eq!(progress.verdict, Verdict::Slow);
    assert!(progress.says.contains("LWP 11 stopped waiting"));
}

#[test]
fn one_sample_no_lock_or_unreadable_switches_cannot_tell() {
    let one = [reading(0, &queue(&[11]), &HELD_BY_10, &|_| Some(1))];
    let progress = compare(&one);
    assert_eq!(progress.verdict, Verdict::CannotTell);
    assert!(progress.says.starts_with("cannot tell: one sample"));

    let idle = [
        reading(0, &[in_poll(10)], &[], &|_| Some(1)),
        reading(1, &[in_poll(10)], &[], &|_| Some(1)),
    ];
    let progress = compare(&idle);
    assert_eq!(progress.verdict, Verdict::CannotTell);
    assert!(progress.says.contains("no thread waited for a lock"));

    let blind = [
        reading(0, &queue(&[11]), &HELD_BY_10, &|_| None),
        reading(1, &queue(&[11]), &HELD_BY_10, &|_| None),
    ];
    assert_eq!(compare(&blind).verdict, Verdict::CannotTell);
}

#[test]
fn a_stopped_thread_is_no_proof_of_a_freeze() {
    let mut tasks = queue(&[11]);
    tasks[0].state = 't';
    let samples = [
        reading(0, &tasks, &HELD_BY_10, &|_| Some(1)),
        reading(1, &tasks, &HELD_BY_10, &|_| Some(1)),
    ];
    let progress = compare(&samples);
    assert_eq!(progress.verdict, Verdict::CannotTell);
    assert!(
        progress.says.contains("LWP 10 stopped (T)"),
        "{}",
        progress.says
    );
}

#[test]
fn a_frozen_lock_beside_busy_contention_is_frozen_and_says_the_rest_moved() {
    // 0x100 stuck behind 10; 0x200 changes owner between 20 and 21.
    let tasks = |owner: u32| {
        let waiter = if owner == 20 { 21 } else { 20 };
        vec![
            in_poll(10),
            futex(11, 0x100),
            in_poll(owner),
            futex(waiter, 0x200),
        ]
    };
    let mem = |owner: u32| vec![(0x100, 2), (0x108, 10), (0x200, 2), (0x208, owner)];
    let samples = [
        reading(0, &tasks(20), &mem(20), &|_| Some(1)),
        reading(1, &tasks(21), &mem(21), &|_| Some(1)),
    ];
    let progress = compare(&samples);
    assert_eq!(progress.verdict, Verdict::Frozen, "{progress:#?}");
    assert!(
        progress
            .notes
            .iter()
            .any(|note| note.contains("1 other lock(s) moved") && note.contains("0x200")),
        "{:?}",
        progress.notes
    );
    let text = text(&samples, &progress);
    assert!(
        text.contains("Sample 2 at 1.00 s (read in 1.5 ms)"),
        "{text}"
    );
    assert!(text.contains("0x200: moved; holder LWP 20 → 21"), "{text}");
}

#[test]
fn a_thousand_frozen_locks_are_summed_up_not_listed() {
    // Holder 10_000 + i holds mutex 0x1000 * (i + 1); thread 20_000 + i waits.
    let mut tasks = Vec::new();
    let mut mem = Vec::new();
    for i in 0..1000u32 {
        let word = 0x1000 * u64::from(i + 1);
        tasks.push(in_poll(10_000 + i));
        tasks.push(futex(20_000 + i, word));
        mem.push((word, 2));
        mem.push((word + 8, 10_000 + i));
    }
    let samples = [
        reading(0, &tasks, &mem, &|_| Some(1)),
        reading(1, &tasks, &mem, &|_| Some(1)),
    ];
    let progress = compare(&samples);
    assert!(
        progress
            .says
            .starts_with("frozen: the same 1000 threads wait on the same 1000 locks")
    );
    assert_eq!(progress.locks.len(), 1000);
    assert!(
        progress.notes.len() <= HOLDERS_SHOWN + 1,
        "{:?}",
        progress.notes
    );
    let shown = verdict_text(&progress, 10);
    assert!(shown.contains("… and 990 more locks"), "{shown}");
    assert!(shown.lines().count() < 25, "{shown}");
}

#[test]
fn a_holder_that_exits_holding_the_lock_is_no_new_holder() {
    // Sample 2: 10 is gone, its LWP still in the mutex's owner word.
    let samples = [
        reading(0, &queue(&[11, 12]), &HELD_BY_10, &|_| Some(1)),
        reading(1, &queue(&[11, 12])[1..], &HELD_BY_10, &|_| Some(1)),
    ];
    let progress = compare(&samples);
    assert_eq!(progress.verdict, Verdict::CannotTell, "{progress:#?}");
    assert!(
        progress.locks[0]
            .why
            .contains("its holder may have exited holding it"),
        "{progress:#?}"
    );
    // The same waiters, woken and gone: the lock served them.
    let served = [
        reading(0, &queue(&[11, 12]), &HELD_BY_10, &|_| Some(1)),
        reading(1, &[in_poll(11), in_poll(12)], &[], &|_| Some(2)),
    ];
    assert_eq!(compare(&served).verdict, Verdict::Slow);
}
