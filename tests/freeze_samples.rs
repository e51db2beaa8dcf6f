//! `freeze --samples N`: /proc read N times and compared, on C programs
//! that are slow (a lock whose holder keeps changing while its queue grows)
//! and frozen (nothing moves): the verdicts differ.

use std::fs;
use std::path::Path;
use std::process::{Child, Command as Process};

use crate::common::{Sandbox, compile_c_as, file_mode, start_ready};
use predicates::prelude::*;

/// A fixture run as `asterisk` (freeze refuses any other name), killed
/// when the test ends however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs fixture `name` with `arg`, stripped when asked, once it says ready.
fn start(name: &str, arg: &str, dir: &Path, stripped: bool) -> Running {
    let program = compile_c_as(name, "asterisk", dir);
    if stripped {
        let status = Process::new("strip").arg(&program).status().unwrap();
        assert!(status.success(), "strip {}", program.display());
    }
    let (child, _) = start_ready(&program, &[arg]);
    Running(child)
}

/// `--json freeze --no-attach --samples 3 --interval 0.3` on `pid`: its JSON
/// and what it said.
fn sampled(sandbox: &Sandbox, pid: u32, samples: &str) -> (serde_json::Value, String) {
    let output = sandbox
        .command()
        .args(["--json", "freeze", "--no-attach", "--pid", &pid.to_string()])
        .args(["--samples", samples, "--interval", "0.3"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(output.status.success(), "{stderr}");
    (serde_json::from_slice(&output.stdout).unwrap(), stderr)
}

#[test]
fn a_lock_changing_hands_is_slow_and_a_lock_nobody_moves_is_frozen() {
    require_root!();
    let sandbox = Sandbox::new(&["systemctl", "asterisk"]);
    let slow = start("slow", "30", &sandbox.path(""), false);
    let (json, stderr) = sampled(&sandbox, slow.0.id(), "3");
    let progress = &json["samples"];
    assert_eq!(progress["verdict"], "slow", "{stderr}");
    let says = progress["says"].as_str().unwrap();
    assert!(says.starts_with("slow, not frozen: "), "{says}");
    assert!(
        stderr.contains("Progress between samples: slow, not frozen"),
        "{stderr}"
    );
    let lock = &progress["locks"][0];
    assert_eq!(lock["course"], "moved", "{progress:#}");
    let waiters: Vec<u64> = lock["waiters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_u64().unwrap())
        .collect();
    // A reading between an unlock and the next lock sees no waiter (the
    // mutex word reads 0): the growth shows in the others.
    assert!(
        waiters.iter().max() > waiters.first(),
        "the queue grows: {waiters:?}"
    );
    // What it rests on: which samples, when, what each cost.
    assert_eq!(progress["samples"].as_array().unwrap().len(), 3);
    // When: 0.3 s apart as asked, give or take what a loaded machine adds
    // (a test asserts no time).
    let when =
        regex::Regex::new(r"samples 1 to 3 from /proc, at 0\.00, 0\.3\d, 0\.[6-9]\d s").unwrap();
    assert!(
        when.is_match(progress["rests_on"].as_str().unwrap()),
        "{progress:#}"
    );
    drop(slow);

    for mode in ["cond", "sleep"] {
        let sandbox = Sandbox::new(&["systemctl", "asterisk"]);
        let stuck = start("stuck", mode, &sandbox.path(""), false);
        let (json, stderr) = sampled(&sandbox, stuck.0.id(), "3");
        let progress = &json["samples"];
        assert_eq!(progress["verdict"], "frozen", "{mode}: {stderr}");
        assert!(
            progress["says"]
                .as_str()
                .unwrap()
                .starts_with("frozen: the same 3 threads wait on the same lock"),
            "{mode}: {progress:#}"
        );
        assert!(!stderr.contains("No deadlock"), "{mode}: {stderr}");
        let out = sandbox.path("out");
        assert_eq!(file_mode(&out.join("samples.txt")), 0o600);
        let saved = fs::read_to_string(out.join("samples.txt")).unwrap();
        assert!(saved.contains("Sample 3 at 0."), "{saved}");
        assert!(
            saved.contains("Progress between samples: frozen"),
            "{saved}"
        );
        let report = fs::read_to_string(out.join("bug-report.md")).unwrap();
        assert!(
            report.contains("Progress between samples: frozen"),
            "{report}"
        );
        assert!(
            json["artefacts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|path| path.as_str().unwrap().ends_with("samples.txt"))
        );
        // The default, one sample: no comparison, nothing new.
        let one = Sandbox::new(&["systemctl", "asterisk"]);
        let (json, stderr) = sampled(&one, stuck.0.id(), "1");
        assert!(json.get("samples").is_none(), "{json:#}");
        assert!(!stderr.contains("Progress between samples"), "{stderr}");
        assert!(!one.path("out").join("samples.txt").exists());
    }
}

#[test]
fn samples_come_before_gdb_and_work_on_a_stripped_program() {
    require_root!();
    let sandbox = Sandbox::new(&["systemctl", "asterisk"]);
    sandbox.prints("systemctl", "active\n");
    sandbox.fails("asterisk", 1);
    let stuck = start("stuck", "cond", &sandbox.path(""), true);
    let pid = stuck.0.id();
    let output = sandbox
        .command()
        .args(["--yes", "--json", "freeze", "--timeout", "2"])
        .args([
            "--samples",
            "2",
            "--interval",
            "0.2",
            "--pid",
            &pid.to_string(),
        ])
        .arg("--asterisk-bin")
        .arg(sandbox.path("asterisk"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["samples"]["verdict"], "frozen", "{stderr}");
    // Sampled before the CLI checks and gdb, which would move threads.
    let sampled_at = stderr.find("sample 2/2").unwrap();
    assert!(
        sampled_at < stderr.find("Backtrace of").unwrap(),
        "{stderr}"
    );
    assert!(sampled_at < stderr.find("service").unwrap(), "{stderr}");
    assert!(
        stderr.contains("The stacks below are gdb's, one look after the last sample"),
        "{stderr}"
    );
    let report = fs::read_to_string(sandbox.path("out").join("bug-report.md")).unwrap();
    assert!(
        report.contains("Progress between samples: frozen"),
        "{report}"
    );
    assert!(report.contains("samples.txt"), "{report}");
}

#[test]
fn bad_sample_counts_and_intervals_are_refused_and_dry_run_says_it_samples() {
    let sandbox = Sandbox::new(&[]);
    let core = sandbox.path("core");
    fs::write(&core, "not a core").unwrap();
    for (args, says) in [
        (&["--samples", "0"][..], "between 1 and 100 samples"),
        (&["--samples", "-1"][..], "between 1 and 100 samples"),
        (
            &["--samples", "99999999999"][..],
            "between 1 and 100 samples",
        ),
        (&["--samples", "2.5"][..], "not a whole number"),
        (&["--samples", "1000"][..], "between 1 and 100 samples"),
        (
            &["--samples", "3", "--interval", "-1"][..],
            "between 0.05 and 60 seconds",
        ),
        (
            &["--samples", "3", "--interval", "0"][..],
            "between 0.05 and 60 seconds",
        ),
        (
            &["--samples", "3", "--interval", "soon"][..],
            "not a number of seconds",
        ),
        (
            &["--samples", "3", "--core", "core"][..],
            "cannot be used with",
        ),
        (&["--interval", "2"][..], "--samples <N>"),
    ] {
        sandbox
            .command()
            .current_dir(sandbox.path(""))
            .arg("freeze")
            .args(args)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(says));
    }
    let program = sandbox.path("prog");
    fs::copy("/bin/true", &program).unwrap();
    let dry = |extra: &[&str]| {
        let output = sandbox
            .command()
            .args(["--dry-run", "freeze", "--pid", "4242", "--asterisk-bin"])
            .arg(&program)
            .args(extra)
            .output()
            .unwrap();
        assert!(output.status.success());
        String::from_utf8_lossy(&output.stdout).to_string()
    };
    let script = dry(&["--samples", "3", "--interval", "0.5"]);
    assert!(
        script.contains("# First 3 samples of /proc, 0.5 s apart"),
        "{script}"
    );
    assert!(!dry(&[]).contains("samples of /proc"));
    assert!(dry(&["--no-attach", "--samples", "2"]).contains("# First 2 samples of /proc"));
}

#[test]
fn on_the_real_asterisk_an_abba_deadlock_is_frozen_in_every_sample() {
    use crate::common::testbed::{Bed, Module, text};
    require_testbed!();
    let bed = Bed::start(Module::Stripped);
    bed.break_it("abba 3");
    let output = bed.tool(&[
        "-o",
        "/tmp/out",
        "--json",
        "freeze",
        "--no-attach",
        "--samples",
        "3",
        "--interval",
        "0.3",
    ]);
    assert!(output.status.success(), "{}", text(&output));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let progress = &json["samples"];
    assert_eq!(progress["verdict"], "frozen", "{progress:#}");
    // The module's pair hold the stuck locks in every sample.
    let pair: std::collections::BTreeSet<u64> = bed
        .lwps("first")
        .into_iter()
        .chain(bed.lwps("second"))
        .map(u64::from)
        .collect();
    let holders: std::collections::BTreeSet<u64> = progress["locks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|lock| lock["course"] == "stuck")
        .flat_map(|lock| lock["owners"].as_array().unwrap().clone())
        .filter_map(|owner| owner.as_u64())
        .collect();
    assert_eq!(holders, pair, "{progress:#}");
    assert!(bed.path("/tmp/out/samples.txt").exists());
    assert!(bed.running(), "Asterisk state {:?}", bed.state());
}

#[test]
fn ctrl_c_while_sampling_keeps_the_samples_read_and_leaves_the_program_running() {
    require_root!();
    let sandbox = Sandbox::new(&["systemctl", "asterisk"]);
    let stuck = start("stuck", "cond", &sandbox.path(""), false);
    let pid = stuck.0.id().to_string();
    let run = sandbox.start_in_group(&[
        "freeze",
        "--no-attach",
        "--samples",
        "100",
        "--interval",
        "0.2",
        "--pid",
        &pid,
    ]);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    run.signal_group("INT");
    let output = run.finish(std::time::Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("proc-locks.txt, samples.txt"), "{stderr}");
    assert!(stderr.contains("is running (checked: state S)"), "{stderr}");
    let saved = fs::read_to_string(sandbox.path("out").join("samples.txt")).unwrap();
    assert!(
        saved.contains("cannot tell: interrupted after ") && saved.contains("of 100 samples"),
        "{saved}"
    );
}
