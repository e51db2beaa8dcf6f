//! `setup-dbg`: gdb and the debug symbols that match the running Asterisk.
//!
//! The doc's procedure is: point apt at the archive of the installed
//! version (so `apt-get install` cannot upgrade Asterisk past the symbols),
//! install, and point apt back at production. The last step is the one
//! people forget, or never reach when apt fails at night, leaving a server
//! that will not get updates: here it is a guarded undo step.

use crate::context::Context;
use crate::engine::command::Cmd;
use crate::engine::executor::Executor;
use crate::engine::plan::{Plan, missing_tools};
use crate::error::{Error, Result};
use crate::host::apt_sources::{self, AptSource};
use crate::host::runbook::{EraPlan, Runbooks};
use crate::host::sys::require_root;
use crate::host::version::{self, Detected};

pub fn run(context: &Context) -> Result<()> {
    // First the lock and the journal: a killed run's leftovers are recover's.
    if !context.dry_run() {
        require_root("setup-dbg")?;
        context.claim()?;
    }
    let runbooks = Runbooks::load(context.opts.runbooks.as_deref())?;
    let detected = version::detect(&context.host, context.opts.wazo_version.as_deref())?;
    let era = runbooks.plan_for(&detected.version)?;
    let current = match apt_sources::current(&context.host) {
        Ok(current) => current,
        Err(error) => {
            warn!("{error}");
            None
        }
    };
    let plan = build_plan(&detected, &era, context.opts.yes);
    let mut header = describe(&detected, &era, current.as_ref());
    let missing = missing_tools(&plan, &["dpkg-query"]);
    if context.dry_run() {
        if !missing.is_empty() {
            header.push_str(&format!(
                "\nWarning: not found on this machine's PATH: {}.",
                missing.join(", ")
            ));
        }
        out!("{}", plan.script(&header));
        return Ok(());
    }
    if let Some(program) = missing.first() {
        return Err(Error::MissingTool {
            program: program.clone(),
            hint: format!(
                "setup-dbg needs it before it can change anything. Is this a Wazo {} server? \
                 Nothing was run",
                detected.version
            ),
        });
    }
    err!("{}", plan.listing(&header));
    context.confirm(
        "setup-dbg",
        &format!(
            "Run these {} commands now? apt points at the archive until the production mirror is put back.",
            plan.command_count()
        ),
    )?;
    let mut executor = context.executor()?;
    executor.execute(&plan)?;
    // The claim rests on dpkg's word, not on apt-get's exit status.
    verify_symbols(&mut executor, &era)?;
    errln!(
        "\nDone: dpkg says {} installed, each at the version of its package (Wazo {}).",
        symbol_pairs(&era)
            .iter()
            .map(|(debug, _)| debug.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        detected.version
    );
    Ok(())
}

/// The doc's four steps for this era.
pub fn build_plan(detected: &Detected, era: &EraPlan, yes: bool) -> Plan {
    let version = &detected.version;
    let apt_get = |args: &[&str]| {
        let mut argv = vec!["apt-get".to_string(), args[0].to_string()];
        if yes && args[0] == "install" {
            argv.push("-y".to_string());
        }
        argv.extend(args[1..].iter().map(|arg| arg.to_string()));
        Cmd::new(argv)
    };
    let install = |packages: &[String], target: Option<&str>| {
        let mut args = vec!["install"];
        if let Some(target) = target {
            args.extend(["-t", target]);
        }
        args.extend(packages.iter().map(String::as_str));
        // Without --yes, apt-get asks on the terminal before installing.
        apt_get(&args).interactive(!yes)
    };

    let mut plan = Plan::new();
    plan.note(format!(
        "1. Point apt at the archive of Wazo {version}, so that Asterisk is not upgraded."
    ))
    .guarded(
        Cmd::new(era.archive.clone()),
        vec![Cmd::new(era.production.clone()), apt_get(&["update"])],
    )
    .note("2. Install gdb and the debug packages.")
    .run(apt_get(&["update"]))
    .run(install(&era.base_packages, None))
    .run(install(&era.debug_packages, Some(&era.apt_target)))
    .note("3. Put the production mirror back, and apt's package lists with it.")
    .undo()
    .note(format!(
        "4. Then check that the debug symbols match what is installed (read-only):\n{}",
        symbols_query(era)
    ));
    plan
}

/// The header of the plan: what was detected and what is unusual.
fn describe(detected: &Detected, era: &EraPlan, current: Option<&AptSource>) -> String {
    let mut lines = vec![
        format!("wazo-astdebug setup-dbg: install gdb and Asterisk debug symbols"),
        format!(
            "Wazo version: {} (from {})",
            detected.version, detected.source
        ),
        format!(
            "Era: {}, Debian {}, dist tool {}",
            era.era, era.debian, era.dist_tool
        ),
    ];
    for note in &era.notes {
        lines.push(format!("Note: {note}"));
    }
    if let Some(beyond) = &era.beyond {
        lines.push(format!("WARNING: {beyond}."));
    }
    for hole in &era.holes {
        lines.push(format!(
            "WARNING: {hole}: `{}` is likely to fail. The production mirror is restored either way.",
            Cmd::new(era.archive.clone())
        ));
    }
    match current {
        Some(source) if source.points_at_archive => lines.push(format!(
            "WARNING: apt already points at the archive `{}` ({}): a previous run was probably \
             interrupted. This run puts production back at the end.",
            source.distribution,
            source.file.display()
        )),
        Some(source) => {
            let production = era
                .production
                .last()
                .map(String::as_str)
                .unwrap_or_default();
            if source.distribution != production {
                lines.push(format!(
                    "WARNING: apt points at `{}` ({}), not at `{production}`: at the end it will point at `{production}`.",
                    source.distribution,
                    source.file.display()
                ));
            } else {
                lines.push(format!(
                    "apt points at: {} ({})",
                    source.distribution,
                    source.file.display()
                ));
            }
        }
        None => {}
    }
    lines.join("\n")
}

/// Each debug package with the package whose binaries it describes.
fn symbol_pairs(era: &EraPlan) -> Vec<(String, String)> {
    era.base_packages
        .iter()
        .chain(&era.debug_packages)
        .filter_map(|debug| {
            let base = debug
                .strip_suffix("-dbgsym")
                .or_else(|| debug.strip_suffix("-dbg"))?;
            Some((debug.clone(), base.to_string()))
        })
        .collect()
}

fn symbols_query(era: &EraPlan) -> Cmd {
    let mut argv = vec![
        "dpkg-query".to_string(),
        "-W".to_string(),
        "-f".to_string(),
        "${Package} ${Version} ${db:Status-Abbrev}\\n".to_string(),
    ];
    for (debug, base) in symbol_pairs(era) {
        argv.push(base);
        argv.push(debug);
    }
    Cmd::new(argv)
}

/// A backtrace taken with symbols of another build is worse than none: it
/// points at the wrong functions. So a mismatch fails the run.
fn verify_symbols(executor: &mut Executor, era: &EraPlan) -> Result<()> {
    let output = executor.query(&symbols_query(era))?;
    let installed = parse_dpkg_query(&output.lines);
    let mut problems = Vec::new();
    errln!("\nDebug symbols:");
    let version_of = |name: &str| {
        installed
            .iter()
            .find(|(package, _)| package == name)
            .map(|(_, v)| v.as_str())
    };
    let mut missing = Vec::new();
    for (debug, base) in symbol_pairs(era) {
        match (version_of(&debug), version_of(&base)) {
            (Some(debug_version), Some(base_version)) if debug_version == base_version => {
                errln!("  ok        {debug} {debug_version} matches {base}");
            }
            (Some(debug_version), Some(base_version)) => {
                errln!(
                    "  {}  {debug} {debug_version}, but {base} is {base_version}",
                    crate::output::alarm("MISMATCH")
                );
                problems.push(format!(
                    "{debug} is {debug_version} but {base} is {base_version}"
                ));
            }
            (Some(debug_version), None) => errln!(
                "  ok        {debug} {debug_version} is installed ({base} is not: nothing to match)"
            ),
            (None, _) => {
                errln!(
                    "  {}   {debug} is not installed",
                    crate::output::alarm("MISSING")
                );
                missing.push(debug.clone());
            }
        }
    }
    if !missing.is_empty() {
        problems.push(format!("not installed: {}", missing.join(", ")));
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(Error::SymbolsMismatch(format!(
        "THE DEBUG SYMBOLS ARE NOT ALL THERE OR DO NOT MATCH: {}. Backtraces taken now would \
         miss frames or point at the wrong functions. Check `apt-cache policy {}` against your \
         Wazo version, or run `wazo-astdebug info` to see the era used (the production mirror \
         is back in place)",
        problems.join("; "),
        missing
            .first()
            .cloned()
            .or_else(|| symbol_pairs(era).first().map(|(debug, _)| debug.clone()))
            .unwrap_or_else(|| "asterisk-dbg".to_string())
    )))
}

/// Installed packages and versions from `dpkg-query -W -f '${Package}
/// ${Version} ${db:Status-Abbrev}\n'`: the status's second letter is `i`
/// only when the package is installed (`ii`, not `un`, `rc` or `iU`).
fn parse_dpkg_query(lines: &[String]) -> Vec<(String, String)> {
    lines
        .iter()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [package, version, status] = fields[..] else {
                return None;
            };
            (status.chars().nth(1) == Some('i')).then(|| (package.to_string(), version.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dpkg_query_lines_keep_installed_packages_only() {
        let lines = vec![
            "asterisk 8:20.5.0-1 ii ".to_string(),
            "asterisk-dbgsym  un ".to_string(),
            "wazo-libsccp-dbg 2.3-1 iU ".to_string(),
            "garbage".to_string(),
        ];
        assert_eq!(
            parse_dpkg_query(&lines),
            vec![("asterisk".to_string(), "8:20.5.0-1".to_string())]
        );
    }
}

#[cfg(test)]
mod fuzz_tests;
