use super::*;

#[test]
fn parses_the_syscall_file() {
    assert_eq!(
        Syscall::parse("202 0x7f1c2a0c2340 0x80 0x2 0x0 0x0 0x0 0x7f1c29ffe9e0 0x7f1c2a1a1ecc\n")
            .futex(),
        Some((0x7f1c2a0c2340, 0x80))
    );
    assert_eq!(Syscall::parse("running\n"), Syscall::Running);
    assert_eq!(Syscall::parse("-1 0x7ffd 0x5555\n"), Syscall::Running);
    assert_eq!(Syscall::parse(""), Syscall::Unknown);
    assert_eq!(Syscall::parse("7 0x1 0x2").futex(), None);
    assert_eq!(Syscall::parse("7 0x1 0x2").to_string(), "asleep in poll");
    assert_eq!(
        Syscall::parse("202 0x7f10 0x80 0x2").to_string(),
        "asleep in futex on 0x7f10"
    );
    assert_eq!(
        Syscall::parse("999 0x7f10").to_string(),
        "in system call 999 (0x7f10, …)"
    );
}

#[test]
fn names_places_by_mapping() {
    let maps: Vec<Mapping> = [
        "5555000-5556000 r--p 00000000 08:01 1 /usr/sbin/asterisk",
        "5556000-5558000 r-xp 00001000 08:01 1 /usr/sbin/asterisk",
        "7f00000-7f10000 rw-p 00000000 00:00 0 [heap]",
        "7f20000-7f21000 rw-p 00000000 00:00 0 ",
    ]
    .iter()
    .filter_map(|line| Mapping::parse(line))
    .collect();
    assert_eq!(place(&maps, 0x5557010).as_deref(), Some("asterisk+0x2010"));
    assert_eq!(place(&maps, 0x7f00010).as_deref(), Some("heap"));
    assert_eq!(place(&maps, 0x7f20010).as_deref(), Some("anonymous memory"));
    assert_eq!(place(&maps, 0x10), None);
}

#[test]
fn reads_our_own_threads_without_stopping_us() {
    let process = Process::open(std::process::id()).unwrap();
    let tasks = process.tasks().unwrap();
    assert!(tasks.iter().any(|task| task.tid == std::process::id()));
    let light = process.syscalls().unwrap();
    assert!(
        light
            .iter()
            .all(|task| task.state == '?' && task.name.is_empty())
    );
    assert!(process.switches(std::process::id()).is_some());
}

#[test]
fn reads_every_mapping_of_a_process_with_many() {
    // Mappings that cannot merge (every other page inaccessible), as
    // the stacks and guard pages of a thousand threads.
    let pages = 3000;
    // SAFETY: a fresh private anonymous mapping; unmapped below.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            pages * 4096,
            libc::PROT_READ,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(base, libc::MAP_FAILED);
    for page in (0..pages).step_by(2) {
        // SAFETY: within the mapping made above.
        unsafe {
            libc::mprotect(
                base.cast::<u8>().add(page * 4096).cast(),
                4096,
                libc::PROT_NONE,
            )
        };
    }
    let process = Process::open(std::process::id()).unwrap();
    let maps = process.maps();
    let text = std::fs::read_to_string("/proc/self/maps").unwrap();
    // SAFETY: the mapping made above, no longer used.
    unsafe { libc::munmap(base, pages * 4096) };
    assert!(text.len() > 64 * 1024);
    // Counted inside this test's own mapping: the other tests of this
    // process map and unmap memory of their own meanwhile (musl's malloc
    // with every allocation of some size), 83 lines of 3157 in one CI run.
    let (start, end) = (base as u64, base as u64 + (pages * 4096) as u64);
    let ours = maps
        .iter()
        .filter(|mapping| mapping.start >= start && mapping.end <= end)
        .count();
    assert_eq!(
        ours,
        pages,
        "{} mappings read of {}",
        maps.len(),
        text.lines().count()
    );
}

static WAITED_ON: std::sync::Mutex<u32> = std::sync::Mutex::new(0);

#[test]
fn places_of_waited_locks_are_kept_while_asked_for() {
    let process = Process::open(std::process::id()).unwrap();
    let address = &WAITED_ON as *const _ as u64;
    let first = process.places_of_waited(&[address]);
    let place = first.get(&address).cloned().unwrap_or_default();
    assert!(place.contains("WAITED_ON"), "{place}");
    assert_eq!(process.places_of_waited(&[address]), first);
    process.places_of_waited(&[]);
    assert!(process.places.borrow().is_empty());
}

/// A thread of ours, parked until told to end; its LWP.
fn parked() -> (
    u32,
    std::sync::mpsc::Sender<()>,
    std::thread::JoinHandle<()>,
) {
    let (tid_out, tid_in) = std::sync::mpsc::channel();
    let (end_out, end_in) = std::sync::mpsc::channel::<()>();
    let handle = std::thread::spawn(move || {
        // SAFETY: gettid(2) touches no memory.
        let tid = unsafe { libc::syscall(libc::SYS_gettid) } as u32;
        tid_out.send(tid).unwrap();
        let _ = end_in.recv();
    });
    (tid_in.recv().unwrap(), end_out, handle)
}

#[test]
fn kept_files_follow_threads_that_come_and_go() {
    let process = Process::open(std::process::id()).unwrap();
    let has = |tid: u32| {
        process
            .syscalls()
            .unwrap()
            .iter()
            .any(|task| task.tid == tid && task.syscall != Syscall::Unknown)
    };
    let (first, end_first, first_handle) = parked();
    assert!(has(first));
    assert!(has(first), "read again through the kept file");
    // One goes and another comes: the count may be the same, the gone
    // thread's file says so.
    end_first.send(()).unwrap();
    first_handle.join().unwrap();
    let (second, end_second, second_handle) = parked();
    let tasks = process.syscalls().unwrap();
    assert!(tasks.iter().all(|task| task.tid != first), "{tasks:?}");
    assert!(tasks.iter().any(|task| task.tid == second), "{tasks:?}");
    end_second.send(()).unwrap();
    second_handle.join().unwrap();
    assert!(!has(second));
}
