//! `valgrind`: Asterisk in the foreground under valgrind memcheck, with the
//! server put back afterwards.
//!
//! The doc's procedure stops monit and Asterisk, edits `modules.conf` and
//! `asterisk.conf`, and runs valgrind until Ctrl-C. What it leaves to memory
//! is the way back: restoring the two files, starting Asterisk, the other
//! services and monit again. Here every stop and every edit is a guarded
//! step, so the way back runs on success, failure and interrupt alike, in
//! the reverse order (files first, so Asterisk starts with its own config).
//!
//! Exit code: Ctrl-C is how a valgrind run is meant to end (Asterisk exits,
//! valgrind writes its leak report). So a run ended by SIGINT exits 0 and
//! prints the summary; SIGTERM or SIGHUP (a killed session) exits 130, after
//! the same cleanup and summary. A run whose program exits non-zero on its
//! own exits 1, again after both.
//!
//! Restarting Asterisk and monit is part of the cleanup, agreed to at the
//! one prompt before anything changes, rather than asked after the run: a
//! question after a dropped SSH session would leave the PBX without
//! Asterisk. `--leave-stopped` is the way to keep them stopped.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use clap::Args;

use crate::context::Context;
use crate::engine::backup;
use crate::engine::command::Cmd;
use crate::engine::edit::FileEdit;
use crate::engine::plan::{Plan, fail_on_missing, with_missing};
use crate::error::{Error, Result};
use crate::evidence::valgrind_report;
use crate::host::files::fresh_private_dir;
use crate::host::sys::{create_private, require_root};
mod foreground;

use foreground::{Ended, run_foreground};

use crate::host::valgrind_conf::{
    add_noload, check_modules, comment_highpriority, has_highpriority,
};

const MODULES_CONF: &str = "/etc/asterisk/modules.conf";
const ASTERISK_CONF: &str = "/etc/asterisk/asterisk.conf";
const DEFAULT_ARGS: &str = "-G asterisk -U asterisk -fnc";
const LOG: &str = "valgrind.txt";
const SUPP: &str = "valgrind.supp";
/// Valgrind's log of a long run is big, but not unbounded in memory here.
const VALGRIND_LOG_LIMIT: u64 = 512 << 20;

#[derive(Debug, Args)]
pub struct ValgrindArgs {
    /// Modules not to load, comma-separated (adds `noload => MODULE.so` to modules.conf, from a backup)
    #[arg(long, value_name = "MODULE,...", value_delimiter = ',')]
    pub noload: Vec<String>,

    /// Open $EDITOR on a copy of modules.conf, used for the run (the original is put back)
    #[arg(long)]
    pub edit_modules: bool,

    /// Keep `highpriority` in asterisk.conf (by default it is commented out for the run)
    #[arg(long)]
    pub keep_highpriority: bool,

    /// Other services to stop during the run, comma-separated (e.g. wazo-calld, which talks to Asterisk over AMI)
    #[arg(long, value_name = "SERVICE,...", value_delimiter = ',')]
    pub stop: Vec<String>,

    /// The valgrind.supp to use [default: contrib/valgrind.supp of the source tree in --workdir]
    #[arg(long, value_name = "FILE")]
    pub suppressions: Option<PathBuf>,

    /// Where `rebuild` left Asterisk's source, to find contrib/valgrind.supp [default: ~/ast-rebuild]
    #[arg(long, value_name = "DIR")]
    pub workdir: Option<PathBuf>,

    /// The program to run under valgrind
    #[arg(long, value_name = "PATH", default_value = "asterisk")]
    pub asterisk_bin: String,

    /// Arguments replacing `-G asterisk -U asterisk -fnc`
    #[arg(long, value_name = "ARGS", allow_hyphen_values = true)]
    pub asterisk_args: Option<String>,

    /// Do not start Asterisk, the --stop services and monit again afterwards
    #[arg(long)]
    pub leave_stopped: bool,
}

/// Where the run's files go, shown in `--dry-run` before it exists.
const RUN_DIR_PLACEHOLDER: &str = "wazo-astdebug-valgrind.XXXXXX";

/// The run directory: fresh, 0700, in /tmp (valgrind's log, the suppressions
/// and the edited copy of modules.conf are read and written there by name,
/// so no name another account planted in /tmp is ever used). Removed at the end.
struct RunDir(PathBuf);

impl Drop for RunDir {
    fn drop(&mut self) {
        if self
            .0
            .file_name()
            .is_some_and(|name| name != RUN_DIR_PLACEHOLDER)
        {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

pub fn run(context: &Context, args: &ValgrindArgs) -> Result<()> {
    let host = &context.host;
    let run_dir = RunDir(if context.dry_run() {
        host.path("/tmp").join(RUN_DIR_PLACEHOLDER)
    } else {
        require_root("valgrind")?;
        context.claim()?;
        fresh_private_dir(&host.path("/tmp"), "wazo-astdebug-valgrind.")?
    });
    let run_dir = &run_dir.0;
    let modules = host.path(MODULES_CONF);
    let asterisk_conf = host.path(ASTERISK_CONF);
    if args.edit_modules && !context.dry_run() && !std::io::stdin().is_terminal() {
        return Err(Error::bad_input(
            "--edit-modules opens an editor, but standard input is not a terminal; use --noload",
        ));
    }
    let noload = check_modules(&args.noload)?;
    let (supp_source, supp_note) = suppressions(args, context.dry_run())?;
    let mut header = vec![
        "wazo-astdebug valgrind: run Asterisk under valgrind memcheck until Ctrl-C".to_string(),
        format!(
            "Valgrind makes Asterisk use several times its usual memory and run 10 to 50 times \
             slower.{}",
            memory_note(host)
        ),
        optimisation_note(context, &args.asterisk_bin),
        supp_note,
        "Stop it with Ctrl-C: Asterisk exits without unloading its modules, so \"possibly \
         lost\" blocks are noisy (unload a suspect module first with `module unload`)."
            .to_string(),
    ];
    let valgrind_missing = which::which("valgrind").is_err();
    if valgrind_missing {
        header.push("valgrind is not installed: it is installed first.".to_string());
    }
    let plan = prepare_plan(PlanInput {
        context,
        args,
        noload: &noload,
        modules: &modules,
        asterisk_conf: &asterisk_conf,
        run_dir,
        supp_source: supp_source.as_deref(),
        install_valgrind: valgrind_missing,
    })?;
    let command = valgrind_command(args, run_dir, supp_source.is_some());
    if context.dry_run() {
        out!(
            "{}",
            dry_run_script(context, &plan, &command, run_dir, &header)
        );
        return Ok(());
    }
    fail_on_missing(&plan, "valgrind")?;
    err!("{}", plan.listing(&header.join("\n")));
    errln!("Then, in the foreground until Ctrl-C:\n  {command}");
    let restart = if args.leave_stopped {
        "Asterisk stays stopped afterwards (--leave-stopped)".to_string()
    } else {
        "afterwards the files are put back and Asterisk and monit started again".to_string()
    };
    context.confirm(
        "valgrind",
        &format!("Stop Asterisk and run it under valgrind now? {restart}."),
    )?;
    let mut executor = context.executor()?;
    executor.begin(&plan)?;
    let outcome = run_foreground(&command, &context.interrupt, context.opts.json);
    let cleanup = executor.finish();
    let summary = summarise(context, run_dir);
    if args.leave_stopped {
        errln!(
            "\nAsterisk is still stopped (--leave-stopped): `service asterisk start` and \
             `service monit start` when you are done."
        );
    }
    cleanup?;
    let ended = outcome?;
    summary?;
    match ended {
        Ended::ByUser(signal) if signal == libc::SIGINT => Ok(()),
        Ended::ByUser(_) => Err(Error::Interrupted),
        Ended::ByItself(status) if status.success() => Ok(()),
        Ended::ByItself(status) => Err(Error::StepFailed {
            command: command.to_string(),
            status: crate::engine::child::describe_status(status),
            hint: "; the files were put back (see the summary above)".to_string(),
        }),
    }
}

/// Where valgrind.supp comes from, and a line saying so.
fn suppressions(args: &ValgrindArgs, dry_run: bool) -> Result<(Option<PathBuf>, String)> {
    if let Some(file) = &args.suppressions {
        if dry_run && !file.is_file() {
            return Ok((
                Some(file.clone()),
                format!(
                    "Suppressions: {} (not on this machine: set SUPPRESSIONS below to the file on the server)",
                    file.display()
                ),
            ));
        }
        if !file.is_file() {
            return Err(Error::bad_input(format!(
                "--suppressions {}: no such file",
                file.display()
            )));
        }
        return Ok((
            Some(file.clone()),
            format!("Suppressions: {}", file.display()),
        ));
    }
    let workdir = args.workdir.clone().unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
            .join("ast-rebuild")
    });
    let from_tree = std::fs::read_dir(&workdir).ok().and_then(|entries| {
        let mut found: Vec<PathBuf> = entries
            .filter_map(|entry| entry.ok())
            .filter(|entry| entry.file_name().to_string_lossy().starts_with("asterisk-"))
            .map(|entry| entry.path().join("contrib").join(SUPP))
            .filter(|path| path.is_file())
            .collect();
        found.sort();
        found.pop()
    });
    if let Some(file) = from_tree {
        return Ok((
            Some(file.clone()),
            format!("Suppressions: {}", file.display()),
        ));
    }
    Ok((
        None,
        format!(
            "No valgrind.supp found (--suppressions, or contrib/ of a source tree in {}): running \
             without it, so expect more noise. It is contrib/valgrind.supp in Asterisk's source \
             (`apt-get source asterisk`, or Asterisk's repository).",
            workdir.display()
        ),
    ))
}

fn memory_note(host: &crate::host::Host) -> String {
    if !host.is_live() {
        return String::new();
    }
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|line| line.starts_with("MemAvailable:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<u64>().ok())
        })
        .map(|kib| format!(" Memory available now: {} MiB.", kib / 1024))
        .unwrap_or_default()
}

/// Asterisk compiles its build options into the binary (`core show
/// settings` prints them): look for DONT_OPTIMIZE there.
fn optimisation_note(context: &Context, program: &str) -> String {
    let binary = which::which(program)
        .ok()
        .or_else(|| Some(context.host.path("/usr/sbin/asterisk")).filter(|path| path.is_file()));
    let lost = "stacks may miss inlined functions and show wrong line numbers; \
                `wazo-astdebug rebuild` (or `vanilla install` on 19.13+) gives one built with it";
    match binary.as_deref().map(std::fs::read) {
        Some(Ok(bytes)) if memchr::memmem::find(&bytes, b"DONT_OPTIMIZE").is_some() => format!(
            "{}: built with DONT_OPTIMIZE.",
            binary.as_deref().unwrap_or(Path::new(program)).display()
        ),
        Some(Ok(_)) => format!(
            "{}: NOT built with DONT_OPTIMIZE: {lost}.",
            binary.as_deref().unwrap_or(Path::new(program)).display()
        ),
        _ => format!("Built with DONT_OPTIMIZE: unknown ({program} not found). If not, {lost}."),
    }
}

struct PlanInput<'a> {
    context: &'a Context,
    args: &'a ValgrindArgs,
    noload: &'a [String],
    modules: &'a Path,
    asterisk_conf: &'a Path,
    run_dir: &'a Path,
    supp_source: Option<&'a Path>,
    install_valgrind: bool,
}

/// Everything before the run. Guarded steps in the order that makes their
/// undo (innermost first) right: files back before Asterisk starts, Asterisk
/// before the services that talk to it, monit last.
fn prepare_plan(input: PlanInput) -> Result<Plan> {
    let PlanInput {
        context,
        args,
        noload,
        modules,
        asterisk_conf,
        run_dir,
        supp_source,
        install_valgrind,
    } = input;
    let mut plan = Plan::new();
    if install_valgrind {
        let mut argv = vec!["apt-get", "install"];
        if context.opts.yes {
            argv.push("-y");
        }
        argv.push("valgrind");
        plan.note("Install valgrind.")
            .run(Cmd::new(argv).interactive(!context.opts.yes));
    }
    let copy = modules_editor(&mut plan, args, modules, run_dir)?;
    let stop = |plan: &mut Plan, stop: Cmd, start: Cmd| {
        if args.leave_stopped {
            plan.run(stop);
        } else {
            plan.guarded(stop, vec![start]);
        }
    };
    plan.note("1. Stop monit (it would restart Asterisk), the services asked for, and Asterisk.");
    match monit_state(context) {
        // `monit quit` fails when no monit runs, and starting it afterwards
        // would change the server: leave it as it is.
        MonitState::NotInstalled => {
            plan.note("monit is not installed: nothing to stop.");
        }
        MonitState::NotRunning => {
            plan.note("monit is not running: left as it is.");
        }
        MonitState::Running => stop(
            &mut plan,
            Cmd::new(["monit", "quit"]),
            Cmd::new(["service", "monit", "start"]),
        ),
    }
    for service in &args.stop {
        stop(
            &mut plan,
            Cmd::new(["service", service.as_str(), "stop"]),
            Cmd::new(["service", service.as_str(), "start"]),
        );
    }
    stop(
        &mut plan,
        Cmd::new(["service", "asterisk", "stop"]),
        Cmd::new(["service", "asterisk", "start"]),
    );
    plan.note("2. Trim what Asterisk loads, from backups put back after the run.");
    modules_edit(&mut plan, noload, modules, copy)?;
    if !args.keep_highpriority {
        match std::fs::read_to_string(asterisk_conf) {
            Ok(text) if has_highpriority(&text) => backup::guarded_edit(
                &mut plan,
                FileEdit::new(
                    asterisk_conf,
                    "comment out highpriority",
                    comment_highpriority,
                )
                .with_shell(Cmd::new([
                    "sed".to_string(),
                    "-i".to_string(),
                    "-E".to_string(),
                    "s/^([[:blank:]]*highpriority[[:blank:]]*[=>].*)$/;\\1 ; wazo-astdebug valgrind/"
                        .to_string(),
                    asterisk_conf.to_string_lossy().to_string(),
                ])),
            )?,
            Ok(_) => {
                plan.note(format!(
                    "{}: highpriority is not set.",
                    asterisk_conf.display()
                ));
            }
            Err(_) => {
                plan.note(format!(
                    "{} not found: left alone.",
                    asterisk_conf.display()
                ));
            }
        }
    }
    if let Some(source) = supp_source {
        plan.note(format!("3. Put {SUPP} beside the log."))
            .var(
                "SUPPRESSIONS",
                source.to_string_lossy(),
                "valgrind.supp on the server (contrib/valgrind.supp of Asterisk's source).",
            )
            .run(Cmd::new([
                "cp".to_string(),
                source.to_string_lossy().to_string(),
                run_dir.join(SUPP).to_string_lossy().to_string(),
            ]));
    }
    Ok(plan)
}

/// Before anything stops: the user edits a copy of modules.conf in
/// `$VISUAL`/`$EDITOR` (while Asterisk still runs); the copy goes at the end.
enum MonitState {
    NotInstalled,
    NotRunning,
    /// Or unknown, when `--root` is not `/`: then it is stopped and started as the doc says.
    Running,
}

fn monit_state(context: &Context) -> MonitState {
    if which::which("monit").is_err() {
        return MonitState::NotInstalled;
    }
    if !context.host.is_live() {
        return MonitState::Running;
    }
    let running = std::fs::read_dir("/proc").is_ok_and(|entries| {
        entries.filter_map(|entry| entry.ok()).any(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
                && std::fs::read_to_string(entry.path().join("comm"))
                    .is_ok_and(|comm| comm.trim_end() == "monit")
        })
    });
    if running {
        MonitState::Running
    } else {
        MonitState::NotRunning
    }
}

fn modules_editor(
    plan: &mut Plan,
    args: &ValgrindArgs,
    modules: &Path,
    run_dir: &Path,
) -> Result<Option<PathBuf>> {
    if !args.edit_modules {
        return Ok(None);
    }
    if !modules.is_file() {
        return Err(Error::bad_input(format!(
            "{} not found: nothing to edit; nothing was changed",
            modules.display()
        )));
    }
    let copy = run_dir.join("modules.conf.wazo-astdebug-edit");
    let copy_text = copy.to_string_lossy().to_string();
    let editor = std::env::var("VISUAL")
        .or_else(|_| std::env::var("EDITOR"))
        .unwrap_or_else(|_| "editor".to_string());
    let mut argv: Vec<String> = editor.split_whitespace().map(String::from).collect();
    argv.push(copy_text.clone());
    plan.note("Edit a copy of modules.conf: it is used for the run only.")
        .guarded(
            Cmd::new([
                "install".to_string(),
                "-m".to_string(),
                "600".to_string(),
                modules.to_string_lossy().to_string(),
                copy_text.clone(),
            ]),
            vec![Cmd::new(["rm", "-f", copy_text.as_str()])],
        )
        .run(Cmd::new(argv).interactive(true));
    Ok(Some(copy))
}

fn modules_edit(
    plan: &mut Plan,
    noload: &[String],
    modules: &Path,
    copy: Option<PathBuf>,
) -> Result<()> {
    if noload.is_empty() && copy.is_none() {
        return Ok(());
    }
    if !modules.is_file() {
        return Err(Error::bad_input(format!(
            "{} not found: cannot add noload lines; nothing was changed",
            modules.display()
        )));
    }
    let wanted = noload.to_vec();
    let adds = if noload.is_empty() {
        String::new()
    } else {
        format!("add noload => for {}", noload.join(", "))
    };
    let shell = noload_shell(modules, copy.as_deref(), noload);
    let edit = match copy {
        None => FileEdit::new(modules, adds, move |text: &str| add_noload(text, &wanted)),
        Some(copy) => FileEdit::new(
            modules,
            format!("replace with the edited copy {} {adds}", copy.display()),
            move |_: &str| {
                let edited = std::fs::read_to_string(&copy)
                    .map_err(|error| format!("cannot read {}: {error}", copy.display()))?;
                add_noload(&edited, &wanted)
            },
        ),
    }
    .with_shell(shell);
    backup::guarded_edit(plan, edit)
}

/// The same edit as a script makes it: the edited copy into the file (same
/// inode), `load =>` lines of the modules commented out, and a `noload =>`
/// line for each right under `[modules]` (Asterisk reads them anywhere in it).
fn noload_shell(modules: &Path, copy: Option<&Path>, noload: &[String]) -> Cmd {
    let mut script = String::from("f=$1; shift; ");
    if copy.is_some() {
        script.push_str("cat \"$1\" > \"$f\"; shift; ");
    }
    script.push_str(
        "for m; do sed -i -E \"s/^([[:blank:]]*load[[:blank:]]*=>?[[:blank:]]*$m[[:blank:]]*(;.*)?)$/;\\\\1 ; wazo-astdebug valgrind: noload instead/; \
         /^\\\\[modules\\\\]/a noload => $m ; wazo-astdebug valgrind\" \"$f\"; done",
    );
    let mut argv = vec![
        "sh".to_string(),
        "-c".to_string(),
        script,
        "sh".to_string(),
        modules.to_string_lossy().to_string(),
    ];
    if let Some(copy) = copy {
        argv.push(copy.to_string_lossy().to_string());
    }
    argv.extend(noload.iter().cloned());
    Cmd::new(argv)
}

/// The doc's command, without Wazo's tcmalloc preload (valgrind must see
/// every malloc), from the run directory.
fn valgrind_command(args: &ValgrindArgs, run_dir: &Path, suppressions: bool) -> Cmd {
    let mut argv: Vec<String> = ["env", "-u", "LD_PRELOAD", "valgrind", "--leak-check=full"]
        .map(String::from)
        .to_vec();
    argv.push(format!("--log-file={LOG}"));
    if suppressions {
        argv.push(format!("--suppressions={SUPP}"));
    }
    argv.push("--vgdb=no".to_string());
    argv.push(args.asterisk_bin.clone());
    let extra = args.asterisk_args.as_deref().unwrap_or(DEFAULT_ARGS);
    argv.extend(extra.split_whitespace().map(String::from));
    Cmd::new(argv).current_dir(run_dir)
}

/// The script with `run` just before the cleanup lines (the undo of the
/// guarded steps, which come last).
/// The plan as the script a dry run prints: the run directory made with
/// mktemp (the tool makes its own), valgrind between setting up and putting
/// back, and its log saved into the output directory whatever happens.
fn dry_run_script(
    context: &Context,
    plan: &Plan,
    command: &Cmd,
    run_dir: &Path,
    header: &[String],
) -> String {
    let out = context.output_path();
    let mut script = Plan::new();
    script
        .var(
            "OUT",
            out.to_string_lossy(),
            "Where valgrind's log is saved (-o).",
        )
        .creates(out)
        .var_computed("RUN_DIR", run_dir.to_string_lossy(), "", "")
        .note("A private run directory, removed at the end; valgrind's log is saved first.")
        .shell(format!(
            "RUN_DIR=$(mktemp -d {})",
            crate::engine::shell::quote(
                &context
                    .host
                    .path("/tmp")
                    .join(RUN_DIR_PLACEHOLDER)
                    .to_string_lossy()
            )
        ))
        .guarded(
            Cmd::new(["chmod", "700", &run_dir.to_string_lossy()]),
            vec![
                Cmd::new([
                    "sh",
                    "-c",
                    "test ! -f \"$1/valgrind.txt\" || cp \"$1/valgrind.txt\" \"$2/\"",
                    "sh",
                    &run_dir.to_string_lossy(),
                    &out.to_string_lossy(),
                ]),
                Cmd::new(["rm", "-rf", &run_dir.to_string_lossy()]),
            ],
        );
    script.append(plan.clone());
    script
        .note("Runs in the foreground until Ctrl-C; then everything above is put back.")
        .run(command.clone());
    script.script(&with_missing(header.join("\n"), plan))
}

/// `--json`: `docs/json.md`, "valgrind".
#[derive(serde::Serialize)]
struct ValgrindJson<'a> {
    /// The copy of valgrind's log in the output directory.
    log: &'a Path,
    #[serde(flatten)]
    report: &'a valgrind_report::Report,
    warnings: Vec<String>,
}

/// Copies the log into the output directory (0600) and prints its summary.
fn summarise(context: &Context, run_dir: &Path) -> Result<()> {
    let log = run_dir.join(LOG);
    let read = crate::host::files::open_untrusted(&log).and_then(|file| {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(
            &mut std::io::Read::take(file, VALGRIND_LOG_LIMIT),
            &mut bytes,
        )
        .map_err(|error| Error::read(&log, error))?;
        Ok(bytes)
    });
    let text = match read {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(error) => {
            errln!("\nNo valgrind log: cannot read {}: {error}", log.display());
            return Ok(());
        }
    };
    let saved = context.output_dir()?.join(LOG);
    let mut file = create_private(&saved)?;
    std::io::Write::write_all(&mut file, text.as_bytes())
        .map_err(|error| Error::write(&saved, error))?;
    let report = valgrind_report::parse(&text);
    if context.opts.json {
        crate::output::print_json(&ValgrindJson {
            log: &saved,
            report: &report,
            warnings: Vec::new(),
        })?;
    }
    errln!(
        "\nValgrind log: {} (copied from {})\n{}",
        saved.display(),
        log.display(),
        valgrind_report::render(&report, 10)
    );
    Ok(())
}
