//! `watch` on a real Asterisk (the test bed): Debian's stripped Asterisk 22,
//! watched from before it breaks, caught when the test module deadlocks it,
//! and left running.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::common::testbed::{Bed, Module, text, tracer_of, wait_bounded};

#[test]
fn watch_once_catches_an_abba_deadlock_and_names_its_lwps() {
    require_testbed!();
    let bed = Bed::start(Module::Stripped);
    let tool = bed.spawn_tool(&[
        "-o",
        "/tmp/watch",
        "--json",
        "watch",
        "--once",
        "--interval",
        "1",
        "--confirm",
        "2",
        "--max-time",
        "90",
        "--timeout",
        "3",
    ]);
    // A healthy, idle Asterisk first: nothing to capture, never traced.
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(tracer_of(bed.pid), None, "traced while healthy");
    }
    bed.break_it("abba 3");
    let (output, _) = wait_bounded(tool, Duration::from_secs(120));
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("not JSON ({error}): {}", text(&output)));
    assert_eq!(json["pid"], bed.pid, "{}", text(&output));
    assert!(
        text(&output).contains(&format!(
            "Watching Asterisk, pid {} (from /run/asterisk/asterisk.pid)",
            bed.pid
        )),
        "{}",
        text(&output)
    );
    let truth: BTreeSet<u64> = bed
        .lwps("first")
        .into_iter()
        .chain(bed.lwps("second"))
        .map(u64::from)
        .collect();
    let freezes = json["freezes"].as_array().expect("freezes");
    assert_eq!(freezes.len(), 1, "{json:#}");
    assert_eq!(freezes[0]["rule"], "cycle");
    let named: BTreeSet<u64> = freezes[0]["lwps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|lwp| lwp.as_u64())
        .collect();
    assert_eq!(
        named,
        truth,
        "the cycle is the module's ABBA pair: {}",
        text(&output)
    );
    let behind: BTreeSet<u64> = freezes[0]["behind"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|lwp| lwp.as_u64())
        .collect();
    for bystander in bed.lwps("bystander") {
        assert!(behind.contains(&u64::from(bystander)), "{json:#}");
    }
    // The capture's freeze ran inside the bed and agrees.
    let dir = json["run_dir"].as_str().unwrap();
    let said = std::fs::read_to_string(bed.path(&format!("{dir}/freeze-output.txt"))).unwrap();
    assert!(said.contains("The /proc reading and gdb's agree"), "{said}");
    assert!(bed.path(&format!("{dir}/bug-report.md")).is_file());
    assert_eq!(json["freeze"]["ok"], true, "{json:#}");
    assert_eq!(tracer_of(bed.pid), None);
    assert!(bed.running(), "Asterisk state {:?}", bed.state());
}
