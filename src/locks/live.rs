//! The wait-for graph of a live process read from /proc (see `from_proc`),
//! explained, and compared with another reading of the same freeze. Shared
//! by `freeze` (its first look, before gdb) and `watch` (every sample).

use std::collections::BTreeSet;
use std::time::Instant;

use crate::error::Result;
use crate::host::procfs::Process;
use crate::locks::from_proc::{self, ProcGraph};
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
    // Each word read once: a pool's idle threads share a condition variable.
    let words = process.word_cache();
    let read = |address: u64| words.read(address);
    let built = from_proc::build(
        &tasks,
        &from_proc::Reader {
            word: &read,
            place: &|address| process.name_of(&maps, address),
            fd_kind: &|fd| process.fd_kind(fd),
            thread_name: &|tid| process.thread_name(tid),
            layout: process.lock_layout_from(&maps),
            all_threads: true,
        },
    );
    let took = started.elapsed();
    let analysis = built.graph.analyze();
    let info = source_info(
        &built,
        &analysis,
        format!(
            "/proc of pid {pid}, read in {:.1} ms without stopping it",
            took.as_secs_f64() * 1000.0
        ),
    );
    let text = render::text(&built.graph, &analysis, &info);
    Ok(Look {
        graph: built.graph,
        analysis,
        text,
    })
}

/// What a /proc reading rests on, for the text rendering: where it came
/// from, what it cannot see, and what was inferred.
pub fn source_info(built: &ProcGraph, analysis: &Analysis, source: String) -> SourceInfo {
    let mut info = SourceInfo {
        source,
        unlisted_why: Some(
            "glibc does not record which threads hold an rwlock as readers, and a mutex's \
             owner may have exited"
                .to_string(),
        ),
        ..SourceInfo::default()
    };
    info.notes = built.notes.clone();
    if let Some(why) = &built.owners_unknown {
        info.unlisted_why = Some(why.clone());
        info.holders_unknown = Some(why.clone());
    }
    info.stuck = holders::stuck(&built.graph, analysis, &built.doing, &|thread| {
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
    info
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
