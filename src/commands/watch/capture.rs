//! What `watch` does at a freeze, once: a run directory with what the
//! samples showed and the /proc graph, then a `freeze` run of the tool's own
//! binary (gdb's backtrace and lock reading, `core show locks`, the log, the
//! bug report; `--gcore` a core), a syslog line, and `--on-freeze`.
//!
//! `freeze` runs as a child rather than being called: the capture is the
//! one an administrator would take by hand, its Ctrl-C handling (gdb killed,
//! Asterisk resumed) is its own, and no command imports another.

use std::fs;
use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Local;
use serde::Serialize;

use crate::context::{Context, run_dir_name};
use crate::engine::child::{self, Stream, Streams};
use crate::engine::command::Cmd;
use crate::error::{Error, Result};
use crate::host::sys::create_private;
use crate::locks::live;
use crate::locks::render;
use crate::locks::watch::{Confirmed, Rule, Sample};
use crate::output::{Verbosity, Warnings, alarm, verbosity};

/// `--on-freeze` gets this long before it is stopped: a pager, not a job.
const ON_FREEZE_LIMIT: Duration = Duration::from_secs(120);
const LOGGER_LIMIT: Duration = Duration::from_secs(10);

/// What the watch's options say about a capture.
pub struct Settings<'a> {
    pub asterisk_bin: &'a Path,
    /// freeze --timeout.
    pub timeout: u64,
    pub gcore: bool,
    pub on_freeze: Option<&'a str>,
    pub confirm: u32,
}

/// A freeze the samples confirmed.
pub struct Freeze {
    pub confirmed: Vec<Confirmed>,
    /// The sample that confirmed it.
    pub sample: Sample,
    pub interval: f64,
}

/// A capture made: its run directory, and whether the `freeze` run in it
/// succeeded (what `--once` exits with).
pub struct Captured {
    pub path: PathBuf,
    pub outcome: Result<()>,
}

/// What `--json` prints and `watch.json` holds: `docs/json.md`, "watch".
#[derive(Serialize)]
struct CaptureJson<'a> {
    pid: u32,
    declared_at: String,
    declared_at_unix_ms: i64,
    /// Each rule that fired, with its threads and locks.
    freezes: &'a [Confirmed],
    interval_seconds: f64,
    confirm: u32,
    /// Threads of the process at the confirming sample.
    thread_count: usize,
    run_dir: &'a Path,
    freeze: &'a StepJson,
    gcore: bool,
    syslog: &'a StepJson,
    on_freeze: Option<&'a StepJson>,
    /// This capture's warnings, and those the `freeze` run printed.
    warnings: &'a Warnings,
}

/// One thing the capture ran, and how it ended.
#[derive(Serialize)]
struct StepJson {
    command: String,
    ok: bool,
    status: String,
}

/// Captures freeze `freeze` of `pid`.
pub fn capture(context: &Context, args: &Settings, pid: u32, freeze: &Freeze) -> Result<Captured> {
    let declared = Local::now();
    for confirmed in &freeze.confirmed {
        errln!(
            "\n{} {}\n  rule: {}: {}",
            alarm("FREEZE:"),
            confirmed.suspect.says,
            confirmed.suspect.rule.as_str(),
            why(confirmed, freeze.interval)
        );
    }
    let dir = new_run_dir(&context.output_base())?;
    errln!("Capturing the evidence into {} ...", dir.display());
    write_record(&dir, pid, freeze, &declared)?;

    let cmd = freeze_command(context, args, pid, &dir);
    let mut warnings = Warnings::new();
    let freeze_step = run_freeze(context, &cmd, &dir, &mut warnings)?;
    let syslog = log_line(context, pid, freeze, &dir, &mut warnings)?;
    let on_freeze = match args.on_freeze {
        Some(command) => Some(run_on_freeze(
            context,
            command,
            pid,
            freeze,
            &dir,
            &mut warnings,
        )?),
        None => None,
    };
    let json = CaptureJson {
        pid,
        declared_at: declared.to_rfc3339(),
        declared_at_unix_ms: declared.timestamp_millis(),
        freezes: &freeze.confirmed,
        interval_seconds: freeze.interval,
        confirm: args.confirm,
        thread_count: freeze.sample.threads,
        run_dir: &dir,
        freeze: &freeze_step,
        gcore: args.gcore,
        syslog: &syslog,
        on_freeze: on_freeze.as_ref(),
        warnings: &warnings,
    };
    let text = crate::output::json_text(&json)?;
    let record = dir.join("watch.json");
    create_private(&record)?
        .write_all(format!("{text}\n").as_bytes())
        .map_err(|error| Error::write(&record, error))?;
    if context.opts.json {
        outln!("{text}");
    } else {
        outln!("{}", dir.display());
    }
    let outcome = if freeze_step.ok {
        errln!("Captured: {}", dir.display());
        Ok(())
    } else {
        Err(Error::StepFailed {
            command: freeze_step.command.clone(),
            status: freeze_step.status.clone(),
            hint: format!(
                "; what the samples showed is kept in {}",
                dir.join("watch.txt").display()
            ),
        })
    };
    Ok(Captured { path: dir, outcome })
}

/// Why the rule fired, in words: what the answer rests on.
fn why(confirmed: &Confirmed, interval: f64) -> String {
    let samples = confirmed.samples;
    match confirmed.suspect.rule {
        Rule::Cycle | Rule::PossibleCycle => format!(
            "the same threads waited for each other in {samples} samples in a row, {interval} s \
             apart, none of them scheduled in between (same system call, same context-switch \
             count)"
        ),
        Rule::StalledLock => format!(
            "its owner held it with threads waiting in {samples} samples in a row, {interval} s \
             apart, without being scheduled in between (same system call, same context-switch \
             count), and the threads waiting behind it did not get fewer"
        ),
    }
}

/// A run directory of its own under `base` (0700: backtraces may hold secrets).
fn new_run_dir(base: &Path) -> Result<PathBuf> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(base)
        .map_err(|error| Error::write(base, error))?;
    let name = run_dir_name();
    for attempt in 1..100 {
        let dir = match attempt {
            1 => base.join(&name),
            n => base.join(format!("{name}-{n}")),
        };
        match fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(error) => return Err(Error::write(&dir, error)),
        }
    }
    Err(Error::bad_input(format!(
        "{} holds 99 run directories named {name}: remove some",
        base.display()
    )))
}

/// watch.txt: the rules that fired and the /proc graph, before gdb runs,
/// so that the answer stands even if the capture is cut short.
fn write_record(
    dir: &Path,
    pid: u32,
    freeze: &Freeze,
    declared: &chrono::DateTime<Local>,
) -> Result<()> {
    let mut text = format!(
        "wazo-astdebug watch: a freeze of pid {pid}, declared at {}.\n\n",
        declared.format("%Y-%m-%d %H:%M:%S%.3f %:z")
    );
    for confirmed in &freeze.confirmed {
        text.push_str(&format!(
            "FREEZE: {}\n  rule: {}: {}\n\n",
            confirmed.suspect.says,
            confirmed.suspect.rule.as_str(),
            why(confirmed, freeze.interval)
        ));
    }
    // A full reading now (names, states, mappings), as freeze's first step
    // makes; the sample's own graph if that fails.
    match live::look(pid) {
        Ok(seen) => {
            text.push_str("Seen in /proc at the capture, before gdb:\n");
            text.push_str(&seen.text);
        }
        Err(error) => {
            let info = live::source_info(
                &freeze.sample.built,
                &freeze.sample.analysis,
                format!(
                    "/proc of pid {pid}, the sample that confirmed the freeze (of its {} threads, \
                     those of its lock waits)",
                    freeze.sample.threads
                ),
            );
            text.push_str(&format!(
                "(a new /proc reading failed: {error}; the confirming sample's:)\n"
            ));
            text.push_str(&render::text(
                &freeze.sample.built.graph,
                &freeze.sample.analysis,
                &info,
            ));
        }
    }
    let path = dir.join("watch.txt");
    create_private(&path)?
        .write_all(text.as_bytes())
        .map_err(|error| Error::write(&path, error))
}

/// The `freeze` a capture runs: the tool's own binary, into `dir`.
pub fn freeze_command(context: &Context, args: &Settings, pid: u32, dir: &Path) -> Cmd {
    let exe = std::env::current_exe()
        .map(|exe| {
            // Upgraded under a running watch: the new binary at the same path.
            let shown = exe.display().to_string();
            PathBuf::from(shown.strip_suffix(" (deleted)").unwrap_or(&shown))
        })
        .unwrap_or_else(|_| PathBuf::from("wazo-astdebug"));
    let mut argv = vec![
        exe.display().to_string(),
        "--root".to_string(),
        context.opts.root.display().to_string(),
        "--output-dir".to_string(),
        dir.display().to_string(),
        "--json".to_string(),
    ];
    if let Some(version) = &context.opts.wazo_version {
        argv.extend(["--wazo-version".to_string(), version.clone()]);
    }
    match verbosity() {
        Verbosity::Quiet => argv.push("--quiet".to_string()),
        Verbosity::Verbose => argv.push("--verbose".to_string()),
        Verbosity::Normal => {}
    }
    argv.extend([
        "freeze".to_string(),
        "--pid".to_string(),
        pid.to_string(),
        "--asterisk-bin".to_string(),
        args.asterisk_bin.display().to_string(),
        "--timeout".to_string(),
        args.timeout.to_string(),
    ]);
    if args.gcore {
        argv.push("--gcore".to_string());
    }
    Cmd::new(argv)
}

/// Runs the capture's `freeze`: its JSON into freeze.json, what it says
/// onto our stderr and into freeze-output.txt. An interrupt stops it (it
/// kills its gdb and resumes Asterisk) and ends the watch.
fn run_freeze(
    context: &Context,
    cmd: &Cmd,
    dir: &Path,
    warnings: &mut Warnings,
) -> Result<StepJson> {
    errln!("+ {cmd}");
    let mut json = String::new();
    let mut said = String::new();
    let status = child::run_lines(
        cmd,
        Some(&context.interrupt),
        Streams::Separate,
        &mut |stream, line| match stream {
            Stream::Out => {
                json.push_str(&line);
                json.push('\n');
            }
            Stream::Err => {
                errln!("  {line}");
                // Printed just above; kept so that watch.json says it too.
                if let Some(warning) = line.strip_prefix("wazo-astdebug: warning: ") {
                    warnings.keep(warning);
                }
                said.push_str(&line);
                said.push('\n');
            }
        },
    );
    // Kept even when it fails or is interrupted: what it said is evidence.
    for (name, text) in [("freeze.json", &json), ("freeze-output.txt", &said)] {
        if !text.is_empty() {
            let path = dir.join(name);
            create_private(&path)?
                .write_all(text.as_bytes())
                .map_err(|error| Error::write(&path, error))?;
        }
    }
    let status = status?;
    Ok(StepJson {
        command: cmd.to_string(),
        ok: status.success(),
        status: child::describe_status(status),
    })
}

/// One line to syslog (the journal on Debian 12) naming the threads and the
/// run directory, for whoever looks there after the restart.
fn log_line(
    context: &Context,
    pid: u32,
    freeze: &Freeze,
    dir: &Path,
    warnings: &mut Warnings,
) -> Result<StepJson> {
    let says: Vec<&str> = freeze
        .confirmed
        .iter()
        .map(|confirmed| confirmed.suspect.says.as_str())
        .collect();
    let line = format!(
        "Asterisk (pid {pid}) is frozen: {}; evidence in {}",
        says.join("; and "),
        dir.display()
    );
    let cmd = Cmd::new([
        "logger",
        "-t",
        "wazo-astdebug",
        "-p",
        "daemon.err",
        "--",
        line.as_str(),
    ])
    .timeout(LOGGER_LIMIT);
    if which::which("logger").is_err() {
        warnings.raise("no syslog line: `logger` is not installed (bsdutils)");
        return Ok(StepJson {
            command: cmd.to_string(),
            ok: false,
            status: "logger is not installed".to_string(),
        });
    }
    let outcome = child::run_lines(
        &cmd,
        Some(&context.interrupt),
        Streams::Merged,
        &mut |_, line| errln!("  logger: {line}"),
    );
    let (ok, status) = match outcome {
        Ok(status) => (status.success(), child::describe_status(status)),
        Err(Error::Interrupted) => return Err(Error::Interrupted),
        Err(error) => (false, error.to_string()),
    };
    if !ok {
        warnings.raise(format!(
            "the syslog line was not written: `logger` ended with {status}"
        ));
    }
    Ok(StepJson {
        command: cmd.to_string(),
        ok,
        status,
    })
}

/// `--on-freeze`: the user's command, told where the evidence is.
fn run_on_freeze(
    context: &Context,
    command: &str,
    pid: u32,
    freeze: &Freeze,
    dir: &Path,
    warnings: &mut Warnings,
) -> Result<StepJson> {
    let threads: Vec<String> = freeze
        .confirmed
        .iter()
        .flat_map(|confirmed| confirmed.suspect.threads.iter())
        .map(u32::to_string)
        .collect();
    let rules: Vec<&str> = freeze
        .confirmed
        .iter()
        .map(|confirmed| match confirmed.suspect.rule {
            Rule::Cycle => "cycle",
            Rule::PossibleCycle => "possible-cycle",
            Rule::StalledLock => "stalled-lock",
        })
        .collect();
    let cmd = Cmd::new(["sh", "-c", command])
        .env("WAZO_ASTDEBUG_RUN_DIR", &dir.display().to_string())
        .env("WAZO_ASTDEBUG_PID", &pid.to_string())
        .env("WAZO_ASTDEBUG_THREADS", &threads.join(" "))
        .env("WAZO_ASTDEBUG_RULE", &rules.join(" "))
        .timeout(ON_FREEZE_LIMIT);
    errln!("+ {cmd}");
    let outcome = child::run_lines(
        &cmd,
        Some(&context.interrupt),
        Streams::Merged,
        &mut |_, line| errln!("  {line}"),
    );
    let (ok, status) = match outcome {
        Ok(status) => (status.success(), child::describe_status(status)),
        Err(Error::Interrupted) => return Err(Error::Interrupted),
        Err(error) => (false, error.to_string()),
    };
    if !ok {
        warnings.raise(format!("--on-freeze ended with {status}"));
    }
    Ok(StepJson {
        command: cmd.to_string(),
        ok,
        status,
    })
}
