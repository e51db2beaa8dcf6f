//! Which core file `crash` analyses: the one that fits the incident, in the
//! spool, core_pattern's directory or systemd-coredump's store; the user
//! picks when several fit.

use chrono::{DateTime, FixedOffset};

use crate::context::Context;
use crate::error::{Error, Result};
use crate::evidence::cores::{self, CoreFile};
use crate::output::Warnings;

/// Segfault lines and cores this close to the incident belong to it.
pub const MATCH_WINDOW_SECONDS: i64 = 15 * 60;

/// The core to analyse: the one that fits the incident; the user picks when
/// several do.
pub fn choose_core(
    context: &Context,
    process: &str,
    pid: Option<u32>,
    incident: Option<DateTime<FixedOffset>>,
    warnings: &mut Warnings,
) -> Result<Option<CoreFile>> {
    let search = cores::search(&context.host);
    let searched: Vec<String> = search
        .searched
        .iter()
        .map(|dir| dir.display().to_string())
        .collect();
    if search.cores.is_empty() && search.coredumpctl {
        if let Some(core) = from_coredumpctl(context, process, pid, incident)? {
            return Ok(Some(core));
        }
    }
    if search.cores.is_empty() {
        let hint = if search.coredumpctl {
            "; the kernel hands cores to systemd-coredump, and `coredumpctl list` shows none stored"
        } else {
            "; was Asterisk running with core dumps enabled (ulimit -c)?"
        };
        warnings.raise(format!(
            "no core file in {}{hint}. Going on without a backtrace.",
            searched.join(", ")
        ));
        return Ok(None);
    }
    let mut fitting: Vec<(i64, &CoreFile)> = search
        .cores
        .iter()
        .filter_map(|core| cores::fit(core, pid, incident).map(|score| (score, core)))
        .collect();
    fitting.sort_by_key(|(score, _)| *score);
    let candidates: Vec<&CoreFile> = if fitting.is_empty() {
        if pid.is_some() || incident.is_some() {
            errln!(
                "No core file matches the incident's pid or time; taking the cores found, newest first."
            );
        }
        search.cores.iter().collect()
    } else {
        fitting.into_iter().map(|(_, core)| core).collect()
    };
    if candidates.len() == 1 || !context.can_ask() {
        return Ok(candidates.first().map(|core| (*core).clone()));
    }
    let items: Vec<String> = candidates.iter().map(|core| describe_core(core)).collect();
    let picked = dialoguer::Select::new()
        .with_prompt("Several core files fit; which one?")
        .items(&items)
        .default(0)
        .interact()
        .map_err(|_| Error::Interrupted)?;
    Ok(candidates.get(picked).map(|core| (*core).clone()))
}

/// Where core_pattern pipes to systemd-coredump, the core is in the journal's
/// store: extract the one that fits into the output directory.
fn from_coredumpctl(
    context: &Context,
    process: &str,
    pid: Option<u32>,
    incident: Option<DateTime<FixedOffset>>,
) -> Result<Option<CoreFile>> {
    let dumps: Vec<cores::Coredump> = cores::coredumps(&context.host, process, &context.interrupt)
        .into_iter()
        .filter(|dump| dump.state == "present")
        .collect();
    let fits = |dump: &cores::Coredump| {
        pid == Some(dump.pid)
            || incident.zip(dump.time).is_some_and(|(incident, time)| {
                (time - incident).num_seconds().abs() <= MATCH_WINDOW_SECONDS
            })
    };
    let Some(dump) = dumps.iter().find(|dump| fits(dump)).or(dumps.first()) else {
        return Ok(None);
    };
    errln!(
        "systemd-coredump holds the core of pid {} ({}): extracting it.",
        dump.pid,
        dump.signal
    );
    if context.dry_run() {
        let dest = context.output_path().join(format!("core.{}", dump.pid));
        outln!("{}", cores::dump_command(&context.host, dump.pid, &dest));
        return Ok(None);
    }
    cores::extract(
        &context.host,
        dump,
        context.output_dir()?,
        &context.interrupt,
    )
    .map(Some)
}

pub fn describe_core(core: &CoreFile) -> String {
    let time = core
        .time
        .map(|time| time.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| "time unknown".to_string());
    let pid = core
        .pid
        .map(|pid| format!(", pid {pid}"))
        .unwrap_or_default();
    format!(
        "{} ({time}{pid}, {} MB)",
        core.path.display(),
        core.size / 1_000_000
    )
}
