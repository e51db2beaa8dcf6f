//! `freeze --gcore`: a core of the live process. (The /proc reading that
//! never stops Asterisk, shared with `watch`, is `locks::live`.)

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::engine::child::{self, Streams};
use crate::engine::command::Cmd;
use crate::engine::interrupt::Interrupt;
use crate::error::{Error, Result};
use crate::host::procfs::{self, Process};

/// `gcore` of the live process into `out` (0600), refused before it runs
/// when the core would not fit. Returns the core and how long Asterisk was
/// stopped for it.
pub fn gcore(pid: u32, out: &Path, interrupt: &Interrupt) -> Result<(PathBuf, Duration)> {
    let process = Process::open(pid)?;
    let needed = procfs::core_size_estimate(&process.maps());
    let free = procfs::free_space(out).unwrap_or(u64::MAX);
    // A margin: the estimate is rough, and a full disk hurts the PBX too.
    if needed.saturating_add(needed / 10) > free {
        return Err(Error::bad_input(format!(
            "a core of pid {pid} needs about {} MB and {} has {} MB free: not taking it (give \
             -o a directory on a larger disk). Nothing was stopped",
            needed >> 20,
            out.display(),
            free >> 20
        )));
    }
    let prefix = out.join("core");
    let cmd = Cmd::new([
        "gcore".to_string(),
        "-o".to_string(),
        prefix.display().to_string(),
        pid.to_string(),
    ])
    // gcore is gdb: a SIGINT would reach Asterisk.
    .kill_only();
    errln!("+ {cmd}");
    let started = Instant::now();
    let status = child::run_lines(&cmd, Some(interrupt), Streams::Merged, &mut |_, _| {})?;
    let stopped = started.elapsed();
    let core = out.join(format!("core.{pid}"));
    if !status.success() || !core.is_file() {
        return Err(Error::StepFailed {
            command: cmd.to_string(),
            status: child::describe_status(status),
            hint: String::new(),
        });
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&core, std::fs::Permissions::from_mode(0o600))
        .map_err(|error| Error::write(&core, error))?;
    Ok((core, stopped))
}
