//! freeze's taskprocessor reading: the queues named from `core show
//! taskprocessors` and the `full` log, and the thread inside a task found
//! in memory, with and without symbols.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command as Process;

use crate::common::{Sandbox, compile_c_as, file_mode, start_ready};
use crate::freeze::freeze_a_program;

#[test]
fn a_stuck_taskprocessor_is_named_from_the_cli_and_the_log() {
    require_root!();
    let sandbox = Sandbox::new(&["systemctl", "asterisk"]);
    sandbox.prints("systemctl", "active\n");
    let listing = fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/taskprocessors/asterisk-22.txt"),
    )
    .unwrap();
    sandbox.prints("asterisk.-rx.core show taskprocessors", &listing);
    let now = chrono::Local::now();
    let stamp =
        |minutes: i64| (now - chrono::Duration::minutes(minutes)).format("[%Y-%m-%d %H:%M:%S%.3f]");
    let warning = |name: &str| {
        format!(
            "WARNING[9] taskprocessor.c: Taskprocessor '{name}' queue reached 500 scheduled tasks \
             (high water mark: 500)."
        )
    };
    sandbox.host_file(
        "/var/log/asterisk/full",
        format!(
            "{} {}\n{} VERBOSE[3] pbx.c: Executing\n{} {}\n",
            stamp(60),
            warning("an-hour-ago"),
            stamp(3),
            stamp(2),
            warning("pjsip/distributor-00000001"),
        )
        .as_bytes(),
    );
    let frozen = freeze_a_program(&sandbox.path(""));
    let output = sandbox
        .command()
        .args(["--json", "freeze", "--timeout", "3", "--pid"])
        .arg(frozen.child.id().to_string())
        .arg("--asterisk-bin")
        .arg(&frozen.program)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let queues = json["taskprocessors"].as_array().expect("taskprocessors");
    let names: Vec<&str> = queues.iter().map(|q| q["name"].as_str().unwrap()).collect();
    // Largest first; the warning of an hour ago is outside the 10 minutes.
    assert_eq!(
        names,
        ["astdebug-blocked", "pjsip/distributor-00000001"],
        "{json:#}"
    );
    assert_eq!(queues[0]["in_queue"], 600);
    assert_eq!(queues[0]["high_water"], 500);
    // The C program runs no taskprocessor: no thread to name, and it says so.
    assert_eq!(queues[0]["served_by_lwp"], serde_json::Value::Null);
    assert!(
        queues[0]["rests_on"]
            .as_str()
            .unwrap()
            .contains("cannot tell its thread")
    );
    assert_eq!(queues[1]["in_queue"], serde_json::Value::Null);
    assert_eq!(queues[1]["log_reached"], 500);
    assert!(
        stderr.contains("Taskprocessors (`core show taskprocessors` listed 3"),
        "{stderr}"
    );
    let saved = sandbox.path("out").join("core-show-taskprocessors.txt");
    assert_eq!(file_mode(&saved), 0o600);
    assert!(
        fs::read_to_string(&saved)
            .unwrap()
            .contains("astdebug-blocked")
    );
    let report = fs::read_to_string(sandbox.path("out").join("bug-report.md")).unwrap();
    assert!(report.contains("Taskprocessors:"), "{report}");
    assert!(report.contains("core-show-taskprocessors.txt"), "{report}");

    // A window wider than any calendar: the whole log, not a panic.
    let wide = sandbox.path("out-wide");
    fs::create_dir(&wide).unwrap();
    fs::set_permissions(&wide, fs::Permissions::from_mode(0o700)).unwrap();
    let output = sandbox
        .command_in(&wide)
        .args(["--json", "freeze", "--timeout", "3"])
        .args(["--log-minutes", "18446744073709551615", "--pid"])
        .arg(frozen.child.id().to_string())
        .arg("--asterisk-bin")
        .arg(&frozen.program)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let names: Vec<&str> = json["taskprocessors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"an-hour-ago"), "{json:#}");
}

/// The thread stuck in a task is found with debug symbols (gdb reads
/// `tps->name`) and without them (the memory the frame points to).
#[test]
fn the_thread_stuck_in_a_taskprocessor_task_is_found_with_and_without_symbols() {
    require_root!();
    for stripped in [false, true] {
        let sandbox = Sandbox::new(&["systemctl", "asterisk"]);
        sandbox.prints("systemctl", "active\n");
        sandbox.prints(
            "asterisk.-rx.core show taskprocessors",
            "\nProcessor                  Processed   In Queue  Max Depth  Low water High water\n\
             pjsip/distributor-0000002a         5        812        812        450        500\n\
             other-tps                          1          0          1        450        500\n\
             \n2 taskprocessors\n",
        );
        let program = compile_c_as("taskprocessor", "asterisk", &sandbox.path(""));
        if stripped {
            // As Asterisk is linked: its API exported for the modules, so a
            // stripped binary still names ast_taskprocessor_execute.
            let source =
                Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/c/taskprocessor.c");
            let built = Process::new("cc")
                .args(["-O0", "-pthread", "-rdynamic", "-o"])
                .arg(&program)
                .arg(&source)
                .status()
                .unwrap();
            let strip = Process::new("strip").arg(&program).status().unwrap();
            assert!(built.success() && strip.success());
        }
        let (mut child, lwps) = start_ready::<&str>(&program, &[]);
        let output = sandbox
            .command()
            .args(["--json", "freeze", "--timeout", "3", "--pid"])
            .arg(child.id().to_string())
            .arg("--asterisk-bin")
            .arg(&program)
            .output()
            .unwrap();
        let _ = child.kill();
        let _ = child.wait();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let queues = json["taskprocessors"].as_array().unwrap();
        assert_eq!(queues.len(), 1, "{json:#}");
        assert_eq!(queues[0]["name"], "pjsip/distributor-0000002a");
        assert_eq!(
            queues[0]["served_by_lwp"], lwps[0],
            "stripped {stripped}: {json:#}"
        );
        let rests_on = queues[0]["rests_on"].as_str().unwrap();
        let how = if stripped { "own id" } else { "debug symbols" };
        assert!(rests_on.contains(how), "stripped {stripped}: {rests_on}");
    }
}
