//! `valgrind` for real: valgrind runs a small C program that reads freed
//! memory and leaks (tests/fixtures/c/leak.c) in place of Asterisk; monit
//! and service are stand-ins. Every edited file must come back byte for
//! byte, with its mode, whatever the ending.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{Sandbox, Succeeds, file_mode, script_commands, sh_accepts};
use predicates::prelude::*;

const MODULES: &[u8] =
    b"[modules]\nautoload=yes\nload => chan_sip.so\n\n[global]\n; no final newline";
const ASTERISK_CONF: &[u8] = b"[directories](!)\nastetcdir => /etc/asterisk\n\n[options]\nhighpriority = yes\nrunuser = asterisk\n";

fn compile_leak(sandbox: &Sandbox) -> PathBuf {
    crate::common::compile_c("leak", &sandbox.path(""))
}

pub(crate) struct Server {
    pub(crate) sandbox: Sandbox,
    leak: PathBuf,
    modules: PathBuf,
    asterisk_conf: PathBuf,
}

pub(crate) fn server() -> Server {
    let sandbox = Sandbox::new(&["monit", "service"]);
    let modules = sandbox.host_file("/etc/asterisk/modules.conf", MODULES);
    fs::set_permissions(&modules, fs::Permissions::from_mode(0o640)).unwrap();
    let asterisk_conf = sandbox.host_file("/etc/asterisk/asterisk.conf", ASTERISK_CONF);
    fs::create_dir_all(sandbox.path("root/tmp")).unwrap();
    let leak = compile_leak(&sandbox);
    Server {
        sandbox,
        leak,
        modules,
        asterisk_conf,
    }
}

impl Server {
    pub(crate) fn args(&self, program_args: &str) -> Vec<String> {
        [
            "--yes",
            "valgrind",
            "--noload",
            "chan_sip,res_snmp",
            "--stop",
            "wazo-calld",
            "--workdir",
            "/nonexistent",
            "--asterisk-bin",
        ]
        .iter()
        .map(|arg| arg.to_string())
        .chain([
            self.leak.display().to_string(),
            format!("--asterisk-args={program_args}"),
        ])
        .collect()
    }

    fn assert_files_restored(&self) {
        assert_eq!(fs::read(&self.modules).unwrap(), MODULES);
        assert_eq!(file_mode(&self.modules), 0o640);
        assert_eq!(fs::read(&self.asterisk_conf).unwrap(), ASTERISK_CONF);
        assert_eq!(file_mode(&self.asterisk_conf), 0o644);
        for file in [&self.modules, &self.asterisk_conf] {
            let backup = format!("{}.wazo-astdebug.bak", file.display());
            assert!(!Path::new(&backup).exists(), "{backup} left behind");
        }
    }

    fn assert_services_back(&self) {
        assert_eq!(
            self.sandbox.calls(),
            [
                "monit quit",
                "service wazo-calld stop",
                "service asterisk stop",
                "service asterisk start",
                "service wazo-calld start",
                "service monit start",
            ]
        );
    }

    fn assert_summary(&self, stderr: &str) {
        assert!(stderr.contains("Invalid read"), "{stderr}");
        assert!(
            stderr.contains("definitely lost  100 bytes in 1 blocks"),
            "{stderr}"
        );
        assert!(stderr.contains("leak_block (leak.c:"), "{stderr}");
        assert!(stderr.contains("read_after_free (leak.c:"), "{stderr}");
        let saved = self.sandbox.path("out").join("valgrind.txt");
        assert_eq!(file_mode(&saved), 0o600);
        assert!(fs::read_to_string(saved).unwrap().contains("LEAK SUMMARY"));
        let log = fs::read_to_string(self.sandbox.path("out").join("run.log")).unwrap();
        assert!(
            log.contains("add noload => for chan_sip.so, res_snmp.so\n# done"),
            "{log}"
        );
        assert!(log.contains("comment out highpriority\n# done"), "{log}");
    }
}

#[test]
fn dry_run_shows_the_docs_command_and_changes_nothing() {
    let server = server();
    let output = server
        .sandbox
        .command()
        .arg("--dry-run")
        .args(server.args(""))
        .succeeds();
    let script = String::from_utf8(output.stdout).unwrap();
    assert!(sh_accepts(&script), "{script}");
    assert!(server.sandbox.calls().is_empty());
    server.assert_files_restored();
    let commands = script_commands(&script);
    let run = format!(
        "(cd \"$RUN_DIR\" && env -u LD_PRELOAD valgrind --leak-check=full --log-file=valgrind.txt --vgdb=no {})",
        server.leak.display()
    );
    // After the run directory's mkdir and chmod.
    assert_eq!(
        commands[2..5],
        [
            "monit quit",
            "service wazo-calld stop",
            "service asterisk stop"
        ]
    );
    assert!(commands.contains(&run), "{run} not in:\n{script}");
    // Before the log is saved and the run directory removed.
    assert_eq!(
        commands[commands.len() - 5..commands.len() - 2],
        [
            "service asterisk start",
            "service wazo-calld start",
            "service monit start"
        ]
    );
    assert!(script.contains("NOT built with DONT_OPTIMIZE"), "{script}");
    assert!(script.contains("No valgrind.supp found"), "{script}");
}

#[test]
fn the_default_command_is_the_docs() {
    let sandbox = Sandbox::new(&["monit", "service"]);
    let supp = sandbox.host_file(
        "/srv/valgrind.supp",
        b"{\n x\n Memcheck:Leak\n fun:nothing\n}\n",
    );
    let output = sandbox
        .command()
        .args(["--dry-run", "valgrind", "--suppressions"])
        .arg(&supp)
        .output()
        .unwrap();
    let script = String::from_utf8(output.stdout).unwrap();
    assert!(
        script.contains(&format!(
            "SUPPRESSIONS=${{SUPPRESSIONS:-{}}}\n",
            supp.display()
        )),
        "{script}"
    );
    assert!(
        script.contains("cp \"$SUPPRESSIONS\" \"$RUN_DIR\"/valgrind.supp\n"),
        "{script}"
    );
    assert!(
        script.contains(
            "env -u LD_PRELOAD valgrind --leak-check=full --log-file=valgrind.txt \
             --suppressions=valgrind.supp --vgdb=no asterisk -G asterisk -U asterisk -fnc)\n"
        ),
        "{script}"
    );
}

#[test]
fn a_run_counts_the_leak_and_the_invalid_read_and_puts_everything_back() {
    require_root!();
    let server = server();
    let output = server
        .sandbox
        .command()
        .args(server.args(""))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    server.assert_summary(&stderr);
    server.assert_files_restored();
    server.assert_services_back();
}

#[test]
fn a_failing_program_still_puts_everything_back_and_summarises() {
    require_root!();
    let server = server();
    let output = server
        .sandbox
        .command()
        .args(server.args("--fail"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("exit status 3"), "{stderr}");
    server.assert_summary(&stderr);
    server.assert_files_restored();
    server.assert_services_back();
}

#[test]
fn a_failed_stop_changes_no_file_and_restarts_monit() {
    require_root!();
    let server = server();
    server.sandbox.fails("service.asterisk", 1);
    let output = server
        .sandbox
        .command()
        .args(server.args(""))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    server.assert_files_restored();
    assert_eq!(
        server.sandbox.calls(),
        [
            "monit quit",
            "service wazo-calld stop",
            "service asterisk stop",
            "service wazo-calld start",
            "service monit start",
        ]
    );
}

/// Starts a run that waits for a signal, sends `signal` to the tool alone
/// once the program is ready, and returns how the tool ended.
fn interrupted_run(server: &Server, signal: i32) -> std::process::Output {
    let ready = server.sandbox.path("ready");
    let binary = assert_cmd::cargo::cargo_bin("wazo-astdebug");
    let child = Command::new(binary)
        .env("PATH", server.sandbox.path_var())
        .env("STANDIN_DIR", server.sandbox.path("ctl"))
        .arg("--root")
        .arg(server.sandbox.path("root"))
        .arg("--output-dir")
        .arg(server.sandbox.path("out"))
        .args(server.args(&format!("--wait {}", ready.display())))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready.exists() {
        assert!(Instant::now() < deadline, "the program never got ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(child.id() as i32, signal);
    }
    child.wait_with_output().unwrap()
}

#[test]
fn ctrl_c_ends_the_run_normally_with_the_summary_and_everything_back() {
    require_root!();
    let server = server();
    let output = interrupted_run(&server, libc::SIGINT);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("valgrind is writing its report"),
        "{stderr}"
    );
    server.assert_summary(&stderr);
    server.assert_files_restored();
    server.assert_services_back();
}

#[test]
fn sigterm_ends_the_run_with_130_after_the_same_cleanup() {
    require_root!();
    let server = server();
    let output = interrupted_run(&server, libc::SIGTERM);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    server.assert_summary(&stderr);
    server.assert_files_restored();
    server.assert_services_back();
}

#[test]
fn a_leftover_backup_stops_before_anything_runs() {
    require_root!();
    let server = server();
    fs::write(
        format!("{}.wazo-astdebug.bak", server.modules.display()),
        b"old",
    )
    .unwrap();
    server
        .sandbox
        .command()
        .args(server.args(""))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("already exists"));
    assert!(server.sandbox.calls().is_empty());
}

#[test]
fn no_terminal_and_no_yes_fails_before_changing_anything() {
    require_root!();
    let server = server();
    let args: Vec<String> = server
        .args("")
        .into_iter()
        .filter(|arg| arg != "--yes")
        .collect();
    server
        .sandbox
        .command()
        .args(args)
        .write_stdin("")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--yes"));
    assert!(server.sandbox.calls().is_empty());
    server.assert_files_restored();
}

#[test]
fn edit_modules_edits_a_copy_first_in_the_dry_run() {
    let server = server();
    let output = server
        .sandbox
        .command()
        .env("VISUAL", "nano -w")
        .args([
            "--dry-run",
            "valgrind",
            "--edit-modules",
            "--noload",
            "chan_sip",
        ])
        .output()
        .unwrap();
    let script = String::from_utf8(output.stdout).unwrap();
    assert!(sh_accepts(&script), "{script}");
    let commands = script_commands(&script);
    let modules = server.modules.display().to_string();
    let copy_word = "\"$RUN_DIR\"/modules.conf.wazo-astdebug-edit";
    assert_eq!(
        commands[2..4],
        [
            format!("install -m 600 {modules} {copy_word}"),
            format!("nano -w {copy_word}"),
        ],
        "{script}"
    );
    assert!(
        commands[2..].contains(&"monit quit".to_string()),
        "{script}"
    );
    assert!(
        script.contains("if ! rm -f \"$RUN_DIR\"/modules.conf.wazo-astdebug-edit;"),
        "{script}"
    );
}

fn start_in_group(server: &Server, program_args: &str) -> crate::common::GroupRun {
    let args = server.args(program_args);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    server.sandbox.start_in_group(&args)
}

fn wait_ready(server: &Server) -> PathBuf {
    let ready = server.sandbox.path("ready");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready.exists() {
        assert!(Instant::now() < deadline, "the program never got ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    ready
}

#[test]
fn signals_to_the_group_while_asterisk_stops_and_during_the_restart() {
    require_root!();
    let server = server();
    server.sandbox.hangs("service.asterisk.stop", 60);
    server.sandbox.hangs("service.wazo-calld.start", 2);
    let run = start_in_group(&server, "");
    server.sandbox.wait_hanging("service.asterisk.stop");
    run.signal_group("INT");
    server.sandbox.wait_hanging("service.wazo-calld.start");
    run.signal_group("HUP");
    std::thread::sleep(Duration::from_millis(300));
    run.signal_group("INT");
    let output = run.finish(Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("still putting things back: service wazo-calld start"),
        "{stderr}"
    );
    assert!(!stderr.contains("CLEANUP FAILED"), "{stderr}");
    server.assert_files_restored();
    let calls = server.sandbox.calls();
    assert_eq!(
        calls[calls.len() - 2..],
        ["service wazo-calld start", "service monit start"]
    );
}

#[test]
fn a_terminals_ctrl_c_to_the_group_ends_the_run_and_a_hangup_does_not_cut_the_restore() {
    require_root!();
    let server = server();
    server.sandbox.hangs("service.asterisk.start", 2);
    let run = start_in_group(
        &server,
        &format!("--wait {}", server.sandbox.path("ready").display()),
    );
    wait_ready(&server);
    run.signal_group("INT");
    server.sandbox.wait_hanging("service.asterisk.start");
    run.signal_group("HUP");
    let output = run.finish(Duration::from_secs(120));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("still putting things back: service asterisk start"),
        "{stderr}"
    );
    server.assert_summary(&stderr);
    server.assert_files_restored();
    server.assert_services_back();
}

#[test]
fn killed_during_the_run_then_recover_puts_files_and_services_back() {
    require_root!();
    let server = server();
    let mut run = start_in_group(
        &server,
        &format!("--wait {}", server.sandbox.path("ready").display()),
    );
    wait_ready(&server);
    run.sigkill();
    assert_ne!(
        fs::read(&server.modules).unwrap(),
        MODULES,
        "not edited yet?"
    );
    let info = server.sandbox.command().arg("info").output().unwrap();
    let text = String::from_utf8_lossy(&info.stdout);
    assert!(text.contains("LEFT BEHIND"), "{text}");
    assert!(text.contains("service asterisk start"), "{text}");
    assert!(text.contains("still running"), "{text}");
    let output = server
        .sandbox
        .command()
        .args(["--yes", "recover"])
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("valgrind"),
        "the orphan is not named: {stderr}"
    );
    server.assert_files_restored();
    server.assert_services_back();
    assert!(
        !crate::common::state_dir(&server.sandbox)
            .join("journal.json")
            .exists()
    );
}

#[test]
fn names_planted_in_tmp_by_another_account_are_neither_followed_nor_used() {
    require_root!();
    let server = server();
    let tmp = server.sandbox.path("root/tmp");
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o1777)).unwrap();
    let target = server.sandbox.path("target");
    fs::write(&target, "root's file\n").unwrap();
    // A suppression that would hide the leak, and a log that points elsewhere.
    crate::common::as_nobody(&format!(
        "ln -s {} {tmp}/valgrind.txt && printf '{{\\n all\\n Memcheck:Leak\\n ...\\n}}\\n' > {tmp}/valgrind.supp \
         && ln -s {} {tmp}/modules.conf.wazo-astdebug-edit",
        target.display(),
        target.display(),
        tmp = tmp.display()
    ));
    let output = server
        .sandbox
        .command()
        .args(server.args(""))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    server.assert_summary(&stderr);
    assert_eq!(fs::read_to_string(&target).unwrap(), "root's file\n");
    server.assert_files_restored();
    // The private run directory is gone; the planted names are as they were.
    let left: Vec<String> = fs::read_dir(&tmp)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        left.iter()
            .all(|name| !name.starts_with("wazo-astdebug-valgrind.")),
        "{left:?}"
    );
}

#[test]
fn killed_while_asterisk_stops_then_recover_starts_everything_again() {
    require_root!();
    let server = server();
    server.sandbox.hangs("service.asterisk.stop", 60);
    let mut run = start_in_group(&server, "");
    let orphan = server.sandbox.wait_hanging("service.asterisk.stop");
    run.sigkill();
    let output = server
        .sandbox
        .command()
        .args(["--yes", "recover"])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(!crate::common::alive(orphan), "{stderr}");
    server.assert_files_restored();
    server.assert_services_back();
}
