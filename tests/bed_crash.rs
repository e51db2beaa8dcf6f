//! `crash` on a real Asterisk (the test bed): the test module segfaults in a
//! thread that is not the main one, or abort()s as Wazo's freeze check does;
//! the kernel writes the core into /var/spool/asterisk and the test names it
//! `core.<pid>.<time>` as Wazo's core_pattern does.

use std::time::{Duration, Instant};

use crate::common::testbed::{Bed, Module, text};

/// Breaks Asterisk with `scenario`, waits for it to die and for the
/// kernel's core, and names the core as Wazo does. Returns its path in the bed.
fn crash_it(bed: &Bed, scenario: &str) -> String {
    bed.rx(&format!("astdebug test {scenario}"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while bed.state().is_some_and(|s| s != 'Z') && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let core = bed.path("/var/spool/asterisk/core");
    while !core.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        core.exists(),
        "no kernel core after {scenario} (core_pattern: {})",
        std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap_or_default()
    );
    // The kernel is done writing when the file stops growing.
    let mut size = 0;
    while std::fs::metadata(&core).map(|m| m.len()).unwrap_or(0) != size {
        size = std::fs::metadata(&core).map(|m| m.len()).unwrap_or(0);
        std::thread::sleep(Duration::from_millis(200));
    }
    let time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let named = format!("/var/spool/asterisk/core.{}.{time}", bed.pid);
    std::fs::rename(&core, bed.path(&named)).unwrap();
    named
}

/// A kernel segfault line of another Asterisk process, dated now, in the
/// bed's /var/log/syslog.
fn plant_other_segfault(bed: &Bed) {
    let now = bed.sh("date '+%b %e %H:%M:%S'");
    let now = String::from_utf8_lossy(&now.stdout).trim().to_string();
    let line = format!(
        "{now} pbx kernel: [  141.451421] asterisk[99999]: segfault at 10 ip 00007f3c2a1b2c3d \
         sp 00007ffd12345678 error 4 in libc.so.6[7f3c2a000000+195000]\n"
    );
    std::fs::write(bed.path("/var/log/syslog"), line).unwrap();
}

/// The crash object, held to docs/json.md on a real Asterisk's crash.
fn json_of(output: &std::process::Output) -> serde_json::Value {
    let stderr = String::from_utf8_lossy(&output.stderr);
    crate::json_vocabulary::check("crash", &output.stdout, &stderr)
}

#[test]
fn a_segfault_is_matched_to_its_core_through_the_faulting_thread() {
    require_testbed!();
    let bed = Bed::start(Module::Stripped);
    let _ = std::fs::remove_file(bed.path("/var/log/syslog"));
    let core = crash_it(&bed, "segfault");
    let crasher = bed.lwps("crasher")[0];
    assert_ne!(
        crasher, bed.pid,
        "the module crashes outside the main thread"
    );
    plant_other_segfault(&bed);
    let output = bed.tool(&["--yes", "--json", "-o", "/tmp/out", "crash"]);
    assert!(output.status.success(), "{}", text(&output));
    let json = json_of(&output);
    assert_eq!(json["core"]["path"], core, "{json:#}");
    let lines = json["segfaults"].as_array().unwrap();
    assert_eq!(lines.len(), 1, "{json:#}");
    assert_eq!(lines[0]["lwp"], crasher, "{json:#}");
    assert!(
        lines[0]["line"]
            .as_str()
            .unwrap()
            .contains(&format!("asterisk[{crasher}]")),
        "{json:#}"
    );
    let said = text(&output);
    assert!(
        said.contains("asterisk[99999] is not this core's"),
        "{said}"
    );
    let summary = json["summary"].to_string();
    assert!(
        summary.contains("Crashed in: ?? (res_astdebug_test.so+0x"),
        "{summary}"
    );
    assert!(
        summary.contains(
            "addr2line -f -e /usr/lib/x86_64-linux-gnu/asterisk/modules/res_astdebug_test.so"
        ),
        "{summary}"
    );
    let report = std::fs::read_to_string(bed.path("/tmp/out/bug-report.md")).unwrap();
    assert!(report.contains(&format!("asterisk[{crasher}]")), "{report}");
    assert!(!report.contains("asterisk[99999]"), "{report}");
    assert!(report.contains("res_astdebug_test.so"), "{report}");
    assert!(report.contains("- **Asterisk:** 22."), "{report}");
    // The kernel's line names the module: addr2line with its real path.
    assert!(
        said.contains(
            "addr2line -f -e /usr/lib/x86_64-linux-gnu/asterisk/modules/res_astdebug_test.so"
        ),
        "{said}"
    );
    let info = bed.tool(&["info"]);
    assert!(
        text(&info).contains("Asterisk        22."),
        "{}",
        text(&info)
    );
}

#[test]
fn an_abort_core_never_inherits_a_segfault_line() {
    require_testbed!();
    let bed = Bed::start(Module::Debug);
    let core = crash_it(&bed, "abort");
    plant_other_segfault(&bed);
    let output = bed.tool(&["--yes", "--json", "-o", "/tmp/out", "crash"]);
    assert!(output.status.success(), "{}", text(&output));
    let json = json_of(&output);
    assert_eq!(json["core"]["path"], core, "{json:#}");
    assert_eq!(json["segfaults"], serde_json::json!([]), "{json:#}");
    let summary = json["summary"].to_string();
    assert!(summary.contains("SIGABRT"), "{summary}");
    // With the module's symbols: the function that called abort().
    assert!(summary.contains("Crashed in: abort_thread"), "{summary}");
    let report = std::fs::read_to_string(bed.path("/tmp/out/bug-report.md")).unwrap();
    assert!(!report.contains("segfault at"), "{report}");
    assert!(
        text(&output).contains("another crash's"),
        "{}",
        text(&output)
    );
}

#[test]
fn a_freeze_check_abort_leads_with_the_lock_and_its_holder_not_the_checker() {
    require_testbed!();
    let bed = Bed::start(Module::Stripped);
    bed.break_it("abba 2");
    let core = crash_it(&bed, "freezecheck");
    let output = bed.tool(&["--yes", "--json", "-o", "/tmp/out", "crash"]);
    assert!(output.status.success(), "{}", text(&output));
    let json = json_of(&output);
    assert_eq!(json["core"]["path"], core, "{json:#}");
    let summary: Vec<String> = json["summary"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| line.as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        summary[0].contains("Wazo's freeze check stopped Asterisk: it could not take the global queues container lock"),
        "{summary:#?}"
    );
    assert!(summary[0].contains("not the culprit"), "{summary:#?}");
    let all = summary.join("\n");
    for role in ["first", "second"] {
        let lwp = bed.lwps(role)[0];
        assert!(all.contains(&format!("LWP {lwp}")), "{role} {lwp}: {all}");
    }
    assert!(all.contains("DEADLOCK:"), "{all}");
    let report = std::fs::read_to_string(bed.path("/tmp/out/bug-report.md")).unwrap();
    assert!(
        report.contains("Wazo's freeze check stopped Asterisk"),
        "{report}"
    );
}
