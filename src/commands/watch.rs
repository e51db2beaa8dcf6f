//! `watch`: catch a freeze while it happens, without stopping Asterisk,
//! and keep the evidence before operations restart it.
//!
//! Every `--interval` it reads, from /proc only, which thread of Asterisk
//! sleeps on which lock and who owns it (`locks::watch::sample`); the rules
//! of `locks::watch` decide when that is a freeze (a cycle, or a stalled
//! lock, lasting `--confirm` samples). Then, once per freeze, it captures:
//! the /proc graph, a `freeze` run of the tool's own binary (the same
//! capture an administrator would take, and no command imports another),
//! optionally a core, a syslog line and `--on-freeze`. Only that capture
//! stops Asterisk, for as long as gdb reads it.

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;

use crate::context::Context;
use crate::error::{Error, Result};
use crate::host::asterisk::{self, ASTERISK_BIN};
use crate::host::procfs::Process;
use crate::host::sys::{is_root, process_state};
use crate::locks::watch::{self, Tracker};

mod capture;

/// The longest sleep between two looks at the interrupt flag: Ctrl-C and
/// SIGTERM end the watch within this.
const TICK: Duration = Duration::from_millis(50);

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Watch this process only [default: Asterisk, from /run/asterisk/asterisk.pid or by name,
    /// followed across restarts]
    #[arg(long, value_name = "PID")]
    pub pid: Option<u32>,

    /// Seconds between two samples of /proc (fractions allowed)
    #[arg(long, value_name = "SECONDS", default_value = "2", value_parser = parse_interval)]
    pub interval: f64,

    /// Samples in a row a freeze must last before it is captured (a stalled lock: at least 2)
    #[arg(long, value_name = "N", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub confirm: u32,

    /// Exit after the first capture (exit 0, its run directory on the last line; with --json,
    /// one JSON object describing it)
    #[arg(long)]
    pub once: bool,

    /// End after this many seconds (exit 0, saying whether anything was captured)
    #[arg(long, value_name = "SECONDS")]
    pub max_time: Option<u64>,

    /// At a capture, also save a core of the live process (freeze --gcore), if the disk has room
    #[arg(long)]
    pub gcore: bool,

    /// Run this sh command after each capture (a pager, a ticket); it gets WAZO_ASTDEBUG_RUN_DIR,
    /// WAZO_ASTDEBUG_PID, WAZO_ASTDEBUG_THREADS and WAZO_ASTDEBUG_RULE in its environment
    #[arg(long, value_name = "CMD")]
    pub on_freeze: Option<String>,

    /// The Asterisk binary, for the capture's gdb
    #[arg(long, value_name = "PATH", default_value = ASTERISK_BIN)]
    pub asterisk_bin: PathBuf,

    /// Seconds each CLI check of the capture may take (passed to freeze --timeout)
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub timeout: u64,

    /// For bench/watch.py's day of samples in minutes: this many samples back to back (no
    /// --interval, no capture: a freeze is only counted), then end, saying the resident memory
    /// every tenth of them. Not for a PBX.
    #[arg(long, value_name = "N", hide = true)]
    pub bench_samples: Option<u64>,
}

fn settings(args: &WatchArgs) -> capture::Settings<'_> {
    capture::Settings {
        asterisk_bin: &args.asterisk_bin,
        timeout: args.timeout,
        gcore: args.gcore,
        on_freeze: args.on_freeze.as_deref(),
        confirm: args.confirm,
    }
}

fn parse_interval(text: &str) -> std::result::Result<f64, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !(0.05..=3600.0).contains(&seconds) {
        return Err(format!(
            "{seconds} s: give between 0.05 and 3600 seconds (each sample reads every thread of Asterisk)"
        ));
    }
    Ok(seconds)
}

/// The process being watched.
struct Watched {
    pid: u32,
    process: Process,
    /// Samples taken of it.
    samples: u64,
    /// Why samples are skipped now (traced, stopped), said once.
    skipping: Option<String>,
}

/// The watch's own cost, measured on the thread that samples.
#[derive(Default)]
struct Cost {
    samples: u64,
    cpu: Duration,
    max: Duration,
    threads: usize,
}

impl Cost {
    fn line(&self) -> String {
        if self.samples == 0 {
            return "no sample taken".to_string();
        }
        let each = self.cpu.as_secs_f64() * 1000.0 / self.samples as f64;
        format!(
            "{} samples, {each:.2} ms of CPU each on average (at most {:.2} ms), {} threads at the last",
            self.samples,
            self.max.as_secs_f64() * 1000.0,
            self.threads
        )
    }
}

pub fn run(context: &Context, args: &WatchArgs) -> Result<()> {
    if context.dry_run() {
        print_script(context, args);
        return Ok(());
    }
    if !cfg!(target_arch = "x86_64") {
        return Err(Error::bad_input(
            "watch reads x86-64 system call numbers in /proc/PID/task/*/syscall; this machine is \
             not x86-64, and nothing was read",
        ));
    }
    if !is_root() {
        return Err(Error::bad_input(
            "watch reads the threads and memory of Asterisk in /proc (/proc/PID/task/*/syscall, \
             /proc/PID/mem), which only root may do: run it as root (sudo wazo-astdebug watch). \
             Nothing was read",
        ));
    }
    if let Some(pid) = args.pid {
        asterisk::check_is_asterisk(pid)?;
    }
    crate::host::procfs::raise_open_files_limit();
    let interval = Duration::from_secs_f64(args.interval);
    let started = Instant::now();
    let deadline = args
        .max_time
        .map(|seconds| started + Duration::from_secs(seconds));
    let mut tracker = Tracker::new(args.confirm as usize);
    let mut cost = Cost::default();
    let mut captures: Vec<PathBuf> = Vec::new();
    let mut watched: Option<Watched> = None;
    let mut lookup_said = String::new();
    let mut bench_freezes = 0u64;
    note!(
        "Watching for freezes every {} s: a wait-for cycle lasting {} samples, or a stalled lock \
         (its owner not moving, its waiters not fewer) lasting {} samples. Read from /proc only: \
         Asterisk is never stopped, except while a freeze is captured (as long as gdb reads it).",
        args.interval,
        tracker.needed(watch::Rule::Cycle),
        tracker.needed(watch::Rule::StalledLock),
    );
    let outcome = loop {
        if let Err(error) = context.interrupt.check() {
            break Err(error);
        }
        if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            break Ok(());
        }
        let tick = Instant::now();
        match follow(context, args, &mut watched, &mut tracker, &mut lookup_said) {
            Ok(true) => {}
            Ok(false) => break Ok(()),
            Err(error) => break Err(error),
        }
        if let Some(current) = watched.as_mut() {
            match look(current, &mut tracker, &mut cost, args) {
                // The bench measures the watch, not gdb: a freeze it would
                // capture is only counted.
                Ok(Some(_)) if args.bench_samples.is_some() => {
                    tracker.captured_all();
                    bench_freezes += 1;
                }
                Ok(Some(capture_now)) => {
                    match capture::capture(context, &settings(args), current.pid, &capture_now) {
                        Ok(dir) => {
                            tracker.captured_all();
                            captures.push(dir.path.clone());
                            if args.once {
                                break dir.outcome;
                            }
                        }
                        Err(error) => break Err(error),
                    }
                }
                Ok(None) => {}
                Err(error) => break Err(error),
            }
        }
        if let Some(wanted) = args.bench_samples {
            let done = cost.samples;
            if done == 1 || done % (wanted / 10).max(1) == 0 || done >= wanted {
                errln!(
                    "bench: {done} samples, resident memory {} kB, {bench_freezes} freezes seen",
                    resident_kb()
                );
            }
            if done >= wanted {
                break Ok(());
            }
            continue;
        }
        if let Err(error) = sleep_until(context, tick + interval, deadline) {
            break Err(error);
        }
    };
    let watched_for = started.elapsed().as_secs_f64();
    let captured = match captures.len() {
        0 => "nothing was captured (no freeze seen)".to_string(),
        1 => format!("1 freeze captured, in {}", captures[0].display()),
        n => format!(
            "{n} freezes captured, in {}",
            captures
                .iter()
                .map(|dir| dir.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    errln!(
        "Watched for {watched_for:.1} s: {captured}. Its own cost: {}.",
        cost.line()
    );
    outcome
}

/// Finds the process to watch (the pidfile or `--pid`), says when it
/// changed; false when there is nothing more to watch (`--pid` gone).
fn follow(
    context: &Context,
    args: &WatchArgs,
    watched: &mut Option<Watched>,
    tracker: &mut Tracker,
    said: &mut String,
) -> Result<bool> {
    if let Some(pid) = args.pid {
        if watched.is_none() {
            *watched = Some(open(pid)?.ok_or_else(|| {
                Error::bad_input(format!("no process with pid {pid} on this machine"))
            })?);
            note!("Watching pid {pid}.");
        } else if main_thread(pid).is_none_or(|(state, _)| matches!(state, 'Z' | 'X')) {
            errln!("pid {pid} has exited: nothing more to watch.");
            return Ok(false);
        }
        return Ok(true);
    }
    let lookup = asterisk::find(&context.host);
    let mut why = lookup.warnings.clone();
    let mut found = lookup.found.map(|found| (found.pid, found.pidfile));
    // Under --root the pidfile is not checked against /proc by find(): a
    // pid that is not Asterisk is not watched, whatever the file says.
    if let Some((pid, _)) = &found {
        if let Err(error) = asterisk::check_is_asterisk(*pid) {
            why.push(error.to_string());
            found = None;
        }
    }
    let now = found.as_ref().map(|(pid, _)| *pid);
    let waiting = format!(
        "Asterisk is not running{}; waiting for it (looking every {} s).",
        if why.is_empty() {
            String::new()
        } else {
            format!(" ({})", why.join("; "))
        },
        args.interval
    );
    if now == watched.as_ref().map(|w| w.pid) {
        // Said once per change, however long it lasts.
        if now.is_none() && *said != waiting {
            errln!("{waiting}");
            *said = waiting;
        }
        return Ok(true);
    }
    let opened = match now {
        Some(pid) => open(pid)?,
        None => None,
    };
    match (watched.as_ref().map(|w| w.pid), &opened) {
        (Some(old), Some(new)) => errln!(
            "Asterisk restarted: now pid {} (was {old}); watching the new one.",
            new.pid
        ),
        (Some(old), None) => {
            errln!("Asterisk (pid {old}) is gone; waiting for it to start again.");
            *said = waiting;
        }
        (None, Some(new)) => {
            let whence = match found.and_then(|(_, pidfile)| pidfile) {
                Some(pidfile) => format!("from {}", pidfile.display()),
                None => "found by name".to_string(),
            };
            note!("Watching Asterisk, pid {} ({whence}).", new.pid);
        }
        // Caught above: nothing changed.
        (None, None) => {}
    }
    if opened.is_some() {
        said.clear();
    }
    tracker.reset();
    *watched = opened;
    Ok(true)
}

/// Opens `pid` for sampling: None when it is already gone; an error (exit
/// 2) when the kernel refuses (not root, Yama).
fn open(pid: u32) -> Result<Option<Watched>> {
    match Process::open(pid) {
        Ok(process) => {
            if !process.lock_layout().owners_readable() {
                errln!(
                    "pid {pid}: {}: no cycle and no stalled lock can be seen.",
                    process.lock_layout().note()
                );
            }
            Ok(Some(Watched {
                pid,
                process,
                samples: 0,
                skipping: None,
            }))
        }
        Err(_) if process_state(pid).is_none() => Ok(None),
        Err(error) => Err(error),
    }
}

/// One sample, and the freezes it confirms (None: nothing to capture).
fn look(
    current: &mut Watched,
    tracker: &mut Tracker,
    cost: &mut Cost,
    args: &WatchArgs,
) -> Result<Option<capture::Freeze>> {
    // The whole look is the watch's cost, the checks around the sample too.
    let cpu = thread_cpu();
    // A debugger attached (or a SIGSTOP) holds every thread still: that is
    // not a freeze, and samples of it would call it one.
    let held = match main_thread(current.pid) {
        Some((_, tracer)) if tracer != 0 => {
            let name = fs::read_to_string(format!("/proc/{tracer}/comm"))
                .map(|name| name.trim().to_string())
                .unwrap_or_else(|_| "?".to_string());
            Some(format!(
                "pid {} is traced by process {tracer} ({name}), which holds its threads still",
                current.pid
            ))
        }
        Some(('T' | 't', _)) => Some(format!("pid {} is stopped (SIGSTOP)", current.pid)),
        // Gone: `follow` says so at the next tick.
        None => return Ok(None),
        _ => None,
    };
    if let Some(why) = held {
        if current.skipping.as_deref() != Some(&why) {
            errln!("{why}: not sampling it until that ends.");
            current.skipping = Some(why);
        }
        tracker.pause();
        return Ok(None);
    }
    if current.skipping.take().is_some() {
        errln!("pid {}: sampling again.", current.pid);
    }
    let sample = match watch::sample(&current.process) {
        Ok(sample) => sample,
        // Gone between two looks: `follow` says so at the next tick.
        Err(_) if process_state(current.pid).is_none() => return Ok(None),
        Err(error) => return Err(error),
    };
    current.samples += 1;
    if current.samples == 1 && !sample.readable {
        return Err(Error::bad_input(format!(
            "no thread of pid {} has a readable /proc/{0}/task/*/syscall: the kernel refuses it \
             (Yama ptrace_scope, see /proc/sys/kernel/yama/ptrace_scope, or a kernel without \
             CONFIG_HAVE_ARCH_TRACEHOOK), and nothing could ever be seen",
            current.pid
        )));
    }
    let observed = tracker.observe(sample.suspects.clone());
    let spent = thread_cpu().saturating_sub(cpu);
    cost.samples += 1;
    cost.cpu += spent;
    cost.max = cost.max.max(spent);
    cost.threads = sample.threads;
    if crate::output::verbosity() == crate::output::Verbosity::Verbose {
        for suspect in &observed.started {
            errln!("  suspect ({}): {}", suspect.rule.as_str(), suspect.says);
        }
        for (suspect, why) in &observed.ended {
            errln!("  not a freeze ({why}): {}", suspect.says);
        }
    }
    if observed.confirmed.is_empty() {
        return Ok(None);
    }
    Ok(Some(capture::Freeze {
        confirmed: observed.confirmed,
        sample,
        interval: args.interval,
    }))
}

/// The state letter and TracerPid of `pid`'s main thread, in one read of
/// its own status file: the process's `/proc/PID/stat` sums over every
/// thread, which at a thousand threads cost more than the rest of a sample.
fn main_thread(pid: u32) -> Option<(char, u32)> {
    let status = fs::read_to_string(format!("/proc/{pid}/task/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .map(str::trim)
    };
    let state = field("State:")?.chars().next()?;
    let tracer = field("TracerPid:")?.parse().ok()?;
    Some((state, tracer))
}

/// Sleeps until `until` (or the deadline), looking at the interrupt flag
/// every tick.
fn sleep_until(context: &Context, until: Instant, deadline: Option<Instant>) -> Result<()> {
    let until = deadline.map_or(until, |deadline| until.min(deadline));
    loop {
        context.interrupt.check()?;
        let now = Instant::now();
        if now >= until {
            return Ok(());
        }
        std::thread::sleep(TICK.min(until - now));
    }
}

/// CPU time of the calling thread.
fn thread_cpu() -> Duration {
    let mut time = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime(2) writes into the struct we own.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut time) };
    if status != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        u64::try_from(time.tv_sec).unwrap_or(0),
        u32::try_from(time.tv_nsec).unwrap_or(0),
    )
}

/// This process's resident memory (`VmRSS`), in kB; 0 when unreadable.
fn resident_kb() -> u64 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}

fn print_script(context: &Context, args: &WatchArgs) {
    outln!("#!/bin/sh");
    outln!(
        "# wazo-astdebug watch reads /proc only, every {} s: no command runs and Asterisk is not \
         stopped while it watches.",
        args.interval
    );
    outln!(
        "# At a freeze it runs, once, into a new run directory under {}:",
        context.output_base().display()
    );
    outln!(
        "#   {}",
        capture::freeze_command(
            context,
            &settings(args),
            0,
            &context.output_base().join("RUN")
        )
        .to_string()
        .replace("--pid 0", "--pid PID")
    );
    if let Some(command) = &args.on_freeze {
        outln!("#   logger -t wazo-astdebug ...; then: {command}");
    } else {
        outln!("#   logger -t wazo-astdebug ...");
    }
}
