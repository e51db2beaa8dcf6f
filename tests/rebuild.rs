//! `rebuild` end to end on a fixture shaped like Wazo's asterisk source
//! package. apt-get and dpkg-buildpackage are stand-ins: `apt-get source`
//! copies the fixture into the work directory and applies its patch with the
//! real quilt (as dpkg-source does), `dpkg-buildpackage` reads the version
//! with the real dpkg-parsechangelog and makes empty .deb files. quilt,
//! dpkg-parsechangelog, cp and install are the real ones.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{Sandbox, Succeeds, file_mode, script_commands, sh_accepts};
use predicates::prelude::*;

const SOURCES: &str = "/etc/apt/sources.list.d/wazo-dist.list";
const SOURCES_TEXT: &[u8] = b"\n# pelican-bookworm\ndeb http://mirror.wazo.community/debian/ pelican-bookworm main\n# deb-src http://mirror.wazo.community/debian/ pelican-bookworm main\n";
const STATUS: &[u8] =
    b"Package: asterisk\nStatus: install ok installed\nVersion: 8:20.5.0-1wazo1\n\n\
Package: asterisk-dbgsym\nStatus: install ok installed\nVersion: 8:20.5.0-1wazo1\n";

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/asterisk-src")
}

/// A stand-in that does `prelude` and then behaves like the generic one.
fn wrap(sandbox: &Sandbox, name: &str, prelude: &str) {
    sandbox.standin(name);
    let generic = sandbox.path("generic");
    fs::create_dir_all(&generic).unwrap();
    fs::rename(sandbox.path("bin").join(name), generic.join(name)).unwrap();
    // Paths baked in: the SIGINT helper passes only the sandbox's own env.
    let script = format!(
        "#!/bin/sh\nFIXTURE='{}'\n{prelude}\nexec '{}/{name}' \"$@\"\n",
        fixture().display(),
        generic.display()
    );
    let path = sandbox.path("bin").join(name);
    fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
}

fn sandbox() -> Sandbox {
    let sandbox = Sandbox::new(&["dpkg", "wazo-dist", "xivo-dist"]);
    wrap(
        &sandbox,
        "apt-get",
        r#"if [ "$1" = source ]; then
  pwd > "$STANDIN_DIR/apt-get.source.cwd"
  cp -r "$FIXTURE" ./asterisk-20.5.0 || exit 1
  (cd asterisk-20.5.0 && QUILT_PATCHES=debian/patches quilt push -a >/dev/null) || exit 1
fi"#,
    );
    wrap(
        &sandbox,
        "dpkg-buildpackage",
        r#"pwd > "$STANDIN_DIR/dpkg-buildpackage.cwd"
echo "$DEB_BUILD_OPTIONS" > "$STANDIN_DIR/dpkg-buildpackage.options"
version=$(dpkg-parsechangelog -S Version) || exit 1
version=${version#*:}
echo "dpkg-buildpackage: info: source version $version"
for package in asterisk asterisk-dbgsym asterisk-dev; do : > "../${package}_${version}_amd64.deb"; done"#,
    );
    let sources = sandbox.host_file(SOURCES, SOURCES_TEXT);
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&sources, fs::Permissions::from_mode(0o644)).unwrap();
    sandbox.host_file("/var/lib/dpkg/status", STATUS);
    sandbox
}

fn command(sandbox: &Sandbox) -> assert_cmd::Command {
    let mut command = sandbox.command();
    command
        .env("DEBFULLNAME", "Jane Support")
        .env("DEBEMAIL", "jane@example.com");
    command
}

fn workdir(sandbox: &Sandbox) -> PathBuf {
    sandbox.path("work")
}

fn tree(sandbox: &Sandbox) -> PathBuf {
    workdir(sandbox).join("asterisk-20.5.0")
}

fn parse_changelog(tree: &Path, field: &str) -> String {
    let output = Command::new("dpkg-parsechangelog")
        .arg("-l")
        .arg(tree.join("debian/changelog"))
        .args(["-S", field])
        .succeeds();
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

fn assert_sources_untouched(sandbox: &Sandbox) {
    let path = sandbox.path("root").join(SOURCES.trim_start_matches('/'));
    assert_eq!(fs::read(&path).unwrap(), SOURCES_TEXT);
    assert_eq!(file_mode(&path), 0o644);
    let backup = format!("{}.wazo-astdebug.bak", path.display());
    assert!(!Path::new(&backup).exists(), "{backup} left behind");
}

#[test]
fn dry_run_is_a_valid_script_that_changes_nothing() {
    let sandbox = sandbox();
    let output = command(&sandbox)
        .args([
            "--dry-run",
            "--wazo-version",
            "25.15",
            "rebuild",
            "--workdir",
        ])
        .arg(workdir(&sandbox))
        .succeeds();
    let script = String::from_utf8(output.stdout).unwrap();
    assert!(sh_accepts(&script), "{script}");
    assert!(sandbox.calls().is_empty(), "{:?}", sandbox.calls());
    assert!(!workdir(&sandbox).exists());
    assert_sources_untouched(&sandbox);
    let work = workdir(&sandbox).display().to_string();
    let sources = sandbox.path("root").join(SOURCES.trim_start_matches('/'));
    let s = sources.display();
    let commands = script_commands(&script);
    assert_eq!(
        commands[..13],
        [
            format!("install -p -m 600 {s} {s}.wazo-astdebug.bak"),
            "wazo-dist -a wazo-25.15".to_string(),
            format!("sed -i -E 's/^#[[:blank:]]*deb-src([[:blank:]])/deb-src\\1/' {s}"),
            "mkdir -p \"$WORKDIR\"".to_string(),
            "apt-get update".to_string(),
            "apt-get install -y build-essential".to_string(),
            "(cd \"$WORKDIR\" && apt-get source asterisk)".to_string(),
            "(cd \"$WORKDIR\" && apt-get build-dep -y asterisk)".to_string(),
            "wazo-dist -m pelican-bookworm".to_string(),
            "apt-get update".to_string(),
            format!("cp --preserve=timestamps {s}.wazo-astdebug.bak {s}"),
            format!("chmod 644 {s}"),
            format!("rm -f {s}.wazo-astdebug.bak"),
        ],
        "{script}"
    );
    assert!(
        script.contains(&format!("WORKDIR=${{WORKDIR:-{work}}}\n")),
        "{script}"
    );
    assert_eq!(
        commands.last().map(String::as_str),
        Some("(cd \"$SRC_DIR\" && env DEB_BUILD_OPTIONS=noopt dpkg-buildpackage -us -uc)"),
        "{script}"
    );
}

#[test]
fn rebuild_sets_the_flags_adds_the_entry_and_puts_the_source_back() {
    require_root!();
    let sandbox = sandbox();
    command(&sandbox)
        .args(["--yes", "--wazo-version", "25.15", "rebuild", "--workdir"])
        .arg(workdir(&sandbox))
        .args(["--flags", "MALLOC_DEBUG,DEBUG_THREADS,DONT_OPTIMIZE"])
        .assert()
        .success()
        .stderr(predicate::str::contains("replaced the flags set above it"))
        .stderr(predicate::str::contains(
            "asterisk_20.5.0-1wazo1+debug1_amd64.deb",
        ))
        .stderr(predicate::str::contains(
            "the running version is 8:20.5.0-1wazo1+debug1",
        ));
    let work = workdir(&sandbox);
    let w = work.display();
    assert_eq!(
        sandbox.calls(),
        [
            "wazo-dist -a wazo-25.15".to_string(),
            "apt-get update".to_string(),
            "apt-get install -y build-essential".to_string(),
            "apt-get source asterisk".to_string(),
            "apt-get build-dep -y asterisk".to_string(),
            "wazo-dist -m pelican-bookworm".to_string(),
            "apt-get update".to_string(),
            "dpkg-buildpackage -us -uc".to_string(),
            format!(
                "dpkg -i {w}/asterisk_20.5.0-1wazo1+debug1_amd64.deb {w}/asterisk-dbgsym_20.5.0-1wazo1+debug1_amd64.deb"
            ),
        ]
    );
    let cwd = |key: &str| fs::read_to_string(sandbox.path("ctl").join(key)).unwrap();
    assert_eq!(cwd("apt-get.source.cwd").trim(), w.to_string());
    assert_eq!(
        cwd("dpkg-buildpackage.cwd").trim(),
        tree(&sandbox).display().to_string()
    );
    assert_eq!(cwd("dpkg-buildpackage.options").trim(), "noopt");
    assert_sources_untouched(&sandbox);

    let rules = fs::read_to_string(tree(&sandbox).join("debian/rules")).unwrap();
    for line in [
        "\nMENUSELECT_EXTRA_ARGS := --enable MALLOC_DEBUG\n",
        "\nMENUSELECT_EXTRA_ARGS += --enable DONT_OPTIMIZE\n",
        "\nMENUSELECT_EXTRA_ARGS += --enable DEBUG_THREADS\n",
        "\n#MENUSELECT_EXTRA_ARGS += --enable TEST_FRAMEWORK\n",
    ] {
        assert!(rules.contains(line), "{line:?} not in:\n{rules}");
    }
    // What make itself sees: the three flags, none dropped.
    let probe = format!(
        "{}\nprobe:\n\t@echo $(MENUSELECT_EXTRA_ARGS)\n",
        rules
            .lines()
            .filter(|line| line.starts_with("MENUSELECT_EXTRA_ARGS"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let makefile = sandbox.path("probe.mk");
    fs::write(&makefile, probe).unwrap();
    if let Ok(output) = Command::new("make")
        .arg("-s")
        .arg("-f")
        .arg(&makefile)
        .arg("probe")
        .output()
    {
        if output.status.success() {
            assert_eq!(
                String::from_utf8_lossy(&output.stdout).trim(),
                "--enable MALLOC_DEBUG --enable DONT_OPTIMIZE --enable DEBUG_THREADS"
            );
        }
    }

    assert_eq!(
        parse_changelog(&tree(&sandbox), "Version"),
        "8:20.5.0-1wazo1+debug1"
    );
    assert_eq!(
        parse_changelog(&tree(&sandbox), "Distribution"),
        "wazo-dev-bookworm"
    );
    assert_eq!(
        parse_changelog(&tree(&sandbox), "Maintainer"),
        "Jane Support <jane@example.com>"
    );
    assert!(
        parse_changelog(&tree(&sandbox), "Changes")
            .contains("* Rebuild with MALLOC_DEBUG, DEBUG_THREADS, DONT_OPTIMIZE (wazo-astdebug)")
    );
    // Without --vanilla, Wazo's patch stays applied.
    assert!(
        fs::read_to_string(tree(&sandbox).join("main/app_queue_skills.c"))
            .unwrap()
            .contains("wazo: skills rules")
    );
}

#[test]
fn vanilla_unapplies_the_patches_for_real_and_empties_the_series() {
    require_root!();
    let sandbox = sandbox();
    let old = sandbox.host_file(
        "/etc/apt/sources.list.d/xivo-dist.list",
        b"deb http://mirror.xivo.solutions/debian/ xivo-five main\n# deb-src http://mirror.xivo.solutions/debian/ xivo-five main\n",
    );
    command(&sandbox)
        .args([
            "--yes",
            "--wazo-version",
            "16.08",
            "rebuild",
            "--vanilla",
            "--workdir",
        ])
        .arg(workdir(&sandbox))
        .assert()
        .success()
        .stderr(predicate::str::contains("stop monit"));
    let calls = sandbox.calls();
    assert_eq!(calls[0], "xivo-dist xivo-16.08");
    assert_eq!(calls[2], "apt-get install -y build-essential quilt");
    let tree = tree(&sandbox);
    assert_eq!(
        fs::read(tree.join("main/app_queue_skills.c")).unwrap(),
        fs::read(fixture().join("main/app_queue_skills.c")).unwrap(),
        "the Wazo patch is still applied"
    );
    assert_eq!(fs::read(tree.join("debian/patches/series")).unwrap(), b"");
    assert!(tree.join("debian/patches/wazo_queue_skills.patch").exists());
    assert!(
        parse_changelog(&tree, "Changes").contains("without Wazo's patches"),
        "{}",
        parse_changelog(&tree, "Changes")
    );
    assert_eq!(
        fs::read(&old).unwrap(),
        b"deb http://mirror.xivo.solutions/debian/ xivo-five main\n# deb-src http://mirror.xivo.solutions/debian/ xivo-five main\n"
    );
    assert!(sandbox.calls().contains(&"xivo-dist xivo-five".to_string()));
}

#[test]
fn vanilla_from_19_13_points_to_vanilla_install() {
    let sandbox = sandbox();
    command(&sandbox)
        .args([
            "--dry-run",
            "--wazo-version",
            "19.13",
            "rebuild",
            "--vanilla",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("wazo-astdebug vanilla install"));
}

#[test]
fn a_failed_build_dep_puts_the_source_back() {
    require_root!();
    let sandbox = sandbox();
    sandbox.fails("apt-get.build-dep", 100);
    command(&sandbox)
        .args(["--yes", "--wazo-version", "25.15", "rebuild", "--workdir"])
        .arg(workdir(&sandbox))
        .assert()
        .code(1)
        .stderr(predicate::str::contains("apt-get build-dep -y asterisk"));
    assert_sources_untouched(&sandbox);
    assert!(!sandbox.calls().iter().any(|call| call.starts_with("dpkg")));
}

/// Runs `rebuild --yes` until the stand-in `key` hangs, sends SIGINT: it
/// must exit 130 with the apt source back as it was.
fn interrupt_rebuild(sandbox: &Sandbox, key: &str) {
    let work = workdir(sandbox).display().to_string();
    let output = sandbox.interrupt_while_hanging(
        &[
            "--yes",
            "--wazo-version",
            "25.15",
            "rebuild",
            "--workdir",
            &work,
        ],
        key,
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert_sources_untouched(sandbox);
}

#[test]
fn sigint_during_build_dep_puts_the_source_back() {
    require_root!();
    let sandbox = sandbox();
    sandbox.hangs("apt-get.build-dep", 60);
    interrupt_rebuild(&sandbox, "apt-get.build-dep");
}

#[test]
fn an_earlier_tree_is_refused_before_anything_changes() {
    require_root!();
    let sandbox = sandbox();
    fs::create_dir_all(tree(&sandbox).join("debian")).unwrap();
    fs::write(tree(&sandbox).join("debian/changelog"), b"x").unwrap();
    command(&sandbox)
        .args(["--yes", "--wazo-version", "25.15", "rebuild", "--workdir"])
        .arg(workdir(&sandbox))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("from an earlier rebuild"));
    assert!(sandbox.calls().is_empty());
    assert_sources_untouched(&sandbox);
}

#[test]
fn no_deb_src_line_is_a_clear_error() {
    let sandbox = sandbox();
    sandbox.host_file(
        SOURCES,
        b"deb http://mirror.wazo.community/debian/ pelican-bookworm main\n",
    );
    command(&sandbox)
        .args([
            "--dry-run",
            "--wazo-version",
            "25.15",
            "rebuild",
            "--current-mirror",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("has a deb-src line"));
}

#[test]
fn sigint_during_the_build_stops_it_with_the_source_already_back() {
    require_root!();
    let sandbox = sandbox();
    sandbox.hangs("dpkg-buildpackage", 60);
    interrupt_rebuild(&sandbox, "dpkg-buildpackage");
    assert!(!sandbox.calls().iter().any(|call| call.starts_with("dpkg ")));
}

#[test]
fn keep_deb_src_leaves_the_line_enabled_without_a_backup() {
    require_root!();
    let sandbox = sandbox();
    command(&sandbox)
        .args([
            "--yes",
            "--wazo-version",
            "25.15",
            "rebuild",
            "--keep-deb-src",
            "--workdir",
        ])
        .arg(workdir(&sandbox))
        .assert()
        .success();
    let path = sandbox.path("root").join(SOURCES.trim_start_matches('/'));
    let text = fs::read_to_string(&path).unwrap();
    assert!(
        text.contains("\ndeb-src http://mirror.wazo.community/debian/ pelican-bookworm main\n"),
        "{text}"
    );
    assert!(!Path::new(&format!("{}.wazo-astdebug.bak", path.display())).exists());
}

#[test]
fn no_terminal_and_no_yes_fails_before_changing_anything() {
    require_root!();
    let sandbox = sandbox();
    command(&sandbox)
        .args(["--wazo-version", "25.15", "rebuild", "--workdir"])
        .arg(workdir(&sandbox))
        .write_stdin("")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--yes"));
    assert!(sandbox.calls().is_empty());
    assert_sources_untouched(&sandbox);
}

#[test]
fn the_old_xivo_dist_list_is_handled_too() {
    let sandbox = sandbox();
    fs::remove_file(sandbox.path("root").join(SOURCES.trim_start_matches('/'))).unwrap();
    let old = sandbox.host_file(
        "/etc/apt/sources.list.d/xivo-dist.list",
        b"deb http://mirror.xivo.solutions/debian/ phoenix main\n#deb-src http://mirror.xivo.solutions/debian/ phoenix main\n",
    );
    command(&sandbox)
        .args([
            "--dry-run",
            "--wazo-version",
            "16.16",
            "rebuild",
            "--current-mirror",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "install -p -m 600 {} {}.wazo-astdebug.bak\n",
            old.display(),
            old.display()
        )));
}

#[test]
fn current_mirror_is_the_docs_way_without_the_archive() {
    require_root!();
    let sandbox = sandbox();
    command(&sandbox)
        .args([
            "--yes",
            "--wazo-version",
            "25.15",
            "rebuild",
            "--current-mirror",
            "--workdir",
        ])
        .arg(workdir(&sandbox))
        .assert()
        .success();
    assert!(
        !sandbox
            .calls()
            .iter()
            .any(|call| call.starts_with("wazo-dist"))
    );
    assert_sources_untouched(&sandbox);
}

#[test]
fn an_archive_without_deb_src_fails_and_puts_everything_back() {
    require_root!();
    let sandbox = sandbox();
    // What wazo-dist would leave: no deb-src line at all.
    let path = sandbox.path("root").join(SOURCES.trim_start_matches('/'));
    wrap(
        &sandbox,
        "wazo-dist",
        &format!(
            "[ \"$1\" = -a ] && printf 'deb http://mirror.wazo.community/archive/ wazo-25.15 main\\n' > '{}'",
            path.display()
        ),
    );
    command(&sandbox)
        .args(["--yes", "--wazo-version", "25.15", "rebuild", "--workdir"])
        .arg(workdir(&sandbox))
        .assert()
        // The archive switch ran: a failed run, not "nothing was changed".
        .code(1)
        .stderr(predicate::str::contains("it has no deb-src line"))
        .stderr(predicate::str::contains(
            "after steps that change the system had run",
        ));
    assert_eq!(
        sandbox.calls(),
        [
            "wazo-dist -a wazo-25.15",
            "wazo-dist -m pelican-bookworm",
            "apt-get update"
        ]
    );
    assert_sources_untouched(&sandbox);
}

const REBUILD: &[&str] = &["--yes", "--wazo-version", "25.15", "rebuild", "--workdir"];

fn rebuild_args(sandbox: &Sandbox) -> Vec<String> {
    REBUILD
        .iter()
        .map(|arg| arg.to_string())
        .chain([workdir(sandbox).display().to_string()])
        .collect()
}

#[test]
fn signals_to_the_group_during_build_dep_and_during_the_restore() {
    require_root!();
    for first in ["INT", "HUP"] {
        let sandbox = sandbox();
        sandbox.hangs("apt-get.build-dep", 60);
        sandbox.hangs("wazo-dist.-m", 2);
        let args = rebuild_args(&sandbox);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = sandbox.start_in_group(&args);
        sandbox.wait_hanging("apt-get.build-dep");
        run.signal_group(first);
        sandbox.wait_hanging("wazo-dist.-m");
        run.signal_group("INT");
        std::thread::sleep(std::time::Duration::from_millis(300));
        run.signal_group("HUP");
        let output = run.finish(std::time::Duration::from_secs(30));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(130), "{stderr}");
        assert!(
            stderr.contains("still putting things back: wazo-dist -m pelican-bookworm"),
            "{stderr}"
        );
        assert!(!stderr.contains("CLEANUP FAILED"), "{stderr}");
        assert_sources_untouched(&sandbox);
    }
}

#[test]
fn killed_during_build_dep_then_recover_puts_the_source_back_byte_for_byte() {
    require_root!();
    let sandbox = sandbox();
    sandbox.hangs("apt-get.build-dep", 60);
    let args = rebuild_args(&sandbox);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut run = sandbox.start_in_group(&args);
    sandbox.wait_hanging("apt-get.build-dep");
    run.sigkill();
    let sources = sandbox.path("root").join(SOURCES.trim_start_matches('/'));
    assert_ne!(
        fs::read(&sources).unwrap(),
        SOURCES_TEXT,
        "deb-src not enabled?"
    );
    // Until recovered, the next rebuild refuses, naming recover, and calls nothing.
    let calls = sandbox.calls();
    command(&sandbox)
        .args(REBUILD)
        .arg(sandbox.path("another-work"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("wazo-astdebug recover"));
    assert_eq!(sandbox.calls(), calls);
    command(&sandbox)
        .args(["--yes", "recover"])
        .timeout(std::time::Duration::from_secs(30))
        .assert()
        .success();
    assert_sources_untouched(&sandbox);
    let calls = sandbox.calls();
    assert_eq!(
        calls[calls.len() - 2..],
        ["wazo-dist -m pelican-bookworm", "apt-get update"]
    );
}
