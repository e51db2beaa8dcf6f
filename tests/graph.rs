//! `wazo-astdebug graph` run as the real binary: what a support engineer
//! types, what they read, what graphviz accepts.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

use assert_cmd::Command;
use predicates::prelude::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/locks")
        .join(name)
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/core-show-locks.txt")
}

fn graph() -> Command {
    let mut command = Command::cargo_bin("wazo-astdebug").unwrap();
    command.arg("graph");
    command
}

#[test]
fn text_names_the_deadlocked_pair_and_the_count_behind() {
    graph()
        .arg(example())
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "DEADLOCK: thread 0x7f3a1c2f9700 LWP 18211 (pbx_thread) holds chan 0x55d0c8a1b2c0",
        ))
        .stdout(predicate::str::contains(
            "held by thread 0x7f3a1d8ff700 LWP 17604 (bridge_manager_thread)",
        ))
        .stdout(predicate::str::contains(
            "which waits for chan 0x55d0c8a1b2c0.",
        ))
        .stdout(predicate::str::contains("3 threads are stuck behind it"))
        .stdout(predicate::str::contains("holder is not listed"))
        .stdout(predicate::str::contains("Failed trylocks"));
}

#[test]
fn text_says_when_there_is_no_deadlock() {
    graph()
        .arg(fixture("ast11-hex.txt"))
        .assert()
        .success()
        .stdout(predicate::str::contains("No deadlock"))
        .stdout(predicate::str::contains("DEADLOCK").not());
}

#[test]
fn every_format_generation_is_read() {
    for (name, pair) in [
        ("ast18-decimal.txt", ["3077372784", "3060587376"]),
        ("ast12-version.txt", ["0x7f2a3c1f5700", "0x7f2a3c0ad700"]),
        ("ast13-lwp.txt", ["0x7f5b7c6f6700", "0x7f5b7d2f9700"]),
        ("ast21-timing.txt", ["0x7f0e9a7ff6c0", "0x7f0e9b3fe6c0"]),
    ] {
        let output = graph()
            .arg(fixture(name))
            .args(["-f", "json"])
            .output()
            .unwrap();
        assert!(output.status.success(), "{name}");
        let value: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(value["cycles"], serde_json::json!([pair]), "{name}");
    }
}

#[test]
fn json_fields() {
    let output = graph()
        .arg(example())
        .args(["-f", "json"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        value["cycles"],
        serde_json::json!([["0x7f3a1c2f9700", "0x7f3a1d8ff700"]])
    );
    assert_eq!(
        value["blocked_on_cycles"],
        serde_json::json!(["0x7f3a1c0fd700", "0x7f3a1bf7a700", "0x7f3a1bd77700"])
    );
    let first = &value["threads"][0];
    assert_eq!(first["id"], "0x7f3a1c2f9700");
    assert_eq!(first["lwp"], 18211);
    assert_eq!(first["start"], "pbx_thread");
    assert!(first["name"].as_str().unwrap().contains("started at"));
    let edges = value["edges"].as_array().unwrap();
    assert!(
        edges
            .iter()
            .all(|e| e["waiter"].is_string() && e.get("lock").is_some())
    );
    // The writer waits for both readers of the rwlock.
    let writer_edges: Vec<_> = edges
        .iter()
        .filter(|e| e["waiter"] == "0x7f3a1b9f3700")
        .map(|e| e["holder"].as_str().unwrap())
        .collect();
    assert_eq!(writer_edges, ["0x7f3a1ca9b700", "0x7f3a1c89f700"]);
    // The holder that is not listed.
    assert!(
        edges
            .iter()
            .any(|e| e["holder"].is_null() && e["lock"] == "0x7f3a04012c48")
    );
    let locks = value["locks"].as_array().unwrap();
    let chan = locks
        .iter()
        .find(|l| l["addr"] == "0x55d0c8a1b2c0")
        .unwrap();
    assert_eq!(chan["name"], "chan");
    assert_eq!(chan["tried_and_failed"][0]["thread"], "0x7f3a1ca9b700");
}

#[test]
fn global_json_flag_means_json() {
    graph()
        .arg(example())
        .arg("--json")
        .assert()
        .success()
        .stdout(predicate::str::starts_with("{"));
}

#[test]
fn dot_is_accepted_by_graphviz() {
    let output = graph().arg(example()).args(["-f", "dot"]).output().unwrap();
    assert!(output.status.success());
    let dot = String::from_utf8(output.stdout).unwrap();
    assert!(dot.starts_with("digraph"));
    assert!(dot.contains("color=red"));
    assert!(dot.contains("holder not listed"));
    for program in ["dot", "circo"] {
        crate::common::need(program, "graphviz");
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("g.dot");
        fs::write(&source, &dot).unwrap();
        let svg = dir.path().join("g.svg");
        let status = StdCommand::new(program)
            .arg("-Tsvg")
            .arg("-o")
            .arg(&svg)
            .arg(&source)
            .status()
            .unwrap();
        assert!(status.success(), "{program} rejected the DOT");
        assert!(fs::read_to_string(&svg).unwrap().contains("<svg"));
    }
}

#[test]
fn svg_is_drawn_and_private() {
    crate::common::need("circo", "graphviz");
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("locks.svg");
    graph()
        .arg(example())
        .args(["-f", "svg", "--output"])
        .arg(&svg)
        .assert()
        .success();
    let text = fs::read_to_string(&svg).unwrap();
    assert!(text.starts_with("<?xml") || text.contains("<svg"));
    assert!(text.contains("<svg"));
    let mode = fs::metadata(&svg).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn svg_default_name_and_global_o() {
    crate::common::need("circo", "graphviz");
    let dir = tempfile::tempdir().unwrap();
    graph()
        .current_dir(dir.path())
        .arg(example())
        .args(["-f", "svg"])
        .assert()
        .success();
    assert!(dir.path().join("graph-locks.svg").is_file());
    // The global -o (output directory) names the file, or the directory.
    graph()
        .current_dir(dir.path())
        .arg(example())
        .args(["-f", "png", "-o", "mine.png"])
        .assert()
        .success();
    let png = fs::read(dir.path().join("mine.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG"));
    let sub = dir.path().join("out");
    fs::create_dir(&sub).unwrap();
    graph()
        .arg(example())
        .args(["-f", "json", "-o"])
        .arg(&sub)
        .assert()
        .success();
    assert!(sub.join("graph-locks.json").is_file());
}

#[test]
fn svg_without_graphviz_keeps_the_dot() {
    let dir = tempfile::tempdir().unwrap();
    let empty_path = dir.path().join("bin");
    fs::create_dir(&empty_path).unwrap();
    let svg = dir.path().join("locks.svg");
    graph()
        .env("PATH", &empty_path)
        .arg(example())
        .args(["-f", "svg", "--output"])
        .arg(&svg)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("apt-get install graphviz"))
        .stderr(predicate::str::contains("locks.dot"));
    let dot = fs::read_to_string(dir.path().join("locks.dot")).unwrap();
    assert!(dot.starts_with("digraph"));
    assert!(!svg.exists());
}

#[test]
fn output_file_is_private() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report.txt");
    // Even one that already existed, world-readable.
    fs::write(&out, "old").unwrap();
    fs::set_permissions(&out, fs::Permissions::from_mode(0o644)).unwrap();
    graph()
        .arg(example())
        .arg("--output")
        .arg(&out)
        .assert()
        .success();
    assert!(fs::read_to_string(&out).unwrap().contains("DEADLOCK"));
    assert_eq!(
        fs::metadata(&out).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn stdin_with_crlf_and_spaces() {
    let pasted = fs::read_to_string(fixture("ast13-lwp.txt"))
        .unwrap()
        .replace('\t', "    ")
        .replace('\n', "\r\n");
    graph()
        .arg("-")
        .write_stdin(pasted)
        .assert()
        .success()
        .stdout(predicate::str::starts_with("standard input: 3 threads"))
        .stdout(predicate::str::contains("DEADLOCK: thread 0x7f5b7c6f6700"))
        .stdout(predicate::str::contains("1 thread is stuck behind it"));
}

#[test]
fn input_that_is_not_a_lock_dump_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[u8]); 5] = [
        ("empty.txt", b""),
        (
            "core.1234.1700000000",
            b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x04\0",
        ),
        ("random.bin", &[0u8, 159, 146, 150, 255, 10, 0, 1, 2, 3]),
        (
            "syslog",
            b"Oct 16 16:12:43 xivo-1 kernel: [10295061.047120] asterisk[1255]: segfault at e\n",
        ),
        ("full.2.gz", b"\x1f\x8b\x08\x00\x00\x00\x00\x00"),
    ];
    for (name, bytes) in cases {
        let path = dir.path().join(name);
        fs::write(&path, bytes).unwrap();
        graph()
            .arg(&path)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(name))
            .stdout(predicate::str::is_empty());
    }
    graph()
        .arg(dir.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("is a directory"));
    graph()
        .arg(dir.path().join("missing.txt"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("missing.txt"));
    graph()
        .arg("-")
        .write_stdin("hello\n")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("standard input"));
}

#[test]
fn header_without_threads_is_no_deadlock() {
    graph()
        .arg("-")
        .write_stdin(
            "=======\n=== Currently Held Locks ====\n=======\n===\n=== <pending> ...\n===\n=======\n",
        )
        .assert()
        .success()
        .stdout(predicate::str::contains("0 threads"))
        .stdout(predicate::str::contains("No deadlock"));
}

#[test]
fn big_generated_dump_with_a_long_chain() {
    // 20,000 threads: one 2-thread deadlock with every other thread queued
    // behind it in a single chain (deep enough to break a recursive walk).
    let mut dump = String::from("=== Currently Held Locks\n");
    let n = 20_000;
    for i in 0..n {
        dump.push_str(&format!(
            "=== Thread ID: {:#x} (worker {i} started at [ 1] x.c y())\n\
             === ---> Lock #0 (a.c): MUTEX 1 f chan {:#x} (1)\n\
             \tbacktrace line\n",
            0x1000 + i,
            0x10_0000 + i * 64
        ));
        let waits_for = if i == 0 { 1 } else { i - 1 };
        dump.push_str(&format!(
            "=== ---> Waiting for Lock #1 (a.c): MUTEX 2 g chan {:#x} (1)\n\tmore\n",
            0x10_0000 + waits_for * 64
        ));
    }
    graph()
        .arg("-")
        .write_stdin(dump)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "DEADLOCK: thread 0x1000 (worker 0)",
        ))
        .stdout(predicate::str::contains(
            "19998 threads are stuck behind it",
        ));
}

#[test]
fn output_and_o_take_a_directory_alike() {
    for flag in ["--output", "-o"] {
        let dir = tempfile::tempdir().unwrap();
        let output = graph()
            .arg(example())
            .args(["-f", "dot", flag])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{flag}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(dir.path().join("graph-locks.dot").is_file(), "{flag}");
    }
}
