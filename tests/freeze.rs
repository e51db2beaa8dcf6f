//! `freeze` on a real deadlock: a small C program whose threads deadlock on
//! pthread mutexes, attached with the real gdb, then the same from its core.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Output, Stdio};

use crate::common::{Sandbox, Succeeds, compile_c_as, compile_module, file_mode, start_ready};
use predicates::prelude::*;

/// The frozen program, killed when the test ends however it ends.
pub(crate) struct Frozen {
    pub(crate) child: Child,
    pub(crate) program: PathBuf,
    /// LWPs: the two deadlocked threads, the bystander, the rwlock writer and reader.
    lwps: [u64; 5],
}

impl Drop for Frozen {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn freeze_a_program(dir: &Path) -> Frozen {
    // Named as on a server: freeze refuses a pid that is not Asterisk.
    start_frozen(compile_c_as("deadlock", "asterisk", dir))
}

fn start_frozen(program: PathBuf) -> Frozen {
    let (child, numbers) = start_ready::<&str>(&program, &[]);
    Frozen {
        child,
        program,
        lwps: numbers.try_into().unwrap(),
    }
}

fn process_state(pid: u32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// The LWPs of a JSON graph's thread ids.
fn lwps_of(graph: &serde_json::Value, ids: &serde_json::Value) -> HashSet<u64> {
    let ids: HashSet<&str> = ids
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap())
        .collect();
    graph["threads"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|thread| ids.contains(thread["id"].as_str().unwrap()))
        .map(|thread| thread["lwp"].as_u64().unwrap())
        .collect()
}

/// The LWP of the graph thread whose id is `id`.
fn lwp_of(graph: &serde_json::Value, id: &serde_json::Value) -> Option<u64> {
    graph["threads"]
        .as_array()?
        .iter()
        .find(|thread| thread["id"] == *id)
        .and_then(|thread| thread["lwp"].as_u64())
}

fn check_graph(json: &serde_json::Value, frozen: &Frozen) {
    let graph = &json["graph"];
    let cycles = graph["cycles"].as_array().unwrap();
    assert_eq!(cycles.len(), 1, "{graph:#}");
    assert_eq!(
        lwps_of(graph, &cycles[0]),
        HashSet::from([frozen.lwps[0], frozen.lwps[1]])
    );
    let blocked = lwps_of(graph, &graph["blocked_on_cycles"]);
    assert!(
        blocked.contains(&frozen.lwps[2]),
        "the bystander is stuck behind the cycle: {blocked:?}"
    );
    assert!(
        !blocked.contains(&frozen.lwps[4]),
        "the rwlock reader waits for a live writer, not the cycle"
    );
    // The reader waits for the writer: an edge between them, on the rwlock.
    let edges = graph["edges"].as_array().unwrap();
    let lwp = |id: &serde_json::Value| lwp_of(graph, id);
    assert!(
        edges
            .iter()
            .any(|edge| lwp(&edge["waiter"]) == Some(frozen.lwps[4])
                && lwp(&edge["holder"]) == Some(frozen.lwps[3])
                && edge["lock_name"] == "event_subs_lock"),
        "{edges:#?}"
    );
    let groups = json["stack_groups"].as_array().unwrap();
    assert_eq!(
        groups[0]["count"], 4,
        "the four idle threads share a stack: {groups:#?}"
    );
}

#[test]
fn a_real_deadlock_is_found_live_and_in_its_core() {
    require_root!();
    let sandbox = Sandbox::new(&["systemctl", "asterisk"]);
    sandbox.prints("systemctl", "active\n");
    sandbox.prints(
        "asterisk",
        "Unable to connect to remote asterisk (does /var/run/asterisk/asterisk.ctl exist?)\n",
    );
    sandbox.fails("asterisk", 1);
    let frozen = freeze_a_program(&sandbox.path(""));
    let pid = frozen.child.id();

    let output = sandbox
        .command()
        .args([
            "--yes",
            "--json",
            "freeze",
            "--graph",
            "--pid",
            &pid.to_string(),
            "--asterisk-bin",
        ])
        .arg(&frozen.program)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("DEADLOCK: thread"), "{stderr}");
    assert!(
        stderr.contains("channels_lock") && stderr.contains("agents_lock"),
        "{stderr}"
    );
    assert!(stderr.contains("1 thread is stuck behind it"), "{stderr}");
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["pid"], pid);
    check_graph(&json, &frozen);
    assert_eq!(json["symptoms"][0]["verdict"], "ok");

    // Left as it was: alive, not stopped by the debugger.
    assert!(
        matches!(process_state(pid), Some('S') | Some('R')),
        "{:?}",
        process_state(pid)
    );
    let out = sandbox.path("out");
    for name in [
        "bt-threads.txt",
        "gdb-threads.json",
        "graph-locks.dot",
        "bug-report.md",
    ] {
        assert_eq!(file_mode(&out.join(name)), 0o600, "{name}");
    }
    let backtrace = fs::read_to_string(out.join("bt-threads.txt")).unwrap();
    assert!(backtrace.contains("agent_thread") && backtrace.contains("device_state_thread"));

    // The same answer from a core of the frozen process.
    let core = gcore_of(&sandbox, pid);
    assert!(matches!(process_state(pid), Some('S') | Some('R')));
    let output = sandbox
        .command()
        .args(["--yes", "--json", "freeze", "--core"])
        .arg(&core)
        .arg("--asterisk-bin")
        .arg(&frozen.program)
        .succeeds();
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    check_graph(&json, &frozen);
    // On a core, every thread's locals too (as ast_coredumper's -full.txt).
    let full = json["artefacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|path| path.as_str())
        .find(|path| path.ends_with("/bt-full.txt"))
        .expect("bt-full.txt among the artefacts of freeze --core");
    let text = fs::read_to_string(full).unwrap();
    assert!(text.contains("Thread ") && text.contains("#0 "), "{text}");
}

/// What bare `gdb -batch -nx -ex "thread apply all bt" PROGRAM TARGET` prints.
fn bare_gdb_backtrace(program: &Path, target: &[&str]) -> String {
    bare_gdb(program, target, "thread apply all bt")
}

fn bare_gdb(program: &Path, target: &[&str], command: &str) -> String {
    let output = Process::new("gdb")
        .args(["-batch", "-nx", "-ex", command])
        .arg(program)
        .args(target)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    String::from_utf8(output.stdout).unwrap()
}

/// A core of `pid` taken with gdb's gcore, as `freeze --gcore` takes one.
fn gcore_of(sandbox: &Sandbox, pid: u32) -> PathBuf {
    let core = sandbox.path("core.frozen");
    let gcore = Process::new("gcore")
        .arg("-o")
        .arg(&core)
        .arg(pid.to_string())
        .output()
        .unwrap();
    let core = PathBuf::from(format!("{}.{pid}", core.display()));
    assert!(
        core.exists(),
        "gcore failed: {}",
        String::from_utf8_lossy(&gcore.stderr)
    );
    core
}

/// `freeze --core CORE` of `program`, its files in `sandbox/on-core`.
fn freeze_core(sandbox: &Sandbox, core: &Path, program: &Path) -> (PathBuf, Output) {
    let on_core = sandbox.path("on-core");
    let output = sandbox
        .command_in(&on_core)
        .args(["--yes", "--json", "freeze", "--core"])
        .arg(core)
        .arg("--asterisk-bin")
        .arg(program)
        .succeeds();
    (on_core, output)
}

/// `on_core`'s bt-threads.txt and bt-full.txt are bare gdb's `thread apply
/// all bt` and `thread apply all bt full` of `core`; bare gdb's bt full.
fn core_files_are_bare_gdbs(on_core: &Path, program: &Path, core: &Path, what: &str) -> String {
    let core = core.to_string_lossy().into_owned();
    let bare = bare_gdb_backtrace(program, &[&core]);
    assert!(bare.contains("Thread 1 "), "{bare}");
    assert_eq!(
        fs::read_to_string(on_core.join("bt-threads.txt")).unwrap(),
        bare,
        "{what}, core"
    );
    // bt-full.txt comes from the same unwind, bt-threads.txt being it
    // without the locals: still exactly the doc's `bt full`.
    let full = bare_gdb(program, &[&core], "thread apply all bt full");
    assert_eq!(
        fs::read_to_string(on_core.join("bt-full.txt")).unwrap(),
        full,
        "{what}, core, bt full"
    );
    full
}

/// freeze prints the backtrace from its own pass over the threads (each
/// frame unwound once): the file must still be exactly what developers get
/// from the doc's command, with symbols or without, live or from a core.
///
/// The third case has no symbol at all (static, stripped), as a server
/// without libc6-dbg: every frame shows its pc and idle threads print the
/// same backtrace, which the script reads once for all (`QUIET` in
/// gdb_locks.py). The fourth (static, with symbols) has idle threads in one
/// place with their own arguments: frames known from the text
/// (`frames_from_text`).
#[test]
fn bt_threads_txt_is_byte_for_byte_what_bare_gdb_prints() {
    require_root!();
    let pcs = regex::Regex::new(r"(?m)^#\d+ +(0x[0-9a-f]+) in ").unwrap();
    for (stripped, dynamic) in [(false, true), (true, true), (true, false), (false, false)] {
        let sandbox = Sandbox::new(&["systemctl", "asterisk"]);
        sandbox.prints("systemctl", "active\n");
        sandbox.prints("asterisk", "Unable to connect to remote asterisk\n");
        sandbox.fails("asterisk", 1);
        let program = if dynamic {
            compile_c_as("deadlock", "asterisk", &sandbox.path(""))
        } else {
            compile_static("deadlock", &sandbox.path(""))
        };
        if stripped {
            let status = Process::new("strip").arg(&program).status().unwrap();
            assert!(status.success());
        }
        let frozen = start_frozen(program);
        let pid = frozen.child.id().to_string();
        let live = sandbox.path("live");
        sandbox
            .command_in(&live)
            .args(["--yes", "freeze", "--pid", &pid, "--asterisk-bin"])
            .arg(&frozen.program)
            .succeeds();
        let bare = bare_gdb_backtrace(&frozen.program, &["-p", &pid]);
        assert!(bare.contains("Thread 1 "), "{bare}");
        let text = fs::read_to_string(live.join("bt-threads.txt")).unwrap();
        assert_eq!(text, bare, "live, stripped: {stripped}");
        frames_carry_the_pcs_the_backtraces_show(&text, &live.join("gdb-threads.json"));
        if !dynamic {
            let stacks: Vec<&str> = text
                .split("\nThread ")
                .skip(1)
                .filter_map(|block| block.split_once('\n').map(|(_, frames)| frames))
                .collect();
            // Stripped, idle threads print the same text (`QUIET`); with
            // symbols, each its own argument, so the same pcs in another
            // text (`frames_from_text`).
            let pcs_of = |stack: &str| -> Vec<String> {
                pcs.captures_iter(stack).map(|c| c[1].to_string()).collect()
            };
            let repeated = stacks.iter().enumerate().any(|(at, stack)| {
                stacks[..at].iter().any(|earlier| {
                    (earlier == stack) == stripped && pcs_of(earlier) == pcs_of(stack)
                })
            });
            assert!(repeated, "no two threads in one place: {text}");
        }

        let core = gcore_of(&sandbox, frozen.child.id());
        let (on_core, _) = freeze_core(&sandbox, &core, &frozen.program);
        let what = format!("stripped: {stripped}");
        let full = core_files_are_bare_gdbs(&on_core, &frozen.program, &core, &what);
        assert!(
            full.contains("No locals.") || full.contains("No symbol table"),
            "{full}"
        );
    }
}

/// The fixture `name` linked statically, as `dir/asterisk`: no libc.so.6
/// mapped, and once stripped no libc symbol either, whatever libc6-dbg holds.
fn compile_static(name: &str, dir: &Path) -> PathBuf {
    let program = dir.join("asterisk");
    let status = Process::new("cc")
        .args(["-static", "-g", "-O0", "-pthread", "-o"])
        .arg(&program)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/c/{name}.c")))
        .status()
        .unwrap();
    // Not a skip: a test that passes without checking anything would hide it.
    assert!(
        status.success(),
        "cc -static failed: libc6-dev's libc.a is missing; apt-get install libc6-dev (or run the \
         tests with `tests/run`, which installs what they need)"
    );
    program
}

/// Each thread's frames in the script's JSON have the pcs its block of
/// bt-threads.txt shows (`#N  0x... in`), frame for frame, and as many
/// frames: whether the script walked the thread's frames or took them from
/// the text, as described before. Its name is the one its header shows.
fn frames_carry_the_pcs_the_backtraces_show(text: &str, json: &Path) {
    let json: serde_json::Value = serde_json::from_str(&fs::read_to_string(json).unwrap()).unwrap();
    let frame = regex::Regex::new(r"^#(\d+) +(0x[0-9a-f]+) in ").unwrap();
    let mut checked = 0;
    for block in text.split("\nThread ").skip(1) {
        let num: u64 = block
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{block}"));
        let thread = json["threads"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["num"] == num)
            .unwrap_or_else(|| panic!("thread {num} not in the JSON"));
        // The name the script takes from this header, not from gdb's `thread.name`.
        let header = block.lines().next().unwrap_or("");
        let shown = header
            .rsplit_once(" \"")
            .and_then(|(_, name)| name.strip_suffix("\"):"));
        assert_eq!(thread["name"].as_str(), shown, "thread {num}: {header}");
        let lines = block.lines().filter(|line| line.starts_with('#')).count();
        let frames = thread["frames"].as_array().map_or(0, Vec::len);
        assert_eq!(frames, lines.min(64), "thread {num}: {block}");
        for line in block.lines() {
            let Some(found) = frame.captures(line) else {
                continue;
            };
            let index: usize = found[1].parse().unwrap();
            let pc = u64::from_str_radix(&found[2][2..], 16).unwrap();
            let json_pc = thread["frames"][index]["pc"].as_str().unwrap_or("");
            assert_eq!(
                u64::from_str_radix(json_pc.trim_start_matches("0x"), 16).ok(),
                Some(pc),
                "thread {num}, frame {index}: {line}"
            );
            checked += 1;
        }
    }
    assert!(checked > 0, "{text}");
}

/// gdb reads only the symbols of the libraries the backtraces need (a Wazo
/// Asterisk maps 470): live and on a core, the backtraces must still be
/// bare gdb's, byte for byte, through a module with symbols and a stripped
/// one, and with an argument and a local pointing into a module no thread
/// is in (`cb=0x... <name>`).
#[test]
fn only_the_libraries_the_backtraces_need_are_read_and_they_are_bare_gdbs() {
    require_root!();
    let said = regex::Regex::new(
        r"read the symbols of (\d+) of the (\d+) shared objects mapped, those the backtraces need",
    )
    .unwrap();
    for (fixture, modules, printed) in [
        (
            "named_locks",
            [("libnamed.so", false), ("libstripped.so", true)],
            "module_wait () at ",
        ),
        // Named so that gdb's `sharedlibrary REGEX` must be given them
        // escaped as a basic regular expression (as libstdc++.so.6 must).
        (
            "callback",
            [("libpark++.so", false), ("libcb[1].so", true)],
            "(cb=0x",
        ),
    ] {
        let sandbox = Sandbox::new(&["systemctl", "asterisk"]);
        sandbox.prints("systemctl", "active\n");
        sandbox.prints("asterisk", "Unable to connect to remote asterisk\n");
        sandbox.fails("asterisk", 1);
        let dir = sandbox.path("");
        let program = compile_c_as(fixture, "asterisk", &dir);
        let modules = modules.map(|(name, strip)| compile_module(name, strip, &dir));
        let (mut child, _) = start_ready(&program, &modules);
        let pid = child.id().to_string();
        let out = sandbox.path("live");
        let output = sandbox
            .command_in(&out)
            .args(["--yes", "--json", "freeze", "--pid", &pid, "--asterisk-bin"])
            .arg(&program)
            .output()
            .unwrap();
        let bare = bare_gdb_backtrace(&program, &["-p", &pid]);
        let core = gcore_of(&sandbox, child.id());
        let _ = child.kill();
        let _ = child.wait();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{fixture}: {stderr}");
        // Its core, read the same way: bt and bt full still bare gdb's.
        let (on_core, core_output) = freeze_core(&sandbox, &core, &program);
        let full = core_files_are_bare_gdbs(&on_core, &program, &core, fixture);
        if fixture == "callback" {
            assert!(
                full.contains("saved = 0x") && full.contains(" <module_callback>\n"),
                "{full}"
            );
        }
        assert!(bare.contains(printed), "{fixture}: {bare}");
        if fixture == "callback" {
            // The callback's module is stripped: its name is a dynamic symbol.
            assert!(
                bare.contains("(cb=0x") && bare.contains(" <module_callback>)"),
                "{bare}"
            );
        }
        assert_eq!(
            fs::read_to_string(out.join("bt-threads.txt")).unwrap(),
            bare,
            "{fixture}"
        );
        // The dynamic linker is mapped, but no backtrace needs it.
        let counts = said
            .captures(&stderr)
            .unwrap_or_else(|| panic!("{fixture}: the stop line says what gdb read: {stderr}"));
        let read: usize = counts[1].parse().unwrap();
        let mapped: usize = counts[2].parse().unwrap();
        assert!(read >= 3 && read < mapped, "{fixture}: {stderr}");
        // --json says the same, and a core's run says what it read too.
        let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(json["symbols_read"]["read"], read, "{fixture}");
        assert_eq!(json["symbols_read"]["mapped"], mapped, "{fixture}");
        assert_eq!(json["symbols_read"]["all"], false, "{fixture}");
        let core_stderr = String::from_utf8_lossy(&core_output.stderr);
        let on_core = said
            .captures(&core_stderr)
            .unwrap_or_else(|| panic!("{fixture}: a core's run says what gdb read: {core_stderr}"));
        assert!(
            core_stderr.contains("\ngdb read the symbols of "),
            "{core_stderr}"
        );
        let json: serde_json::Value = serde_json::from_slice(&core_output.stdout).unwrap();
        assert_eq!(
            json["symbols_read"]["read"],
            on_core[1].parse::<usize>().unwrap()
        );
        assert_eq!(json["stopped_seconds"], serde_json::Value::Null);
    }
}

#[test]
fn a_hanging_cli_is_a_symptom_and_core_show_locks_is_used_when_there() {
    require_root!();
    let sandbox = Sandbox::new(&["systemctl", "asterisk"]);
    sandbox.prints("systemctl", "active\n");
    sandbox.hangs("asterisk.-rx.core show channels", 30);
    let dump = fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/core-show-locks.txt"),
    )
    .unwrap();
    sandbox.prints("asterisk.-rx.core show locks", &dump);
    let frozen = freeze_a_program(&sandbox.path(""));
    let output = sandbox
        .command()
        .args(["--yes", "--json", "freeze", "--timeout", "1", "--pid"])
        .arg(frozen.child.id().to_string())
        .arg("--asterisk-bin")
        .arg(&frozen.program)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["symptoms"][1]["verdict"], "freeze", "{json:#}");
    assert!(
        json["symptoms"][1]["detail"]
            .as_str()
            .unwrap()
            .contains("no answer within 1 s")
    );
    assert_eq!(json["graph_source"], "core show locks");
    assert!(
        stderr.contains("pbx_thread") && stderr.contains("bridge_manager_thread"),
        "{stderr}"
    );
    assert!(sandbox.path("out").join("core-show-locks.txt").exists());
}

#[test]
fn dry_run_and_bad_input() {
    let sandbox = Sandbox::new(&[]);
    let program = sandbox.path("prog");
    fs::copy("/bin/true", &program).unwrap();
    // A process named asterisk: freeze refuses the pid of anything else.
    let stand_in = sandbox.path("asterisk");
    fs::copy("/bin/sleep", &stand_in).unwrap();
    let mut asterisk = Process::new(&stand_in).arg("30").spawn().unwrap();
    sandbox
        .command()
        .args([
            "--dry-run",
            "freeze",
            "--pid",
            &asterisk.id().to_string(),
            "--asterisk-bin",
        ])
        .arg(&program)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "timeout 10 asterisk -rx 'core show locks' >",
        ))
        .stdout(predicate::str::contains(
            "timeout 10 asterisk -rx 'core show taskprocessors' > \"$OUT\"/core-show-taskprocessors.txt || true",
        ))
        .stdout(predicate::str::contains(format!(
            "ASTERISK_BIN=${{ASTERISK_BIN:-{}}}",
            program.display()
        )))
        .stdout(predicate::str::contains(
            "gdb -batch -nx -ex 'thread apply all bt' \"$ASTERISK_BIN\" -p \"$ASTERISK_PID\"",
        ));
    assert_eq!(fs::read_dir(sandbox.path("out")).unwrap().count(), 0);

    sandbox
        .command()
        .args(["freeze", "--asterisk-bin"])
        .arg(&program)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("Asterisk is not running"));
    sandbox
        .command()
        .args(["freeze", "--core"])
        .arg(&program)
        .arg("--asterisk-bin")
        .arg(&program)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not a core file"));
    let _ = asterisk.kill();
    let _ = asterisk.wait();
}

#[test]
fn no_attach_reads_the_cycle_and_the_rwlock_wait_from_proc_alone() {
    require_root!();
    let sandbox = Sandbox::new(&["systemctl", "asterisk"]);
    let frozen = freeze_a_program(&sandbox.path(""));
    let pid = frozen.child.id();
    let output = sandbox
        .command()
        .args(["--json", "freeze", "--no-attach", "--pid", &pid.to_string()])
        .succeeds();
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let graph = &json["graph"];
    let cycles = graph["cycles"].as_array().unwrap();
    assert_eq!(cycles.len(), 1, "{graph:#}");
    assert_eq!(
        lwps_of(graph, &cycles[0]),
        HashSet::from([frozen.lwps[0], frozen.lwps[1]])
    );
    assert!(lwps_of(graph, &graph["blocked_on_cycles"]).contains(&frozen.lwps[2]));
    // The rwlock reader waits for its writer: seen in memory, no gdb.
    let edges = graph["edges"].as_array().unwrap();
    let lwp = |id: &serde_json::Value| lwp_of(graph, id);
    assert!(
        edges
            .iter()
            .any(|edge| lwp(&edge["waiter"]) == Some(frozen.lwps[4])
                && lwp(&edge["holder"]) == Some(frozen.lwps[3])),
        "{edges:#?}"
    );
    // Nothing ran: no gdb, no CLI question.
    assert!(sandbox.calls().is_empty(), "{:?}", sandbox.calls());
    assert_eq!(process_state(pid).map(|s| s != 'T'), Some(true));
}

/// `tests/fixtures/c/stuck.c` in `mode`, named asterisk; its LWPs.
fn stuck_program(dir: &Path, mode: &str) -> (std::process::Child, Vec<u64>) {
    let program = compile_c_as("stuck", "asterisk", dir);
    start_ready(&program, &[Path::new(mode)])
}

#[test]
fn a_holder_that_waits_on_something_else_is_a_freeze_not_no_deadlock() {
    require_root!();
    for (mode, words) in [
        ("cond", "waits on a condition variable while holding it"),
        ("sleep", "sleeps while holding it"),
    ] {
        let sandbox = Sandbox::new(&["systemctl", "asterisk"]);
        sandbox.prints("systemctl", "active\n");
        sandbox.fails("asterisk", 1);
        let (mut child, lwps) = stuck_program(&sandbox.path(""), mode);
        let pid = child.id().to_string();
        let holder = format!("LWP {}", lwps[0]);
        // From /proc alone, then with gdb's frames.
        for extra in [
            &["--no-attach"][..],
            &[
                "--asterisk-bin",
                &sandbox.path("asterisk").display().to_string(),
            ][..],
        ] {
            let output = sandbox
                .command()
                .args(["--yes", "freeze", "--timeout", "2", "--pid", &pid])
                .args(extra)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(output.status.success(), "{mode} {extra:?}: {stderr}");
            assert!(
                stderr.contains("STUCK: 3 threads wait for"),
                "{mode} {extra:?}: {stderr}"
            );
            assert!(stderr.contains(&holder), "{mode} {extra:?}: {stderr}");
            assert!(stderr.contains(words), "{mode} {extra:?}: {stderr}");
            assert!(
                !stderr.contains("No deadlock"),
                "{mode} {extra:?}: {stderr}"
            );
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// `freeze --no-attach` on `child`, which it then ends: what freeze said,
/// once it has succeeded.
fn no_attach(sandbox: &Sandbox, child: &mut std::process::Child) -> String {
    let output = sandbox
        .command()
        .args(["freeze", "--no-attach", "--pid", &child.id().to_string()])
        .output()
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stderr}");
    stderr
}

#[test]
fn no_attach_names_a_static_lock_by_symbol_and_a_stripped_one_by_section() {
    require_root!();
    let sandbox = Sandbox::new(&["systemctl", "asterisk"]);
    let dir = sandbox.path("");
    let program = compile_c_as("named_locks", "asterisk", &dir);
    let named = compile_module("libnamed.so", false, &dir);
    let stripped = compile_module("libstripped.so", true, &dir);
    let (mut child, lwps) = start_ready(&program, &[&named, &stripped]);
    let stderr = no_attach(&sandbox, &mut child);
    // The same source twice: only the file with a .symtab names it.
    assert!(
        stderr.contains("waits for agents_lock (libnamed.so) 0x"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("held by LWP {}", lwps[0])),
        "{stderr}"
    );
    assert!(
        regex::Regex::new(r"waits for libstripped\.so \.bss\+0x[0-9a-f]+ 0x[0-9a-f]+, held by LWP")
            .unwrap()
            .is_match(&stderr),
        "{stderr}"
    );
    assert!(!stderr.contains("agents_lock (libstripped.so)"), "{stderr}");
    assert!(stderr.contains("where glibc 2."), "{stderr}");
}

#[test]
fn no_attach_on_a_program_without_glibc_says_it_cannot_read_owners() {
    require_root!();
    let sandbox = Sandbox::new(&["systemctl", "asterisk"]);
    let dir = sandbox.path("");
    // Static: no libc.so.6 mapped, so no glibc version to check the lock
    // layout against.
    let program = compile_static("deadlock", &dir);
    let (mut child, _) = start_ready::<&str>(&program, &[]);
    let stderr = no_attach(&sandbox, &mut child);
    assert!(
        stderr.contains("lock owners NOT read: cannot tell"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Cannot tell whether there is a deadlock"),
        "{stderr}"
    );
    assert!(!stderr.contains("No deadlock"), "{stderr}");
    assert!(!stderr.contains("DEADLOCK"), "{stderr}");
    // The waits are still seen, named.
    assert!(
        stderr.contains("waits for channels_lock (asterisk)"),
        "{stderr}"
    );
}
