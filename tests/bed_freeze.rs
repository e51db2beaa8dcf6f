//! `freeze` on a real Asterisk (the test bed): Debian's stripped Asterisk 22
//! put in a deadlock on purpose by the test module, the tool run inside the
//! root as root, as an administrator runs it. Each test checks the answer
//! against the roles the module wrote down, and that the PBX was not harmed:
//! alive, not stopped, its CLI still answering where it was not frozen.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::common::testbed::{
    Bed, Module, children_named, read, signal_group, text, wait_bounded, wait_for_child,
};

/// The LWPs of the graph's thread ids `ids` (an array of ids).
fn lwps(graph: &serde_json::Value, ids: &serde_json::Value) -> BTreeSet<u32> {
    let threads = graph["threads"].as_array().expect("graph threads");
    ids.as_array()
        .into_iter()
        .flatten()
        .filter_map(|id| {
            threads
                .iter()
                .find(|t| &t["id"] == id)
                .and_then(|t| t["lwp"].as_u64())
                .map(|lwp| lwp as u32)
        })
        .collect()
}

fn json_of(output: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("not JSON ({error}): {}", text(output)))
}

fn set(lwps: Vec<u32>) -> BTreeSet<u32> {
    lwps.into_iter().collect()
}

/// The cycle is exactly the module's two threads, and the bystanders are
/// blocked behind it.
fn check_abba(bed: &Bed, json: &serde_json::Value) {
    let graph = &json["graph"];
    let cycles = graph["cycles"].as_array().expect("cycles");
    assert_eq!(cycles.len(), 1, "{graph:#}");
    let cycle = lwps(graph, &cycles[0]);
    let truth: BTreeSet<u32> = set(bed.lwps("first"))
        .union(&set(bed.lwps("second")))
        .copied()
        .collect();
    assert_eq!(cycle, truth, "the cycle is the module's ABBA pair");
    let blocked = lwps(graph, &graph["blocked_on_cycles"]);
    for bystander in bed.lwps("bystander") {
        assert!(
            blocked.contains(&bystander),
            "bystander {bystander} not blocked: {graph:#}"
        );
    }
}

#[test]
fn an_abba_deadlock_is_named_exactly_and_asterisk_keeps_running() {
    require_testbed!();
    let bed = Bed::start(Module::Stripped);
    bed.break_it("abba 5");
    let output = bed.tool(&[
        "-o",
        "/tmp/out",
        "--json",
        "freeze",
        "--graph",
        "--timeout",
        "3",
    ]);
    assert!(output.status.success(), "{}", text(&output));
    let json = json_of(&output);
    check_abba(&bed, &json);
    // gdb has no symbol for the stripped module's locks: /proc's section names them.
    for lock in json["graph"]["locks"].as_array().unwrap() {
        let name = lock["name"].as_str().unwrap();
        assert!(name.starts_with("res_astdebug_test.so .bss+0x"), "{lock}");
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("DEADLOCK:"), "{stderr}");
    // Without symbols, where each thread is: the module and the offset.
    assert!(stderr.contains("(res_astdebug_test.so+0x"), "{stderr}");
    assert!(!stderr.contains("( ??)"), "{stderr}");
    let report = std::fs::read_to_string(bed.path("/tmp/out/bug-report.md")).unwrap();
    assert!(report.contains("DEADLOCK"), "{report}");
    // The doc's `grep -E '(LWP1|LWP2)' full`: each cycle thread's own line.
    let log = std::fs::read_to_string(bed.path("/tmp/out/threads-log.txt")).unwrap();
    for (role, lwp) in [
        ("first", bed.lwps("first")[0]),
        ("second", bed.lwps("second")[0]),
    ] {
        let line = format!("NOTICE[{lwp}]");
        assert!(
            log.contains(&line) && log.contains(&format!("abba: {role} thread")),
            "{line} in {log}"
        );
    }
    assert!(
        !log.contains("bystander thread"),
        "bystanders are not followed: {log}"
    );
    assert!(stderr.contains("Their last words in the log"), "{stderr}");
    assert!(bed.running(), "Asterisk state {:?}", bed.state());
    assert!(text(&bed.rx("core show uptime")).contains("System uptime"));
}

#[test]
fn with_symbols_the_threads_are_named_by_their_start_function() {
    require_testbed!();
    let bed = Bed::start(Module::Debug);
    bed.break_it("abba 2");
    let output = bed.tool(&["-o", "/tmp/out", "--json", "freeze", "--timeout", "3"]);
    assert!(output.status.success(), "{}", text(&output));
    let json = json_of(&output);
    check_abba(&bed, &json);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("(abba_first)"), "{stderr}");
    assert!(stderr.contains("(abba_second)"), "{stderr}");
    // The JSON names each lock's holder once, however many wait for it.
    for lock in json["graph"]["locks"].as_array().unwrap() {
        let holders: Vec<&serde_json::Value> = lock["holders"].as_array().unwrap().iter().collect();
        let unique: BTreeSet<String> = holders.iter().map(|h| h["thread"].to_string()).collect();
        assert_eq!(holders.len(), unique.len(), "{lock:#}");
    }
}

/// One thread's block of a `thread apply all bt` text: from its `Thread N
/// (... (LWP lwp) ...)` line to the blank line after its frames.
fn thread_block(text: &str, lwp: u32) -> Option<String> {
    let header = format!("(LWP {lwp})");
    let start = text
        .lines()
        .position(|line| line.starts_with("Thread ") && line.contains(&header))?;
    let block: Vec<&str> = text
        .lines()
        .skip(start)
        .take_while(|line| !line.is_empty())
        .collect();
    Some(block.join("\n"))
}

/// gdb reads only the libraries the backtraces need of the two dozen this
/// Asterisk maps, and the deadlocked threads' backtraces, through the test
/// module with its symbols, are still bare gdb's byte for byte.
#[test]
fn on_the_real_asterisk_only_the_libraries_the_backtraces_need_are_read() {
    require_testbed!();
    let bed = Bed::start(Module::Debug);
    bed.break_it("abba 2");
    let output = bed.tool(&["-o", "/tmp/out", "freeze", "--timeout", "3"]);
    assert!(output.status.success(), "{}", text(&output));
    let said = regex::Regex::new(
        r"read the symbols of (\d+) of the (\d+) shared objects mapped, those the backtraces need",
    )
    .unwrap();
    let stderr = text(&output);
    let counts = said
        .captures(&stderr)
        .expect("the stop line says what gdb read");
    let loaded: usize = counts[1].parse().unwrap();
    let mapped: usize = counts[2].parse().unwrap();
    assert!(loaded >= 2 && loaded < mapped, "{stderr}");
    let bare = bed.sh(&format!(
        "gdb -batch -nx -ex 'thread apply all bt' /usr/sbin/asterisk -p {} 2>/dev/null",
        bed.pid
    ));
    let bare = String::from_utf8_lossy(&bare.stdout).into_owned();
    let freeze = read(&bed, "/tmp/out/bt-threads.txt");
    for lwp in bed.lwps("first").into_iter().chain(bed.lwps("second")) {
        let theirs = thread_block(&bare, lwp).unwrap_or_else(|| panic!("LWP {lwp}: {bare}"));
        // The test module's frame, named from its symbols.
        assert!(theirs.contains(" in abba_"), "{theirs}");
        assert_eq!(
            thread_block(&freeze, lwp).as_ref(),
            Some(&theirs),
            "LWP {lwp}"
        );
    }
    assert!(bed.running(), "Asterisk state {:?}", bed.state());
}

#[test]
fn a_gcore_and_the_abort_core_give_the_same_answer() {
    require_testbed!();
    let bed = Bed::start(Module::Stripped);
    bed.break_it("abba 3");
    let pid = bed.pid;
    let name = format!("/var/spool/asterisk/core.{pid}.{}", chrono_now());
    let gcore = bed.sh(&format!(
        "gcore -o /tmp/gcore {pid} >/dev/null 2>&1 && mv /tmp/gcore.{pid} {name}"
    ));
    assert!(gcore.status.success(), "{}", text(&gcore));
    assert!(bed.running(), "gcore left Asterisk {:?}", bed.state());
    let output = bed.tool(&["-o", "/tmp/out-gcore", "--json", "freeze", "--core", &name]);
    assert!(output.status.success(), "{}", text(&output));
    check_abba(&bed, &json_of(&output));

    // Wazo's freeze check abort()s Asterisk: the kernel's core holds the same knot.
    bed.rx("astdebug test abort");
    let deadline = Instant::now() + Duration::from_secs(20);
    while bed.state().is_some_and(|s| s != 'Z') && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let kernel_core = bed.path("/var/spool/asterisk/core");
    let waited = Instant::now() + Duration::from_secs(20);
    while !kernel_core.exists() && Instant::now() < waited {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        kernel_core.exists(),
        "no kernel core in /var/spool/asterisk (core_pattern: {})",
        std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap_or_default()
    );
    let named = format!("/var/spool/asterisk/core.{pid}.{}", chrono_now() + 1);
    std::fs::rename(&kernel_core, bed.path(&named)).unwrap();
    let output = bed.tool(&["-o", "/tmp/out-abort", "--json", "freeze", "--core", &named]);
    assert!(output.status.success(), "{}", text(&output));
    check_abba(&bed, &json_of(&output));
}

fn chrono_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn a_cycle_through_an_rwlock_held_by_a_reader_is_a_possible_deadlock() {
    require_testbed!();
    let bed = Bed::start(Module::Stripped);
    bed.break_it("rwcycle");
    let output = bed.tool(&["-o", "/tmp/out", "--json", "freeze", "--timeout", "3"]);
    assert!(output.status.success(), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("No deadlock"), "{stderr}");
    assert!(!stderr.contains("cut from the paste"), "{stderr}");
    assert!(stderr.contains("POSSIBLE DEADLOCK"), "{stderr}");
    assert!(stderr.contains("glibc does not record"), "{stderr}");
    for role in ["reader", "writer"] {
        let lwp = bed.lwps(role)[0];
        assert!(
            stderr.contains(&format!("LWP {lwp}")),
            "{role} {lwp}: {stderr}"
        );
    }
    let json = json_of(&output);
    assert_eq!(
        json["graph"]["possible"],
        serde_json::json!([true]),
        "{json:#}"
    );
}

#[test]
fn ctrl_c_to_the_group_during_the_cli_checks_leaves_asterisk_running() {
    require_testbed!();
    let bed = Bed::start(Module::Stripped);
    bed.break_it("channels");
    let tool = bed.spawn_tool(&["-o", "/tmp/out", "freeze", "--timeout", "30"]);
    let pgid = tool.id();
    assert!(
        wait_for_child(pgid, "asterisk", Duration::from_secs(20)),
        "the tool never asked Asterisk"
    );
    signal_group(pgid, libc::SIGINT);
    let (output, took) = wait_bounded(tool, Duration::from_secs(10));
    assert_eq!(output.status.code(), Some(130), "{}", text(&output));
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(children_named(pgid, "asterisk").is_empty());
    assert!(bed.running(), "Asterisk state {:?}", bed.state());
    assert!(text(&bed.rx("core show uptime")).contains("System uptime"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("is running (checked"), "{stderr}");
}

#[test]
fn ctrl_c_to_the_group_during_gdb_leaves_asterisk_running_and_not_stopped() {
    require_testbed!();
    let bed = Bed::start(Module::Stripped);
    // Hundreds of threads: gdb takes a while, long enough to interrupt it.
    bed.break_it("abba 800");
    let tool = bed.spawn_tool(&["-o", "/tmp/out", "freeze", "--timeout", "5"]);
    let pgid = tool.id();
    assert!(
        wait_for_child(pgid, "gdb", Duration::from_secs(30)),
        "gdb never started"
    );
    // Right after it starts: gdb's work at 800 threads outlasts this.
    std::thread::sleep(Duration::from_millis(50));
    signal_group(pgid, libc::SIGINT);
    let (output, _) = wait_bounded(tool, Duration::from_secs(15));
    assert_eq!(output.status.code(), Some(130), "{}", text(&output));
    assert!(children_named(pgid, "gdb").is_empty(), "gdb left behind");
    // The kernel detaches a killed gdb; the tool resumes what it left stopped.
    std::thread::sleep(Duration::from_millis(200));
    assert!(bed.running(), "Asterisk state {:?}", bed.state());
    assert!(text(&bed.rx("core show uptime")).contains("System uptime"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("Saved so far"), "{stderr}");
    assert!(!stderr.contains("cleanly ending"), "{stderr}");
}

#[test]
fn attach_failures_are_errors_never_no_deadlock() {
    require_testbed!();
    let bed = Bed::start(Module::Stripped);
    bed.break_it("abba 1");
    // Another debugger already attached.
    let mut tracer = std::process::Command::new("gdb")
        .args([
            "-batch",
            "-nx",
            "-p",
            &bed.pid.to_string(),
            "-ex",
            "shell sleep 30",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while crate::common::testbed::tracer_of(bed.pid) != Some(tracer.id())
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = bed.tool(&["-o", "/tmp/out-traced", "freeze", "--timeout", "2"]);
    let _ = tracer.kill();
    let _ = tracer.wait();
    // A debugger killed hard can leave its tracee stopped: this test's own
    // tracer, so this test resumes it.
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe {
        libc::kill(bed.pid as i32, libc::SIGCONT);
    }
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let said = text(&output);
    assert!(
        said.contains(&format!("already traced by process {}", tracer.id())),
        "{said}"
    );
    assert!(!said.contains("No deadlock"), "{said}");
    assert!(!bed.path("/tmp/out-traced/bug-report.md").exists());

    // A pid that is not Asterisk (the bed's own `sleep`): refused before gdb runs.
    let other = bed.holder().to_string();
    let output = bed.tool(&["-o", "/tmp/out-other", "freeze", "--pid", &other]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(text(&output).contains("not Asterisk"), "{}", text(&output));
    assert!(!text(&output).contains("+ gdb"), "{}", text(&output));
    // A pid that is gone.
    let output = bed.tool(&["-o", "/tmp/out-gone", "freeze", "--pid", "4000000"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        text(&output).contains("no process with pid 4000000"),
        "{}",
        text(&output)
    );
    assert!(bed.running());
}

#[test]
fn timeout_bounds_every_cli_question_of_a_frozen_asterisk() {
    require_testbed!();
    let bed = Bed::start(Module::Stripped);
    bed.break_it("channels");
    let started = Instant::now();
    let output = bed.tool(&["-o", "/tmp/out", "--json", "freeze", "--timeout", "1"]);
    let took = started.elapsed();
    assert!(output.status.success(), "{}", text(&output));
    let json = json_of(&output);
    assert_eq!(json["symptoms"][1]["verdict"], "freeze", "{json:#}");
    // Three questions of at most 1 s + 1 s each, and one gdb attach: far
    // from the 22 s per question of INT, TERM, then KILL.
    assert!(took < Duration::from_secs(20), "took {took:?}");
    let warnings = json["warnings"].to_string();
    assert!(warnings.contains("leaves one CLI thread"), "{warnings}");
    assert!(bed.running());
}

#[test]
fn an_idle_pbx_is_not_called_frozen() {
    require_testbed!();
    let bed = Bed::start(Module::Stripped);
    let output = bed.tool(&["-o", "/tmp/out", "--json", "freeze", "--timeout", "3"]);
    assert!(output.status.success(), "{}", text(&output));
    let json = json_of(&output);
    assert_eq!(json["symptoms"][1]["verdict"], "idle", "{json:#}");
    assert_eq!(json["graph"]["cycles"], serde_json::json!([]), "{json:#}");
}

#[test]
fn no_attach_names_the_cycle_from_proc_without_stopping_asterisk() {
    require_testbed!();
    let bed = Bed::start(Module::Stripped);
    bed.break_it("abba 4");
    let output = bed.tool(&["-o", "/tmp/out", "--json", "freeze", "--no-attach"]);
    assert!(output.status.success(), "{}", text(&output));
    let said = text(&output);
    assert!(!said.contains("+ gdb"), "{said}");
    assert!(!said.contains("asterisk -rx"), "{said}");
    assert!(said.contains("without stopping"), "{said}");
    check_abba(&bed, &json_of(&output));
    assert_eq!(crate::common::testbed::tracer_of(bed.pid), None);
    assert!(bed.running());
    assert!(bed.path("/tmp/out/proc-locks.txt").is_file());
    // A stripped module: its locks by section, and glibc's version checked.
    assert!(said.contains("res_astdebug_test.so .bss+0x"), "{said}");
    assert!(said.contains("where glibc 2."), "{said}");
}

#[test]
fn no_attach_names_a_module_s_static_locks_by_their_symbols() {
    require_testbed!();
    let bed = Bed::start(Module::Debug);
    bed.break_it("abba 2");
    let output = bed.tool(&["-o", "/tmp/out", "freeze", "--no-attach"]);
    let said = text(&output);
    assert!(output.status.success(), "{said}");
    for lock in ["lock_a", "lock_b"] {
        assert!(
            said.contains(&format!("{lock} (res_astdebug_test.so) 0x")),
            "{said}"
        );
    }
}

#[test]
fn proc_and_gdb_are_reconciled_and_the_proc_answer_comes_first() {
    require_testbed!();
    let bed = Bed::start(Module::Stripped);
    bed.break_it("abba 2");
    let output = bed.tool(&["-o", "/tmp/out", "--json", "freeze", "--timeout", "3"]);
    assert!(output.status.success(), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let proc_at = stderr.find("Seen in /proc").expect("the /proc answer");
    let gdb_at = stderr.find("+ gdb").expect("gdb ran");
    assert!(proc_at < gdb_at, "{stderr}");
    assert!(
        stderr.contains("The /proc reading and gdb's agree"),
        "{stderr}"
    );
    let json = json_of(&output);
    let proc_graph = &json["proc_graph"];
    let cycle = lwps(proc_graph, &proc_graph["cycles"][0]);
    let truth: BTreeSet<u32> = set(bed.lwps("first"))
        .union(&set(bed.lwps("second")))
        .copied()
        .collect();
    assert_eq!(cycle, truth);
}

#[test]
fn no_attach_sees_a_possible_deadlock_through_a_reader_held_rwlock() {
    require_testbed!();
    let bed = Bed::start(Module::Stripped);
    bed.break_it("rwcycle");
    let output = bed.tool(&["-o", "/tmp/out", "freeze", "--no-attach"]);
    assert!(output.status.success(), "{}", text(&output));
    let said = text(&output);
    assert!(said.contains("POSSIBLE DEADLOCK"), "{said}");
    assert!(!said.contains("No deadlock"), "{said}");
}

#[test]
fn gcore_keeps_the_evidence_for_after_the_restart() {
    require_testbed!();
    let bed = Bed::start(Module::Stripped);
    bed.break_it("abba 2");
    let output = bed.tool(&["-o", "/tmp/out", "freeze", "--gcore", "--timeout", "3"]);
    assert!(output.status.success(), "{}", text(&output));
    let core = format!("/tmp/out/core.{}", bed.pid);
    assert!(bed.path(&core).is_file(), "{}", text(&output));
    assert_eq!(crate::common::file_mode(&bed.path(&core)), 0o600);
    assert!(text(&output).contains("was stopped"), "{}", text(&output));
    assert!(bed.running());
    let output = bed.tool(&["-o", "/tmp/out-core", "--json", "freeze", "--core", &core]);
    assert!(output.status.success(), "{}", text(&output));
    check_abba(&bed, &json_of(&output));
    // Too small a disk: refused before gcore runs.
    let small =
        bed.sh("mkdir -p /tmp/small && mount -t tmpfs -o size=2m tmpfs /tmp/small && echo ok");
    assert!(text(&small).contains("ok"), "{}", text(&small));
    let output = bed.tool(&[
        "-o",
        "/tmp/small/out",
        "freeze",
        "--gcore",
        "--timeout",
        "3",
    ]);
    let said = text(&output);
    assert!(said.contains("no core taken"), "{said}");
    assert!(said.contains("MB free"), "{said}");
    assert!(!said.contains("+ gcore"), "{said}");
}

#[test]
fn a_cli_stuck_behind_the_channel_cache_names_its_sleeping_holder_from_proc() {
    require_testbed!();
    let bed = Bed::start(Module::Stripped);
    bed.break_it("channels");
    // The command 22.x answers from the channel cache: it hangs behind the holder.
    let cli = bed.sh("(timeout -s KILL 3 asterisk -rx 'core show channels' >/dev/null 2>&1 &) ; sleep 1; echo started");
    assert!(text(&cli).contains("started"));
    let output = bed.tool(&["-o", "/tmp/out", "freeze", "--no-attach"]);
    assert!(output.status.success(), "{}", text(&output));
    let said = text(&output);
    let holder = bed.lwps("holder")[0];
    assert!(said.contains("STUCK:"), "{said}");
    assert!(said.contains(&format!("held by LWP {holder}")), "{said}");
    assert!(said.contains("sleeps while holding it"), "{said}");
    assert!(!said.contains("No deadlock"), "{said}");
}

#[test]
fn a_blocked_taskprocessor_is_named_with_its_queue_and_the_thread_stuck_in_its_task() {
    require_testbed!();
    let bed = Bed::start(Module::Stripped);
    // The bed's log outlives each Asterisk: only this one's warning counts.
    bed.sh(": > /var/log/asterisk/full");
    // One task that never returns, 600 queued behind it: above the high water mark (500).
    bed.break_it("taskprocessor 600");
    let server = bed.lwps("server");
    assert_eq!(server.len(), 1, "roles: {:?}", bed.roles());
    let output = bed.tool(&["-o", "/tmp/out", "--json", "freeze", "--timeout", "3"]);
    assert!(output.status.success(), "{}", text(&output));
    let json = json_of(&output);
    let queues = json["taskprocessors"].as_array().expect("taskprocessors");
    let blocked = queues
        .iter()
        .find(|queue| queue["name"] == "astdebug-blocked")
        .unwrap_or_else(|| panic!("not named: {json:#}"));
    assert_eq!(blocked["in_queue"], 600, "{blocked:#}");
    assert_eq!(blocked["high_water"], 500, "{blocked:#}");
    // Asterisk's own warning, read back from the `full` log.
    assert_eq!(blocked["log_reached"], 500, "{blocked:#}");
    // Stripped Asterisk and module: the thread is found from memory alone.
    assert_eq!(blocked["served_by_lwp"], server[0], "{blocked:#}");
    assert!(
        blocked["rests_on"].as_str().unwrap().contains("own id"),
        "{blocked:#}"
    );
    // Only the stuck one: the other queues of an idle Asterisk are empty.
    assert_eq!(queues.len(), 1, "{json:#}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "astdebug-blocked: 600 queued, served by LWP {}",
            server[0]
        )),
        "{stderr}"
    );
    assert!(stderr.contains("(res_astdebug_test.so+0x"), "{stderr}");
    assert!(
        stderr.contains("1 queue warning in the `full` log"),
        "{stderr}"
    );
    let saved = crate::common::testbed::read(&bed, "/tmp/out/core-show-taskprocessors.txt");
    assert!(saved.contains("astdebug-blocked"), "{saved}");
    assert!(bed.running(), "Asterisk state {:?}", bed.state());
    assert!(text(&bed.rx("core show uptime")).contains("System uptime"));

    // A core has no CLI: the log names the queue, memory still finds its thread.
    let pid = bed.pid;
    let core = format!("/var/spool/asterisk/core.{pid}.{}", chrono_now());
    let gcore = bed.sh(&format!(
        "gcore -o /tmp/gcore {pid} >/dev/null 2>&1 && mv /tmp/gcore.{pid} {core}"
    ));
    assert!(gcore.status.success(), "{}", text(&gcore));
    let output = bed.tool(&["-o", "/tmp/out-core", "--json", "freeze", "--core", &core]);
    assert!(output.status.success(), "{}", text(&output));
    let json = json_of(&output);
    let queues = json["taskprocessors"].as_array().expect("taskprocessors");
    assert_eq!(queues.len(), 1, "{json:#}");
    assert_eq!(queues[0]["name"], "astdebug-blocked");
    assert_eq!(queues[0]["in_queue"], serde_json::Value::Null);
    assert_eq!(queues[0]["log_reached"], 500);
    assert_eq!(queues[0]["served_by_lwp"], server[0], "{json:#}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("a core has no CLI"), "{stderr}");
    assert!(stderr.contains("before the core"), "{stderr}");
}

#[test]
fn several_blocked_taskprocessors_are_each_served_by_their_own_thread() {
    require_testbed!();
    let bed = Bed::start(Module::Stripped);
    bed.sh(": > /var/log/asterisk/full");
    // 150 queued each: large, but under the high water mark, so no warning in the log.
    bed.break_it("taskprocessor 150 4");
    let servers = set(bed.lwps("server"));
    assert_eq!(servers.len(), 4, "roles: {:?}", bed.roles());
    let output = bed.tool(&["-o", "/tmp/out", "--json", "freeze", "--timeout", "3"]);
    assert!(output.status.success(), "{}", text(&output));
    let json = json_of(&output);
    let queues = json["taskprocessors"].as_array().expect("taskprocessors");
    assert_eq!(queues.len(), 4, "{json:#}");
    let mut served = BTreeSet::new();
    for queue in queues {
        assert!(
            queue["name"]
                .as_str()
                .unwrap()
                .starts_with("astdebug-blocked"),
            "{queue:#}"
        );
        assert_eq!(queue["in_queue"], 150, "{queue:#}");
        assert_eq!(queue["log_reached"], serde_json::Value::Null, "{queue:#}");
        served.insert(queue["served_by_lwp"].as_u64().expect("a thread") as u32);
    }
    assert_eq!(served, servers);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no queue warning in the `full` log"),
        "{stderr}"
    );
    assert!(bed.running(), "Asterisk state {:?}", bed.state());
}
