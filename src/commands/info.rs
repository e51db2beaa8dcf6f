//! `info`: what the tool sees on this server, before it changes anything.
//!
//! The first thing a support engineer needs on an unknown box: which
//! version, which era (so which commands), whether apt was left pointing at
//! an archive by an earlier interrupted run, what a killed run left to put
//! back (the journal `recover` runs), and which tools are missing.

use std::path::PathBuf;

use serde::Serialize;

use crate::context::Context;
use crate::engine::journal::{self, Journal, Orphan};
use crate::error::Result;
use crate::evidence::cores::{self, CoreFile};
use crate::host::apt_sources::{self, AptSource};
use crate::host::asterisk::{self, ASTERISK_BIN, PidLookup};
use crate::host::runbook::{EraPlan, RunbookSource, Runbooks};
use crate::host::version::{self, VersionSource, WazoVersion};

/// The tools the procedures use, in the order `info` lists them.
const TOOLS: &[&str] = &[
    "gdb",
    "gcore",
    "valgrind",
    "circo",
    "dot",
    "wazo-dist",
    "xivo-dist",
    "apt-get",
    "dpkg-query",
    "asterisk",
];

/// `--json`: `docs/json.md`, "info".
#[derive(Debug, Serialize)]
pub struct Info {
    version: Option<WazoVersion>,
    version_source: Option<VersionSource>,
    version_error: Option<String>,
    era: Option<EraPlan>,
    era_error: Option<String>,
    /// Built in, or `--runbooks DIR`: as `runbooks --json` says it.
    runbooks: RunbookSource,
    apt: Option<AptSource>,
    apt_error: Option<String>,
    root: bool,
    asterisk: PidLookup,
    /// The installed Asterisk, from dpkg's status file.
    asterisk_version: Option<String>,
    /// The installed asterisk-vanilla version, if any (from dpkg's status file).
    asterisk_vanilla: Option<String>,
    /// The core files in the spool and in core_pattern's directory, newest first.
    cores: Vec<CoreFile>,
    /// The undo steps a killed run left, for `recover`.
    leftovers: Option<Journal>,
    leftovers_error: Option<String>,
    /// The processes that killed run left running.
    orphans: Vec<Orphan>,
    tools: Vec<Tool>,
    /// What the text output shows as WARNING: the era's mirror holes, the
    /// Asterisk lookup's doubts.
    warnings: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Tool {
    name: String,
    path: Option<PathBuf>,
}

pub fn run(context: &Context) -> Result<()> {
    let info = gather(context)?;
    if context.opts.json {
        crate::output::print_json(&info)?;
    } else {
        out!("{}", render(&info));
    }
    Ok(())
}

fn gather(context: &Context) -> Result<Info> {
    let runbooks = Runbooks::load(context.opts.runbooks.as_deref())?;
    let (version, version_source, version_error) =
        match version::detect(&context.host, context.opts.wazo_version.as_deref()) {
            Ok(detected) => (Some(detected.version), Some(detected.source), None),
            Err(error) => (None, None, Some(error.to_string())),
        };
    let (era, era_error) = match &version {
        Some(version) => match runbooks.plan_for(version) {
            Ok(era) => (Some(era), None),
            Err(error) => (None, Some(error.to_string())),
        },
        None => (None, None),
    };
    let (apt, apt_error) = match apt_sources::current(&context.host) {
        Ok(apt) => (apt, None),
        Err(error) => (None, Some(error.to_string())),
    };
    let root = crate::host::sys::is_root();
    let (leftovers, leftovers_error) = match context.state_dir().leftovers() {
        Ok(leftovers) => (leftovers, None),
        Err(error) => (None, Some(error.to_string())),
    };
    let orphans = leftovers
        .as_ref()
        .map(|left| journal::orphans(&left.run))
        .unwrap_or_default();
    let tools = TOOLS
        .iter()
        .map(|name| Tool {
            name: name.to_string(),
            path: find_tool(context, name),
        })
        .collect();
    let lookup = asterisk::find(&context.host);
    let warnings = era
        .iter()
        .flat_map(|era| era.holes.iter().chain(era.beyond.as_ref()))
        .chain(&lookup.warnings)
        .cloned()
        .collect();
    Ok(Info {
        version,
        version_source,
        version_error,
        era,
        era_error,
        runbooks: runbooks.source.clone(),
        apt,
        apt_error,
        root,
        warnings,
        asterisk: lookup,
        asterisk_version: asterisk::installed_version(&context.host),
        asterisk_vanilla: crate::host::dpkg::installed_version(&context.host, "asterisk-vanilla"),
        cores: cores::search(&context.host).cores,
        leftovers,
        leftovers_error,
        orphans,
        tools,
    })
}

fn find_tool(context: &Context, name: &str) -> Option<PathBuf> {
    if let Ok(path) = which::which(name) {
        return Some(path);
    }
    let fallback = context.host.path(ASTERISK_BIN);
    (name == "asterisk" && fallback.is_file()).then_some(fallback)
}

fn render(info: &Info) -> String {
    let mut out = String::new();
    let mut line = |label: &str, value: String| out.push_str(&format!("{label:<16}{value}\n"));
    match (&info.version, &info.version_source, &info.version_error) {
        (Some(version), Some(source), _) => {
            line("Wazo version", format!("{version} (from {source})"))
        }
        (_, _, Some(error)) => line("Wazo version", format!("unknown: {error}")),
        _ => line("Wazo version", "unknown".to_string()),
    }
    if let Some(era) = &info.era {
        line(
            "Era",
            format!(
                "{} (Debian {}, runbooks: {})",
                era.era, era.debian, info.runbooks
            ),
        );
        line("Archive", crate::engine::shell::join(&era.archive));
        line("Production", crate::engine::shell::join(&era.production));
        line("Apt target", era.apt_target.clone());
        line("Packages", era.base_packages.join(" "));
        line("Debug packages", era.debug_packages.join(" "));
        for note in &era.notes {
            line("Note", note.clone());
        }
        for hole in &era.holes {
            line("WARNING", hole.clone());
        }
        if let Some(beyond) = &era.beyond {
            line("WARNING", beyond.clone());
        }
    }
    if let Some(error) = &info.era_error {
        line("Era", format!("none: {error}"));
    }
    match (&info.apt, &info.apt_error) {
        (Some(apt), _) => {
            let state = if apt.points_at_archive {
                "ARCHIVE: a previous run may have been interrupted; `wazo-astdebug setup-dbg` puts production back"
            } else {
                "main mirror"
            };
            line(
                "Apt points at",
                format!("{} ({}) [{state}]", apt.distribution, apt.file.display()),
            );
        }
        (None, Some(error)) => line("Apt points at", format!("unknown: {error}")),
        (None, None) => line(
            "Apt points at",
            format!(
                "unknown: none of {} exists",
                apt_sources::SOURCES_FILES.join(", ")
            ),
        ),
    }
    line(
        "Running as",
        if info.root {
            "root".to_string()
        } else {
            "not root (changes need sudo; --dry-run works)".to_string()
        },
    );
    match &info.asterisk.found {
        Some(found) => match &found.pidfile {
            Some(pidfile) => line(
                "Asterisk pid",
                format!("{} (from {})", found.pid, pidfile.display()),
            ),
            None => line("Asterisk pid", format!("{} (by process name)", found.pid)),
        },
        None => line("Asterisk pid", "not running".to_string()),
    }
    for warning in &info.asterisk.warnings {
        line("WARNING", warning.clone());
    }
    line(
        "Asterisk",
        info.asterisk_version
            .clone()
            .unwrap_or_else(|| "unknown (no asterisk package in dpkg's status)".to_string()),
    );
    line(
        "Vanilla",
        match &info.asterisk_vanilla {
            Some(version) => format!(
                "asterisk-vanilla {version} is installed (no Wazo patches; `wazo-astdebug vanilla revert` puts asterisk back)"
            ),
            None => "not installed".to_string(),
        },
    );
    line(
        "Core files",
        match info.cores.first() {
            Some(newest) => format!(
                "{} (newest: {}, {} bytes)",
                info.cores.len(),
                newest.path.display(),
                newest.size
            ),
            None => "none".to_string(),
        },
    );
    match (&info.leftovers, &info.leftovers_error) {
        (Some(left), _) if left.is_live() => line(
            "Run going on",
            format!(
                "`{}`, pid {}, started {}: {} change(s) it will put back itself",
                left.command,
                left.pid,
                left.started,
                left.pending.len()
            ),
        ),
        (Some(left), _) => {
            line(
                "LEFT BEHIND",
                format!(
                    "a run was killed before it put {} change(s) back: `{}`, pid {}, started {}; \
                     `wazo-astdebug recover` puts them back (changing commands refuse until then)",
                    left.pending.len(),
                    left.command,
                    left.pid,
                    left.started
                ),
            );
            for entry in left.pending.iter().rev() {
                let undo: Vec<String> = entry.commands().iter().map(ToString::to_string).collect();
                line(
                    "  to undo",
                    format!("`{}`: {}", entry.after, undo.join(" && ")),
                );
            }
            for orphan in &info.orphans {
                line(
                    "  still running",
                    format!("pid {}: {}", orphan.pid, orphan.command),
                );
            }
        }
        (None, Some(error)) => line("Left behind", format!("unknown: {error}")),
        (None, None) => line(
            "Left behind",
            "nothing (no run left changes to put back)".to_string(),
        ),
    }
    for tool in &info.tools {
        let value = match &tool.path {
            Some(path) => path.display().to_string(),
            None => "not found".to_string(),
        };
        line(&format!("  {}", tool.name), value);
    }
    out
}
