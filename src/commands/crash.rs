//! `crash`: from a dead Asterisk to a bug report, with nothing leaked.
//!
//! The doc's "So there is a problem" and "Debugging Asterisk Crash" steps,
//! in order and with the usual mistakes made impossible: the core is the one
//! that matches the segfault (not "the latest" by name), gdb's output is
//! checked for a binary/core mismatch and missing symbols, the log copied is
//! the one that covers the incident even after logrotate, and the report
//! says in bold that the core stays on the server.

use std::path::{Path, PathBuf};

use chrono::{DateTime, FixedOffset, Local};
use clap::Args;
use serde::Serialize;

use crate::context::Context;
use crate::engine::shell;
use crate::error::{Error, Result};
use crate::evidence::astlog::{self, Copied};
use crate::evidence::bugreport::BugReport;
use crate::evidence::cores::{self, CoreFile};
use crate::evidence::segfault_scan::{self as segfaults, Filter, Segfault, SegfaultJson};
use crate::evidence::syslog;
use crate::gdb::threads;
use crate::gdb::{self, Target};
use crate::host::asterisk::{self, ASTERISK_BIN};
use crate::host::sys::hostname;
use crate::host::version;
use crate::locks::from_gdb;
use crate::output::Warnings;

mod core_choice;
mod script;
mod summary;

use core_choice::{MATCH_WINDOW_SECONDS, choose_core, describe_core};
use script::{incident_day, print_script, script_preamble};
use summary::summarise;

#[derive(Debug, Args)]
pub struct CrashArgs {
    /// The core file to analyse (skips the search in /var/spool/asterisk and core_pattern's directory)
    #[arg(long, value_name = "FILE")]
    pub core: Option<PathBuf>,

    /// The Asterisk binary the core came from
    #[arg(long, value_name = "PATH", default_value = ASTERISK_BIN)]
    pub asterisk_bin: PathBuf,

    /// When the incident happened (default: the newest segfault found), e.g. "2026-11-28 04:00" or -2h
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub at: Option<String>,

    /// The process name in the kernel's segfault lines
    #[arg(long, value_name = "NAME", default_value = "asterisk")]
    pub process: String,
}

/// `--json`: `docs/json.md`, "crash".
#[derive(Debug, Serialize)]
struct CrashJson<'a> {
    version: Option<&'a str>,
    incident: Option<String>,
    /// The incident's segfaults, as `segfaults --json` gives them.
    segfaults: Vec<SegfaultJson>,
    core: Option<&'a CoreFile>,
    backtrace: Option<&'a Path>,
    summary: &'a [String],
    run_dir: &'a Path,
    /// Every file this run wrote into `run_dir`.
    artefacts: Vec<PathBuf>,
    logs: &'a [Copied],
    bug_report: &'a Path,
    warnings: &'a Warnings,
}

/// What was found on the server before anything is written.
struct Incident {
    /// The Wazo version, when found.
    detected: Option<String>,
    /// The same, or what to do to give it.
    version: String,
    time: Option<DateTime<FixedOffset>>,
    /// The segfault lines that belong to the incident.
    segfaults: Vec<Segfault>,
    core: Option<CoreFile>,
    log_copies: Vec<astlog::LogCopy>,
}

/// What the core says.
#[derive(Default)]
struct CoreReading {
    summary: Vec<String>,
    backtrace: Option<PathBuf>,
    /// The signal that ended the process (NT_SIGINFO), if gdb read it.
    signal: Option<i32>,
    /// The LWPs of the core's threads: the numbers kernel segfault lines print.
    lwps: Vec<i64>,
    /// For an abort() core: who waits for whom in it, in words.
    locks: Option<String>,
}

pub fn run(context: &Context, args: &CrashArgs) -> Result<()> {
    let mut warnings = Warnings::new();
    let core_given = args.core.as_deref().map(cores::require_core).transpose()?;
    let binary = if context.dry_run() {
        asterisk::binary_for_script(&context.host, &args.asterisk_bin)
    } else {
        asterisk::binary(&context.host, &args.asterisk_bin)?
    };
    if context.dry_run() {
        // First, before any command a search may print into the script.
        out!("{}", script_preamble(&binary, context.output_path()));
    }
    let incident = gather(context, args, core_given, &mut warnings)?;
    if context.dry_run() {
        print_script(
            incident
                .core
                .as_ref()
                .map(|core| (core.path.as_path(), describe_core(core))),
            &binary,
            context.output_path(),
            &incident.log_copies,
            incident.time,
        );
        return Ok(());
    }
    let out = context.output_dir()?.to_path_buf();
    let reading = match &incident.core {
        Some(core) => read_core(context, binary, core, &out, &mut warnings)?,
        None => CoreReading::default(),
    };
    let mut incident = incident;
    if incident.core.is_some() {
        incident.segfaults = reconcile(&incident.segfaults, &reading);
    }
    report_segfaults(&incident.segfaults, &args.process, &context.host);
    for line in &reading.summary {
        errln!("{line}");
    }
    let logs = copy_logs(context, &incident, &out, &mut warnings)?;
    let mut reading = reading;
    if let Some(locks) = reading.locks.take() {
        let checked = logs
            .iter()
            .find_map(|copied| astlog::freeze_check_lock(&copied.to));
        if let Some(lock) = checked {
            let story = format!(
                "Wazo's freeze check stopped Asterisk: it could not take {lock} for 30 s, \
                     logged that Asterisk is most likely deadlocked, and called abort(). The \
                     aborting thread is the checker, not the culprit: the culprit holds that \
                     lock (see the locks below)."
            );
            errln!("\n{story}");
            reading.summary.insert(0, story);
        }
        reading.summary.push(String::new());
        reading.summary.push("Locks in the core:".to_string());
        reading.summary.extend(locks.lines().map(str::to_string));
        errln!("\n{}", locks.trim_end());
    }
    let report_path = out.join("bug-report.md");
    bug_report(
        &incident.version,
        asterisk::installed_version(&context.host),
        incident.time,
        &incident.segfaults,
        incident.core.as_ref(),
        &reading.summary,
        reading.backtrace.as_deref(),
        &logs,
    )
    .write(&report_path)?;
    errln!("\nBug report: {}", report_path.display());
    if let Some(core) = &incident.core {
        errln!(
            "The core file stays on the server ({}): never attach it publicly, it may hold passwords.",
            core.path.display()
        );
    }
    errln!(
        "Pack it all, secrets redacted, with: wazo-astdebug report {}",
        shell::quote(&out.display().to_string())
    );
    if context.opts.json {
        // gdb's files, those it got to write.
        let mut artefacts: Vec<PathBuf> = ["bt-threads.txt", "gdb-threads.json", "bt-full.txt"]
            .iter()
            .map(|name| out.join(name))
            .filter(|path| incident.core.is_some() && path.is_file())
            .collect();
        artefacts.extend(logs.iter().map(|copied| copied.to.clone()));
        artefacts.push(report_path.clone());
        crate::output::print_json(&CrashJson {
            version: incident.detected.as_deref(),
            incident: incident.time.map(|time| time.to_rfc3339()),
            segfaults: incident.segfaults.iter().map(SegfaultJson::from).collect(),
            core: incident.core.as_ref(),
            backtrace: reading.backtrace.as_deref(),
            summary: &reading.summary,
            run_dir: &out,
            artefacts,
            logs: &logs,
            bug_report: &report_path,
            warnings: &warnings,
        })?;
    }
    Ok(())
}

/// The version, the segfault lines, the incident's time, the core and the
/// logs that cover it: read only, nothing written.
fn gather(
    context: &Context,
    args: &CrashArgs,
    core_given: Option<CoreFile>,
    warnings: &mut Warnings,
) -> Result<Incident> {
    let detected = version::detect(&context.host, context.opts.wazo_version.as_deref())
        .map(|detected| detected.version.to_string())
        .ok();
    let version = detected
        .clone()
        .unwrap_or_else(|| "unknown (give it with --wazo-version)".to_string());
    // Unreadable logs are warned about, and the others still count.
    let found = segfaults::find_segfaults(
        &context.host,
        &syslog::default_sources(&context.host),
        &Filter::process(&args.process),
        Some(&context.interrupt),
        warnings,
    )?;
    context.interrupt.check()?;
    list_found(&found, &args.process);
    let time = incident_time(context, args, &found)?;
    let mut matching = matching_segfaults(&found, time);
    let core = match core_given {
        Some(core) => Some(core),
        None => choose_core(
            context,
            &args.process,
            matching.last().map(|s| s.kernel.pid),
            time,
            warnings,
        )?,
    };
    // The core's own time also dates the crash it comes from.
    if let Some(core_time) = core.as_ref().and_then(|core| core.time) {
        for segfault in matching_segfaults(&found, Some(core_time)) {
            if !matching.iter().any(|known| known.line == segfault.line) {
                matching.push(segfault);
            }
        }
    }
    if core.is_none() {
        report_segfaults(&matching, &args.process, &context.host);
    }
    // An abort() leaves no segfault line: the core's own time is the next best.
    let time = time.or_else(|| {
        let time = core.as_ref()?.time?;
        errln!(
            "Incident time taken from the core file: {}",
            time.format("%Y-%m-%d %H:%M:%S %:z")
        );
        Some(time)
    });
    let log_copies = astlog::covering(&astlog::copies(&context.host), time);
    Ok(Incident {
        detected,
        version,
        time,
        segfaults: matching,
        core,
        log_copies,
    })
}

/// gdb on the core: `bt full` of the crashing thread, every thread's stack.
fn read_core(
    context: &Context,
    binary: PathBuf,
    core: &CoreFile,
    out: &Path,
    warnings: &mut Warnings,
) -> Result<CoreReading> {
    let request = gdb::Request {
        binary,
        target: Target::Core(core.path.clone()),
        commands: vec!["bt full".to_string(), "thread apply all bt".to_string()],
        text_out: out.join("bt-threads.txt"),
        analysis_out: Some(out.join("gdb-threads.json")),
        // Every thread's locals too, as Asterisk's ast_coredumper writes them
        // (redacted in the bundle like the rest), from the same gdb run: a
        // second one loaded the symbols and unwound every thread again.
        full_out: Some(out.join("bt-full.txt")),
    };
    let outcome = gdb::run(&request, &context.interrupt)?;
    for warning in outcome.warnings {
        warnings.raise(warning);
    }
    errln!(
        "\nBacktrace of {} threads: {}",
        outcome.threads_seen,
        request.text_out.display()
    );
    let analysis = outcome.analysis.as_ref();
    Ok(CoreReading {
        summary: analysis.map(summarise).unwrap_or_default(),
        backtrace: Some(request.text_out),
        signal: analysis
            .and_then(|a| a.signal.as_ref())
            .map(|signal| signal.number),
        lwps: analysis
            .map(|a| a.threads.iter().map(|thread| thread.lwp).collect())
            .unwrap_or_default(),
        // An abort() is often a watchdog's (Wazo's freeze check): the
        // culprit is a lock holder, not the aborting thread.
        locks: analysis
            .filter(|a| a.signal.as_ref().is_some_and(|signal| signal.number == 6))
            .map(|a| from_gdb::explain(a, &format!("gdb, on {}", core.path.display()))),
    })
}

/// The Asterisk logs of the incident's day, named as the doc names them.
fn copy_logs(
    context: &Context,
    incident: &Incident,
    out: &Path,
    warnings: &mut Warnings,
) -> Result<Vec<Copied>> {
    let day = incident_day(incident.time);
    let mut logs = Vec::new();
    for copy in &incident.log_copies {
        context.interrupt.check()?;
        match astlog::copy_into(copy, out, &day, &hostname()) {
            Ok(copied) => {
                errln!(
                    "Copied {} to {}",
                    copied.from.display(),
                    copied.to.display()
                );
                logs.push(copied);
            }
            Err(error) => warnings.raise(error.to_string()),
        }
    }
    if incident.log_copies.is_empty() {
        warnings.raise(format!(
            "no Asterisk log in {}",
            context.host.path(astlog::LOG_DIR).display()
        ));
    }
    Ok(logs)
}

/// `--at`, else the user's pick among the segfault lines found (newest
/// first) or a time they type, else the newest segfault.
fn incident_time(
    context: &Context,
    args: &CrashArgs,
    found: &[Segfault],
) -> Result<Option<DateTime<FixedOffset>>> {
    let now = Local::now();
    if let Some(at) = &args.at {
        return syslog::parse_time_spec(at, now).map(Some);
    }
    let default = found.last().and_then(|segfault| segfault.time);
    if context.dry_run() || !context.can_ask() {
        return Ok(default);
    }
    let dated: Vec<&Segfault> = found
        .iter()
        .rev()
        .filter(|segfault| segfault.time.is_some())
        .take(9)
        .collect();
    if !dated.is_empty() {
        let mut items: Vec<String> = dated
            .iter()
            .map(|segfault| {
                let time = segfault
                    .time
                    .map(|time| time.format("%Y-%m-%d %H:%M:%S %:z").to_string())
                    .unwrap_or_default();
                format!(
                    "the segfault of {}[{}] at {time}",
                    segfault.kernel.process, segfault.kernel.pid
                )
            })
            .collect();
        items.push("another time (I will type it)".to_string());
        let picked = dialoguer::Select::new()
            .with_prompt("When did the incident happen? (ask the people who saw it)")
            .items(&items)
            .default(0)
            .interact()
            .map_err(|_| Error::Interrupted)?;
        if let Some(segfault) = dated.get(picked) {
            return Ok(segfault.time);
        }
    }
    let suggestion = default
        .map(|time| time.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| now.format("%Y-%m-%d %H:%M").to_string());
    let answer: String = dialoguer::Input::new()
        .with_prompt("When did the incident happen? (e.g. \"2026-11-28 04:00\" or -2h)")
        .default(suggestion)
        .interact_text()
        .map_err(|_| Error::Interrupted)?;
    syslog::parse_time_spec(&answer, now).map(Some)
}

fn matching_segfaults(all: &[Segfault], incident: Option<DateTime<FixedOffset>>) -> Vec<Segfault> {
    match incident {
        None => all.last().cloned().into_iter().collect(),
        Some(incident) => all
            .iter()
            .filter(|segfault| {
                segfault.time.is_some_and(|time| {
                    (time - incident).num_seconds().abs() <= MATCH_WINDOW_SECONDS
                })
            })
            .cloned()
            .collect(),
    }
}

/// What the logs hold, before any question: the user dates the incident
/// better when the crashes the server saw are in front of them.
fn list_found(found: &[Segfault], process: &str) {
    if found.is_empty() {
        return;
    }
    errln!(
        "Segfault lines of {process} found ({}, newest last):",
        found.len()
    );
    for segfault in found.iter().rev().take(5).rev() {
        let time = segfault.time.map_or_else(
            || "time unknown".to_string(),
            |time| time.format("%Y-%m-%d %H:%M:%S %:z").to_string(),
        );
        let library = segfault
            .kernel
            .mapping
            .as_ref()
            .map(|m| format!(" in {}", m.library))
            .unwrap_or_default();
        errln!("  {time}  {process}[{}]{library}", segfault.kernel.pid);
    }
}

fn report_segfaults(matching: &[Segfault], process: &str, host: &crate::host::Host) {
    if matching.is_empty() {
        errln!(
            "No segfault line of {process} belongs to this incident. (An abort(), e.g. from Wazo's \
             freeze check, leaves a core file but no segfault line.)"
        );
    }
    for segfault in matching {
        err!(
            "The incident's segfault line:\n{}",
            segfaults::describe(segfault, Some(host))
        );
    }
}

/// The segfault lines that are this core's: the number in `asterisk[N]` is
/// the LWP of the faulting thread, which is one of the core's threads (the
/// core's name carries the process id, which differs unless the main thread
/// crashed). A core that did not end in SIGSEGV or SIGBUS has none: an
/// abort() prints no segfault line, and one nearby is another crash's.
fn reconcile(candidates: &[Segfault], reading: &CoreReading) -> Vec<Segfault> {
    let faulted = matches!(reading.signal, Some(11) | Some(7));
    if reading.signal.is_some() && !faulted {
        if !candidates.is_empty() {
            errln!(
                "The core ended in {}, not a segfault: the {} segfault line(s) near it are \
                 another crash's and are left out.",
                threads::signal_name(reading.signal.unwrap_or_default()),
                candidates.len()
            );
        }
        return Vec::new();
    }
    if reading.lwps.is_empty() {
        return candidates.to_vec();
    }
    let (mine, others): (Vec<&Segfault>, Vec<&Segfault>) = candidates
        .iter()
        .partition(|segfault| reading.lwps.contains(&i64::from(segfault.kernel.pid)));
    for other in &others {
        errln!(
            "Left out: the segfault line of {}[{}] is not this core's (no thread {} in it).",
            other.kernel.process,
            other.kernel.pid,
            other.kernel.pid
        );
    }
    mine.into_iter().cloned().collect()
}

#[allow(clippy::too_many_arguments)]
fn bug_report(
    version: &str,
    asterisk: Option<String>,
    incident: Option<DateTime<FixedOffset>>,
    segfaults: &[Segfault],
    core: Option<&CoreFile>,
    summary: &[String],
    backtrace: Option<&Path>,
    logs: &[Copied],
) -> BugReport {
    let mut findings = Vec::new();
    if !segfaults.is_empty() {
        let lines: Vec<String> = segfaults
            .iter()
            .map(|segfault| format!("    {}", segfault.line))
            .collect();
        findings.push(format!("Kernel segfault line:\n\n{}", lines.join("\n")));
    }
    if !summary.is_empty() {
        findings.push(format!(
            "From the core file:\n\n```\n{}\n```",
            summary.join("\n")
        ));
    }
    let mut attachments = Vec::new();
    if let Some(backtrace) = backtrace.and_then(|path| path.file_name()) {
        attachments.push((
            backtrace.to_string_lossy().to_string(),
            "gdb `bt full` of the crashing thread and `thread apply all bt`".to_string(),
        ));
        attachments.push((
            "bt-full.txt".to_string(),
            "gdb `thread apply all bt full`: every thread's locals".to_string(),
        ));
    }
    for log in logs {
        if let Some(name) = log.to.file_name() {
            attachments.push((
                name.to_string_lossy().to_string(),
                format!("copy of {}", log.from.display()),
            ));
        }
    }
    BugReport {
        subject: "Asterisk Crash".to_string(),
        version: version.to_string(),
        asterisk,
        incident: incident
            .map(|time| time.format("%Y-%m-%d %H:%M:%S %:z").to_string())
            .unwrap_or_else(|| "unknown".to_string()),
        findings,
        attachments,
        cores: core
            .map(|core| core.path.display().to_string())
            .into_iter()
            .collect(),
    }
}
