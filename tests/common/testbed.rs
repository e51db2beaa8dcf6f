//! The real-Asterisk test bed: Debian's own Asterisk 22 (stripped, no debug
//! symbols, as on a production server) in a Debian sid root built and cached
//! by `tests/testbed/build`, with the test module `res_astdebug_test` whose
//! CLI command `astdebug test …` breaks it on purpose and writes down each
//! thread's role and LWP, so that a test compares the tool's answer with the
//! truth.
//!
//! One Asterisk at a time (a static lock): each test starts its own, as Wazo
//! does (`cd /var/spool/asterisk; asterisk -g -U asterisk`), and the guard
//! kills it when the test ends, passed or failed. Commands run inside the root
//! through `tests/testbed/enter`, whose mounts live in a private mount
//! namespace and so never outlive the test.
//!
//! Without the bed, the tests say loudly that they were skipped and how to
//! build it; with `WAZO_ASTDEBUG_TESTBED_REQUIRED=1` (CI) they fail instead.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const ROLES: &str = "/var/spool/asterisk/astdebug-roles";
const MODULES: &str = "/usr/lib/x86_64-linux-gnu/asterisk/modules";

/// Which build of the test module Asterisk loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Module {
    /// Built with -g: function names and lines.
    Debug,
    /// Stripped, as a module on a production server.
    Stripped,
}

/// One thread the test module put in a role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub scenario: String,
    pub role: String,
    pub lwp: u32,
    pub lock: String,
}

pub struct Bed {
    root: PathBuf,
    run: tempfile::TempDir,
    /// The process that keeps the bed's mount namespace alive.
    holder: u32,
    pub pid: u32,
    _turn: MutexGuard<'static, ()>,
    /// flock on the bed: other test processes (a second checkout's
    /// `cargo test`) wait their turn too.
    _lock: fs::File,
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn root() -> PathBuf {
    match std::env::var_os("WAZO_ASTDEBUG_TESTBED") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
            .join(".cache/wazo-astdebug/testbed"),
    }
}

/// The bed, or `None` (said loudly) when it is not built; a failure
/// instead when CI requires it.
pub fn available() -> bool {
    let built = root().join(".testbed-stamp").is_file() && crate::common::is_root();
    if !built {
        let why = if crate::common::is_root() {
            format!("no test bed at {}", root().display())
        } else {
            "the test bed needs root".to_string()
        };
        if std::env::var_os("WAZO_ASTDEBUG_TESTBED_REQUIRED").is_some() {
            panic!("{why}, and WAZO_ASTDEBUG_TESTBED_REQUIRED is set: run tests/testbed/build");
        }
        eprintln!(
            "\n*** SKIPPED: real-Asterisk test ({why}). Build the bed once, as root, with \
             `tests/testbed/build` (a Debian sid root with Debian's Asterisk 22, ~1 GB, a few \
             minutes), then run cargo test again. ***\n"
        );
    }
    built
}

/// Skips the test (loudly) when the bed is not there.
#[macro_export]
macro_rules! require_testbed {
    () => {
        if !$crate::common::testbed::available() {
            return;
        }
    };
}

impl Bed {
    /// Starts an Asterisk that loads `module`, and waits until it is fully booted.
    pub fn start(module: Module) -> Bed {
        let turn = ONE_AT_A_TIME
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let root = root();
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(root.join(".testbed-lock"))
            .expect("the bed's lock file");
        // SAFETY: flock(2) on a descriptor we own; it blocks until the bed is free.
        unsafe {
            use std::os::fd::AsRawFd;
            libc::flock(lock.as_raw_fd(), libc::LOCK_EX);
        }
        // The bed is shared by every checkout on this machine: under the lock,
        // bring its module layer to this checkout's module (seconds when
        // another checkout built a different one, nothing when it is current).
        let build = Command::new(repo().join("tests/testbed/build"))
            .stdin(Stdio::null())
            .output()
            .expect("run tests/testbed/build");
        assert!(
            build.status.success(),
            "tests/testbed/build: {}",
            text(&build)
        );
        // Whatever an earlier, killed test left: Asterisks of the bed only.
        // (`pkill -x asterisk` also killed the C fixtures that other tests,
        // running meanwhile, name asterisk.)
        kill_asterisks_under(&root);
        let variant = match module {
            Module::Debug => "debug",
            Module::Stripped => "stripped",
        };
        fs::copy(
            root.join(format!("opt/testbed/res_astdebug_test.so.{variant}")),
            root.join(MODULES.trim_start_matches('/'))
                .join("res_astdebug_test.so"),
        )
        .expect("install the test module");
        let spool = root.join("var/spool/asterisk");
        for entry in fs::read_dir(&spool).expect("the bed's spool") {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if name.starts_with("core") || name == "astdebug-roles" {
                let _ = fs::remove_file(&path);
            }
        }
        let run = tempfile::tempdir().expect("a /run for the bed");
        fs::set_permissions(run.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let holder = Command::new(repo().join("tests/testbed/enter"))
            .arg("start")
            .arg(run.path())
            .arg(assert_cmd::cargo::cargo_bin("wazo-astdebug"))
            .output()
            .expect("run tests/testbed/enter start");
        assert!(holder.status.success(), "enter start: {}", text(&holder));
        let holder = String::from_utf8_lossy(&holder.stdout)
            .trim()
            .parse()
            .expect("the holder's pid");
        let mut bed = Bed {
            root,
            run,
            holder,
            pid: 0,
            _turn: turn,
            _lock: lock,
        };
        let started = bed.sh(
            "mkdir -p /run/asterisk && chown asterisk: /run/asterisk && ulimit -c unlimited && \
             cd /var/spool/asterisk && asterisk -g -U asterisk && \
             for i in $(seq 300); do \
               timeout 30 asterisk -rx 'core waitfullybooted' >/dev/null 2>&1 && exit 0; sleep 0.1; \
             done; exit 1",
        );
        assert!(
            started.status.success(),
            "Asterisk did not start: {}",
            text(&started)
        );
        let pidfile = bed.run.path().join("asterisk/asterisk.pid");
        bed.pid = fs::read_to_string(&pidfile)
            .expect("Asterisk's pidfile")
            .trim()
            .parse()
            .expect("a pid in the pidfile");
        bed
    }

    /// A process of the bed that is not Asterisk (the namespace's holder, a `sleep`).
    pub fn holder(&self) -> u32 {
        self.holder
    }

    /// The host path of `absolute` inside the root.
    pub fn path(&self, absolute: &str) -> PathBuf {
        self.root.join(absolute.trim_start_matches('/'))
    }

    fn enter(&self) -> Command {
        let mut command = Command::new(repo().join("tests/testbed/enter"));
        command.arg("in").arg(self.holder.to_string()).arg("--");
        command
    }

    /// `sh -c script` inside the root, as root.
    pub fn sh(&self, script: &str) -> Output {
        self.enter()
            .args(["sh", "-c", script])
            .stdin(Stdio::null())
            .output()
            .expect("run tests/testbed/enter")
    }

    /// `asterisk -rx command`, bounded (a frozen Asterisk may never answer).
    pub fn rx(&self, command: &str) -> Output {
        self.enter()
            .args(["timeout", "-s", "KILL", "10", "asterisk", "-rx", command])
            .stdin(Stdio::null())
            .output()
            .expect("run asterisk -rx")
    }

    /// Puts Asterisk in `scenario` (`abba 3`, `rwcycle`, …) and returns the
    /// roles its threads took.
    pub fn break_it(&self, scenario: &str) -> Vec<Role> {
        let output = self.rx(&format!("astdebug test {scenario}"));
        assert!(
            text(&output).contains("in place"),
            "astdebug test {scenario}: {}",
            text(&output)
        );
        let roles = self.roles();
        // Each scenario thread logs a line to `full`, through Asterisk's
        // logger thread: on a loaded machine it may not be on disk yet when
        // the tool reads the log (an administrator runs freeze seconds
        // later). Waited for, bounded; what is missing is the test's to say.
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let log = fs::read_to_string(self.path("/var/log/asterisk/full")).unwrap_or_default();
            if roles.iter().all(|r| log.contains(&format!("[{}]", r.lwp))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        roles
    }

    pub fn roles(&self) -> Vec<Role> {
        fs::read_to_string(self.path(ROLES))
            .unwrap_or_default()
            .lines()
            .filter_map(|line| {
                let mut words = line.split_whitespace();
                Some(Role {
                    scenario: words.next()?.to_string(),
                    role: words.next()?.to_string(),
                    lwp: words.next()?.parse().ok()?,
                    lock: words.next().unwrap_or_default().to_string(),
                })
            })
            .collect()
    }

    /// The LWPs of the threads in `role`.
    pub fn lwps(&self, role: &str) -> Vec<u32> {
        self.roles()
            .into_iter()
            .filter(|r| r.role == role)
            .map(|r| r.lwp)
            .collect()
    }

    /// The tool, inside the root, as an administrator runs it.
    pub fn tool(&self, args: &[&str]) -> Output {
        self.enter()
            .arg("wazo-astdebug")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run wazo-astdebug in the bed")
    }

    /// The tool in a session and process group of its own (as a terminal's
    /// job), so that a test can signal the whole group as Ctrl-C does.
    pub fn spawn_tool(&self, args: &[&str]) -> Child {
        let mut command = self.enter();
        command
            .arg("wazo-astdebug")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        command.spawn().expect("spawn wazo-astdebug in the bed")
    }

    /// Asterisk's state letter in /proc (R, S, D, T, t, Z), or None once gone.
    pub fn state(&self) -> Option<char> {
        process_state(self.pid)
    }

    /// Alive and not stopped: what a test of "never harm the PBX" checks.
    pub fn running(&self) -> bool {
        matches!(self.state(), Some(state) if !matches!(state, 'T' | 't' | 'Z' | 'X'))
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        for pid in [self.pid, self.holder] {
            let Ok(pid) = i32::try_from(pid) else {
                continue;
            };
            if pid > 0 {
                // SAFETY: kill(2) has no memory-safety preconditions.
                unsafe {
                    libc::kill(pid, libc::SIGCONT);
                    libc::kill(pid, libc::SIGKILL);
                }
                let deadline = Instant::now() + Duration::from_secs(10);
                while process_state(pid as u32).is_some_and(|s| s != 'Z')
                    && Instant::now() < deadline
                {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }
}

/// SIGKILL to every process named asterisk whose root is `root`.
fn kill_asterisks_under(root: &Path) {
    let root = fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    for (pid, _, comm) in processes() {
        let in_bed = fs::read_link(format!("/proc/{pid}/root")).is_ok_and(|r| r == root);
        if comm == "asterisk" && in_bed {
            if let Ok(pid) = i32::try_from(pid) {
                // SAFETY: kill(2) has no memory-safety preconditions.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
        }
    }
}

pub fn process_state(pid: u32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}

/// (pid, ppid, comm) of every process.
fn processes() -> Vec<(u32, u32, String)> {
    let mut all = Vec::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some((head, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let comm = head
            .split_once(" (")
            .map(|(_, c)| c.to_string())
            .unwrap_or_default();
        // After the comm: state ppid ...
        let ppid = rest
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        all.push((pid, ppid, comm));
    }
    all
}

/// The live descendants of `ancestor` named `comm` (zombies excluded).
pub fn children_named(ancestor: u32, comm: &str) -> Vec<u32> {
    let all = processes();
    let mut found = Vec::new();
    let mut frontier = vec![ancestor];
    while let Some(parent) = frontier.pop() {
        for (pid, ppid, name) in &all {
            if *ppid == parent {
                frontier.push(*pid);
                if name == comm && !matches!(process_state(*pid), Some('Z') | None) {
                    found.push(*pid);
                }
            }
        }
    }
    found
}

/// Waits until a descendant of `ancestor` named `comm` runs.
pub fn wait_for_child(ancestor: u32, comm: &str, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if !children_named(ancestor, comm).is_empty() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// The pid tracing `pid` (TracerPid in /proc), if any.
pub fn tracer_of(pid: u32) -> Option<u32> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let tracer: u32 = status
        .lines()
        .find_map(|line| line.strip_prefix("TracerPid:"))?
        .trim()
        .parse()
        .ok()?;
    (tracer != 0).then_some(tracer)
}

/// Sends `signal` to the whole process group `pgid`, as a terminal does.
pub fn signal_group(pgid: u32, signal: i32) {
    let pgid = i32::try_from(pgid).expect("a pgid");
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe {
        libc::kill(-pgid, signal);
    }
}

/// Waits for `child` at most `limit`, killing its group if it takes longer.
pub fn wait_bounded(mut child: Child, limit: Duration) -> (Output, Duration) {
    let started = Instant::now();
    let pgid = child.id();
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        if started.elapsed() > limit {
            signal_group(pgid, libc::SIGKILL);
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let elapsed = started.elapsed();
    (
        child.wait_with_output().expect("the tool's output"),
        elapsed,
    )
}

/// stdout and stderr, for messages.
pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `path` under the bed's root, read.
pub fn read(bed: &Bed, absolute: &str) -> String {
    fs::read_to_string(bed.path(absolute)).unwrap_or_else(|error| {
        panic!("{}: {error}", Path::new(absolute).display());
    })
}
