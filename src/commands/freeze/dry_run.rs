//! `freeze --dry-run`: the doc's commands as a script that runs anywhere.

use std::path::Path;
use std::time::Duration;

use crate::context::Context;
use crate::engine::script::{Vars, preamble};
use crate::error::Result;
use crate::evidence::cores;
use crate::gdb::{self, Target};
use crate::host::asterisk;

/// What the command line asked for, as far as the script needs it.
pub struct Wanted<'a> {
    pub pid: Option<u32>,
    pub core: Option<&'a Path>,
    pub asterisk_bin: &'a Path,
    pub no_attach: bool,
    /// `--samples` and `--interval`.
    pub samples: u32,
    pub interval: f64,
}

/// `--dry-run`, on any machine: no Asterisk running here, nor its binary,
/// only makes them variables of the script.
pub fn dry_run(context: &Context, wanted: &Wanted, timeout: Duration) -> Result<()> {
    if wanted.no_attach {
        outln!("#!/bin/sh");
        outln!(
            "# wazo-astdebug freeze --no-attach reads /proc only: no command runs, Asterisk is not stopped."
        );
        print_sampling(wanted);
        return Ok(());
    }
    let target = match &wanted.core {
        Some(core) => Target::Core(cores::require_core(core)?.path),
        None => Target::Pid(
            wanted
                .pid
                .or_else(|| asterisk::find(&context.host).found.map(|found| found.pid))
                .unwrap_or(0),
        ),
    };
    let binary = asterisk::binary_for_script(&context.host, wanted.asterisk_bin);
    print_script(&target, &binary, context.output_path(), timeout, wanted);
    Ok(())
}

/// `--samples`: no command, the tool reads /proc itself; said where it happens.
fn print_sampling(wanted: &Wanted) {
    if wanted.samples > 1 {
        outln!(
            "# First {} samples of /proc, {} s apart (each thread's system call and lock words, \
             read by wazo-astdebug itself; Asterisk is not stopped), compared into samples.txt: \
             frozen, or only slow.",
            wanted.samples,
            wanted.interval
        );
    }
}

fn print_script(target: &Target, binary: &Path, out: &Path, timeout: Duration, wanted: &Wanted) {
    let mut vars = Vars::new();
    vars.push(
        "ASTERISK_BIN",
        binary.to_string_lossy(),
        "The binary of the running Asterisk (--asterisk-bin).",
    );
    vars.push(
        "OUT",
        out.to_string_lossy(),
        "Where the evidence goes (-o).",
    );
    match target {
        Target::Pid(0) => vars.push_computed(
            "ASTERISK_PID",
            "0",
            "$(cat /run/asterisk/asterisk.pid)",
            "The pid of the frozen Asterisk (none runs here: read from its pid file).",
        ),
        Target::Pid(pid) => vars.push(
            "ASTERISK_PID",
            pid.to_string(),
            "The pid of the frozen Asterisk (--pid).",
        ),
        Target::Core(core) => {
            vars.push("CORE", core.to_string_lossy(), "The core to read (--core).")
        }
    }
    out!(
        "{}",
        preamble(
            &format!(
                "wazo-astdebug freeze: evidence of a frozen Asterisk into {}",
                out.display()
            ),
            &vars,
            &[out.to_path_buf()],
        )
    );
    if let Target::Pid(_) = target {
        print_sampling(wanted);
        let seconds = timeout.as_secs().to_string();
        // A frozen Asterisk does not answer: a timeout is a symptom, not a failure.
        outln!("timeout {seconds} systemctl is-active asterisk || true");
        outln!(
            "timeout {seconds} asterisk -rx 'core show channels' > {} || true",
            vars.path(&out.join("core-show-channels.txt"))
        );
        outln!(
            "timeout {seconds} asterisk -rx 'core show locks' > {} || true",
            vars.path(&out.join("core-show-locks.txt"))
        );
        outln!(
            "timeout {seconds} asterisk -rx 'core show taskprocessors' > {} || true",
            vars.path(&out.join("core-show-taskprocessors.txt"))
        );
    }
    let request = gdb::Request {
        binary: binary.to_path_buf(),
        target: target.clone(),
        commands: vec!["thread apply all bt".to_string()],
        text_out: out.join("bt-threads.txt"),
        analysis_out: None,
        full_out: None,
    };
    outln!(
        "{} > {}",
        vars.cmd(&request.command(None)),
        vars.path(&request.text_out)
    );
    outln!(
        "# (in the same gdb run: who waits for which lock, read from memory, into gdb-threads.json)"
    );
    if let Target::Core(_) = target {
        let full = gdb::Request {
            commands: vec!["thread apply all bt full".to_string()],
            text_out: out.join("bt-full.txt"),
            ..request
        };
        outln!(
            "# (freeze prints this from the same gdb run too, and bt-threads.txt is it without the locals)"
        );
        outln!(
            "{} > {}",
            vars.cmd(&full.command(None)),
            vars.path(&full.text_out)
        );
    }
}
