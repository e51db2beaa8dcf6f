//! The parts of `freeze` that look at the live process: the /proc reading
//! that never stops Asterisk, its comparison with gdb's, and `--gcore`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::engine::child::{self, Streams};
use crate::engine::command::Cmd;
use crate::engine::interrupt::Interrupt;
use crate::error::{Error, Result};
use crate::host::procfs::{self, Process};
use crate::locks::from_proc;
use crate::locks::graph::{Analysis, LockGraph};
use crate::locks::holders;
use crate::locks::render::{self, SourceInfo};

/// What /proc showed, analysed.
pub struct Look {
    pub graph: LockGraph,
    pub analysis: Analysis,
    pub text: String,
}

/// Reads the wait-for graph of `pid` from /proc, without stopping it.
pub fn look(pid: u32) -> Result<Look> {
    let started = Instant::now();
    let process = Process::open(pid)?;
    let tasks = process.tasks()?;
    let maps = process.maps();
    let read = |address: u64| process.read_u32(address);
    let fd_kind = |fd: u64| process.fd_kind(fd);
    let built = from_proc::build(&tasks, &read, &maps, &fd_kind);
    let took = started.elapsed();
    let analysis = built.graph.analyze();
    let mut info = SourceInfo {
        source: format!(
            "/proc of pid {pid}, read in {} ms without stopping it",
            took.as_millis()
        ),
        unlisted_why: Some(
            "glibc does not record which threads hold an rwlock as readers, and a mutex's \
             owner may have exited"
                .to_string(),
        ),
        ..SourceInfo::default()
    };
    info.notes = built.notes;
    info.stuck = holders::stuck(&built.graph, &analysis, &built.doing, &|thread| {
        render::thread_label(&built.graph, thread)
    });
    if built.other_futex > 0 {
        info.notes.push(format!(
            "{} of {} threads sleep on a condition variable or another futex (idle workers, \
             most of the time): not counted as lock waits",
            built.other_futex, built.threads
        ));
    }
    if !built.stopped.is_empty() {
        info.notes.push(format!(
            "{} threads are stopped (T): a debugger or a signal stopped them, not this reading",
            built.stopped.len()
        ));
    }
    let text = render::text(&built.graph, &analysis, &info);
    Ok(Look {
        graph: built.graph,
        analysis,
        text,
    })
}

/// The LWPs of each deadlock, to compare two readings of the same freeze.
pub fn cycles(graph: &LockGraph, analysis: &Analysis) -> Vec<BTreeSet<u64>> {
    let mut cycles: Vec<BTreeSet<u64>> = analysis
        .deadlocks
        .iter()
        .map(|deadlock| {
            deadlock
                .members
                .iter()
                .filter_map(|&member| graph.thread(member).and_then(|thread| thread.lwp))
                .collect()
        })
        .collect();
    cycles.sort();
    cycles
}

/// One line saying whether /proc and gdb saw the same deadlocks.
pub fn compare(from_proc: &[BTreeSet<u64>], from_gdb: &[BTreeSet<u64>]) -> String {
    let show = |cycles: &[BTreeSet<u64>]| {
        if cycles.is_empty() {
            return "no cycle".to_string();
        }
        cycles
            .iter()
            .map(|cycle| {
                let lwps: Vec<String> = cycle.iter().map(|lwp| format!("LWP {lwp}")).collect();
                format!("{{{}}}", lwps.join(", "))
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    if from_proc == from_gdb {
        format!("The /proc reading and gdb's agree: {}.", show(from_proc))
    } else {
        format!(
            "The /proc reading and gdb's DISAGREE: /proc saw {}, gdb saw {} (threads may have \
             moved between the two; trust gdb's for names and stacks, and run freeze again)",
            show(from_proc),
            show(from_gdb)
        )
    }
}

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
