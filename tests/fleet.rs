//! The fleet playbooks of `ansible/` on real hosts: `ansible/tests/run`
//! builds the Debian package, installs a pinned ansible-core, starts Debian
//! roots with their own Wazo versions, logs and cores behind sshd in network
//! namespaces, and checks what install.yml, segfaults.yml, collect.yml,
//! watch.yml and setup-dbg.yml report (see the script's header). It needs
//! root and a minute or two (a few more the first time, to debootstrap the
//! base root), so it runs only when asked:
//!
//!     WAZO_ASTDEBUG_FLEET_TESTS=1 cargo test --test integration fleet::
//!
//! (CI sets it), or directly: `bash ansible/tests/run`.

use std::io::Write;
use std::process::Command;

const RUN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/ansible/tests/run");

#[test]
fn the_fleet_playbooks_on_real_hosts_over_ssh() {
    if std::env::var_os("WAZO_ASTDEBUG_FLEET_TESTS").is_none_or(|value| value != "1") {
        // Straight to stderr, past the test harness's capture: a skipped
        // fleet test must not look like a passed one.
        let _ = writeln!(
            std::io::stderr(),
            "\n*** SKIPPED: the fleet test (Ansible playbooks on real hosts) did not run. \
             Run it as root with WAZO_ASTDEBUG_FLEET_TESTS=1 cargo test --test integration fleet:: \
             or bash ansible/tests/run ***\n"
        );
        return;
    }
    if cfg!(target_env = "musl") {
        let _ = writeln!(
            std::io::stderr(),
            "\n*** SKIPPED: the fleet test runs once, in the glibc test run (the hosts get the musl package either way) ***\n"
        );
        return;
    }
    let status = Command::new("bash")
        .arg(RUN)
        .status()
        .expect("bash runs ansible/tests/run");
    assert!(
        status.success(),
        "ansible/tests/run failed ({status}); its output above says which check"
    );
}
