use super::*;
use crate::host::procfs::Task;

/// A thread asleep in futex on `word` (a mutex wait), or in `poll`, or on a CPU.
fn futex(tid: u32, word: u64) -> Task {
    Task {
        tid,
        name: String::new(),
        state: '?',
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
        state: '?',
        syscall: Syscall::Blocked {
            number: 7,
            args: vec![0x7000, 1, 0xffff_ffff],
        },
    }
}

fn running(tid: u32) -> Task {
    Task {
        tid,
        name: String::new(),
        state: '?',
        syscall: Syscall::Running,
    }
}

/// The suspects of threads `tasks` over memory `mem`, each thread's switch
/// count being `switches(tid)`.
fn suspects_of(tasks: &[Task], mem: &[(u64, u32)], switches: &dyn Fn(u32) -> u64) -> Vec<Suspect> {
    let read = |address: u64| mem.iter().find(|(at, _)| *at == address).map(|(_, v)| *v);
    let layout = crate::host::glibc::LockLayout::Known {
        glibc: "2.36".to_string(),
    };
    let built = from_proc::build(tasks, &from_proc::Reader::words(&read, &layout));
    let analysis = built.graph.analyze();
    suspects(&built.graph, &analysis, &|tid| Stillness {
        syscall: tasks
            .iter()
            .find(|t| t.tid == tid)
            .map_or(Syscall::Unknown, |t| t.syscall.clone()),
        switches: Some(switches(tid)),
    })
}

/// A at 0x100 owned by 11, B at 0x200 owned by 10: 10 and 11 deadlock, 12 behind.
const ABBA: [(u64, u32); 4] = [(0x100, 2), (0x108, 11), (0x200, 2), (0x208, 10)];

fn abba() -> Vec<Task> {
    vec![futex(10, 0x100), futex(11, 0x200), futex(12, 0x100)]
}

#[test]
fn a_cycle_is_a_freeze_after_confirm_samples_and_is_captured_once() {
    let mut tracker = Tracker::new(3);
    for round in 1..=2 {
        let observed = tracker.observe(suspects_of(&abba(), &ABBA, &|_| 5));
        assert!(observed.confirmed.is_empty(), "round {round}");
    }
    let observed = tracker.observe(suspects_of(&abba(), &ABBA, &|_| 5));
    assert_eq!(observed.confirmed.len(), 1);
    let confirmed = &observed.confirmed[0];
    assert_eq!(confirmed.suspect.rule, Rule::Cycle);
    assert_eq!(confirmed.suspect.threads, vec![10, 11]);
    assert_eq!(confirmed.suspect.behind, vec![12]);
    assert_eq!(confirmed.samples, 3);
    assert!(
        confirmed
            .suspect
            .says
            .contains("a deadlock between LWP 10, LWP 11"),
        "{}",
        confirmed.suspect.says
    );
    tracker.captured_all();
    // Still there: not captured again.
    assert!(
        tracker
            .observe(suspects_of(&abba(), &ABBA, &|_| 5))
            .confirmed
            .is_empty()
    );
    // Gone, then back: a new freeze, confirmed anew.
    let gone = tracker.observe(Vec::new());
    assert_eq!(gone.ended.len(), 1);
    for _ in 1..=2 {
        assert!(
            tracker
                .observe(suspects_of(&abba(), &ABBA, &|_| 5))
                .confirmed
                .is_empty()
        );
    }
    assert_eq!(
        tracker
            .observe(suspects_of(&abba(), &ABBA, &|_| 5))
            .confirmed
            .len(),
        1
    );
}

#[test]
fn a_cycle_whose_threads_ran_in_between_is_not_confirmed() {
    // A reading torn across a hand-over: the "cycle" members were switched
    // in and out between samples.
    let mut tracker = Tracker::new(2);
    tracker.observe(suspects_of(&abba(), &ABBA, &|_| 5));
    let observed = tracker.observe(suspects_of(&abba(), &ABBA, &|_| 6));
    assert!(observed.confirmed.is_empty());
    assert_eq!(observed.ended[0].1, "its threads moved");
}

#[test]
fn a_stalled_lock_needs_two_samples_and_waiters_that_do_not_get_fewer() {
    // Mutex M at 0x300 owned by 20, which sleeps in poll; 21 and 22 wait.
    let mem = [(0x300, 2), (0x308, 20)];
    let tasks = vec![in_poll(20), futex(21, 0x300), futex(22, 0x300)];
    let mut tracker = Tracker::new(1);
    assert_eq!(tracker.needed(Rule::StalledLock), 2);
    let first = tracker.observe(suspects_of(&tasks, &mem, &|_| 9));
    assert!(first.confirmed.is_empty(), "one sample proves no stillness");
    assert_eq!(first.started[0].rule, Rule::StalledLock);
    assert!(
        first.started[0].says.contains("LWP 20 holds 0x300")
            && first.started[0].says.contains("asleep in poll"),
        "{}",
        first.started[0].says
    );
    let second = tracker.observe(suspects_of(&tasks, &mem, &|_| 9));
    assert_eq!(second.confirmed.len(), 1);
    assert_eq!(second.confirmed[0].suspect.behind, vec![21, 22]);

    // Fewer waiters: the lock is being handed on, not stalled.
    let mut tracker = Tracker::new(2);
    tracker.observe(suspects_of(&tasks, &mem, &|_| 9));
    let fewer = vec![in_poll(20), futex(21, 0x300)];
    let observed = tracker.observe(suspects_of(&fewer, &mem, &|_| 9));
    assert!(observed.confirmed.is_empty());
    assert_eq!(observed.ended[0].1, "fewer threads wait behind it");
}

#[test]
fn an_owner_on_a_cpu_or_moving_is_contention_not_a_freeze() {
    let mem = [(0x300, 2), (0x308, 20)];
    let on_cpu = vec![running(20), futex(21, 0x300)];
    assert!(suspects_of(&on_cpu, &mem, &|_| 1).is_empty());
    // Asleep at each sample, but woken in between (its switch count grows).
    let tasks = vec![in_poll(20), futex(21, 0x300)];
    let mut tracker = Tracker::new(2);
    for count in 1..10 {
        let observed = tracker.observe(suspects_of(&tasks, &mem, &|_| count));
        assert!(observed.confirmed.is_empty(), "sample {count}");
    }
}

#[test]
fn hot_contention_hands_the_lock_around_and_never_confirms() {
    // One mutex, its owner changing from sample to sample.
    let mut tracker = Tracker::new(2);
    for round in 0..12u32 {
        let owner = 30 + round % 4;
        let mem = [(0x400, 2), (0x408, owner)];
        let tasks: Vec<Task> = (30..34)
            .map(|tid| {
                if tid == owner {
                    in_poll(tid)
                } else {
                    futex(tid, 0x400)
                }
            })
            .collect();
        let observed = tracker.observe(suspects_of(&tasks, &mem, &|_| 1));
        assert!(observed.confirmed.is_empty(), "round {round}");
    }
}

#[test]
fn an_unreadable_switch_count_proves_nothing() {
    let a = Stillness {
        syscall: Syscall::Running,
        switches: None,
    };
    assert!(!a.same(&a.clone()));
}

#[test]
fn an_owner_seen_waiting_for_its_own_lock_is_a_torn_reading() {
    // 40 is read as the owner of 0x500, yet sleeps on it: the lock changed
    // hands between the reads.
    let mem = [(0x500, 2), (0x508, 40)];
    let tasks = vec![futex(40, 0x500), futex(41, 0x500)];
    assert!(suspects_of(&tasks, &mem, &|_| 1).is_empty());
}

#[test]
fn the_captures_own_gdb_and_a_debugger_later_do_not_make_it_capture_again() {
    let mut tracker = Tracker::new(2);
    tracker.observe(suspects_of(&abba(), &ABBA, &|_| 5));
    assert_eq!(
        tracker
            .observe(suspects_of(&abba(), &ABBA, &|_| 5))
            .confirmed
            .len(),
        1
    );
    tracker.captured_all();
    // gdb stopped and resumed every thread: more switches, no move of theirs.
    for _ in 0..3 {
        assert!(
            tracker
                .observe(suspects_of(&abba(), &ABBA, &|_| 9))
                .confirmed
                .is_empty()
        );
    }
    // Someone attaches a debugger for a while (samples skipped), then leaves.
    tracker.pause();
    for _ in 0..3 {
        assert!(
            tracker
                .observe(suspects_of(&abba(), &ABBA, &|_| 12))
                .confirmed
                .is_empty()
        );
    }
    // A new process: its freeze is a new one.
    tracker.reset();
    tracker.observe(suspects_of(&abba(), &ABBA, &|_| 1));
    assert_eq!(
        tracker
            .observe(suspects_of(&abba(), &ABBA, &|_| 1))
            .confirmed
            .len(),
        1
    );
}
