//! `runbooks`: what eras are loaded, and a way to get editable copies.

use std::path::{Path, PathBuf};

use crate::context::Context;
use crate::engine::shell;
use crate::error::{Error, Result};
use crate::host::runbook::{DebugPackage, EMBEDDED, Runbooks};

#[derive(Debug, clap::Args)]
pub struct RunbooksArgs {
    /// Write the built-in runbook files into DIR, to edit them and use them with --runbooks DIR
    #[arg(long, value_name = "DIR")]
    pub export: Option<PathBuf>,
}

/// `--json`: `docs/json.md`, "runbooks".
#[derive(serde::Serialize)]
struct RunbooksJson<'a> {
    #[serde(flatten)]
    runbooks: &'a Runbooks,
    /// None yet: a runbook that does not load is an error, not a warning.
    warnings: Vec<String>,
}

pub fn run(context: &Context, args: &RunbooksArgs) -> Result<()> {
    if let Some(dir) = &args.export {
        return export(context, dir);
    }
    let runbooks = Runbooks::load(context.opts.runbooks.as_deref())?;
    if context.opts.json {
        crate::output::print_json(&RunbooksJson {
            runbooks: &runbooks,
            warnings: Vec::new(),
        })?;
        return Ok(());
    }
    outln!(
        "Runbooks: {} (versions from {} on)",
        runbooks.source,
        runbooks.minimum
    );
    for era in &runbooks.eras {
        outln!("\n{} and later: {}", era.floor, era.name);
        outln!("  Debian          {}", era.debian);
        outln!("  archive         {}", shell::join(era.archive_template()));
        outln!(
            "  production      {}",
            shell::join(era.production_template())
        );
        outln!("  sources list    {}", era.sources_list);
        outln!("  packages        {}", era.base_packages.join(" "));
        let packages: Vec<String> = era.debug_packages().iter().map(describe_package).collect();
        outln!("  debug packages  {}", packages.join(", "));
        for note in &era.notes {
            outln!("  note            {note}");
        }
    }
    if !runbooks.holes.is_empty() {
        outln!("\nKnown holes on the public mirror:");
        for hole in &runbooks.holes {
            outln!("  {} to {}: {}", hole.from, hole.through, hole.reason);
        }
    }
    Ok(())
}

fn describe_package(package: &DebugPackage) -> String {
    match (&package.from, &package.before) {
        (Some(from), Some(before)) => format!("{} ({from} to before {before})", package.name),
        (Some(from), None) => format!("{} (from {from})", package.name),
        (None, Some(before)) => format!("{} (before {before})", package.name),
        (None, None) => package.name.clone(),
    }
}

/// Writes the built-in files, refusing to overwrite an edited copy.
fn export(context: &Context, dir: &Path) -> Result<()> {
    for (name, _) in EMBEDDED {
        let path = dir.join(name);
        if path.exists() {
            return Err(Error::bad_input(format!(
                "{} already exists; remove it or export into another directory",
                path.display()
            )));
        }
    }
    if context.dry_run() {
        outln!("mkdir -p {}", shell::quote(&dir.display().to_string()));
        for (name, _) in EMBEDDED {
            outln!(
                "# write the built-in {name} to {}",
                dir.join(name).display()
            );
        }
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(|source| Error::write(dir, source))?;
    for (name, text) in EMBEDDED {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|source| Error::write(&path, source))?;
        errln!("wrote {}", path.display());
    }
    errln!(
        "Edit them, then use them with: wazo-astdebug --runbooks {} ...",
        shell::quote(&dir.display().to_string())
    );
    Ok(())
}
