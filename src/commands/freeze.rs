//! `freeze`: the evidence of a frozen Asterisk, and the answer in words.
//!
//! The doc's "Debugging Asterisk Freeze" collects a live backtrace and, on
//! builds with DEBUG_THREADS, `core show locks`. Most Wazo servers run the
//! stock build, so the lock graph is also read from memory by gdb in the
//! same attach (see `gdb_locks.py`): "threads A and B are deadlocked on
//! these two locks, 212 more are stuck behind them" without a rebuild. The
//! process is left running: gdb detaches, and a gdb stopped hard is followed
//! by SIGCONT.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Local};
use clap::Args;
use serde::Serialize;

use crate::context::Context;
use crate::engine::script::{Vars, preamble};
use crate::engine::shell;
use crate::error::{Error, Result};
use crate::evidence::astlog;
use crate::evidence::bugreport::BugReport;
use crate::evidence::cores;
use crate::evidence::symptoms::{self, CliAnswer, Symptom};
use crate::gdb::threads::{self, StackGroup};
use crate::gdb::{self, Target};
use crate::host::asterisk::{self, ASTERISK_BIN};
use crate::host::sys::{create_private, process_state};
use crate::host::version;
use crate::locks::draw::{self, GraphFormat};
use crate::locks::file as lockfile;
use crate::locks::from_gdb;
use crate::locks::graph::{Analysis, LockGraph};
use crate::locks::live;
use crate::locks::render;
use crate::output::Warnings;

mod gcore;

/// Stack groups shown in the text summary.
const GROUPS_SHOWN: usize = 5;
/// Frames named per group.
const GROUP_DEPTH: usize = 4;
/// The tail of `full` searched for the last minutes: bounded, whatever the log's size.
const LOG_TAIL_BYTES: u64 = 256 << 20;

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

    /// Only read the wait-for graph from /proc: Asterisk is never stopped (no gdb, no CLI checks)
    #[arg(long, conflicts_with = "core")]
    pub no_attach: bool,

    /// Also save a core of the live process (gcore) in the run directory, so the evidence
    /// survives a restart; refused when the disk is too small for it
    #[arg(long, conflicts_with_all = ["core", "no_attach"])]
    pub gcore: bool,
}

#[derive(Debug, Serialize)]
struct FreezeJson<'a> {
    pid: Option<u32>,
    core: Option<PathBuf>,
    symptoms: &'a [Symptom],
    artefacts: &'a [PathBuf],
    graph: serde_json::Value,
    graph_source: &'a str,
    /// What /proc showed before gdb attached (null for a core).
    proc_graph: Option<&'a serde_json::Value>,
    stack_groups: &'a [StackGroup],
    /// How long gdb held the live process, attach to detach (null for a core).
    stopped_seconds: Option<f64>,
    warnings: &'a Warnings,
}

/// What a run gathered: files written, checks made, warnings raised.
#[derive(Default)]
struct Evidence {
    artefacts: Vec<PathBuf>,
    symptoms: Vec<Symptom>,
    warnings: Warnings,
    /// `core show locks`, when this build has it.
    locks_dump: Option<PathBuf>,
    /// The core `--gcore` took: never an attachment, it stays on the server.
    core: Option<PathBuf>,
    /// The /proc reading's graph, as JSON.
    proc_graph: Option<serde_json::Value>,
    /// The Wazo version, looked for once gdb has let go (never while Asterisk is stopped).
    version: Option<version::Pending>,
    /// How long gdb held Asterisk, attach to detach.
    stopped: Option<Duration>,
}

/// What the evidence means.
struct Findings {
    graph: LockGraph,
    analysis: Analysis,
    graph_source: String,
    summary: String,
    stack_groups: Vec<StackGroup>,
}

pub fn run(context: &Context, args: &FreezeArgs) -> Result<()> {
    let timeout = Duration::from_secs(args.timeout.max(1));
    if context.dry_run() {
        return dry_run(context, args, timeout);
    }
    let target = match &args.core {
        Some(core) => Target::Core(cores::require_core(core)?.path),
        None => Target::Pid(find_pid(context, args.pid)?),
    };
    // Only gdb needs the binary: --no-attach works without it.
    let binary = if args.no_attach {
        PathBuf::new()
    } else {
        asterisk::binary(&context.host, &args.asterisk_bin)?
    };
    let out = context.output_dir()?.to_path_buf();
    let mut evidence = Evidence::default();
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
    if args.no_attach {
        return report_look_only(context, args, target, seen, out, evidence);
    }
    if let Target::Pid(_) = target {
        check_symptoms(context, timeout, out, evidence)?;
    }
    context.interrupt.check()?;
    let gdb_analysis = take_backtrace(context, binary, target, out, evidence)?;
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
    let mut findings = analyse(evidence, gdb_analysis.as_ref(), target);
    if let Some(seen) = &seen {
        let agreement = live::compare(
            &live::cycles(&seen.graph, &seen.analysis),
            &live::cycles(&findings.graph, &findings.analysis),
        );
        findings.summary = format!("{}\n\n{agreement}\n", findings.summary.trim_end());
    }
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
        print_json(target, args, &findings, evidence)?;
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
    out: &Path,
    evidence: &mut Evidence,
) -> Result<()> {
    let Some(seen) = seen else {
        return Err(Error::bad_input(
            "--no-attach needs the /proc reading, which failed (see the warning above); \
             without --no-attach, gdb can look instead",
        ));
    };
    let findings = Findings {
        summary: seen.text,
        graph: seen.graph,
        analysis: seen.analysis,
        graph_source: "/proc".to_string(),
        stack_groups: Vec::new(),
    };
    let report_path = write_bug_report(context, &findings, evidence, None, out)?;
    errln!("\nAsterisk was not stopped (--no-attach): no gdb, no CLI check.");
    errln!("Bug report: {}", report_path.display());
    if context.opts.json {
        print_json(target, args, &findings, evidence)?;
    }
    Ok(())
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
        match process_state(*pid) {
            Some('T' | 't') => {
                warn!("Asterisk (pid {pid}) is left stopped; resume it with `kill -CONT {pid}`")
            }
            Some('Z' | 'X') | None => warn!("Asterisk (pid {pid}) is gone"),
            Some(state) => errln!("Asterisk (pid {pid}) is running (checked: state {state})."),
        }
    }
}

/// `service asterisk status`, `core show channels` and `core show locks`,
/// each bounded by `timeout`; the answers are saved as artefacts.
fn check_symptoms(
    context: &Context,
    timeout: Duration,
    out: &Path,
    evidence: &mut Evidence,
) -> Result<()> {
    evidence
        .symptoms
        .push(symptoms::service_status(timeout, &context.interrupt)?);
    let channels = symptoms::asterisk_rx("core show channels", timeout, &context.interrupt)?;
    save_answer(
        &channels,
        &out.join("core-show-channels.txt"),
        &mut evidence.artefacts,
    )?;
    evidence
        .symptoms
        .push(symptoms::judge_channels(&channels, timeout));
    if let CliAnswer::Timeout = channels {
        evidence.warnings.raise(
            "the `core show channels` that did not answer leaves one CLI thread of Asterisk \
             blocked on the same lock until Asterisk restarts (each run that asks adds one)",
        );
    }
    let locks = symptoms::asterisk_rx("core show locks", timeout, &context.interrupt)?;
    match &locks {
        CliAnswer::Output(lines) if symptoms::lacks_debug_threads(lines) => evidence.warnings.raise(
            "this Asterisk is built without DEBUG_THREADS, so `core show locks` does not exist; \
             the lock graph comes from gdb instead. For the full picture, rebuild with \
             `wazo-astdebug rebuild` (DEBUG_THREADS, DONT_OPTIMIZE) and catch the next freeze",
        ),
        CliAnswer::Output(_) => {
            let path = out.join("core-show-locks.txt");
            save_answer(&locks, &path, &mut evidence.artefacts)?;
            evidence.locks_dump = Some(path);
        }
        CliAnswer::Timeout => evidence.warnings.raise(format!(
            "`asterisk -rx 'core show locks'` did not answer within {} s",
            timeout.as_secs()
        )),
        CliAnswer::Failed(why) => evidence
            .warnings
            .raise(format!("`asterisk -rx 'core show locks'` failed: {why}")),
    }
    for symptom in &evidence.symptoms {
        errln!(
            "{:<9} {:<7} {}",
            symptom.check,
            symptom.verdict,
            symptom.detail
        );
    }
    Ok(())
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
    };
    let outcome = gdb::run(&request, &context.interrupt)?;
    evidence.artefacts.push(request.text_out.clone());
    for warning in outcome.warnings {
        evidence.warnings.raise(warning);
    }
    errln!(
        "Backtrace of {} threads: {}",
        outcome.threads_seen,
        request.text_out.display()
    );
    evidence.stopped = outcome.stopped;
    Ok(outcome.analysis)
}

fn analyse(
    evidence: &mut Evidence,
    gdb_analysis: Option<&threads::Analysis>,
    target: &Target,
) -> Findings {
    let stack_groups = gdb_analysis
        .map(|analysis| threads::stack_groups(&analysis.threads))
        .unwrap_or_default();
    let (graph, graph_source, source_info) = choose_graph(
        evidence.locks_dump.as_deref(),
        gdb_analysis,
        target,
        &mut evidence.warnings,
    );
    let analysis = graph.analyze();
    let summary = render::text(&graph, &analysis, &source_info);
    Findings {
        graph,
        analysis,
        graph_source,
        summary,
        stack_groups,
    }
}

fn print_findings(findings: &Findings) {
    errln!(
        "\n{}",
        findings
            .summary
            .replace("DEADLOCK:", &crate::output::alarm("DEADLOCK:"))
    );
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
    let report = bug_report(
        context,
        evidence.version.take(),
        &evidence.symptoms,
        &findings.summary,
        &findings.stack_groups,
        &evidence.artefacts,
        core,
    );
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
) -> Result<()> {
    let mut graph_json = Vec::new();
    render::json(&findings.graph, &findings.analysis, &mut graph_json)
        .map_err(|error| Error::write("stdout", error))?;
    let json = FreezeJson {
        pid: match target {
            Target::Pid(pid) => Some(*pid),
            Target::Core(_) => None,
        },
        core: args.core.clone(),
        symptoms: &evidence.symptoms,
        artefacts: &evidence.artefacts,
        graph: serde_json::from_slice(&graph_json).unwrap_or(serde_json::Value::Null),
        graph_source: &findings.graph_source,
        proc_graph: evidence.proc_graph.as_ref(),
        stack_groups: &findings.stack_groups,
        stopped_seconds: evidence.stopped.map(|stopped| stopped.as_secs_f64()),
        warnings: &evidence.warnings,
    };
    crate::output::print_json(&json)
}

fn find_pid(context: &Context, given: Option<u32>) -> Result<u32> {
    let pid = match given {
        Some(pid) => pid,
        None => {
            let lookup = asterisk::find(&context.host);
            for warning in &lookup.warnings {
                warn!("{warning}");
            }
            lookup.found.map(|found| found.pid).ok_or_else(|| {
                Error::bad_input(
                    "Asterisk is not running (no live pid in /run/asterisk/asterisk.pid, no process \
                     named asterisk): nothing to attach to. Give --pid, or analyse a core with --core FILE",
                )
            })?
        }
    };
    asterisk::check_is_asterisk(pid)?;
    // Before any check runs: a second debugger cannot attach, and the first
    // keeps Asterisk stopped.
    if let Some((tracer, name)) = asterisk::tracer(pid) {
        return Err(Error::AttachFailed {
            pid,
            reason: format!(
                "it is already traced by process {tracer} ({name}), which keeps it stopped; \
                 end that debugger (`kill {tracer}`) and run this again"
            ),
        });
    }
    Ok(pid)
}

fn save_answer(answer: &CliAnswer, path: &Path, artefacts: &mut Vec<PathBuf>) -> Result<()> {
    if let CliAnswer::Output(lines) = answer {
        let mut file = create_private(path)?;
        for line in lines {
            writeln!(file, "{line}").map_err(|error| Error::write(path, error))?;
        }
        artefacts.push(path.to_path_buf());
    }
    Ok(())
}

/// The graph from `core show locks` when the build has it (it knows every
/// lock held, not only the contended ones), else from gdb.
fn choose_graph(
    dump: Option<&Path>,
    analysis: Option<&threads::Analysis>,
    target: &Target,
    warnings: &mut Warnings,
) -> (LockGraph, String, render::SourceInfo) {
    if let Some(path) = dump {
        match lockfile::read_dump(path) {
            Ok((graph, info)) => {
                let info = lockfile::source_info(path, &info);
                return (graph, "core show locks".to_string(), info);
            }
            Err(error) => {
                warnings.raise(format!("{error}; using gdb's reading of the locks instead"))
            }
        }
    }
    let source = match target {
        Target::Pid(pid) => format!("gdb, attached to pid {pid}"),
        Target::Core(core) => format!("gdb, on {}", core.display()),
    };
    let built = analysis.map(from_gdb::build);
    let info = render::SourceInfo {
        source: source.clone(),
        unlisted_why: Some(from_gdb::UNLISTED_WHY.to_string()),
        ..Default::default()
    };
    match built {
        Some(built) => {
            let info = from_gdb::source_info(&built, &built.graph.analyze(), &source);
            (built.graph, source, info)
        }
        None => (LockGraph::new(), "none".to_string(), info),
    }
}

/// The last `minutes` of `full`, up to now, streamed from its tail.
fn last_minutes(context: &Context, minutes: u64, out: &Path) -> Result<Option<PathBuf>> {
    let log = context.host.path(astlog::LOG_DIR).join("full");
    let Ok(mut file) = File::open(&log) else {
        return Ok(None);
    };
    let size = file
        .metadata()
        .map_err(|error| Error::read(&log, error))?
        .len();
    let mtime = file
        .metadata()
        .and_then(|m| m.modified())
        .ok()
        .map(DateTime::<Local>::from);
    let start = size.saturating_sub(LOG_TAIL_BYTES);
    file.seek(SeekFrom::Start(start))
        .map_err(|error| Error::read(&log, error))?;
    let cutoff = Local::now()
        - chrono::Duration::minutes(i64::try_from(minutes).unwrap_or(i64::MAX / 60_000));
    let path = out.join(format!("asterisk-full-last-{minutes}min.log"));
    let mut writer = std::io::BufWriter::new(create_private(&path)?);
    let mut keeping = false;
    let mut first = start > 0;
    for line in BufReader::new(file).split(b'\n') {
        let line = line.map_err(|error| Error::read(&log, error))?;
        if std::mem::take(&mut first) {
            continue; // a partial line at the seek point
        }
        if let Some(time) = astlog::line_stamp(&line, mtime) {
            keeping = time >= cutoff;
        }
        if keeping {
            writer
                .write_all(&line)
                .and_then(|_| writer.write_all(b"\n"))
                .map_err(|error| Error::write(&path, error))?;
        }
    }
    writer.flush().map_err(|error| Error::write(&path, error))?;
    Ok(Some(path))
}

fn bug_report(
    context: &Context,
    version: Option<version::Pending>,
    symptoms_seen: &[Symptom],
    summary: &str,
    groups: &[StackGroup],
    artefacts: &[PathBuf],
    core: Option<&Path>,
) -> BugReport {
    let version = version
        .unwrap_or_else(|| {
            version::Pending::start(&context.host, context.opts.wazo_version.as_deref())
        })
        .wait()
        .unwrap_or_else(|| "unknown".to_string());
    let mut findings = Vec::new();
    if !symptoms_seen.is_empty() {
        let lines: Vec<String> = symptoms_seen
            .iter()
            .map(|symptom| format!("- `{}`: {}", symptom.command, symptom.detail))
            .collect();
        findings.push(format!("Symptoms:\n\n{}", lines.join("\n")));
    }
    findings.push(format!(
        "Lock analysis:\n\n```\n{}\n```",
        summary.trim_end()
    ));
    if !groups.is_empty() {
        let lines: Vec<String> = groups
            .iter()
            .take(GROUPS_SHOWN)
            .map(|group| format!("- {}", threads::describe_group(group, GROUP_DEPTH)))
            .collect();
        findings.push(format!("Where the threads are:\n\n{}", lines.join("\n")));
    }
    let attachments = artefacts
        .iter()
        .filter_map(|path| path.file_name())
        .map(|name| {
            let name = name.to_string_lossy().to_string();
            let what = describe_artefact(&name);
            (name, what)
        })
        .collect();
    BugReport {
        subject: "Asterisk Freeze".to_string(),
        version,
        asterisk: asterisk::installed_version(&context.host),
        incident: Local::now()
            .format("%Y-%m-%d %H:%M:%S %:z (when the evidence was taken)")
            .to_string(),
        findings,
        attachments,
        cores: core
            .map(|core| core.display().to_string())
            .into_iter()
            .collect(),
    }
}

fn describe_artefact(name: &str) -> String {
    match name {
        "bt-threads.txt" => "gdb `thread apply all bt`",
        "core-show-locks.txt" => "`asterisk -rx 'core show locks'`",
        "core-show-channels.txt" => "`asterisk -rx 'core show channels'`",
        "graph-locks.dot" | "graph-locks.svg" => "the lock wait-for graph",
        _ if name.starts_with("asterisk-full-last") => "the Asterisk log just before the freeze",
        _ => "",
    }
    .to_string()
}

/// `--dry-run`, on any machine: no Asterisk running here, nor its binary,
/// only makes them variables of the script.
fn dry_run(context: &Context, args: &FreezeArgs, timeout: Duration) -> Result<()> {
    if args.no_attach {
        outln!("#!/bin/sh");
        outln!(
            "# wazo-astdebug freeze --no-attach reads /proc only: no command runs, Asterisk is not stopped."
        );
        return Ok(());
    }
    let target = match &args.core {
        Some(core) => Target::Core(cores::require_core(core)?.path),
        None => Target::Pid(
            args.pid
                .or_else(|| asterisk::find(&context.host).found.map(|found| found.pid))
                .unwrap_or(0),
        ),
    };
    let binary = asterisk::binary_for_script(&context.host, &args.asterisk_bin);
    print_script(&target, &binary, context.output_path(), timeout);
    Ok(())
}

fn print_script(target: &Target, binary: &Path, out: &Path, timeout: Duration) {
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
    }
    let request = gdb::Request {
        binary: binary.to_path_buf(),
        target: target.clone(),
        commands: vec!["thread apply all bt".to_string()],
        text_out: out.join("bt-threads.txt"),
        analysis_out: None,
    };
    outln!(
        "{} > {}",
        vars.cmd(&request.command(None)),
        vars.path(&request.text_out)
    );
    outln!(
        "# (in the same gdb run: who waits for which lock, read from memory, into gdb-threads.json)"
    );
}
