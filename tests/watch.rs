//! `watch` on the C fixtures: a process that deadlocks after a few seconds
//! is caught within seconds and its run directory holds the right answer; a
//! process with hot, moving contention is never called frozen; and while it
//! samples, the target is never traced nor stopped (checked from here, every
//! few milliseconds, with /proc).

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Command as Process, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::common::testbed::{signal_group, text, wait_bounded};
use crate::common::{Sandbox, compile_c_as, file_mode};

/// The fixtures' name: freeze refuses a pid whose executable is not named
/// asterisk*, and not `asterisk` itself, which a test bed's start
/// (`pkill -x asterisk` in older trees on the same machine) would kill.
const PROGRAM: &str = "asterisk-watch";

/// A fixture process, killed when the test ends however it ends.
struct Target {
    child: Child,
    stdout: BufReader<ChildStdout>,
}

impl Target {
    /// Starts the fixture `name` built as `dir/asterisk-watch` with
    /// `args`, once it says "ready".
    fn start(name: &str, dir: &Path, args: &[&str]) -> Target {
        let program = compile_c_as(name, PROGRAM, dir);
        let mut child = Process::new(&program)
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert!(line.starts_with("ready"), "{line:?}");
        Target { child, stdout }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next line the fixture prints, as numbers after its first word.
    fn numbers(&mut self, word: &str) -> Vec<u64> {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        line.strip_prefix(word)
            .unwrap_or_else(|| panic!("expected {word}: {line:?}"))
            .split_whitespace()
            .map(|n| n.parse().unwrap())
            .collect()
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the test saw of the target, every few milliseconds.
struct Look {
    unix_ms: u128,
    tracer: u32,
    stopped: Vec<u32>,
}

/// Samples `pid`'s TracerPid and its threads' states until stopped.
struct Watcher {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Vec<Look>>,
}

impl Watcher {
    fn start(pid: u32) -> Watcher {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = std::thread::spawn(move || {
            let mut looks = Vec::new();
            while !flag.load(Ordering::SeqCst) {
                if let Some(look) = look_at(pid) {
                    looks.push(look);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            looks
        });
        Watcher { stop, handle }
    }

    fn finish(self) -> Vec<Look> {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.join().unwrap()
    }
}

fn look_at(pid: u32) -> Option<Look> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let tracer = status
        .lines()
        .find_map(|line| line.strip_prefix("TracerPid:"))?
        .trim()
        .parse()
        .ok()?;
    let mut stopped = Vec::new();
    for entry in fs::read_dir(format!("/proc/{pid}/task")).ok()?.flatten() {
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let state = stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.chars().next());
        if matches!(state, Some('t' | 'T')) {
            stopped.extend(entry.file_name().to_string_lossy().parse::<u32>().ok());
        }
    }
    Some(Look {
        unix_ms: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
        tracer,
        stopped,
    })
}

/// The sandbox of a capture: freeze's CLI checks and logger answer from stand-ins.
fn sandbox() -> Sandbox {
    let sandbox = Sandbox::new(&["systemctl", "asterisk", "logger"]);
    sandbox.prints("systemctl", "active\n");
    sandbox.prints("asterisk", "Unable to connect to remote asterisk\n");
    sandbox.fails("asterisk", 1);
    sandbox
}

/// The tool in a process group of its own (as a terminal's job).
fn spawn(sandbox: &Sandbox, args: &[&str]) -> Child {
    use std::os::unix::process::CommandExt;
    Process::new(assert_cmd::cargo::cargo_bin("wazo-astdebug"))
        .env("PATH", sandbox.path_var())
        .env("STANDIN_DIR", sandbox.path("ctl"))
        .arg("--root")
        .arg(sandbox.path("root"))
        .arg("--output-dir")
        .arg(sandbox.path("out"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap()
}

/// The LWPs of the JSON graph's thread ids `ids`.
fn lwps(graph: &serde_json::Value, ids: &serde_json::Value) -> BTreeSet<u64> {
    let threads = graph["threads"].as_array().expect("threads");
    ids.as_array()
        .into_iter()
        .flatten()
        .filter_map(|id| threads.iter().find(|t| &t["id"] == id))
        .filter_map(|t| t["lwp"].as_u64())
        .collect()
}

#[test]
fn a_deadlock_is_caught_within_seconds_without_tracing_before_the_capture() {
    require_root!();
    let sandbox = sandbox();
    let mut target = Target::start("deadlock_later", &sandbox.path(""), &["3"]);
    let pid = target.pid();
    let watcher = Watcher::start(pid);
    let program = sandbox.path(PROGRAM).display().to_string();
    let tool = spawn(
        &sandbox,
        &[
            "--json",
            "watch",
            "--pid",
            &pid.to_string(),
            "--interval",
            "1",
            "--confirm",
            "2",
            "--once",
            "--asterisk-bin",
            &program,
            "--on-freeze",
            "echo \"$WAZO_ASTDEBUG_RULE $WAZO_ASTDEBUG_THREADS\" > \"$WAZO_ASTDEBUG_RUN_DIR/paged\"",
        ],
    );
    let deadlocked = target.numbers("deadlocked ");
    let (output, _) = wait_bounded(tool, Duration::from_secs(60));
    let looks = watcher.finish();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("not one JSON object ({error}): {}", text(&output)));

    // Within ~4 s of the deadlock (1 s to see it, 1 s to confirm it).
    let declared = json["declared_at_unix_ms"].as_u64().unwrap();
    let (at, first, second, bystander) =
        (deadlocked[0], deadlocked[1], deadlocked[2], deadlocked[3]);
    assert!(
        declared >= at && declared - at <= 4000,
        "declared {} ms after the deadlock: {}",
        declared as i64 - at as i64,
        text(&output)
    );
    let freeze = &json["freezes"][0];
    assert_eq!(freeze["rule"], "cycle", "{json:#}");
    assert_eq!(freeze["lwps"], serde_json::json!([first, second]));
    assert_eq!(freeze["behind"], serde_json::json!([bystander]));
    assert!(
        text(&output).contains("rule: wait-for cycle"),
        "{}",
        text(&output)
    );

    // Never traced, never stopped, before the capture; gdb during it.
    let before: Vec<&Look> = looks
        .iter()
        .filter(|l| l.unix_ms < u128::from(declared))
        .collect();
    assert!(before.len() > 100, "{} looks", before.len());
    for look in &before {
        assert_eq!(
            look.tracer, 0,
            "traced at {} before the capture",
            look.unix_ms
        );
        assert!(
            look.stopped.is_empty(),
            "stopped threads {:?}",
            look.stopped
        );
    }
    assert!(
        looks.iter().any(|l| l.tracer != 0),
        "the capture's gdb was never seen: the test's own look is blind"
    );

    // The run directory holds the answer, the watch's and freeze's.
    let dir = Path::new(json["run_dir"].as_str().unwrap());
    assert!(dir.starts_with(sandbox.path("out")), "{}", dir.display());
    assert_eq!(file_mode(dir), 0o700);
    let record = fs::read_to_string(dir.join("watch.txt")).unwrap();
    assert!(
        record.contains(&format!("LWP {first}")) && record.contains("DEADLOCK"),
        "{record}"
    );
    let freeze_json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(dir.join("freeze.json")).unwrap()).unwrap();
    let graph = &freeze_json["graph"];
    assert_eq!(
        lwps(graph, &graph["cycles"][0]),
        BTreeSet::from([first, second])
    );
    assert!(lwps(graph, &graph["blocked_on_cycles"]).contains(&bystander));
    for name in [
        "watch.json",
        "watch.txt",
        "freeze.json",
        "bt-threads.txt",
        "bug-report.md",
    ] {
        assert_eq!(file_mode(&dir.join(name)), 0o600, "{name}");
    }
    assert_eq!(
        fs::read_to_string(dir.join("paged")).unwrap().trim(),
        format!("cycle {first} {second}")
    );
    // One syslog line naming the threads and the directory.
    let logged: Vec<String> = sandbox
        .calls()
        .into_iter()
        .filter(|c| c.starts_with("logger"))
        .collect();
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert!(
        logged[0].contains("-t wazo-astdebug")
            && logged[0].contains(&format!("LWP {first}"))
            && logged[0].contains(&dir.display().to_string()),
        "{logged:?}"
    );
}

#[test]
fn a_freeze_is_captured_once_however_long_it_lasts() {
    require_root!();
    let sandbox = sandbox();
    let target = Target::start("deadlock_later", &sandbox.path(""), &["0.5"]);
    let program = sandbox.path(PROGRAM).display().to_string();
    let tool = spawn(
        &sandbox,
        &[
            "watch",
            "--pid",
            &target.pid().to_string(),
            "--interval",
            "0.5",
            "--confirm",
            "2",
            "--max-time",
            "8",
            "--asterisk-bin",
            &program,
        ],
    );
    let (output, _) = wait_bounded(tool, Duration::from_secs(60));
    let said = text(&output);
    assert_eq!(output.status.code(), Some(0), "{said}");
    assert!(said.contains("1 freeze captured"), "{said}");
    assert_eq!(said.matches("FREEZE:").count(), 1, "{said}");
    // The locks by their symbols: the fixture is not stripped.
    assert!(said.contains("(channels_lock (asterisk-watch))"), "{said}");
    assert!(said.contains("(agents_lock (asterisk-watch))"), "{said}");
    assert_eq!(fs::read_dir(sandbox.path("out")).unwrap().count(), 1);
    // The run directory on stdout, once.
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).lines().count(),
        1,
        "{said}"
    );
}

#[test]
fn hot_moving_contention_is_not_a_freeze() {
    require_root!();
    let sandbox = sandbox();
    let target = Target::start("contention", &sandbox.path(""), &["20", "6"]);
    let pid = target.pid();
    let watcher = Watcher::start(pid);
    let tool = spawn(
        &sandbox,
        &[
            "--verbose",
            "watch",
            "--pid",
            &pid.to_string(),
            "--interval",
            "1",
            "--confirm",
            "2",
            "--max-time",
            "8",
        ],
    );
    let (output, _) = wait_bounded(tool, Duration::from_secs(30));
    let looks = watcher.finish();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let said = text(&output);
    assert!(said.contains("nothing was captured"), "{said}");
    assert!(!said.contains("FREEZE"), "{said}");
    assert!(output.stdout.is_empty(), "{said}");
    assert_eq!(fs::read_dir(sandbox.path("out")).unwrap().count(), 0);
    assert!(looks.len() > 100);
    assert!(looks.iter().all(|l| l.tracer == 0 && l.stopped.is_empty()));
    assert!(sandbox.calls().is_empty(), "{:?}", sandbox.calls());
}

/// A process named asterisk-watch that only sleeps.
fn sleeper(sandbox: &Sandbox, name: &str) -> Child {
    let dir = sandbox.path(name);
    fs::create_dir_all(&dir).unwrap();
    fs::copy("/bin/sleep", dir.join(PROGRAM)).unwrap();
    Process::new(dir.join(PROGRAM)).arg("60").spawn().unwrap()
}

#[test]
fn ctrl_c_to_the_process_group_ends_it_at_once_with_130() {
    require_root!();
    let sandbox = sandbox();
    let mut asterisk = sleeper(&sandbox, "a");
    let tool = spawn(
        &sandbox,
        &[
            "watch",
            "--pid",
            &asterisk.id().to_string(),
            "--interval",
            "5",
        ],
    );
    std::thread::sleep(Duration::from_millis(1500));
    let signalled = Instant::now();
    signal_group(tool.id(), libc::SIGINT);
    let (output, _) = wait_bounded(tool, Duration::from_secs(10));
    let took = signalled.elapsed();
    let _ = asterisk.kill();
    let _ = asterisk.wait();
    assert_eq!(output.status.code(), Some(130), "{}", text(&output));
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert!(
        text(&output).contains("nothing was captured"),
        "{}",
        text(&output)
    );
}

/// The lines a child prints on stderr, gathered as they come.
struct Lines(Arc<std::sync::Mutex<String>>);

impl Lines {
    fn gather(child: &mut Child) -> Lines {
        let stderr = child.stderr.take().unwrap();
        let text = Arc::new(std::sync::Mutex::new(String::new()));
        let into = Arc::clone(&text);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut text = into.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
            }
        });
        Lines(text)
    }

    fn text(&self) -> String {
        self.0.lock().unwrap().clone()
    }

    /// Waits until `what` was printed (a loaded machine is slow, not wrong).
    fn wait_for(&self, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.text().contains(what) {
            assert!(
                Instant::now() < deadline,
                "never said {what:?}: {}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn it_follows_asterisk_across_a_restart_and_waits_while_it_is_gone() {
    require_root!();
    let sandbox = sandbox();
    let mut first = sleeper(&sandbox, "a");
    let mut second = sleeper(&sandbox, "b");
    let pidfile = sandbox.host_file(
        "/run/asterisk/asterisk.pid",
        format!("{}\n", first.id()).as_bytes(),
    );
    let mut tool = spawn(
        &sandbox,
        &["watch", "--interval", "0.2", "--max-time", "60"],
    );
    let said = Lines::gather(&mut tool);
    said.wait_for(&format!("Watching Asterisk, pid {}", first.id()));
    // A restart: the new pid in the pidfile (written whole, as a daemon does).
    let next = sandbox.path("root/run/asterisk/asterisk.pid.new");
    fs::write(&next, format!("{}\n", second.id())).unwrap();
    fs::rename(&next, &pidfile).unwrap();
    let _ = first.kill();
    said.wait_for(&format!(
        "Asterisk restarted: now pid {} (was {})",
        second.id(),
        first.id()
    ));
    fs::remove_file(&pidfile).unwrap();
    said.wait_for(&format!("Asterisk (pid {}) is gone; waiting", second.id()));
    // Back again: watched again.
    fs::write(&next, format!("{}\n", second.id())).unwrap();
    fs::rename(&next, &pidfile).unwrap();
    said.wait_for(&format!("Watching Asterisk, pid {}", second.id()));
    signal_group(tool.id(), libc::SIGTERM);
    let (output, _) = wait_bounded(tool, Duration::from_secs(20));
    let _ = second.kill();
    let _ = first.wait();
    let _ = second.wait();
    assert_eq!(output.status.code(), Some(130), "{}", said.text());
    assert!(
        said.text().contains("nothing was captured"),
        "{}",
        said.text()
    );
    assert_eq!(
        said.text().matches("Asterisk is not running").count(),
        0,
        "{}",
        said.text()
    );
}

#[test]
fn bad_input_is_refused_clearly_with_exit_2() {
    require_root!();
    let sandbox = sandbox();
    // Not Asterisk.
    let mut other = Process::new("sleep").arg("30").spawn().unwrap();
    let output = sandbox
        .command()
        .args(["watch", "--pid", &other.id().to_string(), "--max-time", "1"])
        .output()
        .unwrap();
    let _ = other.kill();
    let _ = other.wait();
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(text(&output).contains("not Asterisk"), "{}", text(&output));
    for bad in [
        ["--interval", "0"],
        ["--interval", "soon"],
        ["--confirm", "0"],
    ] {
        let output = sandbox.command().arg("watch").args(bad).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{bad:?}: {}", text(&output));
        assert!(!text(&output).contains("panicked"), "{}", text(&output));
    }
    // --dry-run says what a capture would run, and runs nothing.
    let script = sandbox.dry_run(&["watch", "--gcore"]);
    assert!(script.contains("reads /proc only"), "{script}");
    assert!(
        script.contains("freeze --pid PID") && script.contains("--gcore"),
        "{script}"
    );

    // Not root: refused before anything is read.
    let asterisk = sleeper(&sandbox, "a");
    let copy = sandbox.path("bin").join("wazo-astdebug");
    fs::copy(assert_cmd::cargo::cargo_bin("wazo-astdebug"), &copy).unwrap();
    let output = Process::new("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
        .arg(&copy)
        .args([
            "watch",
            "--pid",
            &asterisk.id().to_string(),
            "--max-time",
            "1",
        ])
        .output()
        .unwrap();
    let mut asterisk = asterisk;
    let _ = asterisk.kill();
    let _ = asterisk.wait();
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        text(&output).contains("only root may do"),
        "{}",
        text(&output)
    );
}
