//! A fake Wazo server for integration tests.
//!
//! What cannot exist on a test machine (wazo-dist, Wazo's mirrors, apt
//! against them) is replaced by one small sh stand-in, installed under each
//! name on a private PATH. It records its argv in `calls.log` and can be told
//! to print, fail or hang, per program and first argument.

#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use assert_cmd::Command;

#[macro_use]
pub mod testbed;

const STANDIN: &str = r#"#!/bin/sh
ctl="$STANDIN_DIR"
name=${0##*/}
line=$name
for arg in "$@"; do line="$line $arg"; done
echo "$line" >> "$ctl/calls.log"
for key in "$name.$1.$2" "$name.$1" "$name"; do
  if [ -f "$ctl/$key.stdout" ]; then cat "$ctl/$key.stdout"; break; fi
done
for key in "$name.$1.$2" "$name.$1" "$name"; do
  # Read the time before saying "started": the test removes the file then.
  if [ -f "$ctl/$key.sleep" ]; then secs=$(cat "$ctl/$key.sleep"); echo $$ > "$ctl/$key.started"; exec sleep "$secs"; fi
done
for key in "$name.$1.$2" "$name.$1" "$name"; do
  if [ -f "$ctl/$key.fail" ]; then echo "$name: simulated failure" >&2; exit "$(cat "$ctl/$key.fail")"; fi
done
exit 0
"#;

pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    /// A sandbox with stand-ins for `names`.
    pub fn new(names: &[&str]) -> Sandbox {
        let dir = tempfile::tempdir().expect("temp dir");
        // Readable by everyone: the non-root test runs the binary as nobody.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let sandbox = Sandbox { dir };
        for sub in ["bin", "ctl", "root", "out"] {
            fs::create_dir_all(sandbox.path(sub)).unwrap();
        }
        fs::set_permissions(sandbox.path("ctl"), fs::Permissions::from_mode(0o777)).unwrap();
        for name in names {
            sandbox.standin(name);
        }
        sandbox
    }

    pub fn path(&self, sub: &str) -> PathBuf {
        self.dir.path().join(sub)
    }

    pub fn standin(&self, name: &str) {
        let path = self.path("bin").join(name);
        fs::write(&path, STANDIN).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// A stand-in of its own: `body` is sh, run with the program's arguments.
    pub fn script(&self, name: &str, body: &str) {
        let path = self.path("bin").join(name);
        fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn control(&self, key: &str, suffix: &str, content: &str) {
        fs::write(self.path("ctl").join(format!("{key}.{suffix}")), content).unwrap();
    }

    /// `key` is `program`, `program.first-argument` or
    /// `program.first-argument.second-argument` (the most precise wins).
    pub fn prints(&self, key: &str, text: &str) {
        self.control(key, "stdout", text);
    }

    pub fn fails(&self, key: &str, code: i32) {
        self.control(key, "fail", &code.to_string());
    }

    pub fn hangs(&self, key: &str, seconds: u32) {
        self.control(key, "sleep", &seconds.to_string());
    }

    pub fn started(&self, key: &str) -> bool {
        self.path("ctl").join(format!("{key}.started")).exists()
    }

    /// Waits until the stand-in `key` hangs, lets its later calls go
    /// through, and returns the pid of the hanging one.
    pub fn wait_hanging(&self, key: &str) -> i32 {
        let file = self.path("ctl").join(format!("{key}.started"));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            if let Some(pid) = fs::read_to_string(&file)
                .ok()
                .and_then(|text| text.trim().parse().ok())
            {
                let _ = fs::remove_file(self.path("ctl").join(format!("{key}.sleep")));
                return pid;
            }
            assert!(std::time::Instant::now() < deadline, "{key} never started");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Starts the binary as a terminal starts a job: in a session and
    /// process group of its own (setsid), so that a signal can go to the
    /// whole group as a terminal's Ctrl-C or an SSH hangup does.
    pub fn start_in_group(&self, args: &[&str]) -> GroupRun {
        self.start_in_group_in(&self.path("out"), args)
    }

    /// The same, with the output directory `out`.
    pub fn start_in_group_in(&self, out: &Path, args: &[&str]) -> GroupRun {
        use std::os::unix::process::CommandExt;
        use std::process::Stdio;
        let binary = assert_cmd::cargo::cargo_bin("wazo-astdebug");
        let mut command = std::process::Command::new(binary);
        command
            .env("PATH", self.path_var())
            .env("STANDIN_DIR", self.path("ctl"))
            .arg("--root")
            .arg(self.path("root"))
            .arg("--output-dir")
            .arg(out)
            .args(args)
            .stdin(Stdio::null());
        // Files, not pipes: a full pipe nobody reads would block the binary.
        let streams = tempfile::tempdir().unwrap();
        let stdout = streams.path().join("stdout");
        let stderr = streams.path().join("stderr");
        command
            .stdout(fs::File::create(&stdout).unwrap())
            .stderr(fs::File::create(&stderr).unwrap());
        // SAFETY: setsid(2) between fork and exec touches no memory of the parent.
        unsafe {
            command.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        let child = command.spawn().unwrap();
        let pgid = child.id() as i32;
        GroupRun {
            child,
            pgid,
            streams,
        }
    }

    /// Every stand-in call so far, one `program arg...` line each.
    pub fn calls(&self) -> Vec<String> {
        fs::read_to_string(self.path("ctl").join("calls.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Writes `content` at the host path `absolute` under the fake root.
    pub fn host_file(&self, absolute: &str, content: &[u8]) -> PathBuf {
        let path = self.path("root").join(absolute.trim_start_matches('/'));
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, content).unwrap();
        path
    }

    pub fn path_var(&self) -> String {
        format!(
            "{}:/usr/bin:/bin:/usr/sbin:/sbin",
            self.path("bin").display()
        )
    }

    /// The binary, with the stand-ins first on PATH, the fake root and the
    /// output directory `out`.
    pub fn command_in(&self, out: &Path) -> Command {
        let mut command = Command::cargo_bin("wazo-astdebug").unwrap();
        command
            .env("PATH", self.path_var())
            .env("STANDIN_DIR", self.path("ctl"))
            .env_remove("NO_COLOR")
            .arg("--root")
            .arg(self.path("root"))
            .arg("--output-dir")
            .arg(out);
        command
    }

    /// The binary, with the stand-ins first on PATH, the fake root and a
    /// private output directory.
    pub fn command(&self) -> Command {
        let mut command = Command::cargo_bin("wazo-astdebug").unwrap();
        command
            .env("PATH", self.path_var())
            .env("STANDIN_DIR", self.path("ctl"))
            .env_remove("NO_COLOR")
            .arg("--root")
            .arg(self.path("root"))
            .arg("--output-dir")
            .arg(self.path("out"));
        command
    }
}

/// A command that must succeed: its output, or a failure that shows what
/// it printed on stderr.
pub trait Succeeds {
    fn succeeds(&mut self) -> std::process::Output;
}

fn succeeded(output: std::process::Output) -> std::process::Output {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

impl Succeeds for Command {
    fn succeeds(&mut self) -> std::process::Output {
        succeeded(self.output().unwrap())
    }
}

impl Succeeds for std::process::Command {
    fn succeeds(&mut self) -> std::process::Output {
        succeeded(self.output().unwrap())
    }
}

pub fn is_root() -> bool {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    unsafe { libc::geteuid() == 0 }
}

/// Skips a test that needs root, saying so.
#[macro_export]
macro_rules! require_root {
    () => {
        if !$crate::common::is_root() {
            eprintln!("skipped: this test needs root (CI runs as root)");
            return;
        }
    };
}

/// Fails the test, naming the package, when `program` is missing: a test
/// of a tool never passes without it (`tests/run` installs them all).
pub fn need(program: &str, package: &str) {
    assert!(
        which::which(program).is_ok(),
        "`{program}` is not installed: apt-get install {package} (or run the tests with \
         `tests/run`, which installs what they need)"
    );
}

pub fn file_mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// True when `sh -n` accepts `script`.
pub fn sh_accepts(script: &str) -> bool {
    use std::io::Write;
    let mut sh = std::process::Command::new("sh")
        .arg("-n")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    sh.stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    sh.wait().unwrap().success()
}

/// The commands a `--dry-run` script runs on its success path, in order:
/// its scaffolding (`set -e`, traps, variables, the undo functions' own
/// lines) left out, each call of an undo function replaced by its commands.
pub fn script_commands(script: &str) -> Vec<String> {
    let mut functions: std::collections::HashMap<String, Vec<String>> = Default::default();
    let mut current: Option<String> = None;
    let mut commands = Vec::new();
    for line in script.lines() {
        if let Some(name) = &current {
            if line == "}" {
                current = None;
            } else if let Some(rest) = line
                .strip_prefix("    if ! ")
                .or_else(|| line.strip_prefix("    elif ! "))
            {
                let cmd = rest.split("; then undo_failed ").next().unwrap();
                functions.get_mut(name).unwrap().push(cmd.to_string());
            }
            continue;
        }
        if let Some(name) = line.strip_suffix("() {") {
            current = Some(name.to_string());
            functions.insert(name.to_string(), Vec::new());
            continue;
        }
        let scaffolding = line.is_empty()
            || line.starts_with('#')
            || line.starts_with("trap ")
            || line.starts_with("undo_failed() ")
            || line.starts_with("on_signals() ")
            || [
                "set -e",
                "on_signals",
                "cleanup_failed=0",
                "exit \"$cleanup_failed\"",
            ]
            .contains(&line)
            || is_assignment(line);
        if scaffolding {
            continue;
        }
        match functions.get(line) {
            Some(body) => commands.extend(body.iter().cloned()),
            None => commands.push(line.to_string()),
        }
    }
    commands
}

/// `NAME=${NAME:-value}` or `NAME=$(…)`: a variable of the script.
fn is_assignment(line: &str) -> bool {
    line.split_once('=').is_some_and(|(name, _)| {
        !name.is_empty() && name.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
    })
}

impl Sandbox {
    /// Runs the binary with `args`, waits until the stand-in `key` has
    /// started hanging, lets later calls of it go through, sends SIGINT to
    /// the binary only, and returns how it ended.
    pub fn interrupt_while_hanging(&self, args: &[&str], key: &str) -> std::process::Output {
        self.interrupt_while_hanging_within(args, key, std::time::Duration::from_secs(120))
    }

    /// The same, failing when the binary takes longer than `limit` to exit
    /// after the SIGINT (a hang bound: the child is stopped, the cleanup runs).
    pub fn interrupt_while_hanging_within(
        &self,
        args: &[&str],
        key: &str,
        limit: std::time::Duration,
    ) -> std::process::Output {
        use std::process::Stdio;
        use std::time::{Duration, Instant};
        let binary = assert_cmd::cargo::cargo_bin("wazo-astdebug");
        let child = std::process::Command::new(binary)
            .env("PATH", self.path_var())
            .env("STANDIN_DIR", self.path("ctl"))
            .arg("--root")
            .arg(self.path("root"))
            .arg("--output-dir")
            .arg(self.path("out"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.started(key) {
            assert!(Instant::now() < deadline, "{key} never started");
            std::thread::sleep(Duration::from_millis(50));
        }
        // Only the call that is hanging now hangs: later ones (the cleanup's) go through.
        fs::remove_file(self.path("ctl").join(format!("{key}.sleep"))).unwrap();
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(child.id() as i32, libc::SIGINT);
        }
        let interrupted = Instant::now();
        let output = child.wait_with_output().unwrap();
        assert!(
            interrupted.elapsed() < limit,
            "took {:?} to exit after SIGINT",
            interrupted.elapsed()
        );
        output
    }

    /// Runs the binary with `--dry-run` and `args`: it must succeed and call
    /// nothing. Returns the script it printed.
    pub fn dry_run(&self, args: &[&str]) -> String {
        let output = self.command().arg("--dry-run").args(args).output().unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(self.calls().is_empty(), "dry-run ran {:?}", self.calls());
        String::from_utf8(output.stdout).unwrap()
    }
}

/// Compiles `tests/fixtures/c/NAME.c` into `dir/NAME`, with symbols and no
/// optimisation, as a debug build of Asterisk would be.
pub fn compile_c(name: &str, dir: &Path) -> PathBuf {
    compile_c_as(name, name, dir)
}

/// The C fixture `name`, built as `dir/program` (`freeze` refuses a pid
/// whose executable is not named asterisk).
pub fn compile_c_as(name: &str, program: &str, dir: &Path) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/c/{name}.c"));
    let program = dir.join(program);
    let status = std::process::Command::new("cc")
        .args(["-g", "-O0", "-pthread", "-o"])
        .arg(&program)
        .arg(&source)
        .status()
        .expect("cc runs (apt-get install gcc)");
    assert!(status.success(), "cc failed on {}", source.display());
    program
}

/// Compiles `tests/fixtures/c/named_module.c` as the shared object
/// `dir/name`, stripped of its `.symtab` when `strip` is set.
pub fn compile_module(name: &str, strip: bool, dir: &Path) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/c/named_module.c");
    let module = dir.join(name);
    let status = std::process::Command::new("cc")
        .args(["-g", "-O0", "-fPIC", "-shared", "-o"])
        .arg(&module)
        .arg(&source)
        .status()
        .expect("cc runs (apt-get install gcc)");
    assert!(status.success());
    if strip {
        let status = std::process::Command::new("strip")
            .arg("--strip-all")
            .arg(&module)
            .status()
            .expect("strip runs (binutils)");
        assert!(status.success());
    }
    module
}

/// A run of the binary leading its own process group (see [`Sandbox::start_in_group`]).
pub struct GroupRun {
    pub child: std::process::Child,
    pub pgid: i32,
    streams: tempfile::TempDir,
}

impl GroupRun {
    /// `kill -s SIGNAL -- -PGID`: the whole group, as a terminal signals its job.
    pub fn signal_group(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .args(["-s", signal, "--", &format!("-{}", self.pgid)])
            .status()
            .unwrap();
        assert!(status.success(), "kill -s {signal} -- -{}", self.pgid);
    }

    /// SIGKILL to the binary alone, as the OOM killer does.
    pub fn sigkill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Waits for the binary to exit, failing after `limit`.
    pub fn finish(mut self, limit: std::time::Duration) -> std::process::Output {
        let started = std::time::Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > limit {
                let _ = self.child.kill();
                panic!("the binary did not exit within {limit:?}");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        std::process::Output {
            status,
            stdout: fs::read(self.streams.path().join("stdout")).unwrap(),
            stderr: fs::read(self.streams.path().join("stderr")).unwrap(),
        }
    }
}

/// Starts a C fixture that prints `ready N N ...` once its threads are in
/// place (their LWPs, or other numbers it reports), and waits for that line.
pub fn start_ready<S: AsRef<std::ffi::OsStr>>(
    program: &Path,
    args: &[S],
) -> (std::process::Child, Vec<u64>) {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(program)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("{}: {error}", program.display()));
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let numbers = line
        .strip_prefix("ready")
        .unwrap_or_else(|| panic!("{}: unexpected {line:?}", program.display()))
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    (child, numbers)
}

/// Whether process `pid` still exists (and is not a zombie).
pub fn alive(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
    })
}

/// The state directory of a sandbox run: the journal and the lock.
pub fn state_dir(sandbox: &Sandbox) -> PathBuf {
    sandbox.path("root/var/lib/wazo-astdebug")
}

/// A tmpfs mounted for one test (`options`: e.g. `size=1m` or `ro`), unmounted when dropped.
pub struct Tmpfs {
    pub path: PathBuf,
}

impl Tmpfs {
    pub fn mount(path: PathBuf, options: &str) -> Tmpfs {
        fs::create_dir_all(&path).unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success(), "mount -t tmpfs -o {options}");
        Tmpfs { path }
    }

    /// Writes zeros until the file system is full.
    pub fn fill(&self) {
        let _ = std::process::Command::new("dd")
            .args(["if=/dev/zero", "bs=64k"])
            .arg(format!("of={}", self.path.join("filler").display()))
            .stderr(std::process::Stdio::null())
            .status();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.path)
            .status();
    }
}

/// Runs `sh -c script` as the account nobody (setpriv), as a local
/// attacker would plant files.
pub fn as_nobody(script: &str) {
    let status = std::process::Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "sh",
            "-c",
            script,
        ])
        .status()
        .unwrap();
    assert!(status.success(), "as nobody: {script}");
}

/// Makes a FIFO at `path`.
pub fn mkfifo(path: &Path) {
    let name = std::ffi::CString::new(path.to_string_lossy().as_bytes()).unwrap();
    // SAFETY: mkfifo(3) with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o644) }, 0, "mkfifo");
}
