//! Safe as root under real faults, across commands: signals to the whole
//! process group (a terminal's Ctrl-C, an SSH hangup), two runs at once, a
//! full or read-only output disk, directories and symlinks planted by
//! another account, and special files handed over as inputs.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::{Duration, Instant};

use crate::common::{Sandbox, Tmpfs, as_nobody, file_mode, mkfifo, state_dir};

const STANDINS: &[&str] = &[
    "wazo-dist",
    "apt-get",
    "dpkg-query",
    "xivo-fix-paths-rights",
];
const SETUP_DBG: &[&str] = &["--yes", "--wazo-version", "25.15", "setup-dbg"];
const INTERRUPTED_25_15: &[&str] = &[
    "wazo-dist -a wazo-25.15",
    "apt-get update",
    "apt-get install -y gdb libc6-dbg",
    "wazo-dist -m pelican-bookworm",
    "apt-get update",
];

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn matching_symbols(sandbox: &Sandbox) {
    sandbox.prints(
        "dpkg-query",
        "libc6 2.36-9 ii \nlibc6-dbg 2.36-9 ii \nasterisk 8:20.5.0-1wazo1 ii \n\
         asterisk-dbgsym 8:20.5.0-1wazo1 ii \nwazo-libsccp 2.3-1 ii \nwazo-libsccp-dbg 2.3-1 ii \n",
    );
}

/// A signal to the group during `hang` (a changing step), then two more
/// while `cleanup` (the first undo command) runs: the undo is not
/// interrupted, only told to wait, and the run ends 130 with all put back.
fn group_signals_during_step_and_cleanup(args: &[&str], hang: &str, cleanup: &str, first: &str) {
    let sandbox = Sandbox::new(STANDINS);
    sandbox.hangs(hang, 60);
    sandbox.hangs(cleanup, 2);
    let run = sandbox.start_in_group(args);
    sandbox.wait_hanging(hang);
    run.signal_group(first);
    sandbox.wait_hanging(cleanup);
    run.signal_group("INT");
    std::thread::sleep(Duration::from_millis(300));
    run.signal_group("HUP");
    let output = run.finish(Duration::from_secs(30));
    let stderr = stderr(&output);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    let undo = cleanup.replace('.', " ");
    assert!(
        stderr.contains(&format!("still putting things back: {undo}")),
        "{stderr}"
    );
    assert!(!stderr.contains("CLEANUP FAILED"), "{stderr}");
    let calls = sandbox.calls();
    assert_eq!(calls[calls.len() - 1], "apt-get update", "{calls:?}");
    assert!(calls[calls.len() - 2].starts_with(&undo), "{calls:?}");
    assert!(!state_dir(&sandbox).join("journal.json").exists());
}

#[test]
fn setup_dbg_survives_sigint_then_more_signals_to_the_group_during_cleanup() {
    require_root!();
    group_signals_during_step_and_cleanup(SETUP_DBG, "apt-get.install", "wazo-dist.-m", "INT");
}

#[test]
fn setup_dbg_survives_sighup_to_the_group_as_when_ssh_drops() {
    require_root!();
    group_signals_during_step_and_cleanup(SETUP_DBG, "apt-get.install", "wazo-dist.-m", "HUP");
}

#[test]
fn vanilla_survives_signals_to_the_group_during_install_and_cleanup() {
    require_root!();
    let args = ["--yes", "--wazo-version", "23.06", "vanilla", "install"];
    for first in ["INT", "HUP"] {
        group_signals_during_step_and_cleanup(&args, "apt-get.install", "wazo-dist.-m", first);
    }
}

#[test]
fn a_cleanup_that_fails_wins_over_the_interrupt_with_the_commands_by_hand() {
    require_root!();
    let sandbox = Sandbox::new(STANDINS);
    sandbox.hangs("apt-get.install", 60);
    sandbox.fails("wazo-dist.-m", 3);
    let run = sandbox.start_in_group(SETUP_DBG);
    sandbox.wait_hanging("apt-get.install");
    run.signal_group("INT");
    let output = run.finish(Duration::from_secs(30));
    let stderr = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("CLEANUP FAILED"), "{stderr}");
    assert!(
        stderr.contains(
            "Run by hand, as root:\n    wazo-dist -m pelican-bookworm\n    apt-get update"
        ),
        "{stderr}"
    );
    assert!(
        !stderr.contains("whatever had been changed is put back"),
        "{stderr}"
    );
    // The undo that failed stays in the journal, for `recover`.
    let journal = fs::read_to_string(state_dir(&sandbox).join("journal.json")).unwrap();
    assert!(journal.contains("pelican-bookworm"), "{journal}");
}

#[test]
fn a_second_changing_run_refuses_at_once_naming_the_first() {
    require_root!();
    let sandbox = Sandbox::new(STANDINS);
    sandbox.hangs("apt-get.install", 60);
    let first = sandbox.start_in_group(SETUP_DBG);
    sandbox.wait_hanging("apt-get.install");
    let before = sandbox.calls();
    let started = Instant::now();
    let second = sandbox.command().args(SETUP_DBG).output().unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    let text = stderr(&second);
    assert_eq!(second.status.code(), Some(2), "{text}");
    assert!(text.contains(&format!("pid {}", first.pgid)), "{text}");
    assert_eq!(sandbox.calls(), before, "the second run reached apt");
    // info tells a run going on from one that was killed.
    let info = sandbox.command().arg("info").output().unwrap();
    let text = String::from_utf8_lossy(&info.stdout);
    assert!(text.contains("Run going on"), "{text}");
    assert!(!text.contains("LEFT BEHIND"), "{text}");
    first.signal_group("INT");
    let output = first.finish(Duration::from_secs(30));
    assert_eq!(output.status.code(), Some(130), "{}", stderr(&output));
    assert_eq!(sandbox.calls(), INTERRUPTED_25_15);
}

#[test]
fn a_full_output_disk_is_refused_before_anything_runs() {
    require_root!();
    let sandbox = Sandbox::new(STANDINS);
    let disk = Tmpfs::mount(sandbox.path("full"), "size=2m");
    disk.fill();
    let output = sandbox
        .command_in(&disk.path.join("run"))
        .args(SETUP_DBG)
        .output()
        .unwrap();
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(text.contains("No space left on device"), "{text}");
    assert!(text.contains("nothing was run"), "{text}");
    assert!(sandbox.calls().is_empty(), "{:?}", sandbox.calls());
}

#[test]
fn a_read_only_output_disk_is_refused_before_anything_runs() {
    require_root!();
    let sandbox = Sandbox::new(STANDINS);
    let disk = Tmpfs::mount(sandbox.path("ro"), "ro,size=1m");
    let output = sandbox
        .command_in(&disk.path.join("run"))
        .args(SETUP_DBG)
        .output()
        .unwrap();
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(text.contains("Read-only file system"), "{text}");
    assert!(sandbox.calls().is_empty(), "{:?}", sandbox.calls());
}

#[test]
fn a_disk_that_fills_midway_is_a_loud_warning_and_exit_1_after_the_restore() {
    require_root!();
    let sandbox = Sandbox::new(STANDINS);
    matching_symbols(&sandbox);
    // Enough output that the log needs pages the full disk no longer has.
    sandbox.prints(
        "apt-get.update",
        &"Hit: a mirror line of apt\n".repeat(4000),
    );
    sandbox.hangs("apt-get.install", 3);
    let disk = Tmpfs::mount(sandbox.path("full"), "size=4m");
    let run = sandbox.start_in_group_in(&disk.path.join("run"), SETUP_DBG);
    sandbox.wait_hanging("apt-get.install");
    disk.fill();
    let output = run.finish(Duration::from_secs(30));
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("cannot write the run log"), "{text}");
    assert!(text.contains("not logged"), "{text}");
    let calls = sandbox.calls();
    assert!(
        calls
            .iter()
            .any(|call| call == "wazo-dist -m pelican-bookworm"),
        "{calls:?}"
    );
}

#[test]
fn an_output_directory_of_another_account_is_refused_naming_it() {
    require_root!();
    let sandbox = Sandbox::new(STANDINS);
    let hostile = sandbox.path("hostile");
    fs::create_dir(&hostile).unwrap();
    fs::set_permissions(sandbox.path(""), fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(&hostile, Some(65534), Some(65534)).unwrap();
    let target = sandbox.path("target");
    fs::write(&target, "root's file\n").unwrap();
    as_nobody(&format!(
        "ln -s {} {}/run.log && touch {}/bug-report.md && chmod 666 {}/bug-report.md",
        target.display(),
        hostile.display(),
        hostile.display(),
        hostile.display()
    ));
    let output = sandbox
        .command_in(&hostile)
        .args(SETUP_DBG)
        .output()
        .unwrap();
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(text.contains("belongs to nobody"), "{text}");
    assert!(sandbox.calls().is_empty());
    assert_eq!(fs::read_to_string(&target).unwrap(), "root's file\n");

    // A symlink planted where the tool would make its directory is not followed.
    as_nobody(&format!(
        "mkdir {0}/elsewhere && ln -s {0}/elsewhere {0}/run",
        hostile.display()
    ));
    let output = sandbox
        .command_in(&hostile.join("run"))
        .args(SETUP_DBG)
        .output()
        .unwrap();
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(text.contains("a symbolic link"), "{text}");
    assert!(
        fs::read_dir(hostile.join("elsewhere"))
            .unwrap()
            .next()
            .is_none()
    );

    // Writable by others, even if root's: refused too.
    let open = sandbox.path("open");
    fs::create_dir(&open).unwrap();
    fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
    let output = sandbox.command_in(&open).args(SETUP_DBG).output().unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("other accounts can write"));
}

#[test]
fn a_fresh_output_directory_is_0700_and_its_artefacts_0600_and_roots() {
    require_root!();
    let sandbox = Sandbox::new(STANDINS);
    matching_symbols(&sandbox);
    let out = sandbox.path("fresh/run");
    sandbox.command_in(&out).args(SETUP_DBG).assert().success();
    assert_eq!(file_mode(&out), 0o700);
    for entry in fs::read_dir(&out).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(file_mode(&path), 0o600, "{}", path.display());
        assert_eq!(fs::metadata(&path).unwrap().uid(), 0, "{}", path.display());
    }
    let state = state_dir(&sandbox);
    assert_eq!(file_mode(&state), 0o700);
    assert_eq!(file_mode(&state.join("lock")), 0o600);
}

/// `args` with `{}` replaced by `path`: exit 2 within 2 s, naming `kind`.
fn refused_in_time(sandbox: &Sandbox, args: &[&str], path: &std::path::Path, kind: &str) {
    let args: Vec<String> = args
        .iter()
        .map(|arg| arg.replace("{}", &path.to_string_lossy()))
        .collect();
    let started = Instant::now();
    let mut command = sandbox.command();
    command.args(&args).timeout(Duration::from_secs(10));
    let output = command.output().unwrap();
    let text = stderr(&output);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{args:?} took {:?}",
        started.elapsed()
    );
    assert_eq!(output.status.code(), Some(2), "{args:?}: {text}");
    assert!(text.contains(kind), "{args:?}: {text}");
}

#[test]
fn a_fifo_or_a_device_given_as_any_input_is_refused_within_2_s() {
    let sandbox = Sandbox::new(&[]);
    let fifo = sandbox.path("fifo");
    mkfifo(&fifo);
    let zero = std::path::Path::new("/dev/zero");
    let inputs: &[&[&str]] = &[
        &["graph", "{}"],
        &["segfaults", "--log", "{}"],
        &["crash", "--core", "{}"],
        &["freeze", "--asterisk-bin", "/bin/sh", "--core", "{}"],
    ];
    for args in inputs {
        refused_in_time(&sandbox, args, &fifo, "a FIFO (named pipe)");
        refused_in_time(&sandbox, args, zero, "a character device");
    }
    // A version file under --root, and the runbook under --runbooks.
    fs::create_dir_all(sandbox.path("root/usr/share/wazo")).unwrap();
    mkfifo(&sandbox.path("root/usr/share/wazo/WAZO-VERSION"));
    refused_in_time(
        &sandbox,
        &["--dry-run", "setup-dbg"],
        &fifo,
        "a FIFO (named pipe)",
    );
    let runbooks = sandbox.path("runbooks");
    fs::create_dir(&runbooks).unwrap();
    mkfifo(&runbooks.join("eras.toml"));
    refused_in_time(
        &sandbox,
        &["--runbooks", "{}", "runbooks"],
        &runbooks,
        "a FIFO (named pipe)",
    );
    fs::remove_file(runbooks.join("eras.toml")).unwrap();
    std::os::unix::fs::symlink(zero, runbooks.join("eras.toml")).unwrap();
    refused_in_time(
        &sandbox,
        &["--runbooks", "{}", "runbooks"],
        &runbooks,
        "a character device",
    );
}

#[test]
fn standard_input_that_never_ends_is_ended_by_sigterm_within_1_s() {
    use std::os::unix::process::CommandExt;
    let binary = assert_cmd::cargo::cargo_bin("wazo-astdebug");
    for input in ["/dev/zero", "fifo"] {
        let sandbox = Sandbox::new(&[]);
        let (stdin, _writer) = if input == "fifo" {
            // A writer that holds the FIFO open and never writes.
            let fifo = sandbox.path("fifo");
            mkfifo(&fifo);
            let writer = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("exec 3>{}; sleep 30", fifo.display()))
                .spawn()
                .unwrap();
            (fs::File::open(&fifo).unwrap(), Some(writer))
        } else {
            (fs::File::open(input).unwrap(), None)
        };
        let mut child = std::process::Command::new(&binary)
            .args(["graph", "-"])
            .stdin(stdin)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(500));
        assert!(
            child.try_wait().unwrap().is_none(),
            "{input}: ended by itself"
        );
        // SAFETY: kill(2) on our own child.
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        let signalled = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            assert!(
                signalled.elapsed() < Duration::from_secs(1),
                "{input}: still running 1 s after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        assert_eq!(status.code(), Some(130), "{input}");
        if let Some(mut writer) = _writer {
            let _ = writer.kill();
            let _ = writer.wait();
        }
    }
}
