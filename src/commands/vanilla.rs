//! `vanilla install|revert`: Wazo's packaged Asterisk without Wazo's patches.
//!
//! Asterisk's developers want a crash reproduced on their code before they
//! look at it. From 19.13 Wazo packages that as `asterisk-vanilla` (built
//! with DONT_OPTIMIZE), which replaces `asterisk`. Installing it is the same
//! dance as `setup-dbg` (point apt at the version's archive so nothing is
//! upgraded, install, point apt back at production) and shares its failure
//! mode: a server left on the archive mirror. So the production mirror is a
//! guarded undo here too. The doc's example restores `pelican-buster`
//! whatever the version; the mirror restored here is the era's.
//!
//! Installing it silently removes Wazo-only features, which the user is told
//! about and asked to accept before anything changes.

use clap::{Args, Subcommand};

use crate::context::Context;
use crate::engine::command::Cmd;
use crate::engine::plan::{Plan, fail_on_missing, with_missing};
use crate::error::{Error, Result};
use crate::host::Host;
use crate::host::dpkg::{DPKG_STATUS, installed_version};
use crate::host::runbook::{EraPlan, FIRST_VANILLA, Runbooks};
use crate::host::sys::require_root;
use crate::host::version::{self, Detected, WazoVersion};

/// What Wazo's patches add, lost with the vanilla package.
pub const LOST_FEATURES: [&str; 3] = [
    "queue skill-based routing",
    "voicemail message consultation via the REST API",
    "call transfers via the REST API",
];

#[derive(Debug, Args)]
#[command(disable_help_subcommand = true)]
pub struct VanillaArgs {
    #[command(subcommand)]
    pub action: VanillaAction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Subcommand)]
pub enum VanillaAction {
    /// Replace asterisk with asterisk-vanilla and its debug symbols
    Install,
    /// Reinstall Wazo's asterisk in place of asterisk-vanilla
    Revert,
}

pub fn run(context: &Context, args: &VanillaArgs) -> Result<()> {
    let what = match args.action {
        VanillaAction::Install => "vanilla install",
        VanillaAction::Revert => "vanilla revert",
    };
    // First the lock and the journal: a killed run's leftovers are recover's.
    if !context.dry_run() {
        require_root(what)?;
        context.claim()?;
    }
    let runbooks = Runbooks::load(context.opts.runbooks.as_deref())?;
    let detected = version::detect(&context.host, context.opts.wazo_version.as_deref())?;
    let era = runbooks.plan_for(&detected.version)?;
    check_supported(&detected.version, &era)?;
    let action = args.action;
    let plan = build_plan(&detected, &era, action, context.opts.yes);
    let header = describe(&detected, &era, action, &context.host);
    if context.dry_run() {
        out!("{}", plan.script(&with_missing(header, &plan)));
        return Ok(());
    }
    fail_on_missing(&plan, what)?;
    err!("{}", plan.listing(&header));
    let question = match action {
        VanillaAction::Install => format!(
            "asterisk-vanilla has none of Wazo's patches: {} stop working until `wazo-astdebug \
             vanilla revert`. Run these {} commands now?",
            LOST_FEATURES.join(", "),
            plan.command_count()
        ),
        VanillaAction::Revert => format!(
            "Reinstall Wazo's asterisk ({} commands)?",
            plan.command_count()
        ),
    };
    context.confirm(what, &question)?;
    context.executor()?.execute(&plan)?;
    let package = match action {
        VanillaAction::Install => "asterisk-vanilla",
        VanillaAction::Revert => "asterisk",
    };
    match installed_version(&context.host, package) {
        Some(version) => errln!("\nDone: {package} {version} is installed."),
        None => errln!(
            "\nDone, but {package} does not show as installed in {}: check `dpkg -l 'asterisk*'`.",
            context.host.path(DPKG_STATUS).display()
        ),
    }
    match action {
        VanillaAction::Install => errln!(
            "Reproduce the problem now; `wazo-astdebug vanilla revert` puts Wazo's asterisk back."
        ),
        VanillaAction::Revert => errln!(
            "The vanilla debug symbols went with asterisk-vanilla: `wazo-astdebug setup-dbg` \
             installs those of Wazo's asterisk."
        ),
    }
    Ok(())
}

/// Before 19.13 there is no package: the doc's way is a rebuild.
pub fn check_supported(version: &WazoVersion, era: &EraPlan) -> Result<()> {
    let first = WazoVersion::parse(FIRST_VANILLA);
    let too_old = first.as_ref().is_some_and(|first| version < first);
    if too_old || era.vanilla_packages.is_empty() {
        return Err(Error::bad_input(format!(
            "Wazo {version} has no asterisk-vanilla package (it exists from Wazo {FIRST_VANILLA}, \
             and the runbooks give none for the era {}); nothing was changed. Build one without \
             Wazo's patches instead: `wazo-astdebug rebuild --vanilla`",
            era.era
        )));
    }
    Ok(())
}

/// The doc's five commands, with the era's mirror and package names.
pub fn build_plan(detected: &Detected, era: &EraPlan, action: VanillaAction, yes: bool) -> Plan {
    let version = &detected.version;
    let mut install = vec!["apt-get".to_string(), "install".to_string()];
    if yes {
        install.push("-y".to_string());
    }
    install.extend(["-t".to_string(), era.apt_target.clone()]);
    let packages = match action {
        VanillaAction::Install => era.vanilla_packages.clone(),
        VanillaAction::Revert => vec!["asterisk".to_string()],
    };
    install.extend(packages.iter().cloned());
    let mut plan = Plan::new();
    plan.note(format!(
        "1. Point apt at the archive of Wazo {version}, so that nothing is upgraded."
    ))
    .guarded(
        Cmd::new(era.archive.clone()),
        vec![
            Cmd::new(era.production.clone()),
            Cmd::new(["apt-get", "update"]),
        ],
    )
    .run(Cmd::new(["apt-get", "update"]))
    .note(match action {
        VanillaAction::Install => format!(
            "2. Install {}: apt removes asterisk (and its debug package) to make room.",
            packages.join(" ")
        ),
        VanillaAction::Revert => {
            "2. Reinstall Wazo's asterisk: apt removes asterisk-vanilla and its debug package."
                .to_string()
        }
    })
    // Without --yes, apt-get asks on the terminal before removing asterisk.
    .run(Cmd::new(install).interactive(!yes))
    .note("3. Put back the owners and modes Wazo expects on Asterisk's files.")
    .run(Cmd::new(["xivo-fix-paths-rights"]))
    .note("4. Put the production mirror back, and apt's package lists with it.")
    .undo();
    plan
}

fn describe(detected: &Detected, era: &EraPlan, action: VanillaAction, host: &Host) -> String {
    let mut lines = vec![
        match action {
            VanillaAction::Install => {
                "wazo-astdebug vanilla install: replace asterisk with asterisk-vanilla".to_string()
            }
            VanillaAction::Revert => {
                "wazo-astdebug vanilla revert: put Wazo's asterisk back".to_string()
            }
        },
        format!(
            "Wazo version: {} (from {})",
            detected.version, detected.source
        ),
        format!(
            "Era: {}, Debian {}; production mirror: {}",
            era.era,
            era.debian,
            era.production
                .last()
                .map(String::as_str)
                .unwrap_or_default()
        ),
    ];
    if action == VanillaAction::Install {
        lines.push(
            "asterisk-vanilla is Asterisk without Wazo's patches. Lost until reverted:".to_string(),
        );
        lines.extend(LOST_FEATURES.iter().map(|feature| format!("  - {feature}")));
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
    if let Ok(Some(source)) = crate::host::apt_sources::current(host) {
        if source.points_at_archive {
            lines.push(format!(
                "WARNING: apt already points at the archive `{}` ({}): a previous run was probably \
                 interrupted. This run puts production back at the end.",
                source.distribution,
                source.file.display()
            ));
        }
    }
    match installed_version(host, "asterisk-vanilla") {
        Some(version) => lines.push(format!("Installed now: asterisk-vanilla {version}")),
        None => {
            if let Some(version) = installed_version(host, "asterisk") {
                lines.push(format!("Installed now: asterisk {version}"));
            }
        }
    }
    lines.join("\n")
}
