//! Running gdb on Asterisk: a core file after a crash, or the live process
//! during a freeze.
//!
//! One batch run does everything the developers need, so a frozen Asterisk
//! is stopped only once: the doc's backtrace commands (their text goes to
//! `bt-threads.txt` as they print) and, in the same attach, an embedded
//! Python script (`gdb_locks.py`) that reads who waits for which lock, the
//! signal of a core and every thread's frames as JSON.

pub mod threads;

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::engine::child::{self, Stream, Streams, describe_status};
use crate::engine::command::Cmd;
use crate::engine::interrupt::Interrupt;
use crate::error::{Error, Result};
use crate::gdb::threads::Analysis;
use crate::host::sys::{create_private, process_state};

/// The script gdb sources, in parts that share one namespace.
const LOCK_SCRIPT: [&str; 4] = [
    include_str!("gdb_locks.py"),
    include_str!("gdb_maps.py"),
    include_str!("gdb_tasks.py"),
    include_str!("gdb_solibs.py"),
];

/// The doc's backtrace of every thread, which the script can print itself.
const ALL_BACKTRACES: &str = "thread apply all bt";

/// What gdb looks at.
#[derive(Debug, Clone)]
pub enum Target {
    Pid(u32),
    Core(PathBuf),
}

/// One batch run of gdb.
#[derive(Debug, Clone)]
pub struct Request {
    pub binary: PathBuf,
    pub target: Target,
    /// The `-ex` commands whose output developers read, e.g. `bt full`.
    pub commands: Vec<String>,
    /// Where their output goes.
    pub text_out: PathBuf,
    /// Where the lock analysis goes, if wanted.
    pub analysis_out: Option<PathBuf>,
    /// On a core with the analysis: `thread apply all bt full` goes here, from
    /// the same unwind as `text_out`, which gets it without the locals. What
    /// the commands before it print goes to both, as it is.
    pub full_out: Option<PathBuf>,
}

#[derive(Debug)]
pub struct Outcome {
    pub threads_seen: usize,
    /// What gdb warned about that changes how far the backtrace can be trusted.
    pub warnings: Vec<String>,
    pub analysis: Option<Analysis>,
    /// How long a live target was held by gdb, attach to detach (to the
    /// watch's few milliseconds): the time the PBX stood still.
    pub stopped: Option<Duration>,
}

impl Request {
    /// The gdb command line, as the doc writes it plus the analysis script.
    pub fn command(&self, script: Option<&Path>) -> Cmd {
        self.command_line(script, false)
    }

    /// What [`run`] runs: when the doc's last command is `thread apply all
    /// bt` and the script runs, the script prints that backtrace itself, in
    /// its own pass over the threads, so each frame is unwound once.
    fn run_command(&self, script: Option<&Path>) -> Cmd {
        self.command_line(script, true)
    }

    /// Whether the script prints the backtraces itself (one unwind).
    fn script_prints(&self, script: Option<&Path>, one_pass: bool) -> bool {
        one_pass
            && self.analysis_out.is_some()
            && script.is_some()
            && self.commands.last().map(String::as_str) == Some(ALL_BACKTRACES)
    }

    /// Whether the run prints `bt full`, for `full_out`.
    fn prints_full(&self, script: Option<&Path>) -> bool {
        self.full_out.is_some()
            && matches!(self.target, Target::Core(_))
            && self.script_prints(script, true)
    }

    fn command_line(&self, script: Option<&Path>, one_pass: bool) -> Cmd {
        let mut argv = vec!["gdb".to_string(), "-batch".to_string(), "-nx".to_string()];
        let mut commands = self.commands.as_slice();
        let script_prints = self.script_prints(script, one_pass);
        let full = one_pass && self.prints_full(script);
        if script_prints {
            commands = commands.get(..commands.len() - 1).unwrap_or(&[]);
        }
        let script = self.analysis_out.as_ref().zip(script);
        if let Some((out, script)) = script {
            // `-iex`, `-ix`: set and compiled before gdb attaches, so that a
            // live process waits for none of it.
            let mut early = |command: String| {
                argv.push("-iex".to_string());
                argv.push(command);
            };
            // A JSON string is a valid Python string literal, whatever the path holds.
            let literal = serde_json::to_string(&out.to_string_lossy()).unwrap_or_default();
            early(format!("python wazo_astdebug_out = {literal}"));
            if script_prints {
                early("python wazo_astdebug_backtraces = True".to_string());
            }
            if full {
                early("python wazo_astdebug_full = True".to_string());
            }
            if script_prints {
                // Symbols only for the libraries the backtraces need, read by
                // the script as it meets them (gdb_solibs.py): reading all of
                // a Wazo Asterisk's 470 takes most of a live stop, and of the
                // time to read a core.
                early("set auto-solib-add off".to_string());
                early("python wazo_astdebug_lazy = True".to_string());
            }
            match &self.target {
                Target::Pid(_) if one_pass => {
                    // The script lets go before writing its JSON, not at gdb's exit.
                    early("python wazo_astdebug_detach = True".to_string());
                    // An `info symbol` per lock while Asterisk is stopped: the caller
                    // names them once gdb has let go (`name_locks`).
                    early("python wazo_astdebug_lock_names = False".to_string());
                }
                Target::Core(core) if one_pass => {
                    // Its program headers say which lock addresses no file backs.
                    let core = serde_json::to_string(&core.to_string_lossy()).unwrap_or_default();
                    early(format!("python wazo_astdebug_core = {core}"));
                }
                _ => {}
            }
            argv.push("-ix".to_string());
            argv.push(script.display().to_string());
        }
        if script_prints && !commands.is_empty() {
            // What the commands before the script print (crash's `bt full`)
            // is read first, for the libraries it needs.
            let list = serde_json::to_string(commands).unwrap_or_default();
            argv.push("-ex".to_string());
            argv.push(format!("python wazo_astdebug_prepare({list})"));
        }
        for command in commands {
            argv.push("-ex".to_string());
            argv.push(command.clone());
        }
        if script.is_some() {
            argv.push("-ex".to_string());
            argv.push("python wazo_astdebug_main()".to_string());
        }
        argv.push(self.binary.display().to_string());
        match &self.target {
            Target::Pid(pid) => {
                argv.push("-p".to_string());
                argv.push(pid.to_string());
            }
            Target::Core(core) => argv.push(core.display().to_string()),
        }
        // Never SIGINT: gdb would pass it to Asterisk, which shuts down.
        Cmd::new(argv).kill_only()
    }
}

/// What gdb read of the libraries' symbols, for the stop line and a core's.
fn describe_solibs(solibs: threads::Solibs) -> String {
    if solibs.all {
        return format!(
            "read the symbols of all {} shared objects, as bare gdb does",
            solibs.mapped
        );
    }
    format!(
        "read the symbols of {} of the {} shared objects mapped, those the backtraces need",
        solibs.read, solibs.mapped
    )
}

/// Runs gdb, streaming its output into `text_out` with a progress line.
pub fn run(request: &Request, interrupt: &Interrupt) -> Result<Outcome> {
    if which::which("gdb").is_err() {
        return Err(Error::MissingTool {
            program: "gdb".to_string(),
            hint: "install it with `wazo-astdebug setup-dbg` (it also installs the debug symbols \
                   that make the backtrace readable)"
                .to_string(),
        });
    }
    let script = write_script()?;
    let cmd = request.run_command(Some(script.path()));
    errln!("+ {cmd}");
    let state_before = match request.target {
        Target::Pid(pid) => process_state(pid),
        Target::Core(_) => None,
    };
    let mut text = BufWriter::new(create_private(&request.text_out)?);
    let mut full = match &request.full_out {
        Some(path) if request.prints_full(Some(script.path())) => {
            Some((path, BufWriter::new(create_private(path)?)))
        }
        _ => None,
    };
    if let Some(path) = &request.analysis_out {
        // Created here so that gdb's Python, which truncates it, keeps mode 0600.
        create_private(path)?;
    }
    let progress = progress_bar();
    let watch = match request.target {
        Target::Pid(pid) => StopWatch::start(pid),
        Target::Core(_) => None,
    };
    let mut threads_seen = 0;
    let mut warnings = Vec::new();
    let mut missing_symbols = false;
    let mut write_error = None;
    let status = child::run_lines(
        &cmd,
        Some(interrupt),
        Streams::Separate,
        &mut |stream, line| {
            if stream == Stream::Err {
                note_warning(&line, &mut warnings);
                return;
            }
            if line.starts_with("Thread ") {
                threads_seen += 1;
                // The spinner redraws every 120 ms: a message per thread is wasted work.
                if threads_seen % 16 == 1 {
                    progress.set_message(format!("{threads_seen} threads so far"));
                }
            }
            if let Some((path, file)) = &mut full {
                if let Err(error) = writeln!(file, "{line}") {
                    write_error.get_or_insert((path.to_path_buf(), error));
                }
                // Judged on what `bt` prints, as when bt full was a run of its
                // own: "No symbol table info available." of a libc frame is
                // not a backtrace without symbols. Before the first thread,
                // the locals are those of a `bt full` asked for by name (the
                // crashing thread's): kept in both files.
                if threads_seen > 0 && is_full_only(&line) {
                    return;
                }
            }
            missing_symbols |= lacks_symbols(&line);
            note_warning(&line, &mut warnings);
            if let Err(error) = writeln!(text, "{line}") {
                write_error.get_or_insert((request.text_out.clone(), error));
            }
        },
    );
    progress.finish_and_clear();
    let stopped = watch.and_then(StopWatch::finish);
    let say_stopped = |solibs: Option<threads::Solibs>| match (stopped, solibs) {
        (Some(stopped), solibs) => errln!(
            "Asterisk was stopped {:.2} s (gdb attached, then detached{})",
            stopped.as_secs_f64(),
            solibs
                .map(|solibs| format!("; it {}", describe_solibs(solibs)))
                .unwrap_or_default()
        ),
        // A core: what the time to read it rests on.
        (None, Some(solibs)) => errln!("gdb {}", describe_solibs(solibs)),
        (None, None) => {}
    };
    if let Some(state) = state_before {
        if let Target::Pid(pid) = request.target {
            // A gdb that exited by itself detached cleanly; one killed (Ctrl-C,
            // --timeout) may leave a SIGSTOP of its attach still pending.
            let killed = !matches!(&status, Ok(exit) if exit.code().is_some());
            resume_if_left_stopped(pid, state, killed);
        }
    }
    if let Err(error) = text.flush() {
        write_error.get_or_insert((request.text_out.clone(), error));
    }
    if let Some((path, file)) = &mut full {
        if let Err(error) = file.flush() {
            write_error.get_or_insert((path.to_path_buf(), error));
        }
    }
    if write_error.is_some() || status.is_err() {
        say_stopped(None);
    }
    if let Some((path, error)) = write_error {
        return Err(Error::write(&path, error));
    }
    let status = status?;
    if missing_symbols {
        warnings.push(
            "frames without symbols (`??`, \"No symbol table info\"): install the debug packages \
             with `wazo-astdebug setup-dbg`, then run this again"
                .to_string(),
        );
    }
    let analysis = match &request.analysis_out {
        Some(path) => read_analysis(path, &mut warnings),
        None => None,
    };
    say_stopped(analysis.as_ref().and_then(|analysis| analysis.solibs));
    if let Target::Pid(pid) = request.target {
        let attached = threads_seen > 0
            || analysis
                .as_ref()
                .is_some_and(|analysis| !analysis.threads.is_empty());
        if !attached {
            let said: Vec<&str> = warnings
                .iter()
                .map(String::as_str)
                .filter(|line| {
                    line.contains("ptrace")
                        || line.contains("attach")
                        || line.contains("traced")
                        || line.contains("No such process")
                })
                .collect();
            let reason = match (said.is_empty(), crate::host::asterisk::tracer(pid)) {
                (_, Some((tracer, name))) => format!(
                    "it is already traced by process {tracer} ({name}); end that debugger \
                     and run this again"
                ),
                (false, None) => format!("gdb said: {}", said.join("; ")),
                (true, None) => "gdb saw no thread".to_string(),
            };
            return Err(Error::AttachFailed { pid, reason });
        }
    }
    if !status.success() && threads_seen == 0 && analysis.is_none() {
        return Err(Error::StepFailed {
            command: cmd.to_string(),
            status: describe_status(status),
            hint: match warnings.first() {
                Some(warning) => format!("; gdb said: {warning}"),
                None => String::new(),
            },
        });
    }
    Ok(Outcome {
        threads_seen,
        warnings,
        analysis,
        stopped,
    })
}

/// A line `bt full` prints and `bt` does not: a local (gdb indents them by
/// eight spaces, and `-batch` never wraps a line) or gdb's word that a frame
/// has none. Checked against bare gdb's text on cores, stripped and not.
fn is_full_only(line: &str) -> bool {
    line.starts_with("        ")
        || line == "No locals."
        || line == "No symbol table info available."
}

/// How often the watch looks at the target's tracer.
const WATCH_EVERY: Duration = Duration::from_millis(2);

/// Watches `/proc/PID/status` while gdb runs: from the first time it names
/// a tracer to the last is how long the process was held. Reading one small
/// file every 2 ms costs the machine nothing it would notice.
struct StopWatch {
    done: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<Option<Duration>>,
}

impl StopWatch {
    fn start(pid: u32) -> Option<StopWatch> {
        let done = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&done);
        let handle = std::thread::Builder::new()
            .name("gdb-stop-watch".to_string())
            .spawn(move || {
                let mut held: Option<(Instant, Instant)> = None;
                while !flag.load(Ordering::Relaxed) {
                    if crate::host::asterisk::tracer(pid).is_some() {
                        let now = Instant::now();
                        held = Some((held.map_or(now, |(first, _)| first), now));
                    }
                    std::thread::sleep(WATCH_EVERY);
                }
                held.map(|(first, last)| last - first)
            })
            .ok()?;
        Some(StopWatch { done, handle })
    }

    fn finish(self) -> Option<Duration> {
        self.done.store(true, Ordering::Relaxed);
        self.handle.join().ok().flatten()
    }
}

fn write_script() -> Result<tempfile::NamedTempFile> {
    let mut script = tempfile::Builder::new()
        .prefix("wazo-astdebug-")
        .suffix(".py")
        .tempfile()
        .map_err(|error| Error::write(std::env::temp_dir(), error))?;
    for part in LOCK_SCRIPT {
        script
            .write_all(part.as_bytes())
            .map_err(|error| Error::write(script.path().to_path_buf(), error))?;
    }
    Ok(script)
}

fn progress_bar() -> ProgressBar {
    if crate::output::verbosity() == crate::output::Verbosity::Quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("  {spinner} [{elapsed}] gdb: {wide_msg}") {
        bar.set_style(style);
    }
    bar.set_message("starting");
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}

/// gdb's lines that say the backtrace may not be what it seems.
fn note_warning(line: &str, warnings: &mut Vec<String>) {
    const SIGNS: &[&str] = &[
        "core file may not match specified executable file",
        "exec file is newer than core file",
        "is not a core dump",
        "No such process",
        "ptrace: Operation not permitted",
        "Python scripting is not supported",
        "Couldn't get registers",
        "No such file or directory.",
        "not in executable format",
        "Could not attach to process",
        "already traced by process",
        "is truncated",
        "Cannot access memory",
    ];
    let line = line.trim();
    // Frames are most of a backtrace: ruled out before the searches.
    if !line.starts_with('#')
        && SIGNS.iter().any(|sign| line.contains(sign))
        && !warnings.iter().any(|known| known == line)
        && !line.ends_with(".c: No such file or directory.")
        && !line.contains(".S: No such file or directory.")
        && !line.contains(".h: No such file or directory.")
    {
        warnings.push(line.to_string());
    }
}

fn lacks_symbols(line: &str) -> bool {
    line.starts_with('#')
        && line.contains("??")
        && (line.contains(" in ?? ") || line.contains(" ?? ("))
        || line.trim() == "No symbol table info available."
}

fn read_analysis(path: &Path, warnings: &mut Vec<String>) -> Option<Analysis> {
    // Read whole, then parsed: serde_json's reader over a file is several
    // times slower than its parser over bytes, on a thousand threads' frames.
    let bytes = match std::fs::read(path) {
        Ok(bytes) if !bytes.is_empty() => bytes,
        _ => {
            warnings.push(
                "gdb did not run the lock analysis (is it built without Python? \
                 `apt-get install gdb` gives one with Python)"
                    .to_string(),
            );
            return None;
        }
    };
    match serde_json::from_slice::<Analysis>(&bytes) {
        Ok(analysis) => {
            warnings.extend(
                analysis
                    .errors
                    .iter()
                    .map(|error| format!("lock analysis: {error}")),
            );
            Some(analysis)
        }
        Err(error) => {
            warnings.push(format!(
                "the lock analysis in {} is unreadable: {error}",
                path.display()
            ));
            None
        }
    }
}

/// A gdb stopped hard (Ctrl-C, SIGKILL) can leave its tracee stopped: a
/// frozen PBX must not be turned into a stopped one by its debugger.
///
/// Every thread is looked at, not only the main one: gdb's attach sends
/// each thread a SIGSTOP, and one still pending when gdb dies is delivered
/// after the kernel has detached, stopping the whole process a moment
/// later. So after a killed gdb the threads are watched until none has
/// been stopped for [`SETTLE`].
fn resume_if_left_stopped(pid: u32, before: char, killed: bool) {
    /// Quiet time after which no pending stop is expected any more.
    const SETTLE: std::time::Duration = std::time::Duration::from_millis(300);
    const LIMIT: std::time::Duration = std::time::Duration::from_secs(3);
    // Not to be cut short by the watchdog: a stopped PBX is worse than a late exit.
    let _hold = crate::host::sys::Hold::new();
    if matches!(before, 'T' | 't') {
        // Stopped before we came: not ours to resume.
        return;
    }
    let started = std::time::Instant::now();
    let mut quiet_since = std::time::Instant::now();
    while started.elapsed() < LIMIT {
        if crate::host::sys::any_thread_stopped(pid) {
            if let Ok(pid) = libc::pid_t::try_from(pid) {
                // SAFETY: kill(2) has no memory-safety preconditions.
                unsafe {
                    libc::kill(pid, libc::SIGCONT);
                }
            }
            quiet_since = std::time::Instant::now();
        } else if !killed || quiet_since.elapsed() >= SETTLE {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests;
