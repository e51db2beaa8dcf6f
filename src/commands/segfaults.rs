//! `wazo-astdebug segfaults`: did Asterisk segfault, when, and where?
//!
//! Step 2 of "So There is a Problem with Asterisk" is `grep segfault
//! /var/log/syslog`. On today's servers that misses the line more often than
//! not (no rsyslog on Debian 12, rotated and gzipped copies, kern.log), and
//! what it finds still has to be read by hand: which time zone, which year,
//! what "error 4" means, what offset to give addr2line. This command looks
//! everywhere, shows each crash once however many logs hold it, and says it
//! in words. The scan itself is `evidence::segfault_scan`, which `crash` also
//! uses to date the incident and match the core file it picks.

use std::path::PathBuf;

use chrono::Local;
use serde::Serialize;

use crate::context::Context;
use crate::error::{Error, Result};
use crate::evidence::segfault_scan::{Filter, SegfaultJson, describe, scan, warn};
use crate::evidence::syslog::{self, Source};
use crate::output::Warnings;

#[derive(Debug, clap::Args)]
pub struct SegfaultsArgs {
    /// Scan only this log file (plain or gzip; repeat for several) instead of
    /// the system logs, the journal and dmesg
    #[arg(long = "log", value_name = "FILE")]
    pub logs: Vec<PathBuf>,

    /// The process whose segfaults to list, exactly as in "NAME[pid]: segfault at"
    #[arg(long, value_name = "NAME", default_value = "asterisk")]
    pub process: String,

    /// Only segfaults at or after TIME ("2026-11-28 04:00", "2026-11-28T04:00:00", "-2h", "-30m", "-1d", "7d")
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub since: Option<String>,

    /// Only segfaults at or before TIME (same forms as --since)
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub until: Option<String>,
}

/// `--json`: `docs/json.md`, "segfaults".
#[derive(Serialize)]
struct SegfaultsJson<'a> {
    /// Oldest first, unknown times first.
    segfaults: Vec<SegfaultJson>,
    /// The sources read, by label.
    scanned: &'a [String],
    warnings: &'a Warnings,
}

pub fn run(context: &Context, args: &SegfaultsArgs) -> Result<()> {
    let now = Local::now();
    let parse = |spec: &Option<String>| {
        spec.as_deref()
            .map(|s| syslog::parse_time_spec(s, now))
            .transpose()
    };
    let filter = Filter {
        process: args.process.clone(),
        since: parse(&args.since)?,
        until: parse(&args.until)?,
    };
    if args.process.is_empty() {
        return Err(Error::bad_input(
            "--process needs a process name, e.g. asterisk",
        ));
    }
    let sources = if args.logs.is_empty() {
        syslog::default_sources(&context.host)
    } else {
        for path in &args.logs {
            if !path.exists() {
                return Err(Error::bad_input(format!(
                    "{}: no such file (given with --log)",
                    path.display()
                )));
            }
        }
        args.logs.iter().cloned().map(Source::File).collect()
    };
    let mut scan = scan(&context.host, &sources, &filter, Some(&context.interrupt))?;
    context.interrupt.check()?;
    // Nothing read at all: the error is the answer, and exits 2.
    if scan.scanned.is_empty() && !scan.errors.is_empty() {
        scan.errors.truncate(1);
        return Err(scan.errors.remove(0));
    }
    let mut warnings = Warnings::new();
    warn(&scan, &mut warnings);
    if context.opts.json {
        crate::output::print_json(&SegfaultsJson {
            segfaults: scan.segfaults.iter().map(SegfaultJson::from).collect(),
            scanned: &scan.scanned,
            warnings: &warnings,
        })?;
        return Ok(());
    }
    let scanned = if scan.scanned.is_empty() {
        "no log source (no /var/log/syslog, kern.log or messages; journalctl and dmesg are read only when --root is /)"
            .to_string()
    } else {
        scan.scanned.join(", ")
    };
    if scan.segfaults.is_empty() {
        outln!("no segfault of {} found in: {scanned}", filter.process);
        return Ok(());
    }
    for segfault in &scan.segfaults {
        out!("{}", describe(segfault, Some(&context.host)));
    }
    let count = scan.segfaults.len();
    let plural = if count == 1 { "" } else { "s" };
    outln!(
        "{count} segfault{plural} of {} (newest last), from: {scanned}",
        filter.process
    );
    Ok(())
}
