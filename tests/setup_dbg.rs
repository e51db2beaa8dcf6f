//! `setup-dbg` end to end: the real binary, stand-ins for what only exists on
//! a Wazo server (wazo-dist, xivo-dist, apt-get against Wazo's mirrors,
//! dpkg-query of Asterisk packages).

use std::time::Duration;

use crate::common::{Sandbox, file_mode, script_commands, sh_accepts};
use predicates::prelude::*;

const STANDINS: &[&str] = &[
    "wazo-dist",
    "xivo-dist",
    "apt-get",
    "dpkg-query",
    "apt-cache",
];

fn dry_run(version: &str, yes: bool) -> String {
    let sandbox = Sandbox::new(STANDINS);
    let mut args = vec!["--wazo-version", version];
    if yes {
        args.push("--yes");
    }
    args.push("setup-dbg");
    sandbox.dry_run(&args)
}

/// Every era boundary of the facts file, and the exact commands it gives.
#[test]
fn every_era_boundary_gives_the_right_script() {
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "16.01",
            "xivo-dist xivo-16.01",
            "xivo-dist xivo-five",
            "-t xivo-16.01 asterisk-dbg xivo-libsccp-dbg",
        ),
        (
            "16.15",
            "xivo-dist xivo-16.15",
            "xivo-dist xivo-five",
            "-t xivo-16.15 asterisk-dbg xivo-libsccp-dbg",
        ),
        (
            "16.16",
            "xivo-dist wazo-16.16",
            "xivo-dist phoenix",
            "-t wazo-16.16 asterisk-dbg xivo-libsccp-dbg",
        ),
        (
            "18.01",
            "xivo-dist wazo-18.01",
            "xivo-dist phoenix-stretch",
            "-t wazo-18.01 asterisk-dbg xivo-libsccp-dbg",
        ),
        (
            "18.02",
            "xivo-dist wazo-18.02",
            "xivo-dist phoenix-stretch",
            "-t wazo-18.02 asterisk-dbg xivo-libsccp-dbg",
        ),
        (
            "18.03",
            "wazo-dist -a wazo-18.03",
            "wazo-dist -m phoenix-stretch",
            "-t wazo-18.03 asterisk-dbg xivo-libsccp-dbg",
        ),
        (
            "18.12",
            "wazo-dist -a wazo-18.12",
            "wazo-dist -m phoenix-stretch",
            "-t wazo-18.12 asterisk-dbg xivo-libsccp-dbg",
        ),
        (
            "18.13",
            "wazo-dist -a wazo-18.13",
            "wazo-dist -m phoenix-stretch",
            "-t wazo-18.13 asterisk-dbg wazo-libsccp-dbg",
        ),
        (
            "19.04",
            "wazo-dist -a wazo-19.04",
            "wazo-dist -m pelican-stretch",
            "-t wazo-19.04 asterisk-dbg wazo-libsccp-dbg",
        ),
        (
            "19.12",
            "wazo-dist -a wazo-19.12",
            "wazo-dist -m pelican-stretch",
            "-t wazo-19.12 asterisk-dbg wazo-libsccp-dbg",
        ),
        (
            "19.13",
            "wazo-dist -a wazo-19.13",
            "wazo-dist -m pelican-buster",
            "-t wazo-19.13 asterisk-dbg wazo-libsccp-dbg",
        ),
        (
            "23.03",
            "wazo-dist -a wazo-23.03",
            "wazo-dist -m pelican-buster",
            "-t wazo-23.03 asterisk-dbg wazo-libsccp-dbg",
        ),
        (
            "23.04",
            "wazo-dist -a wazo-23.04",
            "wazo-dist -m pelican-buster",
            "-t wazo-23.04 asterisk-dbgsym wazo-libsccp-dbg",
        ),
        (
            "23.05",
            "wazo-dist -a wazo-23.05",
            "wazo-dist -m pelican-buster",
            "-t wazo-23.05 asterisk-dbgsym wazo-libsccp-dbg",
        ),
        (
            "23.06",
            "wazo-dist -a wazo-23.06",
            "wazo-dist -m pelican-bullseye",
            "-t wazo-23.06 asterisk-dbgsym wazo-libsccp-dbg",
        ),
        (
            "25.14",
            "wazo-dist -a wazo-25.14",
            "wazo-dist -m pelican-bullseye",
            "-t wazo-25.14 asterisk-dbgsym wazo-libsccp-dbg",
        ),
        (
            "25.15",
            "wazo-dist -a wazo-25.15",
            "wazo-dist -m pelican-bookworm",
            "-t wazo-25.15 asterisk-dbgsym wazo-libsccp-dbg",
        ),
        (
            "26.07",
            "wazo-dist -a wazo-26.07",
            "wazo-dist -m pelican-bookworm",
            "-t wazo-26.07 asterisk-dbgsym wazo-libsccp-dbg",
        ),
        (
            "26.05.1",
            "wazo-dist -a wazo-26.05.1",
            "wazo-dist -m pelican-bookworm",
            "-t wazo-26.05.1 asterisk-dbgsym wazo-libsccp-dbg",
        ),
    ];
    for (version, archive, production, debug) in cases {
        for yes in [false, true] {
            let script = dry_run(version, yes);
            let y = if yes { "-y " } else { "" };
            let expected = vec![
                archive.to_string(),
                "apt-get update".to_string(),
                format!("apt-get install {y}gdb libc6-dbg"),
                format!("apt-get install {y}{debug}"),
                production.to_string(),
                "apt-get update".to_string(),
            ];
            assert_eq!(
                script_commands(&script),
                expected,
                "Wazo {version}, --yes {yes}:\n{script}"
            );
            assert!(script.starts_with("#!/bin/sh\n"));
        }
    }
}

#[test]
fn dry_run_scripts_pass_sh_n() {
    for version in ["16.01", "18.05", "23.04", "25.15"] {
        let script = dry_run(version, false);
        assert!(sh_accepts(&script), "sh -n rejects:\n{script}");
    }
}

#[test]
fn dry_run_warns_about_mirror_holes_and_doc_departures() {
    let script = dry_run("18.05", false);
    assert!(
        script.contains("# WARNING: the public mirror has no archives for 18.04 to 19.02"),
        "{script}"
    );
    let script = dry_run("16.08", false);
    assert!(
        script.contains("removed from the public mirror in 2023"),
        "{script}"
    );
    let script = dry_run("23.04", false);
    assert!(
        script.contains("asterisk-dbgsym (the doc says asterisk-dbg)"),
        "{script}"
    );
}

#[test]
fn bad_versions_are_clear_errors() {
    let sandbox = Sandbox::new(STANDINS);
    for (version, message) in [
        ("15.20", "older than 16.01"),
        ("abc", "not a Wazo version"),
        ("", "not a Wazo version"),
    ] {
        sandbox
            .command()
            .args(["--dry-run", "--wazo-version", version, "setup-dbg"])
            .assert()
            .code(2)
            .stderr(predicate::str::contains(message))
            .stderr(predicate::str::contains("panicked").not());
    }
}

#[test]
fn version_files_are_read_under_root_and_bad_ones_named() {
    let sandbox = Sandbox::new(STANDINS);
    let path = sandbox.host_file("/usr/share/xivo/XIVO-VERSION", b"16.01\n");
    sandbox
        .command()
        .args(["--dry-run", "setup-dbg"])
        .assert()
        .success()
        .stdout(predicate::str::contains("xivo-dist xivo-16.01\n"))
        .stdout(predicate::str::contains(format!("from {}", path.display())));

    // The newer file wins over the older one.
    sandbox.host_file("/usr/share/wazo/WAZO-VERSION", b"25.15\n");
    sandbox
        .command()
        .args(["--dry-run", "setup-dbg"])
        .assert()
        .success()
        .stdout(predicate::str::contains("wazo-dist -a wazo-25.15\n"));

    for (content, message) in [
        (&b""[..], "is empty"),
        (&b"\n \n"[..], "is empty"),
        (&b"abc\n"[..], "its first line is \"abc\""),
        (
            &b"\x7fELF\x02\x01\x01\x00\x00\x00"[..],
            "does not hold a Wazo version",
        ),
        (&b"15.20\n"[..], "older than 16.01"),
    ] {
        let path = sandbox.host_file("/usr/share/wazo/WAZO-VERSION", content);
        sandbox
            .command()
            .args(["--dry-run", "setup-dbg"])
            .assert()
            .code(2)
            .stderr(predicate::str::contains(message))
            .stderr(predicate::str::contains(if message.contains("16.01") {
                "15.20".to_string()
            } else {
                path.display().to_string()
            }))
            .stderr(predicate::str::contains("panicked").not());
    }
}

#[test]
fn missing_version_names_the_files_and_the_option() {
    let sandbox = Sandbox::new(STANDINS);
    sandbox.prints("apt-cache", "wazo-platform:\n  Installed: (none)\n");
    sandbox
        .command()
        .args(["--dry-run", "setup-dbg"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("WAZO-VERSION"))
        .stderr(predicate::str::contains("pf-xivo/XIVO-VERSION"))
        .stderr(predicate::str::contains("--wazo-version"));
}

#[test]
fn apt_cache_policy_is_the_fallback() {
    let sandbox = Sandbox::new(STANDINS);
    sandbox.prints(
        "apt-cache",
        "wazo-platform:\n  Installed: 26.05.1-1\n  Candidate: 26.05.1-1\n",
    );
    sandbox
        .command()
        .args(["--dry-run", "setup-dbg"])
        .assert()
        .success()
        .stdout(predicate::str::contains("wazo-dist -a wazo-26.05.1\n"))
        .stdout(predicate::str::contains("apt-cache policy wazo-platform"));
}

fn matching_symbols(sandbox: &Sandbox) {
    sandbox.prints(
        "dpkg-query",
        "libc6 2.36-9 ii \nlibc6-dbg 2.36-9 ii \nasterisk 8:20.5.0-1wazo1 ii \n\
         asterisk-dbgsym 8:20.5.0-1wazo1 ii \nwazo-libsccp 2.3-1 ii \nwazo-libsccp-dbg 2.3-1 ii \n",
    );
}

const HAPPY_25_15: &[&str] = &[
    "wazo-dist -a wazo-25.15",
    "apt-get update",
    "apt-get install -y gdb libc6-dbg",
    "apt-get install -y -t wazo-25.15 asterisk-dbgsym wazo-libsccp-dbg",
    "wazo-dist -m pelican-bookworm",
    "apt-get update",
];

#[test]
fn happy_path_runs_in_order_and_checks_symbols() {
    require_root!();
    let sandbox = Sandbox::new(STANDINS);
    matching_symbols(&sandbox);
    sandbox
        .command()
        .args(["--yes", "--wazo-version", "25.15", "setup-dbg"])
        .assert()
        .success()
        .stderr(predicate::str::contains("+ wazo-dist -a wazo-25.15"))
        .stderr(predicate::str::contains(
            "ok        asterisk-dbgsym 8:20.5.0-1wazo1 matches asterisk",
        ));
    let calls = sandbox.calls();
    assert_eq!(&calls[..HAPPY_25_15.len()], HAPPY_25_15);
    assert!(
        calls[HAPPY_25_15.len()].starts_with("dpkg-query -W -f"),
        "{calls:?}"
    );
    let log = sandbox.path("out").join("run.log");
    assert_eq!(file_mode(&log), 0o600);
    let log = std::fs::read_to_string(log).unwrap();
    assert!(
        log.contains("$ wazo-dist -m pelican-bookworm\n# exit status 0 after"),
        "{log}"
    );
}

#[test]
fn a_failed_install_still_restores_the_mirror() {
    require_root!();
    let sandbox = Sandbox::new(STANDINS);
    sandbox.fails("apt-get.install", 100);
    sandbox
        .command()
        .args(["--yes", "--wazo-version", "25.15", "setup-dbg"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "`apt-get install -y gdb libc6-dbg` failed (exit status 100)",
        ))
        .stderr(predicate::str::contains("simulated failure"));
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
fn a_failed_archive_switch_changes_nothing_else() {
    require_root!();
    let sandbox = Sandbox::new(STANDINS);
    sandbox.fails("wazo-dist.-a", 1);
    sandbox
        .command()
        .args(["--yes", "--wazo-version", "23.06", "setup-dbg"])
        .assert()
        .code(1);
    // The switch failed, so there is nothing to undo.
    assert_eq!(sandbox.calls(), ["wazo-dist -a wazo-23.06"]);
}

#[test]
fn sigint_while_apt_runs_stops_it_and_restores_the_mirror() {
    require_root!();
    let sandbox = Sandbox::new(STANDINS);
    sandbox.hangs("apt-get.update", 60);
    let output = sandbox.interrupt_while_hanging_within(
        &["--yes", "--wazo-version", "19.13", "setup-dbg"],
        "apt-get.update",
        Duration::from_secs(15),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert_eq!(
        sandbox.calls(),
        [
            "wazo-dist -a wazo-19.13",
            "apt-get update",
            "wazo-dist -m pelican-buster",
            "apt-get update"
        ]
    );
}

#[test]
fn non_root_is_refused_before_anything_runs() {
    require_root!();
    let sandbox = Sandbox::new(STANDINS);
    let binary = assert_cmd::cargo::cargo_bin("wazo-astdebug");
    // The binary must be reachable by nobody: copy it into the sandbox.
    let copy = sandbox.path("bin").join("wazo-astdebug");
    std::fs::copy(&binary, &copy).unwrap();
    let output = std::process::Command::new("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
        .arg(&copy)
        .env("PATH", sandbox.path_var())
        .env("STANDIN_DIR", sandbox.path("ctl"))
        .args(["--yes", "--wazo-version", "25.15", "--output-dir"])
        .arg(sandbox.path("out"))
        .arg("setup-dbg")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("must run as root") && stderr.contains("--dry-run"),
        "{stderr}"
    );
    assert!(sandbox.calls().is_empty(), "{:?}", sandbox.calls());
}

#[test]
fn no_terminal_and_no_yes_fails_before_changing_anything() {
    require_root!();
    let sandbox = Sandbox::new(STANDINS);
    sandbox
        .command()
        .args(["--wazo-version", "25.15", "setup-dbg"])
        .write_stdin("")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--yes"))
        .stderr(predicate::str::contains("nothing was changed"));
    assert!(sandbox.calls().is_empty(), "{:?}", sandbox.calls());
}

#[test]
fn a_missing_dist_tool_is_reported_before_anything_runs() {
    require_root!();
    let sandbox = Sandbox::new(&["apt-get", "dpkg-query", "xivo-dist"]);
    sandbox
        .command()
        .args(["--yes", "--wazo-version", "25.15", "setup-dbg"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("`wazo-dist` was not found"));
    assert!(sandbox.calls().is_empty(), "{:?}", sandbox.calls());
}

#[test]
fn mismatched_symbols_fail_loudly_after_the_restore() {
    require_root!();
    let sandbox = Sandbox::new(STANDINS);
    sandbox.prints(
        "dpkg-query",
        "libc6 2.36-9 ii \nlibc6-dbg 2.36-9 ii \nwazo-libsccp-dbg 2.3-1 ii \n\
         asterisk 8:20.5.0-1wazo2 ii \nasterisk-dbgsym 8:20.5.0-1wazo1 ii \n",
    );
    sandbox
        .command()
        .args(["--yes", "--wazo-version", "25.15", "setup-dbg"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "MISMATCH  asterisk-dbgsym 8:20.5.0-1wazo1, but asterisk is 8:20.5.0-1wazo2",
        ))
        .stderr(predicate::str::contains("DO NOT MATCH"));
    assert_eq!(&sandbox.calls()[..HAPPY_25_15.len()], HAPPY_25_15);
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
        .args(["--dry-run", "--wazo-version", "25.15", "setup-dbg"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "apt already points at the archive `wazo-25.15`",
        ));
}

#[test]
fn a_version_past_the_newest_known_gets_the_newest_era_with_a_warning() {
    for version in ["26.08", "99.99"] {
        let script = dry_run(version, true);
        assert!(
            script.contains(&format!("-t wazo-{version} asterisk-dbgsym")),
            "{script}"
        );
        assert!(
            script.contains(&format!(
                "WARNING: Wazo {version} is newer than the newest version"
            )),
            "{script}"
        );
        assert!(script.contains("(26.07)"), "{script}");
        assert!(script.contains("runbooks --export"), "{script}");
    }
    // The newest known version itself is no surprise.
    assert!(!dry_run("26.07", true).contains("is newer than the newest version"));
    let sandbox = Sandbox::new(STANDINS);
    let output = sandbox
        .command()
        .args(["--wazo-version", "99.99", "info"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("is newer than the newest version these runbooks know"),
        "{text}"
    );
}

#[test]
fn a_debug_package_dpkg_does_not_have_fails_and_is_named() {
    require_root!();
    let sandbox = Sandbox::new(STANDINS);
    // apt-get said yes, but dpkg has no asterisk-dbgsym.
    sandbox.prints(
        "dpkg-query",
        "libc6 2.36-9 ii \nlibc6-dbg 2.36-9 ii \nasterisk 8:20.5.0-1wazo1 ii \n\
         asterisk-dbgsym  un \nwazo-libsccp 2.3-1 ii \nwazo-libsccp-dbg 2.3-1 ii \n",
    );
    sandbox
        .command()
        .args(["--yes", "--wazo-version", "25.15", "setup-dbg"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("asterisk-dbgsym is not installed"))
        .stderr(predicate::str::contains("not installed: asterisk-dbgsym."))
        .stderr(predicate::str::contains("Done:").not());
}
