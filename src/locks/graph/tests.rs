//! Model tests: cycles, followers, readers, and graphs too big for recursion.

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
    assert_eq!(&*g.locks()[0].name, "chan");
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

/// What a 100,000-thread dump with five locks a thread costs is mostly
/// these two, times a million: they must not grow back by accident.
#[test]
fn acquisitions_and_locks_stay_small() {
    assert!(std::mem::size_of::<Acquisition>() <= 32);
    assert!(std::mem::size_of::<Lock>() <= 40);
    assert_eq!(std::mem::size_of::<ThreadRef>(), 4);
}

#[test]
fn unnamed_locks_borrow_the_name_of_the_same_address_only() {
    let mut gdb = LockGraph::new();
    gdb.add_lock("0x7f00000010", "");
    gdb.add_lock("0x7f00000020", "chan");
    gdb.add_lock("0x7f00000030", "");
    let mut proc = LockGraph::new();
    proc.add_lock_value(0x007f_0000_0010, "lock_a (res_foo.so)");
    proc.add_lock_value(0x007f_0000_0020, "agents_lock (res_foo.so)");
    proc.add_lock_value(0x007f_0000_0040, "heap");
    assert_eq!(gdb.borrow_lock_names(&proc), 1);
    let names: Vec<&str> = gdb.locks().iter().map(|lock| &*lock.name).collect();
    // Its own name is kept; an address /proc did not see stays unnamed.
    assert_eq!(names, ["lock_a (res_foo.so)", "chan", ""]);
}

/// The bytes a thread, lock and wait cost at a million threads: each
/// byte here is a MB there (the aim is 256 MiB at 1M threads).
#[test]
fn a_thread_and_its_locks_stay_small() {
    assert_eq!(std::mem::size_of::<Thread>(), 56);
    assert_eq!(std::mem::size_of::<Lock>(), 32);
    assert_eq!(std::mem::size_of::<Acquisition>(), 32);
    assert_eq!(std::mem::size_of::<Edge>(), 48);
}

#[test]
fn lookups_answer_the_same_once_dropped() {
    let mut g = LockGraph::new();
    let a = g.add_thread("0x1", Some(1), "a");
    let b = g.add_thread("0x2", Some(2), "b");
    let l = g.add_lock("0x10", "m");
    let t = g.add_lock("(nil)", "");
    g.drop_lookups();
    assert_eq!(g.find_thread("0x2"), Some(b));
    assert_eq!(g.find_thread("0x3"), None);
    assert_eq!(g.find_lock("0x0010"), Some(l));
    assert_eq!(g.find_lock("(nil)"), Some(t));
    // Adding builds the tables again: the same thread and lock, not new ones.
    assert_eq!(g.add_thread("0x1", None, ""), a);
    assert_eq!(g.add_lock_value(0x10, ""), l);
    assert_eq!(g.add_thread("0x3", None, "c").index(), 2);
    assert_eq!(g.find_thread("0x3").map(ThreadRef::index), Some(2));
}

#[test]
fn waits_share_equal_locked_here_lists() {
    let mut g = LockGraph::new();
    let a = g.add_thread("A", None, "");
    let b = g.add_thread("B", None, "");
    let l = g.add_lock("0x10", "m");
    let s = g.site("a.c", Some(1), "f");
    let other = Site::new("b.c", Some(2), "g");
    let first = g.waits_for(a, l, LockKind::Mutex, s.clone());
    let second = g.waits_for(b, l, LockKind::Mutex, s.clone());
    for wait in [first, second] {
        g.add_locked_here(wait, s.clone());
        g.add_locked_here(wait, other.clone());
    }
    g.add_locked_here(second, s.clone());
    let lists: Vec<&SiteList> = g.acquisitions().iter().map(|a| &a.locked_here).collect();
    assert_eq!(*lists[0], [s.clone(), other.clone()]);
    assert_eq!(*lists[1], [s.clone(), other, s]);
}
