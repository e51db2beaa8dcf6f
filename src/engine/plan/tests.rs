use super::*;

fn sh(script: &str, path: &str) -> std::process::Output {
    std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .env("PATH", path)
        .output()
        .unwrap()
}

/// A plan whose commands are shell built-ins and `echo`s into a log, so
/// that its script can be run here.
fn plan(fail_at: &str) -> Plan {
    let step = |name: &str| {
        if name == fail_at {
            Cmd::new(["false"])
        } else {
            Cmd::new(["echo", name])
        }
    };
    let mut plan = Plan::new();
    plan.note("switch")
        .guarded(step("a"), vec![step("undo-a1"), step("undo-a2")])
        .guarded(step("b"), vec![step("undo-b")])
        .run(step("c"))
        .undo()
        .run(step("d"))
        .undo();
    plan
}

#[test]
fn the_script_runs_every_undo_in_order_on_success() {
    let script = plan("").script("header\nline two");
    assert!(
        script.starts_with("#!/bin/sh\n# header\n# line two\n"),
        "{script}"
    );
    let output = sh(&script, "/usr/bin:/bin");
    assert!(output.status.success(), "{script}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "a\nb\nc\nundo-b\nd\nundo-a1\nundo-a2\n"
    );
    assert_eq!(plan("").command_count(), 7);
    assert_eq!(plan("").commands().len(), 7);
}

#[test]
fn a_failing_step_runs_the_pending_undo_through_the_trap() {
    let output = sh(&plan("c").script(""), "/usr/bin:/bin");
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "a\nb\nundo-b\nundo-a1\nundo-a2\n"
    );
}

#[test]
fn a_failing_undo_says_what_is_left_and_exits_1() {
    let output = sh(&plan("undo-a1").script(""), "/usr/bin:/bin");
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "a\nb\nc\nundo-b\nd\n"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("CLEANUP FAILED"), "{stderr}");
    assert!(stderr.contains("    false\n    echo undo-a2\n"), "{stderr}");
}

#[test]
fn unreleased_undo_still_runs_at_the_end() {
    let mut plan = Plan::new();
    plan.guarded(Cmd::new(["echo", "a"]), vec![Cmd::new(["echo", "b"])])
        .run(Cmd::new(["echo", "c"]));
    let output = sh(&plan.script(""), "/usr/bin:/bin");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "a\nc\nb\n");
}

#[test]
fn variables_and_directories_come_first() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut plan = Plan::new();
    plan.var("OUT", out.to_string_lossy(), "Where the run goes.")
        .creates(&out)
        .run(Cmd::new(["touch", &out.join("x").to_string_lossy()]))
        .shell("SRC_DIR=\"$OUT\"");
    let script = plan.script("");
    assert!(script.contains("touch \"$OUT\"/x\n"), "{script}");
    assert!(sh(&script, "/usr/bin:/bin").status.success(), "{script}");
    assert!(out.join("x").is_file());
}
