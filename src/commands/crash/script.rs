//! `crash --dry-run`: the doc's steps as a script that runs anywhere, with
//! the binary, the run directory and the core as variables to fill in.

use std::path::{Path, PathBuf};

use chrono::{DateTime, FixedOffset, Local};

use crate::engine::script::{Vars, preamble};
use crate::engine::shell;
use crate::evidence::astlog;
use crate::gdb::{self, Target};
use crate::host::sys::hostname;

/// The day the copied logs are named after: the incident's, else today's
/// (the doc's `date +"%Y%m%d"`).
pub fn incident_day(incident: Option<DateTime<FixedOffset>>) -> String {
    incident
        .map(|time| time.format("%Y%m%d").to_string())
        .unwrap_or_else(|| Local::now().format("%Y%m%d").to_string())
}

/// The top of the `--dry-run` script: the binary and the run directory as
/// variables to fill in, the directory made.
pub fn script_preamble(binary: &Path, out: &Path) -> String {
    preamble(
        &format!(
            "wazo-astdebug crash: backtrace, logs and bug report into {}",
            out.display()
        ),
        &script_vars(binary, out, None),
        &[out.to_path_buf()],
    )
}

fn script_vars(binary: &Path, out: &Path, core: Option<&Path>) -> Vars {
    let mut vars = Vars::new();
    vars.push(
        "ASTERISK_BIN",
        binary.to_string_lossy(),
        "The Asterisk binary that crashed (--asterisk-bin).",
    );
    vars.push(
        "OUT",
        out.to_string_lossy(),
        "Where the evidence goes (-o).",
    );
    if let Some(core) = core {
        vars.push("CORE", core.to_string_lossy(), "");
    }
    vars
}

/// `--dry-run`: what would run, as sh (after [`script_preamble`]).
pub fn print_script(
    core: Option<(&Path, String)>,
    binary: &Path,
    out: &Path,
    logs: &[astlog::LogCopy],
    incident: Option<DateTime<FixedOffset>>,
) {
    // A core found here is the default; none found, the script names where
    // Wazo's would be and reads it only if it is there.
    let core_path = core
        .as_ref()
        .map(|(path, _)| path.to_path_buf())
        .unwrap_or_else(|| PathBuf::from("/var/spool/asterisk/core.PID.TIME"));
    let vars = script_vars(binary, out, Some(&core_path));
    match core {
        Some((_, described)) => outln!("# The core file: {described}"),
        None => outln!("# No core file found here: set CORE to the core to read (core.PID.TIME)."),
    }
    outln!(
        "CORE=${{CORE:-{}}}",
        shell::quote(&core_path.to_string_lossy())
    );
    let request = gdb::Request {
        binary: binary.to_path_buf(),
        target: Target::Core(core_path.clone()),
        commands: vec!["bt full".to_string(), "thread apply all bt".to_string()],
        text_out: out.join("bt-threads.txt"),
        analysis_out: None,
        full_out: None,
    };
    let full = gdb::Request {
        commands: vec![
            "bt full".to_string(),
            "thread apply all bt full".to_string(),
        ],
        text_out: out.join("bt-full.txt"),
        ..request.clone()
    };
    outln!("if [ -f \"$CORE\" ]; then");
    outln!(
        "    {} > {}",
        vars.cmd(&request.command(None)),
        vars.path(&request.text_out)
    );
    outln!(
        "    # (crash prints this from the same gdb run too; bt-threads.txt is it without the locals \
         after the crashing thread's bt full)"
    );
    outln!(
        "    {} > {}",
        vars.cmd(&full.command(None)),
        vars.path(&full.text_out)
    );
    outln!("else");
    outln!("    echo \"No core file $CORE: no backtrace (set CORE at the top).\" >&2");
    outln!("fi");
    outln!(
        "# (wazo-astdebug also reads, in the same gdb run, the threads and the signal into gdb-threads.json)"
    );
    let day = incident_day(incident);
    for log in logs {
        let name = log
            .path
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or_default();
        let to = out.join(astlog::copy_name(log, &day, &hostname()));
        let reader = if name.ends_with(".gz") { "zcat" } else { "cat" };
        outln!("{reader} {} > {}", vars.path(&log.path), vars.path(&to));
    }
    outln!(
        "# Then wazo-astdebug writes {} with the tracker fields.",
        out.join("bug-report.md").display()
    );
}
