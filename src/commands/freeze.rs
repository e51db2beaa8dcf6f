//! `freeze`: the evidence of a frozen Asterisk, and the answer in words.
//!
//! The doc's "Debugging Asterisk Freeze" collects a live backtrace and, on
//! builds with DEBUG_THREADS, `core show locks`. Most Wazo servers run the
//! stock build, so the lock graph is also read from memory by gdb in the
//! same attach (see `gdb_locks.py`): "threads A and B are deadlocked on
//! these two locks, 212 more are stuck behind them" without a rebuild. The
//! process is left running: gdb detaches, and a gdb stopped hard is followed
//! by SIGCONT.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use serde::Serialize;

use crate::context::Context;
use crate::engine::shell;
use crate::error::{Error, Result};
use crate::evidence::cores::{self, CoreFile};
use crate::evidence::symptoms::Symptom;
use crate::evidence::taskprocessors;
use crate::gdb::threads::{self, StackGroup};
use crate::gdb::{self, Target};
use crate::host::asterisk::{self, ASTERISK_BIN};
use crate::host::sys::{create_private, process_state};
use crate::host::version;
use crate::locks::draw::{self, GraphFormat};
use crate::locks::graph::{Analysis, LockGraph};
use crate::locks::live;
use crate::locks::progress;
use crate::locks::render;
use crate::output::Warnings;

mod bug_report;
mod dry_run;
mod evidence;
mod gcore;
mod graph_source;
mod log_tail;
mod samples;
mod target;
mod threads_log;

use bug_report::{GROUP_DEPTH, GROUPS_SHOWN, bug_report};
use dry_run::{Wanted, dry_run};
use evidence::Evidence;
use graph_source::choose_graph;
use log_tail::last_minutes;
use samples::Sampled;
use target::find_pid;

#[derive(Debug, Args)]
pub struct FreezeArgs {
    /// Asterisk's pid [default: /run/asterisk/asterisk.pid, else the process named asterisk]
    #[arg(long, value_name = "PID")]
    pub pid: Option<u32>,

    /// Analyse this core file instead of the live process (e.g. one left by the freeze check's abort())
    #[arg(long, value_name = "FILE", conflicts_with = "pid")]
    pub core: Option<PathBuf>,

    /// The Asterisk binary
    #[arg(long, value_name = "PATH", default_value = ASTERISK_BIN)]
    pub asterisk_bin: PathBuf,

    /// Seconds each check may take (`asterisk -rx` can hang forever on a frozen Asterisk)
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub timeout: u64,

    /// Also draw the lock graph: graph-locks.dot, and graph-locks.svg when graphviz is installed
    #[arg(long)]
    pub graph: bool,

    /// Minutes of /var/log/asterisk/full to keep, up to the freeze
    #[arg(long, value_name = "MINUTES", default_value_t = 10)]
    pub log_minutes: u64,

    /// Lines of the log kept from each deadlocked thread and top lock holder (threads-log.txt)
    #[arg(long, value_name = "LINES", default_value_t = crate::evidence::thread_log::LINES_PER_THREAD)]
    pub log_lines: usize,

    /// Only read the wait-for graph from /proc: Asterisk is never stopped (no gdb, no CLI checks)
    #[arg(long, conflicts_with = "core")]
    pub no_attach: bool,

    /// Also save a core of the live process (gcore) in the run directory, so the evidence
    /// survives a restart; refused when the disk is too small for it
    #[arg(long, conflicts_with_all = ["core", "no_attach"])]
    pub gcore: bool,

    /// Read /proc this many times, `--interval` apart, before anything else, and compare:
    /// frozen (no lock changes hands) or only slow; Asterisk is not stopped for it
    #[arg(long, value_name = "N", default_value = "1", value_parser = samples::parse_samples,
          allow_hyphen_values = true, conflicts_with = "core")]
    pub samples: u32,

    /// Seconds between two samples (fractions allowed)
    #[arg(long, value_name = "SECONDS", default_value = "1", value_parser = samples::parse_interval,
          allow_hyphen_values = true, conflicts_with = "core", requires = "samples")]
    pub interval: f64,
}

/// `--json`: `docs/json.md`, "freeze".
#[derive(Debug, Serialize)]
struct FreezeJson<'a> {
    pid: Option<u32>,
    /// The core read (`--core`) or taken (`--gcore`), as `crash` and `info` show one.
    core: Option<CoreFile>,
    run_dir: &'a Path,
    symptoms: &'a [Symptom],
    artefacts: &'a [PathBuf],
    graph: serde_json::Value,
    graph_source: &'a str,
    /// What /proc showed before gdb attached (null for a core).
    proc_graph: Option<&'a serde_json::Value>,
    stack_groups: &'a [StackGroup],
    /// The taskprocessors whose queue is large or was warned about.
    taskprocessors: &'a [taskprocessors::Verdict],
    /// How long gdb held the live process, attach to detach (null for a core).
    stopped_seconds: Option<f64>,
    /// The shared objects whose symbols gdb read, of those mapped (null
    /// when gdb's script did not say): what the stop rests on.
    symbols_read: Option<crate::gdb::threads::Solibs>,
    /// `--samples` above 1: the comparison of the /proc samples.
    #[serde(skip_serializing_if = "Option::is_none")]
    samples: Option<&'a progress::Progress>,
    warnings: &'a Warnings,
}

/// What the evidence means.
struct Findings {
    graph: LockGraph,
    analysis: Analysis,
    graph_source: String,
    summary: String,
    stack_groups: Vec<StackGroup>,
    taskprocessors: taskprocessors::Report,
}

pub fn run(context: &Context, args: &FreezeArgs) -> Result<()> {
    let timeout = Duration::from_secs(args.timeout.max(1));
    if context.dry_run() {
        let wanted = Wanted {
            pid: args.pid,
            core: args.core.as_deref(),
            asterisk_bin: &args.asterisk_bin,
            no_attach: args.no_attach,
            samples: args.samples,
            interval: args.interval,
        };
        return dry_run(context, &wanted, timeout);
    }
    let mut warnings = Warnings::new();
    let target = match &args.core {
        Some(core) => Target::Core(cores::require_core(core)?.path),
        None => Target::Pid(find_pid(context, args.pid, &mut warnings)?),
    };
    // Only gdb needs the binary: --no-attach works without it.
    let binary = if args.no_attach {
        PathBuf::new()
    } else {
        asterisk::binary(&context.host, &args.asterisk_bin)?
    };
    let out = context.output_dir()?.to_path_buf();
    let mut evidence = Evidence {
        warnings,
        ..Evidence::default()
    };
    let outcome = collect(context, args, binary, &target, timeout, &out, &mut evidence);
    if let Err(Error::Interrupted) = outcome {
        tell_saved(&out, &evidence, &target);
    }
    outcome
}

/// Everything after the checks that need nothing written: evidence first,
/// then what it means, the bug report and the JSON.
fn collect(
    context: &Context,
    args: &FreezeArgs,
    binary: PathBuf,
    target: &Target,
    timeout: Duration,
    out: &Path,
    evidence: &mut Evidence,
) -> Result<()> {
    // First, the answer that costs Asterisk nothing: even if gdb is
    // interrupted or cannot attach, it stands.
    let seen = match target {
        Target::Pid(pid) => look_without_stopping(*pid, out, evidence),
        Target::Core(_) => None,
    };
    let sampled = match target {
        Target::Pid(pid) if args.samples > 1 => Some(samples::take(
            context,
            *pid,
            args.samples,
            Duration::from_secs_f64(args.interval),
            out,
            &mut evidence.artefacts,
            &mut evidence.warnings,
        )?),
        _ => None,
    };
    if args.no_attach {
        return report_look_only(context, args, target, seen, sampled, out, evidence);
    }
    if let Target::Pid(_) = target {
        evidence.check_symptoms(context, timeout, out)?;
    }
    context.interrupt.check()?;
    let mut gdb_analysis = take_backtrace(context, binary, target, out, evidence)?;
    if let (Target::Pid(pid), Some(analysis)) = (target, gdb_analysis.as_mut()) {
        name_locks(*pid, analysis);
    }
    if let (Target::Pid(pid), true) = (target, args.gcore) {
        take_core(context, *pid, out, evidence);
    }
    // gdb has detached: the `apt-cache` fallback may run now, beside the analysis.
    evidence.version = Some(version::Pending::start(
        &context.host,
        context.opts.wazo_version.as_deref(),
    ));
    if let Target::Pid(_) = target {
        match last_minutes(context, args.log_minutes, out) {
            Ok(Some(path)) => evidence.artefacts.push(path),
            Ok(None) => {}
            Err(error) => evidence.warnings.raise(error.to_string()),
        }
    }
    let mut findings = analyse(
        evidence,
        gdb_analysis.as_ref(),
        target,
        seen.as_ref().map(|seen| &seen.graph),
    );
    findings.taskprocessors = taskprocessor_report(context, args, target, evidence, &gdb_analysis);
    if let Some(seen) = &seen {
        let agreement = live::compare(
            &live::cycles(&seen.graph, &seen.analysis),
            &live::cycles(&findings.graph, &findings.analysis),
        );
        findings.summary = format!("{}\n\n{agreement}\n", findings.summary.trim_end());
    }
    if let Some(sampled) = &sampled {
        // The samples have no frames: the stacks are gdb's, taken later.
        findings.summary = format!(
            "{}\n\n{}  The stacks below are gdb's, one look after the last sample.\n",
            findings.summary.trim_end(),
            sampled.verdict
        );
    }
    let _ = follow_threads(
        context,
        target,
        args.log_lines,
        out,
        &mut findings,
        evidence,
    );
    print_findings(&findings);
    if args.graph {
        draw_graph(&findings, out, evidence)?;
    }
    let core = args.core.clone().or_else(|| evidence.core.clone());
    let report_path = write_bug_report(context, &findings, evidence, core.as_deref(), out)?;
    errln!("Bug report: {}", report_path.display());
    errln!(
        "Pack it all, secrets redacted, with: wazo-astdebug report {}",
        shell::quote(&out.display().to_string())
    );
    if context.opts.json {
        print_json(target, args, &findings, evidence, sampled.as_ref(), out)?;
    }
    Ok(())
}

/// The /proc reading, printed at once and saved as proc-locks.txt; a
/// failure is a warning: gdb may still see what /proc could not.
fn look_without_stopping(pid: u32, out: &Path, evidence: &mut Evidence) -> Option<live::Look> {
    match live::look(pid) {
        Ok(seen) => {
            errln!(
                "\nSeen in /proc, without stopping Asterisk:\n{}",
                seen.text
                    .replace("DEADLOCK:", &crate::output::alarm("DEADLOCK:"))
                    .trim_end()
            );
            let path = out.join("proc-locks.txt");
            match create_private(&path).and_then(|mut file| {
                file.write_all(seen.text.as_bytes())
                    .map_err(|error| Error::write(&path, error))
            }) {
                Ok(()) => evidence.artefacts.push(path),
                Err(error) => evidence.warnings.raise(error.to_string()),
            }
            let mut json = Vec::new();
            if render::json(&seen.graph, &seen.analysis, &mut json).is_ok() {
                evidence.proc_graph = serde_json::from_slice(&json).ok();
            }
            Some(seen)
        }
        Err(error) => {
            evidence.warnings.raise(format!(
                "the /proc reading failed: {error}; gdb will look instead"
            ));
            None
        }
    }
}

/// `--no-attach`: the /proc answer is the whole answer.
fn report_look_only(
    context: &Context,
    args: &FreezeArgs,
    target: &Target,
    seen: Option<live::Look>,
    sampled: Option<Sampled>,
    out: &Path,
    evidence: &mut Evidence,
) -> Result<()> {
    let Some(seen) = seen else {
        return Err(Error::bad_input(
            "--no-attach needs the /proc reading, which failed (see the warning above); \
             without --no-attach, gdb can look instead",
        ));
    };
    let summary = match &sampled {
        Some(sampled) => format!("{}\n\n{}", seen.text.trim_end(), sampled.verdict),
        None => seen.text,
    };
    let mut findings = Findings {
        summary,
        graph: seen.graph,
        analysis: seen.analysis,
        graph_source: "/proc".to_string(),
        stack_groups: Vec::new(),
        taskprocessors: taskprocessors::Report::default(),
    };
    // The /proc answer is printed already: only what the log adds to it.
    if let Some(last_words) = follow_threads(
        context,
        target,
        args.log_lines,
        out,
        &mut findings,
        evidence,
    ) {
        errln!("\n{}", last_words.trim_end());
    }
    let report_path = write_bug_report(context, &findings, evidence, None, out)?;
    errln!("\nAsterisk was not stopped (--no-attach): no gdb, no CLI check.");
    errln!("Bug report: {}", report_path.display());
    if context.opts.json {
        print_json(target, args, &findings, evidence, sampled.as_ref(), out)?;
    }
    Ok(())
}

/// threads-log.txt, and the last lines of each followed thread in the
/// summary (returned too, for a summary printed already).
fn follow_threads(
    context: &Context,
    target: &Target,
    per_thread: usize,
    out: &Path,
    findings: &mut Findings,
    evidence: &mut Evidence,
) -> Option<String> {
    let window = match target {
        Target::Pid(pid) => threads_log::live_window(*pid),
        Target::Core(core) => threads_log::core_window(core),
    };
    let followed = threads_log::follow(
        context,
        &findings.graph,
        &findings.analysis,
        window,
        per_thread,
        out,
    );
    match followed {
        Ok(Some(followed)) => {
            evidence.artefacts.push(followed.path);
            for warning in followed.warnings {
                evidence.warnings.raise(warning);
            }
            findings.summary = format!("{}\n\n{}", findings.summary.trim_end(), followed.summary);
            Some(followed.summary)
        }
        Ok(None) => None,
        Err(error) => {
            evidence
                .warnings
                .raise(format!("no threads-log.txt: {error}"));
            None
        }
    }
}

/// Names the locks of gdb's reading of a live process, which gdb leaves
/// unnamed (see `lock_symbol` in `gdb_locks.py`), from /proc and the ELF
/// files: Asterisk runs again by now. Memory of no file keeps /proc's
/// words (`heap`), as [`LockGraph::borrow_lock_names`] would give it.
fn name_locks(pid: u32, analysis: &mut threads::Analysis) {
    let Ok(process) = crate::host::procfs::Process::open(pid) else {
        return;
    };
    let maps = process.maps();
    analysis.name_locks(&mut |address| process.symbol_of(&maps, address));
}

/// `--gcore`: a core of the live process, so the evidence outlives a restart.
fn take_core(context: &Context, pid: u32, out: &Path, evidence: &mut Evidence) {
    match gcore::gcore(pid, out, &context.interrupt) {
        Ok((core, stopped)) => {
            errln!(
                "Core of the live process: {} (Asterisk was stopped {:.1} s for it); read it \
                 later with `wazo-astdebug freeze --core {}`",
                core.display(),
                stopped.as_secs_f64(),
                shell::quote(&core.display().to_string())
            );
            evidence.core = Some(core);
        }
        Err(error) => evidence.warnings.raise(format!("no core taken: {error}")),
    }
}

/// After Ctrl-C: what was saved, and that Asterisk was left running.
fn tell_saved(out: &Path, evidence: &Evidence, target: &Target) {
    let names: Vec<String> = evidence
        .artefacts
        .iter()
        .filter_map(|path| path.file_name())
        .map(|name| name.to_string_lossy().to_string())
        .collect();
    if names.is_empty() {
        errln!(
            "\nInterrupted before any evidence was complete; {} holds nothing to send.",
            out.display()
        );
    } else {
        errln!(
            "\nInterrupted. Saved so far in {}: {}.",
            out.display(),
            names.join(", ")
        );
    }
    if let Target::Pid(pid) = target {
        let state = match process_state(*pid) {
            // One thread stopped is the whole PBX stopped, for its callers.
            Some(state) if crate::host::sys::any_thread_stopped(*pid) && state != 'Z' => Some('T'),
            state => state,
        };
        match state {
            Some('T' | 't') => {
                warn!("Asterisk (pid {pid}) is left stopped; resume it with `kill -CONT {pid}`")
            }
            Some('Z' | 'X') | None => warn!("Asterisk (pid {pid}) is gone"),
            Some(state) => errln!("Asterisk (pid {pid}) is running (checked: state {state})."),
        }
    }
}

/// One gdb run: every thread's backtrace, and its reading of the locks.
fn take_backtrace(
    context: &Context,
    binary: PathBuf,
    target: &Target,
    out: &Path,
    evidence: &mut Evidence,
) -> Result<Option<threads::Analysis>> {
    let request = gdb::Request {
        binary,
        target: target.clone(),
        commands: vec!["thread apply all bt".to_string()],
        text_out: out.join("bt-threads.txt"),
        analysis_out: Some(out.join("gdb-threads.json")),
        // Every thread's locals too, as ast_coredumper writes them, from the
        // same unwind: a core costs the PBX nothing (never live, where the
        // locals would lengthen the stop).
        full_out: match target {
            Target::Core(_) => Some(out.join("bt-full.txt")),
            Target::Pid(_) => None,
        },
    };
    let outcome = gdb::run(&request, &context.interrupt)?;
    evidence.artefacts.push(request.text_out.clone());
    if let Some(full) = request.full_out.as_ref().filter(|path| path.exists()) {
        evidence.artefacts.push(full.clone());
    }
    for warning in outcome.warnings {
        evidence.warnings.raise(warning);
    }
    errln!(
        "Backtrace of {} threads: {}",
        outcome.threads_seen,
        request.text_out.display()
    );
    evidence.stopped = outcome.stopped;
    evidence.symbols_read = outcome
        .analysis
        .as_ref()
        .and_then(|analysis| analysis.solibs);
    Ok(outcome.analysis)
}

fn analyse(
    evidence: &mut Evidence,
    gdb_analysis: Option<&threads::Analysis>,
    target: &Target,
    named_by: Option<&LockGraph>,
) -> Findings {
    let stack_groups = gdb_analysis
        .map(|analysis| threads::stack_groups(&analysis.threads))
        .unwrap_or_default();
    let (mut graph, graph_source, source_info) = choose_graph(
        evidence.locks_dump.as_deref(),
        gdb_analysis,
        target,
        &mut evidence.warnings,
    );
    if let Some(named_by) = named_by {
        graph.borrow_lock_names(named_by);
    }
    let analysis = graph.analyze();
    let summary = render::text(&graph, &analysis, &source_info);
    Findings {
        graph,
        analysis,
        graph_source,
        summary,
        stack_groups,
        taskprocessors: taskprocessors::Report::default(),
    }
}

/// The taskprocessors: the CLI's queue sizes (live only), the `full` log's
/// warnings of the last `--log-minutes` (before the core was written, for a
/// core), and the thread gdb found serving each.
fn taskprocessor_report(
    context: &Context,
    args: &FreezeArgs,
    target: &Target,
    evidence: &mut Evidence,
    gdb_analysis: &Option<threads::Analysis>,
) -> taskprocessors::Report {
    let core_time = match target {
        Target::Pid(_) => None,
        Target::Core(core) => std::fs::metadata(core)
            .and_then(|metadata| metadata.modified())
            .ok()
            .map(chrono::DateTime::<chrono::Local>::from),
    };
    let until = core_time.unwrap_or_else(chrono::Local::now).fixed_offset();
    // A --log-minutes past chrono's range is "the whole log", never a panic.
    let since = i64::try_from(args.log_minutes)
        .ok()
        .and_then(chrono::Duration::try_minutes)
        .and_then(|span| until.checked_sub_signed(span))
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC.fixed_offset());
    let window = match core_time {
        Some(time) => format!(
            "the {} min before the core ({})",
            args.log_minutes,
            time.format("%Y-%m-%d %H:%M")
        ),
        None => format!("the last {} min", args.log_minutes),
    };
    let (warnings, problems) = taskprocessors::scan_copies(
        &crate::evidence::astlog::copies(&context.host),
        since,
        until,
    );
    for problem in problems {
        evidence
            .warnings
            .raise(format!("the taskprocessor warnings of the log: {problem}"));
    }
    taskprocessors::judge(
        &evidence.taskprocessors,
        &warnings,
        gdb_analysis
            .as_ref()
            .map(|analysis| analysis.threads.as_slice()),
        &window,
    )
}

fn print_findings(findings: &Findings) {
    errln!(
        "\n{}",
        findings
            .summary
            .replace("DEADLOCK:", &crate::output::alarm("DEADLOCK:"))
    );
    if !findings.taskprocessors.text.is_empty() {
        errln!("{}", findings.taskprocessors.text);
    }
    if !findings.stack_groups.is_empty() {
        errln!("Where the threads are (identical stacks grouped, largest first):");
        for group in findings.stack_groups.iter().take(GROUPS_SHOWN) {
            errln!("  {}", threads::describe_group(group, GROUP_DEPTH));
        }
    }
}

/// graph-locks.dot, and graph-locks.svg when graphviz can draw it.
fn draw_graph(findings: &Findings, out: &Path, evidence: &mut Evidence) -> Result<()> {
    let dot_path = out.join("graph-locks.dot");
    let mut file = create_private(&dot_path)?;
    render::dot(&findings.graph, &findings.analysis, &mut file)
        .map_err(|error| Error::write(&dot_path, error))?;
    evidence.artefacts.push(dot_path);
    let svg = out.join("graph-locks.svg");
    match draw::draw(&findings.graph, &findings.analysis, GraphFormat::Svg, &svg) {
        Ok(()) => evidence.artefacts.push(svg),
        Err(error) => evidence.warnings.raise(error.to_string()),
    }
    Ok(())
}

fn write_bug_report(
    context: &Context,
    findings: &Findings,
    evidence: &mut Evidence,
    core: Option<&Path>,
    out: &Path,
) -> Result<PathBuf> {
    let mut report = bug_report(
        context,
        evidence.version.take(),
        &evidence.symptoms,
        &findings.summary,
        &findings.stack_groups,
        &evidence.artefacts,
        core,
    );
    if !findings.taskprocessors.text.is_empty() {
        report.findings.push(format!(
            "Taskprocessors:\n\n```\n{}\n```",
            findings.taskprocessors.text.trim_end()
        ));
    }
    let report_path = out.join("bug-report.md");
    report.write(&report_path)?;
    evidence.artefacts.push(report_path.clone());
    Ok(report_path)
}

fn print_json(
    target: &Target,
    args: &FreezeArgs,
    findings: &Findings,
    evidence: &Evidence,
    sampled: Option<&Sampled>,
    out: &Path,
) -> Result<()> {
    let mut graph_json = Vec::new();
    render::json(&findings.graph, &findings.analysis, &mut graph_json)
        .map_err(|error| Error::write("stdout", error))?;
    let core = args.core.as_ref().or(evidence.core.as_ref());
    let json = FreezeJson {
        pid: match target {
            Target::Pid(pid) => Some(*pid),
            Target::Core(_) => None,
        },
        core: core.and_then(|path| cores::require_core(path).ok()),
        run_dir: out,
        symptoms: &evidence.symptoms,
        artefacts: &evidence.artefacts,
        graph: serde_json::from_slice(&graph_json).unwrap_or(serde_json::Value::Null),
        graph_source: &findings.graph_source,
        proc_graph: evidence.proc_graph.as_ref(),
        stack_groups: &findings.stack_groups,
        taskprocessors: &findings.taskprocessors.queues,
        stopped_seconds: evidence.stopped.map(|stopped| stopped.as_secs_f64()),
        symbols_read: evidence.symbols_read,
        samples: sampled.map(|sampled| &sampled.progress),
        warnings: &evidence.warnings,
    };
    crate::output::print_json(&json)
}
