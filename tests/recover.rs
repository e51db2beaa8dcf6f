//! `recover` after a SIGKILL (the OOM killer, `kill -9`, a power cut): what
//! the killed run changed is listed by `info`, blocks the next changing
//! command, and is put back by `recover --yes`, which also stops what the
//! killed run left running.

use std::time::Duration;

use crate::common::{Sandbox, alive, state_dir};

const STANDINS: &[&str] = &[
    "wazo-dist",
    "apt-get",
    "dpkg-query",
    "xivo-fix-paths-rights",
];

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Kills `args` with SIGKILL while the stand-in `hang` runs, then checks
/// info, the refusal, `recover --dry-run`, `recover --yes` (which must end
/// with `undo` called) and a second `recover`.
fn killed_then_recovered(args: &[&str], hang: &str, undo: &[&str]) {
    let sandbox = Sandbox::new(STANDINS);
    sandbox.hangs(hang, 60);
    let mut run = sandbox.start_in_group(args);
    let orphan = sandbox.wait_hanging(hang);
    run.sigkill();
    assert!(alive(orphan), "the stand-in died with the tool");
    let calls_at_kill = sandbox.calls();

    let info = sandbox.command().arg("info").output().unwrap();
    let text = String::from_utf8_lossy(&info.stdout);
    assert!(text.contains("LEFT BEHIND"), "{text}");
    assert!(text.contains(undo[0]), "{text}");
    assert!(text.contains(&format!("pid {orphan}")), "{text}");

    let refused = sandbox.command().args(args).output().unwrap();
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("wazo-astdebug recover"));
    assert_eq!(
        sandbox.calls(),
        calls_at_kill,
        "the refused run called something"
    );

    let dry = sandbox
        .command()
        .args(["--dry-run", "recover"])
        .output()
        .unwrap();
    let script = String::from_utf8_lossy(&dry.stdout);
    assert!(dry.status.success(), "{}", stderr(&dry));
    for line in undo {
        assert!(script.contains(&format!("\n{line}\n")), "{script}");
    }
    assert_eq!(sandbox.calls(), calls_at_kill, "--dry-run ran something");

    let output = sandbox
        .command()
        .args(["--yes", "recover"])
        .output()
        .unwrap();
    let text = stderr(&output);
    assert!(output.status.success(), "{text}");
    assert!(text.contains(&format!("pid {orphan}")), "{text}");
    assert!(!alive(orphan), "recover left the orphan running");
    let calls = sandbox.calls();
    assert_eq!(&calls[calls_at_kill.len()..], undo, "{text}");
    assert!(!state_dir(&sandbox).join("journal.json").exists());

    let again = sandbox
        .command()
        .args(["--yes", "recover"])
        .output()
        .unwrap();
    assert!(again.status.success());
    assert!(
        stderr(&again).contains("Nothing to recover"),
        "{}",
        stderr(&again)
    );
    assert_eq!(sandbox.calls(), calls);
}

const BACK_TO_BOOKWORM: &[&str] = &["wazo-dist -m pelican-bookworm", "apt-get update"];

#[test]
fn setup_dbg_killed_at_the_archive_switch_is_recovered() {
    require_root!();
    let args = ["--yes", "--wazo-version", "25.15", "setup-dbg"];
    killed_then_recovered(&args, "wazo-dist.-a", BACK_TO_BOOKWORM);
}

#[test]
fn setup_dbg_killed_during_the_install_is_recovered_and_apt_stopped() {
    require_root!();
    let args = ["--yes", "--wazo-version", "25.15", "setup-dbg"];
    killed_then_recovered(&args, "apt-get.install", BACK_TO_BOOKWORM);
}

#[test]
fn vanilla_killed_during_the_install_is_recovered() {
    require_root!();
    let args = ["--yes", "--wazo-version", "23.06", "vanilla", "install"];
    killed_then_recovered(
        &args,
        "apt-get.install",
        &["wazo-dist -m pelican-bullseye", "apt-get update"],
    );
}

#[test]
fn a_recover_that_fails_says_what_is_left_and_keeps_it() {
    require_root!();
    let sandbox = Sandbox::new(STANDINS);
    sandbox.hangs("apt-get.install", 60);
    let mut run = sandbox.start_in_group(&["--yes", "--wazo-version", "25.15", "setup-dbg"]);
    sandbox.wait_hanging("apt-get.install");
    run.sigkill();
    sandbox.fails("wazo-dist.-m", 2);
    let output = sandbox
        .command()
        .args(["--yes", "recover"])
        .output()
        .unwrap();
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("CLEANUP FAILED"), "{text}");
    assert!(!text.contains("Done:"), "{text}");
    assert!(state_dir(&sandbox).join("journal.json").exists());
    std::fs::remove_file(sandbox.path("ctl/wazo-dist.-m.fail")).unwrap();
    sandbox
        .command()
        .args(["--yes", "recover"])
        .timeout(Duration::from_secs(30))
        .assert()
        .success();
    assert!(!state_dir(&sandbox).join("journal.json").exists());
}

#[test]
fn recover_with_nothing_left_changes_nothing() {
    require_root!();
    let sandbox = Sandbox::new(STANDINS);
    let output = sandbox
        .command()
        .args(["--yes", "recover"])
        .output()
        .unwrap();
    assert!(output.status.success());
    assert!(stderr(&output).contains("Nothing to recover"));
    assert!(sandbox.calls().is_empty());
}
