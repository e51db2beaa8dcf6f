//! `crash` on a real crash: a small C program that segfaults a few calls
//! deep with idle threads around, its real core, and the real gdb.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command as Process;

use crate::common::{Sandbox, compile_c as compile, compile_module, file_mode};
use predicates::prelude::*;

/// Crashes `program` and returns its core: the kernel's, when core_pattern
/// writes plain files into the working directory; else gdb's, taken at the
/// same SIGSEGV (a machine may pipe cores to systemd-coredump or apport).
fn crash_core(program: &Path, dir: &Path) -> PathBuf {
    crash_core_of(program, &[], dir)
}

/// The core of `program ARGS...`, which crashes: the kernel's, else gdb's.
fn crash_core_of(program: &Path, args: &[&Path], dir: &Path) -> PathBuf {
    let run_dir = dir.join("run");
    fs::create_dir_all(&run_dir).unwrap();
    let _ = Process::new("sh")
        .arg("-c")
        .arg("ulimit -c unlimited; exec \"$0\" \"$@\"")
        .arg(program)
        .args(args)
        .current_dir(&run_dir)
        .status();
    let kernel_core = fs::read_dir(&run_dir)
        .unwrap()
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.path())
        .find(|path| {
            path.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("core")
        });
    if let Some(core) = kernel_core {
        return core;
    }
    let core = run_dir.join("core.gdb");
    let status = Process::new("gdb")
        .args(["-batch", "-nx", "-ex", "run", "-ex"])
        .arg(format!("generate-core-file {}", core.display()))
        .arg("--args")
        .arg(program)
        .args(args)
        .output()
        .unwrap();
    assert!(
        core.exists(),
        "no core: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    core
}

pub(crate) struct Crashed {
    pub(crate) sandbox: Sandbox,
    pub(crate) program: PathBuf,
    pub(crate) core: PathBuf,
}

pub(crate) fn crashed() -> Crashed {
    let sandbox = Sandbox::new(&[]);
    let program = compile("crash", &sandbox.path(""));
    let core = crash_core(&program, &sandbox.path(""));
    Crashed {
        sandbox,
        program,
        core,
    }
}

#[test]
fn backtrace_summary_logs_and_report_from_a_real_core() {
    let crashed = crashed();
    let sandbox = &crashed.sandbox;
    sandbox.host_file(
        "/var/log/asterisk/full",
        b"[2026-11-28 04:00:01] VERBOSE[100] pbx.c: Executing [s@default:1]\n",
    );
    let output = sandbox
        .command()
        .args([
            "--yes",
            "--json",
            "--wazo-version",
            "25.15",
            "crash",
            "--at",
            "2026-11-28 04:10",
        ])
        .arg("--core")
        .arg(&crashed.core)
        .arg("--asterisk-bin")
        .arg(&crashed.program)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("SIGSEGV"), "{stderr}");
    assert!(
        stderr.contains("#0 handle_frame (") && stderr.contains("crash.c:14)"),
        "{stderr}"
    );

    let out = sandbox.path("out");
    let backtrace = fs::read_to_string(out.join("bt-threads.txt")).unwrap();
    for thread in 1..=4 {
        assert!(
            backtrace.contains(&format!("Thread {thread} ")),
            "thread {thread} missing:\n{backtrace}"
        );
    }
    assert!(backtrace.contains("handle_frame"), "{backtrace}");
    // Every thread's locals, as ast_coredumper writes them, 0600.
    let full = fs::read_to_string(out.join("bt-full.txt")).unwrap();
    assert!(
        full.contains("Thread 4 ") && full.contains("handle_frame"),
        "{full}"
    );
    assert_eq!(file_mode(&out.join("bt-full.txt")), 0o600);
    assert!(
        backtrace.contains("hunter2-secret"),
        "bt full shows locals: {backtrace}"
    );

    let report = fs::read_to_string(out.join("bug-report.md")).unwrap();
    assert!(report.contains("- **In versions:** 25.15"), "{report}");
    assert!(report.contains("2026-11-28 04:10:00"), "{report}");
    assert!(
        report.contains("DO NOT attach the core file publicly"),
        "{report}"
    );
    assert!(report.contains("20261128-"), "{report}");

    for entry in fs::read_dir(&out).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(file_mode(&path), 0o600, "{}", path.display());
        let head = fs::read(&path).unwrap();
        assert!(
            !head.starts_with(b"\x7fELF"),
            "a core was copied: {}",
            path.display()
        );
    }

    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["version"], "25.15");
    assert!(
        json["summary"][0]
            .as_str()
            .unwrap()
            .starts_with("Signal: SIGSEGV")
    );
    assert_eq!(json["logs"].as_array().unwrap().len(), 1);
}

#[test]
fn the_core_is_found_in_the_spool_and_dry_run_writes_nothing() {
    let crashed = crashed();
    let sandbox = &crashed.sandbox;
    let spool = sandbox.path("root/var/spool/asterisk");
    fs::create_dir_all(&spool).unwrap();
    let core = spool.join("core.4242.1764303163");
    fs::copy(&crashed.core, &core).unwrap();
    // A text file named like a core is not one.
    fs::write(spool.join("core.txt"), "not a core").unwrap();
    sandbox
        .command()
        .args(["--dry-run", "crash", "--asterisk-bin"])
        .arg(&crashed.program)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "gdb -batch -nx -ex 'bt full' -ex 'thread apply all bt'",
        ))
        // The real run writes bt-full.txt too: so does its script.
        .stdout(predicate::str::contains(
            "gdb -batch -nx -ex 'bt full' -ex 'thread apply all bt full'",
        ))
        .stdout(predicate::str::contains("/bt-full.txt"))
        .stdout(predicate::str::contains(core.display().to_string()));
    assert!(!sandbox.path("out").join("bt-threads.txt").exists());
    assert_eq!(fs::read_dir(sandbox.path("out")).unwrap().count(), 0);

    sandbox
        .command()
        .args(["--yes", "crash", "--asterisk-bin"])
        .arg(&crashed.program)
        .assert()
        .success()
        .stderr(predicate::str::contains("Crashing thread"));

    // `info --json` lists the same core (what the fleet's segfaults table
    // shows), and not the text file named like one.
    let output = sandbox.command().args(["--json", "info"]).output().unwrap();
    assert!(output.status.success());
    let info: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let cores = info["cores"].as_array().expect("info --json has cores");
    assert_eq!(cores.len(), 1, "{cores:?}");
    assert_eq!(cores[0]["path"], core.display().to_string());
    assert_eq!(cores[0]["pid"], 4242);
}

#[test]
fn a_wrong_core_or_binary_is_a_clear_error() {
    let crashed = crashed();
    let sandbox = &crashed.sandbox;
    let empty = sandbox.path("empty");
    fs::write(&empty, "").unwrap();
    let text = sandbox.path("notes.txt");
    fs::write(
        &text,
        "Oct 16 16:12:43 xivo-1 kernel: asterisk[1255]: segfault at e\n",
    )
    .unwrap();
    for (core, message) in [
        (crashed.program.clone(), "executable, not a core file"),
        (empty, "is not a core file"),
        (text, "is not a core file"),
        (sandbox.path("root"), "is a directory"),
        (sandbox.path("missing"), "cannot read"),
    ] {
        sandbox
            .command()
            .args(["--yes", "crash", "--core"])
            .arg(&core)
            .arg("--asterisk-bin")
            .arg(&crashed.program)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(message))
            .stderr(predicate::str::contains(core.display().to_string()))
            .stderr(predicate::str::contains("panicked").not());
    }
    sandbox
        .command()
        .args(["--yes", "crash", "--core"])
        .arg(&crashed.core)
        .args(["--asterisk-bin", "/nonexistent/asterisk"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--asterisk-bin"));
}

#[test]
fn a_core_from_another_binary_is_flagged() {
    let crashed = crashed();
    let other = compile("deadlock", &crashed.sandbox.path(""));
    crashed
        .sandbox
        .command()
        .args(["--yes", "crash", "--core"])
        .arg(&crashed.core)
        .arg("--asterisk-bin")
        .arg(&other)
        .assert()
        .stderr(predicate::str::contains(
            "core file may not match specified executable file",
        ));
}

#[test]
fn the_rotated_log_that_covers_the_incident_is_copied() {
    let crashed = crashed();
    let sandbox = &crashed.sandbox;
    sandbox.host_file(
        "/var/log/asterisk/full",
        b"[2026-11-28 00:00:01] VERBOSE[1] today\n",
    );
    sandbox.host_file(
        "/var/log/asterisk/full.1",
        b"[2026-11-27 00:00:02] VERBOSE[1] yesterday\n",
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, b"[2026-11-26 00:00:03] VERBOSE[1] two days ago\n").unwrap();
    sandbox.host_file("/var/log/asterisk/full.2.gz", &gz.finish().unwrap());
    sandbox
        .command()
        .args(["--yes", "crash", "--at", "2026-11-26 13:00", "--core"])
        .arg(&crashed.core)
        .arg("--asterisk-bin")
        .arg(&crashed.program)
        .assert()
        .success();
    let copies: Vec<String> = fs::read_dir(sandbox.path("out"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().to_string())
        .filter(|name| name.contains("asterisk-full"))
        .collect();
    assert_eq!(copies.len(), 1, "{copies:?}");
    assert!(
        copies[0].starts_with("20261126-") && copies[0].ends_with("-asterisk-full.2.log"),
        "{copies:?}"
    );
    let text = fs::read_to_string(sandbox.path("out").join(&copies[0])).unwrap();
    assert_eq!(text, "[2026-11-26 00:00:03] VERBOSE[1] two days ago\n");
}

#[test]
fn a_core_held_by_systemd_coredump_is_extracted() {
    let crashed = crashed();
    let sandbox = &crashed.sandbox;
    sandbox.host_file(
        "/proc/sys/kernel/core_pattern",
        b"|/lib/systemd/systemd-coredump %P %u %g %s %t 9223372036854775808 %h\n",
    );
    fs::create_dir_all(sandbox.path("root/var/log/journal")).unwrap();
    sandbox.script(
        "coredumpctl",
        &format!(
            r#"echo "coredumpctl $*" >> "$STANDIN_DIR/calls.log"
case " $* " in
  *" list "*) echo "Sat 2026-11-28 04:12:43 UTC  1255 999 999 SIGSEGV present  /usr/sbin/asterisk 1.2M" ;;
  *" dump "*) while [ "$1" != "-o" ]; do shift; done; cp "{}" "$2" ;;
esac"#,
            crashed.core.display()
        ),
    );
    sandbox
        .command()
        .args(["--dry-run", "crash", "--asterisk-bin"])
        .arg(&crashed.program)
        .assert()
        .success()
        .stdout(predicate::str::starts_with("#!/bin/sh\n"))
        .stdout(predicate::str::contains("coredumpctl --no-pager -D"));
    sandbox
        .command()
        .args(["--yes", "crash", "--asterisk-bin"])
        .arg(&crashed.program)
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "systemd-coredump holds the core of pid 1255",
        ))
        .stderr(predicate::str::contains("Crashing thread"));
    let extracted: Vec<PathBuf> = fs::read_dir(sandbox.path("out"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("core.1255.")
        })
        .collect();
    assert_eq!(extracted.len(), 1);
    assert_eq!(file_mode(&extracted[0]), 0o600);
    assert!(
        sandbox
            .calls()
            .iter()
            .any(|call| call.contains(" dump 1255")),
        "{:?}",
        sandbox.calls()
    );
}

#[test]
fn a_truncated_core_is_flagged_not_a_panic() {
    let crashed = crashed();
    let bytes = fs::read(&crashed.core).unwrap();
    let truncated = crashed.sandbox.path("core.truncated");
    fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    crashed
        .sandbox
        .command()
        .args(["--yes", "crash", "--core"])
        .arg(&truncated)
        .arg("--asterisk-bin")
        .arg(&crashed.program)
        .assert()
        .stderr(predicate::str::contains("truncated"))
        .stderr(predicate::str::contains("panicked").not());
}

/// On a core too gdb reads only the libraries the backtraces need, the
/// first frame it prints as it loads the core (in a module) included:
/// crash's files are still bare gdb's, byte for byte.
#[test]
fn a_crash_in_a_module_reads_only_what_the_backtraces_need_and_prints_bare_gdbs_text() {
    let sandbox = Sandbox::new(&[]);
    let dir = sandbox.path("");
    let program = compile("crash_module", &dir);
    let crashing = compile_module("libcrashing.so", false, &dir);
    let other = compile_module("libother.so", false, &dir);
    let core = crash_core_of(&program, &[&crashing, &other], &dir);
    let output = sandbox
        .command()
        .args(["--yes", "crash", "--core"])
        .arg(&core)
        .arg("--asterisk-bin")
        .arg(&program)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("-iex 'set auto-solib-add off'"), "{stderr}");
    let bare = |commands: [&str; 2]| {
        let output = Process::new("gdb")
            .args(["-batch", "-nx", "-ex", commands[0], "-ex", commands[1]])
            .arg(&program)
            .arg(&core)
            .output()
            .unwrap();
        String::from_utf8(output.stdout).unwrap()
    };
    let out = sandbox.path("out");
    let threads = bare(["bt full", "thread apply all bt"]);
    // gdb's first frame line, as it loads the core, and the crashing
    // thread's own: the module's symbols were there for both.
    assert!(
        threads.matches("in module_crash (frame=0x10) at ").count() >= 3,
        "{threads}"
    );
    assert_eq!(
        fs::read_to_string(out.join("bt-threads.txt")).unwrap(),
        threads
    );
    assert_eq!(
        fs::read_to_string(out.join("bt-full.txt")).unwrap(),
        bare(["bt full", "thread apply all bt full"])
    );
}
