//! `--dry-run` on any machine: every command prints its script without a
//! Wazo server, writes nothing, and the scripts of the commands that change
//! the system really run, with stand-ins, restoring what they changed even
//! when a step fails.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::common::{Sandbox, Succeeds, script_commands};

/// Every file and directory under `dir`, with its content.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    let mut found = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                found.insert(path.clone(), None);
                stack.push(path);
            } else {
                found.insert(path.clone(), Some(fs::read(&path).unwrap()));
            }
        }
    }
    found
}

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/core-show-locks.txt");

#[test]
fn every_command_dry_runs_in_an_empty_root_and_writes_nothing() {
    let run_dir = tempfile::tempdir().unwrap();
    fs::write(run_dir.path().join("bt-threads.txt"), "#0 main\n").unwrap();
    let run = run_dir.path().to_str().unwrap();
    let cases: &[&[&str]] = &[
        &["info"],
        &["setup-dbg"],
        &["segfaults"],
        &["crash"],
        &["freeze"],
        &["freeze", "--no-attach"],
        &["graph", EXAMPLE],
        &["graph", EXAMPLE, "-f", "svg"],
        &["graph", EXAMPLE, "-f", "dot", "--output", "x.dot"],
        &["report", run],
        &["vanilla", "install"],
        &["vanilla", "revert"],
        &["rebuild"],
        &["--wazo-version", "16.08", "rebuild", "--vanilla"],
        &["valgrind"],
        &["valgrind", "--suppressions", "/nonexistent/valgrind.supp"],
        &["recover"],
        &["runbooks"],
        &["completions", "bash"],
    ];
    for args in cases {
        // No stand-ins: nothing of a server is on this PATH.
        let sandbox = Sandbox::new(&[]);
        let out = sandbox.path("fresh-out");
        let before = snapshot(sandbox.dir.path());
        let before_run = snapshot(run_dir.path());
        let output = sandbox
            .command_in(&out)
            .current_dir(sandbox.path("ctl"))
            .arg("--dry-run")
            .args(if args.contains(&"--wazo-version") {
                &[][..]
            } else {
                &["--wazo-version", "25.15"][..]
            })
            .args(*args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{args:?} exits {:?}:\n{}",
            output.status.code(),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(!out.exists(), "{args:?} created -o {}", out.display());
        assert_eq!(
            snapshot(sandbox.dir.path()),
            before,
            "{args:?} wrote a file"
        );
        assert_eq!(
            snapshot(run_dir.path()),
            before_run,
            "{args:?} wrote a file"
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        if stdout.starts_with("#!/bin/sh") {
            assert!(crate::common::sh_accepts(&stdout), "{args:?}:\n{stdout}");
        }
    }
}

/// The script of `args`, printed by a dry run in `sandbox`.
fn script(sandbox: &Sandbox, args: &[&str]) -> String {
    let output = sandbox.command().arg("--dry-run").args(args).succeeds();
    String::from_utf8(output.stdout).unwrap()
}

/// Runs `script` with `sh`, the stand-ins first on PATH; its exit code.
fn run_script(sandbox: &Sandbox, script: &str) -> Option<i32> {
    let path = sandbox.path("script.sh");
    fs::write(&path, script).unwrap();
    std::process::Command::new("sh")
        .arg(&path)
        .env("PATH", sandbox.path_var())
        .env("STANDIN_DIR", sandbox.path("ctl"))
        .output()
        .unwrap()
        .status
        .code()
}

const SETUP_STANDINS: &[&str] = &["wazo-dist", "apt-get", "dpkg-query", "service"];

#[test]
fn the_setup_dbg_script_runs_and_puts_production_back_when_install_fails() {
    let sandbox = Sandbox::new(SETUP_STANDINS);
    let text = script(&sandbox, &["--wazo-version", "25.15", "--yes", "setup-dbg"]);
    assert_eq!(run_script(&sandbox, &text), Some(0), "{text}");
    assert_eq!(sandbox.calls(), script_commands(&text), "{text}");

    let sandbox = Sandbox::new(SETUP_STANDINS);
    sandbox.fails("apt-get.install", 100);
    assert_eq!(run_script(&sandbox, &text), Some(100), "{text}");
    assert_eq!(
        sandbox.calls(),
        [
            "wazo-dist -a wazo-25.15",
            "apt-get update",
            "apt-get install -y gdb libc6-dbg",
            "wazo-dist -m pelican-bookworm",
            "apt-get update",
        ]
    );
}

#[test]
fn the_vanilla_scripts_run_and_restore_on_failure() {
    for action in ["install", "revert"] {
        let names = ["wazo-dist", "apt-get", "xivo-fix-paths-rights"];
        let sandbox = Sandbox::new(&names);
        let text = script(&sandbox, &["--wazo-version", "25.15", "vanilla", action]);
        assert_eq!(run_script(&sandbox, &text), Some(0), "{text}");
        assert_eq!(sandbox.calls(), script_commands(&text), "{text}");

        let sandbox = Sandbox::new(&names);
        sandbox.fails("xivo-fix-paths-rights", 3);
        assert_eq!(run_script(&sandbox, &text), Some(3), "{text}");
        let calls = sandbox.calls();
        assert_eq!(
            calls[calls.len() - 2..],
            ["wazo-dist -m pelican-bookworm", "apt-get update"],
            "{action}: {calls:?}"
        );
    }
}

#[test]
fn the_valgrind_script_runs_and_puts_the_files_back_on_failure() {
    let names = ["service", "valgrind"];
    let sandbox = Sandbox::new(&names);
    fs::create_dir_all(sandbox.path("root/tmp")).unwrap();
    let modules = sandbox.host_file(
        "/etc/asterisk/modules.conf",
        b"[modules]\nautoload = yes\nload => chan_sip.so\n",
    );
    let conf = sandbox.host_file(
        "/etc/asterisk/asterisk.conf",
        b"[options]\nhighpriority = yes\n",
    );
    let text = script(
        &sandbox,
        &[
            "--wazo-version",
            "25.15",
            "valgrind",
            "--noload",
            "chan_sip.so",
        ],
    );
    // The edits are made while valgrind runs: the stand-in looks.
    sandbox.script(
        "valgrind",
        &format!(
            "echo \"valgrind $*\" >> \"$STANDIN_DIR/calls.log\"\n\
             grep -q '^noload => chan_sip.so' {m} && grep -q '^;load => chan_sip.so' {m} \
             && grep -q '^;highpriority' {c} && echo edited >> \"$STANDIN_DIR/calls.log\"\n\
             echo '==1== ERROR SUMMARY: 0 errors' > valgrind.txt",
            m = modules.display(),
            c = conf.display()
        ),
    );
    assert_eq!(run_script(&sandbox, &text), Some(0), "{text}");
    let calls = sandbox.calls();
    assert_eq!(calls[0], "service asterisk stop", "{calls:?}");
    assert_eq!(calls[2], "edited", "{calls:?}\n{text}");
    assert_eq!(calls[3], "service asterisk start", "{calls:?}");
    assert_eq!(
        fs::read(&modules).unwrap(),
        b"[modules]\nautoload = yes\nload => chan_sip.so\n"
    );
    assert_eq!(fs::read(&conf).unwrap(), b"[options]\nhighpriority = yes\n");
    assert!(
        sandbox.path("out/valgrind.txt").is_file(),
        "the log is saved"
    );
    assert_eq!(fs::read_dir(sandbox.path("root/tmp")).unwrap().count(), 0);

    // valgrind fails: Asterisk starts again, the files come back.
    let sandbox2 = Sandbox::new(&names);
    fs::create_dir_all(sandbox2.path("root/tmp")).unwrap();
    let modules = sandbox2.host_file(
        "/etc/asterisk/modules.conf",
        b"[modules]\nload => chan_sip.so\n",
    );
    sandbox2.host_file("/etc/asterisk/asterisk.conf", b"[options]\n");
    let text = script(
        &sandbox2,
        &[
            "--wazo-version",
            "25.15",
            "valgrind",
            "--noload",
            "chan_sip.so",
        ],
    );
    sandbox2.fails("valgrind", 7);
    assert_eq!(run_script(&sandbox2, &text), Some(7), "{text}");
    assert_eq!(
        sandbox2.calls().last().map(String::as_str),
        Some("service asterisk start")
    );
    assert_eq!(
        fs::read(&modules).unwrap(),
        b"[modules]\nload => chan_sip.so\n"
    );
}
