//! `wazo-astdebug segfaults` run as a support engineer would: on a copied
//! server tree (`--root`), on given files (`--log`), and on this machine
//! right after a real crash, to check the kernel's own line is found.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::time::{Duration, SystemTime};

use crate::common::Succeeds;
use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/syslog");

/// A server tree with syslog, its rotated copies and kern.log, all written
/// on 2026-11-28 so that "Nov 26" means 2026 whenever the test runs.
fn server_tree() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let log = root.path().join("var/log");
    fs::create_dir_all(&log).unwrap();
    for name in ["syslog", "syslog.1", "syslog.2.gz", "kern.log"] {
        fs::copy(Path::new(FIXTURES).join(name), log.join(name)).unwrap();
        set_mtime(&log.join(name));
    }
    root
}

fn set_mtime(path: &Path) {
    // 2026-11-28T12:00:00Z
    let time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_867_200);
    File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(time)
        .unwrap();
}

fn tool(root: &Path) -> Command {
    let mut command = Command::cargo_bin("wazo-astdebug").unwrap();
    command.env("TZ", "UTC").arg("--root").arg(root);
    command
}

fn json(command: &mut Command) -> Vec<Value> {
    let output = command.arg("--json").output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let object: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(object["schema"], 1, "{object:#}");
    object["segfaults"].as_array().unwrap().clone()
}

fn lwps(list: &[Value]) -> Vec<u64> {
    list.iter().map(|s| s["lwp"].as_u64().unwrap()).collect()
}

#[test]
fn every_crash_once_oldest_first_with_its_fields() {
    let root = server_tree();
    let list = json(tool(root.path()).arg("segfaults"));
    assert_eq!(lwps(&list), [1111, 2222, 3333, 4444]);

    let old = &list[0];
    assert!(
        old["source"]
            .as_str()
            .unwrap()
            .ends_with("var/log/syslog.2.gz")
    );
    assert_eq!(old["time"], "2026-11-20T03:10:05+00:00");
    assert_eq!(old["host"], "pbx1");
    assert_eq!(old["fault_address"], "0xe");
    assert_eq!(old["ip"], "0xb751aa6b");
    assert_eq!(old["sp"], "0xb5ef14d4");
    assert_eq!(old["error_code"], 4);
    assert_eq!(old["error"], "user-mode read of an unmapped address");
    assert_eq!(old["library"], "libc-2.11.3.so");
    assert_eq!(old["library_base"], "0xb74ad000");
    assert_eq!(old["offset"], "0x6da6b");
    assert_eq!(old["file_offset"], Value::Null);

    let new = &list[1];
    assert!(
        new["source"]
            .as_str()
            .unwrap()
            .ends_with("var/log/syslog.1")
    );
    let also: Vec<&str> = new["also_in"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(also.len(), 1);
    assert!(also[0].ends_with("var/log/kern.log"));
    assert_eq!(
        new["error"],
        "user-mode write to a protected page (protection violation)"
    );
    assert_eq!(new["library"], "libasteriskssl.so.1");
    assert_eq!(new["offset"], "0x10c4d");
    assert_eq!(new["file_offset"], "0x13c4d");
    assert_eq!(new["cpu"], 3);

    let iso = &list[2];
    assert_eq!(iso["time"], "2026-11-28T04:12:43.123456+00:00");
    assert!(iso["source"].as_str().unwrap().ends_with("var/log/syslog"));
    assert_eq!(iso["also_in"].as_array().unwrap().len(), 1);
    // An ISO stamp keeps the offset it was written with.
    assert_eq!(list[3]["time"], "2026-11-28T05:30:00+01:00");
    assert_eq!(list[3]["error"], "user-mode write to an unmapped address");
}

#[test]
fn text_output_names_the_files() {
    let root = server_tree();
    tool(root.path())
        .arg("segfaults")
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "2026-11-28 04:12:43.123 +00:00  pbx1  asterisk[3333]",
        ))
        .stdout(predicate::str::contains(
            "4 segfaults of asterisk (newest last), from: ",
        ))
        .stdout(predicate::str::contains("syslog.2.gz"));
}

#[test]
fn since_and_until_filter() {
    let root = server_tree();
    let list = json(tool(root.path()).args(["segfaults", "--since", "2026-11-27 00:00"]));
    assert_eq!(lwps(&list), [3333, 4444]);
    let list = json(tool(root.path()).args([
        "segfaults",
        "--since",
        "2026-11-26T00:00:00",
        "--until",
        "2026-11-28 04:20",
    ]));
    assert_eq!(lwps(&list), [2222, 3333]);
    let list =
        json(tool(root.path()).args(["segfaults", "--since", "-1h", "--until", "2026-11-28"]));
    assert!(list.is_empty());
    tool(root.path())
        .args(["segfaults", "--since", "last tuesday"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("last tuesday"));
}

#[test]
fn other_processes_match_only_by_exact_name() {
    let root = server_tree();
    let list = json(tool(root.path()).args(["segfaults", "--process", "sv"]));
    assert_eq!(lwps(&list), [2223, 5555]);
    assert_eq!(
        list[0]["error"],
        "user-mode instruction fetch from an unmapped address"
    );
    let list = json(tool(root.path()).args(["segfaults", "--process", "asterisk-wrap"]));
    assert_eq!(lwps(&list), [6666]);
    let list = json(tool(root.path()).args(["segfaults", "--process", "aster"]));
    assert!(list.is_empty());
}

#[test]
fn none_found_says_where_it_looked() {
    let root = tempfile::tempdir().unwrap();
    tool(root.path())
        .arg("segfaults")
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "no segfault of asterisk found in: no log source",
        ));
    let log = root.path().join("var/log");
    fs::create_dir_all(&log).unwrap();
    fs::copy(Path::new(FIXTURES).join("none.log"), log.join("syslog")).unwrap();
    tool(root.path())
        .arg("segfaults")
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "no segfault of asterisk found in: ",
        ))
        .stdout(predicate::str::contains("var/log/syslog"));
}

#[test]
fn log_option_scans_only_the_given_files() {
    let root = tempfile::tempdir().unwrap();
    let list = json(
        tool(root.path())
            .args(["segfaults", "--log"])
            .arg(Path::new(FIXTURES).join("kern.log"))
            .arg("--log")
            .arg(Path::new(FIXTURES).join("syslog.2.gz")),
    );
    assert_eq!(lwps(&list), [1111, 2222, 3333]);
}

#[test]
fn bad_inputs_are_named_and_do_not_lose_the_rest() {
    let root = tempfile::tempdir().unwrap();
    let missing = root.path().join("nope.log");
    tool(root.path())
        .args(["segfaults", "--log"])
        .arg(&missing)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("nope.log"));

    // A directory, and a gzip cut in the middle, next to a good file.
    let gz = fs::read(Path::new(FIXTURES).join("syslog.2.gz")).unwrap();
    let cut = root.path().join("cut.gz");
    fs::write(&cut, &gz[..gz.len() - 12]).unwrap();
    tool(root.path())
        .args(["--json", "segfaults", "--log"])
        .arg(root.path())
        .arg("--log")
        .arg(&cut)
        .arg("--log")
        .arg(Path::new(FIXTURES).join("kern.log"))
        .assert()
        .success()
        .stdout(predicate::str::contains("\"lwp\": 3333"))
        .stderr(predicate::str::contains("is a directory"))
        .stderr(predicate::str::contains("cut.gz"));

    // Only unreadable input: the error is the answer.
    tool(root.path())
        .args(["segfaults", "--log"])
        .arg(root.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("is a directory"));

    // A binary file is scanned, with a note, and never panics.
    let binary = root.path().join("binary");
    let mut bytes: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    bytes.extend_from_slice(b"\nasterisk[7]: segfault at 1 ip 2 sp 3 error 4\n\x00\xff");
    fs::write(&binary, bytes).unwrap();
    let output = tool(root.path())
        .args(["--json", "segfaults", "--log"])
        .arg(&binary)
        .output()
        .unwrap();
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("binary"));
    let object: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(object["segfaults"][0]["lwp"], 7);
    assert!(
        object["warnings"][0].as_str().unwrap().contains("binary"),
        "the warning printed is in the JSON too: {object:#}"
    );
}

/// A real crash: the kernel's line for it must be found (through dmesg, as
/// /var/log/syslog may not exist), matched by pid.
#[test]
fn a_real_crash_is_found_by_pid() {
    let readable = Process::new("dmesg")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !readable {
        println!("note: dmesg is not readable here (not root?); real-crash test skipped");
        return;
    }
    let trace = fs::read_to_string("/proc/sys/debug/exception-trace").unwrap_or_default();
    if trace.trim() == "0" {
        println!("note: debug.exception-trace is 0, the kernel logs no segfault; test skipped");
        return;
    }
    crate::common::need("cc", "gcc");
    let dir = tempfile::tempdir().unwrap();
    let Some(program) = crashing_program(dir.path()) else {
        panic!("the crashing fixture did not build");
    };
    let child = Process::new(&program).spawn().unwrap();
    let pid = child.id();
    let status = child.wait_with_output().unwrap().status;
    assert!(!status.success());

    let name = program.file_name().unwrap().to_str().unwrap();
    let mut found = Vec::new();
    for _ in 0..10 {
        let output = Command::cargo_bin("wazo-astdebug")
            .unwrap()
            .args(["--json", "segfaults", "--process", name])
            .succeeds();
        let object: Value = serde_json::from_slice(&output.stdout).unwrap();
        let list = object["segfaults"].as_array().unwrap().clone();
        // Single-threaded: the faulting thread's LWP is the pid.
        found = list.into_iter().filter(|s| s["lwp"] == pid).collect();
        if !found.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(
        found.len(),
        1,
        "no kernel segfault line for pid {pid} of {name}"
    );
    let crash = &found[0];
    assert_eq!(crash["fault_address"], "0x10");
    assert_eq!(crash["error"], "user-mode write to an unmapped address");
    let also: Vec<&str> = crash["also_in"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        crash["source"] == "dmesg" || also.contains(&"dmesg"),
        "{crash}"
    );
    let age = chrono::DateTime::parse_from_rfc3339(crash["time"].as_str().unwrap()).unwrap();
    let seconds = (chrono::Utc::now() - age.with_timezone(&chrono::Utc))
        .num_seconds()
        .abs();
    assert!(seconds < 120, "dmesg time off by {seconds} s");
}

/// Builds a program that writes to address 16 a few calls deep.
fn crashing_program(dir: &Path) -> Option<PathBuf> {
    let source = dir.join("crash.c");
    fs::write(
        &source,
        "#include <stdio.h>\n\
         static void __attribute__((noinline)) store(int *p) { *p = 42; }\n\
         static void __attribute__((noinline)) deeper(int *p) { store(p); puts(\"\"); }\n\
         int main(void) { deeper((int *)16); return 0; }\n",
    )
    .unwrap();
    // comm is the first 15 bytes of the file name: keep it short and ours.
    let program = dir.join("astdbg_crash");
    let built = Process::new("cc")
        .arg("-O0")
        .arg("-o")
        .arg(&program)
        .arg(&source)
        .status()
        .ok()?;
    built.success().then_some(program)
}
