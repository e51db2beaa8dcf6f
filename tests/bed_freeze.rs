//! `freeze` on a real Asterisk (the test bed): Debian's stripped Asterisk 22
//! put in a deadlock on purpose by the test module, the tool run inside the
//! root as an administrator runs it.

use std::time::Duration;

use crate::common::testbed::{Bed, Module, text};

#[test]
fn explore_abba() {
    require_testbed!();
    let bed = Bed::start(Module::Stripped);
    let roles = bed.break_it("abba 3");
    eprintln!("{roles:?}");
    let output = bed.tool(&["-o", "/tmp/out-abba", "freeze", "--graph", "--timeout", "2"]);
    eprintln!("{}", text(&output));
    assert!(bed.running());
    let _ = Duration::from_secs(1);
}

#[test]
fn explore_rwcycle() {
    require_testbed!();
    let bed = Bed::start(Module::Stripped);
    let roles = bed.break_it("rwcycle");
    eprintln!("{roles:?}");
    let output = bed.tool(&["-o", "/tmp/out-rw", "--json", "freeze", "--timeout", "2"]);
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    assert!(bed.running());
}

#[test]
fn explore_tracer() {
    require_testbed!();
    let bed = Bed::start(Module::Stripped);
    let mut tracer = std::process::Command::new("gdb")
        .args([
            "-batch",
            "-nx",
            "-p",
            &bed.pid.to_string(),
            "-ex",
            "shell sleep 8",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let output = bed.tool(&["-o", "/tmp/out-tr", "freeze", "--timeout", "2"]);
    eprintln!("exit {:?}\n{}", output.status.code(), text(&output));
    let _ = tracer.kill();
    let _ = tracer.wait();
    let output = bed.tool(&[
        "-o",
        "/tmp/out-tr2",
        "freeze",
        "--pid",
        "1",
        "--timeout",
        "2",
    ]);
    eprintln!("exit {:?}\n{}", output.status.code(), text(&output));
}
