//! `vanilla install|revert` end to end, with stand-ins for wazo-dist,
//! apt-get and xivo-fix-paths-rights.

use crate::common::{Sandbox, script_commands, sh_accepts};
use predicates::prelude::*;

const STANDINS: &[&str] = &["wazo-dist", "apt-get", "xivo-fix-paths-rights"];

fn dry_run(version: &str, action: &str) -> String {
    Sandbox::new(STANDINS).dry_run(&["--wazo-version", version, "vanilla", action])
}

#[test]
fn install_and_revert_scripts_follow_the_era() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "19.13",
            "pelican-buster",
            "asterisk-vanilla asterisk-vanilla-dbg",
        ),
        (
            "23.06",
            "pelican-bullseye",
            "asterisk-vanilla asterisk-vanilla-dbgsym",
        ),
        (
            "25.15",
            "pelican-bookworm",
            "asterisk-vanilla asterisk-vanilla-dbgsym",
        ),
    ];
    for (version, production, packages) in cases {
        for (action, installed) in [("install", *packages), ("revert", "asterisk")] {
            let script = dry_run(version, action);
            assert_eq!(
                script_commands(&script),
                [
                    format!("wazo-dist -a wazo-{version}"),
                    "apt-get update".to_string(),
                    format!("apt-get install -t wazo-{version} {installed}"),
                    "xivo-fix-paths-rights".to_string(),
                    format!("wazo-dist -m {production}"),
                    "apt-get update".to_string(),
                ],
                "{version} {action}:\n{script}"
            );
            assert!(sh_accepts(&script), "sh -n rejects:\n{script}");
        }
    }
}

#[test]
fn install_names_the_features_lost() {
    let script = dry_run("25.15", "install");
    for feature in [
        "queue skill-based routing",
        "voicemail message consultation via the REST API",
        "call transfers via the REST API",
    ] {
        assert!(script.contains(feature), "{feature}:\n{script}");
    }
    assert!(!dry_run("25.15", "revert").contains("skill-based"));
}

#[test]
fn versions_before_19_13_are_refused_with_the_alternative() {
    let sandbox = Sandbox::new(STANDINS);
    for version in ["19.12", "17.17", "16.08"] {
        for action in ["install", "revert"] {
            sandbox
                .command()
                .args(["--dry-run", "--wazo-version", version, "vanilla", action])
                .assert()
                .code(2)
                .stderr(predicate::str::contains("has no asterisk-vanilla package"))
                .stderr(predicate::str::contains("rebuild --vanilla"));
        }
    }
    assert!(sandbox.calls().is_empty());
}

#[test]
fn install_runs_in_order_with_yes() {
    require_root!();
    let sandbox = Sandbox::new(STANDINS);
    sandbox.host_file(
        "/var/lib/dpkg/status",
        b"Package: asterisk-vanilla\nStatus: install ok installed\nVersion: 8:20.5.0-1wazo1\n",
    );
    sandbox
        .command()
        .args(["--yes", "--wazo-version", "23.06", "vanilla", "install"])
        .assert()
        .success()
        .stderr(predicate::str::contains("call transfers via the REST API"))
        .stderr(predicate::str::contains(
            "asterisk-vanilla 8:20.5.0-1wazo1 is installed",
        ));
    assert_eq!(
        sandbox.calls(),
        [
            "wazo-dist -a wazo-23.06",
            "apt-get update",
            "apt-get install -y -t wazo-23.06 asterisk-vanilla asterisk-vanilla-dbgsym",
            "xivo-fix-paths-rights",
            "wazo-dist -m pelican-bullseye",
            "apt-get update",
        ]
    );
}

#[test]
fn no_terminal_and_no_yes_fails_before_changing_anything() {
    require_root!();
    let sandbox = Sandbox::new(STANDINS);
    sandbox
        .command()
        .args(["--wazo-version", "25.15", "vanilla", "install"])
        .write_stdin("")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--yes"));
    assert!(sandbox.calls().is_empty(), "{:?}", sandbox.calls());
}

#[test]
fn a_failed_install_still_restores_the_mirror() {
    require_root!();
    let sandbox = Sandbox::new(STANDINS);
    sandbox.fails("apt-get.install", 100);
    sandbox
        .command()
        .args(["--yes", "--wazo-version", "25.15", "vanilla", "revert"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("failed (exit status 100)"));
    assert_eq!(
        sandbox.calls(),
        [
            "wazo-dist -a wazo-25.15",
            "apt-get update",
            "apt-get install -y -t wazo-25.15 asterisk",
            "wazo-dist -m pelican-bookworm",
            "apt-get update",
        ]
    );
}

#[test]
fn sigint_during_the_install_restores_the_mirror() {
    require_root!();
    let sandbox = Sandbox::new(STANDINS);
    sandbox.hangs("apt-get.install", 60);
    let output = sandbox.interrupt_while_hanging(
        &["--yes", "--wazo-version", "19.13", "vanilla", "install"],
        "apt-get.install",
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert_eq!(
        sandbox.calls(),
        [
            "wazo-dist -a wazo-19.13",
            "apt-get update",
            "apt-get install -y -t wazo-19.13 asterisk-vanilla asterisk-vanilla-dbg",
            "wazo-dist -m pelican-buster",
            "apt-get update",
        ]
    );
}

#[test]
fn info_shows_whether_vanilla_is_installed() {
    let sandbox = Sandbox::new(STANDINS);
    sandbox
        .command()
        .args(["--wazo-version", "25.15", "info"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Vanilla         not installed"));
    sandbox.host_file(
        "/var/lib/dpkg/status",
        b"Package: asterisk-vanilla\nStatus: install ok installed\nVersion: 8:20.5.0-1wazo1\n",
    );
    sandbox
        .command()
        .args(["--wazo-version", "25.15", "info"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "asterisk-vanilla 8:20.5.0-1wazo1 is installed",
        ));
}

#[test]
fn an_interrupted_previous_run_is_spotted() {
    let sandbox = Sandbox::new(STANDINS);
    sandbox.host_file(
        "/etc/apt/sources.list.d/wazo-dist.list",
        b"\n# wazo-25.15\ndeb http://mirror.wazo.community/archive/ wazo-25.15 main\n",
    );
    sandbox
        .command()
        .args(["--dry-run", "--wazo-version", "25.15", "vanilla", "install"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "apt already points at the archive `wazo-25.15`",
        ));
}
