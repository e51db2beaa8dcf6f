//! `rebuild`: Wazo's Asterisk recompiled with debug flags (DEBUG_THREADS,
//! DONT_OPTIMIZE...), optionally without Wazo's patches.
//!
//! The doc's procedure has four places where people go wrong at night:
//! `apt-get source` fetches the newest Asterisk of the mirror, not the one
//! installed, so the "debug build" silently upgrades the PBX (here apt
//! points at the version's archive, as in `setup-dbg`, unless
//! `--current-mirror`); its `sed` on `/etc/apt/sources.list.d/xivo*`
//! matches nothing since 19.13 (the file is `wazo-dist.list`), and the
//! `deb-src` line it enables is never disabled again; "vim debian/rules", where enabling MALLOC_DEBUG and
//! the debug pair silently drops one of them (see [`crate::host::debian_rules`]);
//! and "vim debian/changelog". Here the apt source is edited from a backup
//! that is put back (guaranteed, like the mirror in `setup-dbg`), and the
//! source tree is edited by checked text transformations.
//!
//! The procedure runs in three parts because the source directory's name
//! (`asterisk-<upstream version>`) is only known once `apt-get source` has
//! unpacked it: fetch (server changes, all undone), build (work directory
//! only), install (only if the user says so). `--dry-run` prints all three,
//! with `asterisk-<version>` standing for that directory.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use clap::Args;
use regex::Regex;

use crate::context::Context;
use crate::engine::backup;
use crate::engine::command::Cmd;
use crate::engine::edit::FileEdit;
use crate::engine::executor::Executor;
use crate::engine::plan::{Plan, fail_on_missing, with_missing};
use crate::error::{Error, Result};
use crate::host::changelog;
use crate::host::debian_rules;
use crate::host::dpkg::installed_version;
use crate::host::runbook::FIRST_VANILLA;
use crate::host::runbook::{EraPlan, Runbooks};
use crate::host::sys::require_root;
use crate::host::version::{self, WazoVersion};

mod deb_src;

use deb_src::{deb_src_edit, deb_src_sources};

/// Wazo's patches could be dropped this way before this version (the doc).
const LAST_QUILT_VANILLA: &str = "17.17";
/// XiVO versions whose monit restarts a vanilla Asterisk every few minutes.
const MONIT_RESTARTS_THROUGH: &str = "16.08";

static FLAG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Z][A-Z0-9_]*$").expect("a valid regex"));

#[derive(Debug, Args)]
pub struct RebuildArgs {
    /// Build upstream Asterisk: unapply Wazo's patches (Wazo before 17.17; from 19.13 use `vanilla install`)
    #[arg(long)]
    pub vanilla: bool,

    /// Menuselect flags to turn on in debian/rules, comma-separated (also BETTER_BACKTRACES, MALLOC_DEBUG)
    #[arg(
        long,
        value_name = "FLAG,...",
        value_delimiter = ',',
        default_value = "DEBUG_THREADS,DONT_OPTIMIZE"
    )]
    pub flags: Vec<String>,

    /// Where to fetch and build the source package [default: ~/ast-rebuild]
    #[arg(long, value_name = "DIR")]
    pub workdir: Option<PathBuf>,

    /// Leave the deb-src line of the Wazo apt source enabled afterwards
    #[arg(long)]
    pub keep_deb_src: bool,

    /// Fetch from the mirror apt points at now, not from your version's archive (the doc's way;
    /// the source may then be newer than the installed Asterisk)
    #[arg(long)]
    pub current_mirror: bool,
}

pub fn run(context: &Context, args: &RebuildArgs) -> Result<()> {
    // First the lock and the journal: a killed run's leftovers are recover's.
    if !context.dry_run() {
        require_root("rebuild")?;
        context.claim()?;
    }
    let runbooks = Runbooks::load(context.opts.runbooks.as_deref())?;
    let detected = version::detect(&context.host, context.opts.wazo_version.as_deref())?;
    let era = runbooks.plan_for(&detected.version)?;
    let flags = check_flags(&args.flags)?;
    let mut header = vec![
        format!(
            "wazo-astdebug rebuild: recompile Asterisk with {}{}",
            flags.join(", "),
            if args.vanilla {
                ", without Wazo's patches"
            } else {
                ""
            }
        ),
        format!(
            "Wazo version: {} (from {}); era {}",
            detected.version, detected.source, era.era
        ),
    ];
    header.extend(vanilla_warnings(&detected.version, args.vanilla)?);
    let workdir = workdir(args)?;
    refuse_old_tree(&workdir)?;
    let installed = installed_version(&context.host, "asterisk");
    if let Some(installed) = &installed {
        header.push(format!(
            "Installed: asterisk {installed}; compared with the source once fetched."
        ));
    }
    let mut plan = Plan::new();
    if args.current_mirror {
        header.push(
            "--current-mirror: the source is the one apt offers now, which may be newer than \
             the installed Asterisk."
                .to_string(),
        );
        let sources = deb_src_sources(context)?;
        mirror_fetch_plan(&mut plan, &sources, args)?;
    } else {
        if let Some(beyond) = &era.beyond {
            header.push(format!("WARNING: {beyond}."));
        }
        for hole in &era.holes {
            header.push(format!(
                "WARNING: {hole}: `{}` is likely to fail (then try --current-mirror). \
                 The production mirror is restored either way.",
                Cmd::new(era.archive.clone())
            ));
        }
        archive_fetch_plan(&mut plan, context, &era, &detected.version, args)?;
    }
    fetch_plan(&mut plan, &workdir, args);
    if context.dry_run() {
        // The tree apt-get source makes is named after a version known only
        // then: the script finds it, as the tool does.
        let placeholder = workdir.join("asterisk-VERSION");
        let mut script_plan = plan.clone();
        script_plan
            .var(
                "WORKDIR",
                workdir.to_string_lossy(),
                "Where the source is fetched and built (--workdir).",
            )
            .var_computed("SRC_DIR", placeholder.to_string_lossy(), "", "");
        let workdir_word = script_plan.vars().path(&workdir);
        script_plan
            .note("The source tree apt-get source made:")
            .shell(format!(
                "SRC_DIR=$(find {} -mindepth 1 -maxdepth 1 -type d -name 'asterisk-*' | head -n 1)\n\
                 test -n \"$SRC_DIR\"",
                workdir_word
            ));
        let mut build = Plan::new();
        build_plan(&mut build, &placeholder, true, &flags, args.vanilla);
        script_plan.append(build).note(format!(
            "Finally, if you say yes: dpkg -i {}/asterisk_VERSION+debug1_ARCH.deb (and the other \
             packages built that are installed now).",
            workdir.display()
        ));
        out!(
            "{}",
            script_plan.script(&with_missing(header.join("\n"), &plan))
        );
        return Ok(());
    }
    fail_on_missing(&plan, "rebuild")?;
    err!("{}", plan.listing(&header.join("\n")));
    context.confirm(
        "rebuild",
        &format!(
            "Run these {} commands now? The apt source is put back afterwards{}; then the source \
             tree is edited and built (this takes a while).",
            plan.command_count(),
            if args.keep_deb_src {
                " (except with --keep-deb-src)"
            } else {
                ""
            }
        ),
    )?;
    let mut executor = context.executor()?;
    executor.execute(&plan)?;

    let source = find_source_tree(&workdir)?;
    let fetched = std::fs::read_to_string(source.join("debian/changelog"))
        .map_err(|error| Error::read(source.join("debian/changelog"), error))
        .and_then(|text| changelog::top(&text).map_err(Error::bad_input))?;
    if let Some(installed) = &installed {
        if installed != &fetched.version {
            errln!(
                "\nWARNING: apt fetched asterisk {} but {installed} is installed: the rebuilt \
                 package is {} plus debug flags, not your running version.",
                fetched.version,
                fetched.version
            );
        }
    }
    let applied = applied_patches(&source);
    let mut build = Plan::new();
    build_plan(&mut build, &source, applied, &flags, args.vanilla);
    fail_on_missing(&build, "rebuild")?;
    executor.execute(&build)?;

    let version = changelog::debug_version(&fetched.version);
    install_built(
        context,
        &mut executor,
        &workdir,
        &version,
        installed.as_deref(),
    )
}

fn check_flags(flags: &[String]) -> Result<Vec<String>> {
    let mut checked: Vec<String> = Vec::new();
    for flag in flags {
        let flag = flag.trim().to_string();
        if !FLAG.is_match(&flag) {
            return Err(Error::bad_input(format!(
                "--flags: {flag:?} is not a menuselect flag name (like {})",
                debian_rules::KNOWN_FLAGS.join(", ")
            )));
        }
        if !checked.contains(&flag) {
            checked.push(flag);
        }
    }
    if checked.is_empty() {
        return Err(Error::bad_input("--flags: give at least one flag"));
    }
    Ok(checked)
}

fn vanilla_warnings(version: &WazoVersion, vanilla: bool) -> Result<Vec<String>> {
    let at_least = |text: &str| WazoVersion::parse(text).is_some_and(|floor| version >= &floor);
    let mut lines = Vec::new();
    if !vanilla {
        return Ok(lines);
    }
    if at_least(FIRST_VANILLA) {
        return Err(Error::bad_input(format!(
            "from Wazo {FIRST_VANILLA}, Wazo packages a vanilla Asterisk: use `wazo-astdebug vanilla \
             install` instead of `rebuild --vanilla` (nothing was changed)"
        )));
    }
    if at_least(LAST_QUILT_VANILLA) {
        lines.push(format!(
            "WARNING: the doc gives this vanilla procedure for Wazo before {LAST_QUILT_VANILLA}; \
             on {version} Wazo services may rely on Wazo's patches."
        ));
    }
    if !at_least("16.09") {
        lines.push(format!(
            "WARNING: on XiVO {MONIT_RESTARTS_THROUGH} and earlier, stop monit (`monit quit`) once \
             the vanilla Asterisk is installed, or it restarts asterisk every few minutes."
        ));
    }
    Ok(lines)
}

fn workdir(args: &RebuildArgs) -> Result<PathBuf> {
    let dir = match &args.workdir {
        Some(dir) => dir.clone(),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
            .join("ast-rebuild"),
    };
    if dir.is_absolute() {
        return Ok(dir);
    }
    let cwd = std::env::current_dir()
        .map_err(|error| Error::bad_input(format!("cannot tell the current directory: {error}")))?;
    Ok(cwd.join(dir))
}

/// `apt-get source` does not unpack over an earlier tree: it would be
/// edited a second time and built with the earlier edits.
fn refuse_old_tree(workdir: &Path) -> Result<()> {
    if let Ok(tree) = find_source_tree(workdir) {
        return Err(Error::bad_input(format!(
            "{} is there from an earlier rebuild; nothing was changed. Use another --workdir, or \
             remove it first",
            tree.display()
        )));
    }
    Ok(())
}

/// The source of the installed version: apt points at the version's
/// archive (as `setup-dbg` does) with its deb-src line enabled. wazo-dist
/// rewrites the apt source file, so the byte-for-byte backup is taken first
/// and put back last, after the production mirror.
fn archive_fetch_plan(
    plan: &mut Plan,
    context: &Context,
    era: &EraPlan,
    version: &WazoVersion,
    args: &RebuildArgs,
) -> Result<()> {
    let file = context.host.path(&era.sources_list);
    // A dry run shows the server's procedure on any machine.
    let assumed = context.dry_run() && !file.is_file();
    if !file.is_file() && !assumed {
        return Err(Error::bad_input(format!(
            "{} not found, so the era's {} setup is not there; nothing was changed. \
             Use --current-mirror to fetch with the apt sources as they are",
            file.display(),
            era.dist_tool
        )));
    }
    plan.note(format!(
        "1. Point apt at the archive of Wazo {version} (the source of the installed version), \
         with its deb-src line enabled."
    ));
    if assumed {
        plan.note(format!(
            "{} is not on this machine: the script backs it up and edits it as on a server.",
            file.display()
        ));
    }
    if !args.keep_deb_src {
        if assumed {
            backup::guard_assumed(plan, &file);
        } else {
            backup::guard(plan, &file)?;
        }
    }
    plan.guarded(
        Cmd::new(era.archive.clone()),
        vec![
            Cmd::new(era.production.clone()),
            Cmd::new(["apt-get", "update"]),
        ],
    )
    .edit(deb_src_edit(&file));
    Ok(())
}

/// The doc's way: enable deb-src wherever the apt source has one.
fn mirror_fetch_plan(
    plan: &mut Plan,
    sources: &[(PathBuf, bool)],
    args: &RebuildArgs,
) -> Result<()> {
    plan.note(if args.keep_deb_src {
        "1. Enable the deb-src line of the Wazo apt source (kept afterwards: --keep-deb-src)."
    } else {
        "1. Enable the deb-src line of the Wazo apt source, from a backup put back at the end."
    });
    for (path, commented) in sources {
        if !commented {
            plan.note(format!("{}: deb-src is already enabled.", path.display()));
            continue;
        }
        let edit = deb_src_edit(path);
        if args.keep_deb_src {
            plan.edit(edit);
        } else {
            backup::guarded_edit(plan, edit)?;
        }
    }
    Ok(())
}

/// Fetching and build dependencies, then everything the fetch plan
/// changed is put back (all guarded steps before this one are released).
fn fetch_plan(plan: &mut Plan, workdir: &Path, args: &RebuildArgs) {
    let dir = workdir.to_string_lossy().to_string();
    let mut install = vec!["apt-get", "install", "-y", "build-essential"];
    if args.vanilla {
        install.push("quilt");
    }
    plan.note(format!("2. Fetch the asterisk source package into {dir}."))
        .run(Cmd::new(["mkdir", "-p", &dir]))
        .run(Cmd::new(["apt-get", "update"]))
        .run(Cmd::new(install))
        .run(Cmd::new(["apt-get", "source", "asterisk"]).current_dir(workdir))
        .note("3. Install the build dependencies.")
        .run(Cmd::new(["apt-get", "build-dep", "-y", "asterisk"]).current_dir(workdir));
    let pending = plan
        .steps()
        .iter()
        .filter(|step| matches!(step, crate::engine::plan::Step::Guarded { .. }))
        .count();
    if pending > 0 {
        plan.note(
            "4. Put apt back as it was: the production mirror, the apt source file byte for byte.",
        );
        for _ in 0..pending {
            plan.undo();
        }
    }
    if args.keep_deb_src && !args.current_mirror {
        // wazo-dist rewrote the file with deb-src commented out again.
        plan.note("--keep-deb-src: enable deb-src again on the production mirror.");
        // The path is the one the archive step edited.
        if let Some(path) = plan.steps().iter().find_map(|step| match step {
            crate::engine::plan::Step::Edit(edit) => Some(edit.path().to_path_buf()),
            _ => None,
        }) {
            plan.edit(deb_src_edit(&path));
        }
    }
}

/// The flags as a script adds them: make reads the whole file before any
/// recipe runs, so `+=` lines at the end reach menuselect's `$(MENUSELECT_EXTRA_ARGS)`
/// whatever the file set above them (the tool edits the block in place instead).
fn rules_shell(rules: &Path, flags: &[String]) -> Cmd {
    let mut argv = vec![
        "sh".to_string(),
        "-c".to_string(),
        format!(
            "f=$1; shift; for flag; do printf '%s += --enable %s\\n' {} \"$flag\"; done >> \"$f\"",
            debian_rules::VARIABLE
        ),
        "sh".to_string(),
        rules.to_string_lossy().to_string(),
    ];
    argv.extend(flags.iter().cloned());
    Cmd::new(argv)
}

/// The changelog entry as a script adds it: dpkg-parsechangelog reads the
/// top entry, the new one goes above it, into the same file (same inode).
fn changelog_shell(file: &Path, change: &str, name: &str, email: &str) -> Cmd {
    let script = "f=$1; top() { dpkg-parsechangelog -l \"$f\" -S \"$1\"; }; \
        { printf '%s (%s+debug1) %s; urgency=medium\\n\\n  * %s\\n\\n -- %s <%s>  %s\\n\\n' \
        \"$(top Source)\" \"$(top Version)\" \"$(top Distribution)\" \"$2\" \"$3\" \"$4\" \"$(date -R)\"; \
        cat \"$f\"; } > \"$f.new\" && cat \"$f.new\" > \"$f\" && rm -f \"$f.new\"";
    Cmd::new([
        "sh",
        "-c",
        script,
        "sh",
        &file.to_string_lossy(),
        change,
        name,
        email,
    ])
}

fn build_plan(plan: &mut Plan, source: &Path, applied: bool, flags: &[String], vanilla: bool) {
    let flags_owned = flags.to_vec();
    let step = |offset: usize| offset + if vanilla { 6 } else { 5 };
    if vanilla {
        plan.note("5. Unapply every Wazo patch and empty debian/patches/series (--vanilla).");
        if applied {
            plan.run(
                Cmd::new(["env", "QUILT_PATCHES=debian/patches", "quilt", "pop", "-a"])
                    .current_dir(source),
            );
        } else {
            plan.note("No patch is applied in this tree (no .pc/applied-patches): nothing to pop.");
        }
        let series = source.join("debian/patches/series");
        plan.edit(
            FileEdit::new(&series, "remove every line", |_: &str| Ok(String::new()))
                .with_shell(Cmd::new(["truncate", "-s", "0", &series.to_string_lossy()])),
        );
    }
    plan.note(format!(
        "{}. Turn on {} in debian/rules, then check that menuselect gets each of them.",
        step(0),
        flags.join(", ")
    ))
    .edit(
        FileEdit::new(
            source.join("debian/rules"),
            format!("enable {} in MENUSELECT_EXTRA_ARGS", flags.join(", ")),
            move |text: &str| {
                let (new, changes) = debian_rules::enable(text, &flags_owned)?;
                for change in changes {
                    errln!("  {change}");
                }
                Ok(new)
            },
        )
        .with_shell(rules_shell(&source.join("debian/rules"), flags)),
    );
    let change = format!(
        "Rebuild with {}{} (wazo-astdebug)",
        flags.join(", "),
        if vanilla {
            ", without Wazo's patches"
        } else {
            ""
        }
    );
    let (name, email) = changelog::maintainer_from_env();
    let date = chrono::Local::now().to_rfc2822();
    plan.note(format!(
        "{}. Add a +debugN changelog entry, so the package says what it is.",
        step(1)
    ))
    .edit({
        let shell = changelog_shell(&source.join("debian/changelog"), &change, &name, &email);
        FileEdit::new(
            source.join("debian/changelog"),
            format!("new entry VERSION+debugN: {change}"),
            move |text: &str| {
                changelog::add_entry(text, &change, &name, &email, &date).map(|(new, _)| new)
            },
        )
        .with_shell(shell)
    });
    // DONT_OPTIMIZE only drops Asterisk's own -O3: dpkg-buildflags still adds -O2.
    let mut build = vec!["env".to_string()];
    if flags.iter().any(|flag| flag == "DONT_OPTIMIZE") {
        build.push("DEB_BUILD_OPTIONS=noopt".to_string());
    }
    build.extend(["dpkg-buildpackage", "-us", "-uc"].map(String::from));
    plan.note(format!(
        "{}. Build the binary packages (they land in the work directory).",
        step(2)
    ))
    .run(Cmd::new(build).current_dir(source));
}

/// The `asterisk-*` directory with a `debian/changelog`, newest first.
fn find_source_tree(workdir: &Path) -> Result<PathBuf> {
    let entries = std::fs::read_dir(workdir).map_err(|error| Error::read(workdir, error))?;
    let mut trees: Vec<(std::time::SystemTime, PathBuf)> = entries
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.file_name().to_string_lossy().starts_with("asterisk-"))
        .map(|entry| entry.path())
        .filter(|path| path.join("debian/changelog").is_file())
        .map(|path| {
            let modified = std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .unwrap_or(std::time::UNIX_EPOCH);
            (modified, path)
        })
        .collect();
    trees.sort();
    trees.pop().map(|(_, path)| path).ok_or_else(|| {
        Error::bad_input(format!(
            "apt-get source left no asterisk-*/debian/changelog in {}",
            workdir.display()
        ))
    })
}

fn applied_patches(source: &Path) -> bool {
    std::fs::read_to_string(source.join(".pc/applied-patches"))
        .is_ok_and(|text| text.lines().any(|line| !line.trim().is_empty()))
}

/// The `.deb` files of `version` in `workdir`: (package, path).
fn built_debs(workdir: &Path, version: &str) -> Vec<(String, PathBuf)> {
    let marker = format!("_{}_", changelog::without_epoch(version));
    let mut debs: Vec<(String, PathBuf)> = std::fs::read_dir(workdir)
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok())
                .filter_map(|entry| {
                    let name = entry.file_name().to_string_lossy().to_string();
                    let package = name.split_once(&marker)?.0.to_string();
                    name.ends_with(".deb").then(|| (package, entry.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    debs.sort();
    debs
}

fn install_built(
    context: &Context,
    executor: &mut Executor,
    workdir: &Path,
    version: &str,
    installed: Option<&str>,
) -> Result<()> {
    let debs = built_debs(workdir, version);
    if debs.is_empty() {
        return Err(Error::bad_input(format!(
            "dpkg-buildpackage succeeded but no .deb of version {version} is in {}",
            workdir.display()
        )));
    }
    errln!("\nBuilt in {}:", workdir.display());
    for (_, path) in &debs {
        errln!("  {}", path.display());
    }
    // Replace what is installed; a fresh server gets asterisk and its symbols.
    let mut chosen: Vec<&PathBuf> = debs
        .iter()
        .filter(|(package, _)| installed_version(&context.host, package).is_some())
        .map(|(_, path)| path)
        .collect();
    if chosen.is_empty() {
        chosen = debs
            .iter()
            .filter(|(package, _)| {
                ["asterisk", "asterisk-dbg", "asterisk-dbgsym"].contains(&package.as_str())
            })
            .map(|(_, path)| path)
            .collect();
    }
    let mut argv = vec!["dpkg".to_string(), "-i".to_string()];
    argv.extend(chosen.iter().map(|path| path.to_string_lossy().to_string()));
    let install = Cmd::new(argv).interactive(!context.opts.yes);
    let now = installed.map_or(String::new(), |v| format!(" (now {v})"));
    errln!(
        "\nOnce installed and Asterisk restarted (`systemctl restart asterisk`), the running \
         version is {version}{now}. To go back to Wazo's build later: `wazo-astdebug setup-dbg` \
         shows your archive; `apt-get install --reinstall asterisk=VERSION` with it."
    );
    match context.confirm("rebuild", &format!("Install now: `{install}`?")) {
        Ok(()) => {}
        Err(Error::Declined) => {
            errln!("Not installed. To install later, as root:\n  {install}");
            return Ok(());
        }
        Err(error) => return Err(error),
    }
    let mut plan = Plan::new();
    plan.run(install);
    executor.execute(&plan)?;
    errln!("\nDone: {version} is installed; restart Asterisk when the calls allow it.");
    Ok(())
}

#[cfg(test)]
mod tests;
