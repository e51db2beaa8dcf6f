//! `wazo-astdebug report [DIR]`: pack a run directory for the bug tracker.
//!
//! The doc's last step is "attach logs and backtrace to the ticket", and
//! its loudest warning is "DO NOT attach the core file publicly". On a PBX
//! that just crashed, the run directory holds both, side by side, next to
//! logs full of SIP passwords; `wazo-debug collect` would tar them all
//! as they are. This command makes the safe bundle the easy one:
//!
//! - a core file is recognised by its ELF header, never by its name, and
//!   left out; so is any other binary that is not known to be harmless, and
//!   anything that is not a regular file (a symlink could point at /etc);
//! - every text file is redacted while it streams (see [`crate::evidence::redact`]),
//!   so a gigabyte log needs no more memory than a short one, and compressed
//!   on a second thread meanwhile: with two cores, about as long as gzip;
//! - the bundle is written mode 0600 to a temporary file beside DIR and
//!   renamed at the end, so a failure or Ctrl-C never leaves a partial
//!   `DIR.tar.gz` that someone could attach by mistake.
//!
//! The pieces: `run_dir` finds the run directory and walks it, `pack`
//! turns each file into what goes in (or the reason it stays out),
//! `tar_gz` writes the archive (its `gz`, the gzip stream: each file
//! compressed on a second thread); this file decides and prints the summary.

mod pack;
mod run_dir;
mod tar_gz;

use std::fmt::Write as _;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::context::{Context, DEFAULT_OUTPUT_BASE};
use crate::error::{Error, Result};
use crate::evidence::mask::Masker;
use crate::evidence::redact::Counts;
use pack::{Included, Outcome, pack_file};
pub use run_dir::newest_run_dir;
use run_dir::{Entry, LeftOut, is_run_name, left, walk};
use tar_gz::Apart;

/// The doc's warning, repeated every time a bundle is made.
pub const CORE_REMINDER: &str = "DO NOT attach the core file publicly! It may contain sensitive \
    information like passwords and should only be shared with people you trust.";

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The run directory to pack [default: --output-dir if given, else the newest run
    /// directory under /var/local/wazo-astdebug]
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// Replace DIR.tar.gz if it exists (without it, an existing bundle is kept, as it may be
    /// the one already attached to the ticket, and nothing is written)
    #[arg(long)]
    pub force: bool,

    /// Also replace IP addresses, host names, phone numbers and SIP URIs' user parts with
    /// placeholders (ip-1, host-1, phone-1, user-1), the same value getting the same one in
    /// every file; the map is written beside the bundle (DIR.mask-map.txt, mode 0600), never
    /// into it
    #[arg(long)]
    pub mask_ids: bool,
}

/// `--json`: `docs/json.md`, "report".
#[derive(Debug, Serialize)]
struct Summary {
    /// The run directory packed.
    run_dir: String,
    bundle: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    bundle_bytes: Option<u64>,
    dry_run: bool,
    included: Vec<Included>,
    left_out: Vec<LeftOut>,
    redactions: u64,
    redactions_by_kind: std::collections::BTreeMap<&'static str, u64>,
    #[serde(skip)]
    counts: Counts,
    /// With `--mask-ids`: identifiers masked, and where the map is.
    #[serde(skip_serializing_if = "Option::is_none")]
    masked_ids: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mask_map: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    notes: Vec<String>,
    reminder: &'static str,
    /// What the text summary calls a warning: each file's note, with its path.
    warnings: Vec<String>,
}

pub fn run(context: &Context, args: &ReportArgs) -> Result<()> {
    let dir = resolve_dir(context, args)?;
    let (name, parent) = name_and_parent(&dir)?;
    let bundle = parent.join(format!("{name}.tar.gz"));
    let mut notes = Vec::new();
    if bundle.exists() && !args.force {
        if !context.opts.dry_run {
            return Err(Error::bad_input(format!(
                "{} already exists (it may be the bundle already attached to the ticket); \
                 nothing was written. Add --force to replace it, or move it away",
                bundle.display()
            )));
        }
        notes.push(format!(
            "{} exists: packing would need --force",
            bundle.display()
        ));
    }

    let mut left_out = Vec::new();
    let mut entries = Vec::new();
    walk(&dir, Path::new(""), &mut entries, &mut left_out);
    entries.retain(|entry| match entry {
        Entry::File { relative, .. } if relative == Path::new(REDACTIONS) => {
            left_out.push(left(
                relative,
                format!("the bundle's own {REDACTIONS} (what was redacted) takes this name"),
            ));
            false
        }
        _ => true,
    });

    let mut summary = Summary {
        run_dir: dir.display().to_string(),
        bundle: bundle.display().to_string(),
        bundle_bytes: None,
        dry_run: context.opts.dry_run,
        included: Vec::new(),
        left_out,
        redactions: 0,
        redactions_by_kind: Default::default(),
        counts: Counts::default(),
        masked_ids: None,
        mask_map: None,
        notes,
        reminder: CORE_REMINDER,
        warnings: Vec::new(),
    };
    let mut masker = args.mask_ids.then(Masker::new);
    // The run directory's name ends with the host name: masked inside the
    // files and as the bundle's top directory.
    let top = match masker.as_mut() {
        Some(masker) if is_run_name(&name) => {
            let host = masker.host(&name.as_bytes()[16..]);
            format!("{}{}", &name[..16], String::from_utf8_lossy(&host))
        }
        _ => name.clone(),
    };
    if context.opts.dry_run {
        for entry in &entries {
            if let Entry::File { path, relative } = entry {
                context.interrupt.check()?;
                let outcome = pack_file(
                    path,
                    &mut io::sink(),
                    Path::new("/dev/null"),
                    &context.interrupt,
                    &mut masker,
                )?;
                record(&mut summary, relative, outcome);
            }
        }
        summary.masked_ids = masker.as_ref().map(Masker::masked);
        total(&mut summary);
    } else {
        let target = Target {
            dir: &dir,
            name: &top,
            parent: &parent,
            bundle: &bundle,
            force: args.force,
        };
        let size = write_bundle(context, &entries, &target, &mut summary, &mut masker)?;
        summary.bundle_bytes = Some(size);
        if let Some(masker) = &masker {
            let map = parent.join(format!("{name}.mask-map.txt"));
            write_private(&map, masker.map_text().as_bytes())?;
            summary.mask_map = Some(map.display().to_string());
        }
    }
    print_summary(context, &summary)
}

/// Writes a file only root reads (the mask map: it undoes the masking).
fn write_private(path: &Path, content: &[u8]) -> Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let write = || -> io::Result<()> {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)?;
        // An older map may have had another mode.
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
        file.write_all(content)?;
        file.sync_all()
    };
    write().map_err(|error| Error::write(path, error))
}

/// The name of the list of redactions at the top of the bundle.
const REDACTIONS: &str = "REDACTIONS.txt";

/// Totals by kind, and the left-out files in name order.
fn total(summary: &mut Summary) {
    let mut counts = Counts::default();
    for file in &summary.included {
        counts.merge(&file.counts);
    }
    summary.redactions = counts.total();
    summary.counts = counts;
    summary.warnings = summary
        .included
        .iter()
        .filter_map(|file| Some(format!("{}: {}", file.path, file.note.as_ref()?)))
        .collect();
    summary.redactions_by_kind = counts
        .nonzero()
        .map(|(kind, count)| (kind.name(), count))
        .collect();
    summary
        .left_out
        .sort_by(|left, right| left.path.cmp(&right.path));
}

/// `REDACTIONS.txt`: what was hidden, per file and kind, and what was left
/// out; counts only, never a value.
fn redactions_text(summary: &Summary) -> String {
    let mut text = String::from(
        "What `wazo-astdebug report` hid in this bundle. Counts only: no hidden value is \
         in this bundle.\nEach value was replaced by [REDACTED]; its key and the \
         structure around it were kept.\n\n",
    );
    let _ = writeln!(
        text,
        "Total: {} value(s) redacted ({}).\n",
        summary.redactions,
        summary.counts.describe()
    );
    let _ = writeln!(text, "Files ({}):", summary.included.len());
    for file in &summary.included {
        let _ = writeln!(
            text,
            "  {}: {} ({})",
            file.path,
            file.redactions,
            file.counts.describe()
        );
        if let Some(note) = &file.note {
            let _ = writeln!(text, "      note: {note}");
        }
    }
    if let Some(masked) = summary.masked_ids {
        let _ = writeln!(
            text,
            "\nIdentifiers masked (--mask-ids): {masked} IP addresses, host names, phone numbers \
             and SIP users became placeholders; the map is not in this bundle."
        );
    }
    let _ = writeln!(text, "\nLeft out ({}):", summary.left_out.len());
    for file in &summary.left_out {
        let _ = writeln!(text, "  {}: {}", file.path, file.reason);
    }
    text.push_str(
        "\nRedaction hides the secret patterns it knows (see README.md, `report`): read the \
         bundle before attaching it.\n",
    );
    text
}

/// DIR as given, else `--output-dir`, else the newest run directory.
fn resolve_dir(context: &Context, args: &ReportArgs) -> Result<PathBuf> {
    let dir = match (&args.dir, &context.opts.output_dir) {
        (Some(dir), _) | (None, Some(dir)) => dir.clone(),
        (None, None) => newest_run_dir(Path::new(DEFAULT_OUTPUT_BASE))?,
    };
    match fs::metadata(&dir) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => Err(Error::bad_input(format!(
            "{} does not exist; give the run directory to pack, \
             e.g. `wazo-astdebug report {DEFAULT_OUTPUT_BASE}/20261128-045500-wazo`",
            dir.display()
        ))),
        Err(error) => Err(Error::read(&dir, error)),
        Ok(meta) if !meta.is_dir() => Err(Error::bad_input(format!(
            "{} is not a directory; `report` packs a run directory (the directory that holds \
             the backtraces and logs), not a single file",
            dir.display()
        ))),
        Ok(_) => fs::canonicalize(&dir).map_err(|error| Error::read(&dir, error)),
    }
}

fn name_and_parent(dir: &Path) -> Result<(String, PathBuf)> {
    match (dir.file_name(), dir.parent()) {
        (Some(name), Some(parent)) => {
            Ok((name.to_string_lossy().into_owned(), parent.to_path_buf()))
        }
        _ => Err(Error::bad_input(format!(
            "{} has no name to give the bundle; give a run directory, not /",
            dir.display()
        ))),
    }
}

fn record(summary: &mut Summary, relative: &Path, outcome: Outcome) {
    let path = relative.display().to_string();
    match outcome {
        Outcome::Packed(included) => summary.included.push(Included { path, ..included }),
        Outcome::LeftOut(reason) => summary.left_out.push(LeftOut { path, reason }),
    }
}

/// Where the bundle goes: `parent/name.tar.gz`, with `name/` on top.
struct Target<'a> {
    dir: &'a Path,
    name: &'a str,
    parent: &'a Path,
    bundle: &'a Path,
    force: bool,
}

fn write_bundle(
    context: &Context,
    entries: &[Entry],
    target: &Target,
    summary: &mut Summary,
    masker: &mut Option<Masker>,
) -> Result<u64> {
    let Target {
        dir,
        name,
        parent,
        bundle,
        force,
    } = *target;
    let (temp, scratch) = tar_gz::create(parent, name)?;
    let temp_path = temp.path().to_path_buf();
    let write_error = |error: io::Error| Error::write(&temp_path, error);

    let mut tar = tar_gz::builder(&temp).map_err(write_error)?;
    tar_gz::append_dir(&mut tar, Path::new(name), dir).map_err(write_error)?;
    for entry in entries {
        context.interrupt.check()?;
        match entry {
            Entry::Dir { path, relative } => {
                tar_gz::append_dir(&mut tar, &Path::new(name).join(relative), path)
                    .map_err(write_error)?;
            }
            Entry::File { path, relative } => {
                scratch.set_len(0).map_err(write_error)?;
                let mut apart = Apart::new(&scratch).map_err(write_error)?;
                let outcome = pack_file(path, &mut apart, &temp_path, &context.interrupt, masker)?;
                if let Outcome::Packed(Included { bytes, .. }) = &outcome {
                    let compressed = apart.finish().map_err(write_error)?;
                    tar_gz::append_compressed(
                        &mut tar,
                        &Path::new(name).join(relative),
                        *bytes,
                        path,
                        compressed,
                        &scratch,
                    )
                    .map_err(write_error)?;
                }
                record(summary, relative, outcome);
            }
        }
    }
    summary.masked_ids = masker.as_ref().map(Masker::masked);
    total(summary);
    let list = redactions_text(summary);
    tar_gz::append_file(
        &mut tar,
        &Path::new(name).join(REDACTIONS),
        list.len() as u64,
        dir,
        list.as_bytes(),
    )
    .map_err(write_error)?;
    let size = tar_gz::finish(tar).map_err(write_error)?;
    tar_gz::persist(temp, bundle, force)?;
    Ok(size)
}

fn print_summary(context: &Context, summary: &Summary) -> Result<()> {
    if context.opts.json {
        crate::output::print_json(summary)?;
        return Ok(());
    }
    let plural = |count: usize, what: &str| match count {
        1 => format!("1 {what}"),
        count => format!("{count} {what}s"),
    };
    let (going_in, left_out) = match summary.dry_run {
        true => ("Would go in", "Would be left out"),
        false => ("Included", "Left out"),
    };
    let redactions = plural(summary.redactions as usize, "secret");
    let files = plural(summary.included.len(), "file");
    let mut text = format!("{going_in} ({files}, {redactions} redacted):\n");
    for file in &summary.included {
        let count = match file.redactions {
            0 => "nothing redacted".to_string(),
            count => format!(
                "{} redacted: {}",
                plural(count as usize, "secret"),
                file.counts.describe()
            ),
        };
        let masked = match file.masked_ids {
            Some(masked) if masked > 0 => {
                format!("; {} masked", plural(masked as usize, "identifier"))
            }
            _ => String::new(),
        };
        let _ = writeln!(text, "  {}  ({}; {count}{masked})", file.path, file.kind);
        if let Some(note) = &file.note {
            let _ = writeln!(text, "      warning: {note}");
        }
    }
    let _ = writeln!(text, "{left_out} ({}):", summary.left_out.len());
    for file in &summary.left_out {
        let _ = writeln!(text, "  {}  ({})", file.path, file.reason);
    }
    for note in &summary.notes {
        let _ = writeln!(text, "Note: {note}");
    }
    if let Some(masked) = summary.masked_ids {
        let map = match &summary.mask_map {
            Some(map) => {
                format!("the map stays on this server: {map} (mode 0600), not in the bundle")
            }
            None => "the map would stay on this server, not in the bundle".to_string(),
        };
        let _ = writeln!(
            text,
            "Masked {} (IP addresses, host names, phone numbers, SIP users); {map}",
            plural(masked as usize, "identifier")
        );
    }
    let _ = match summary.bundle_bytes {
        Some(bytes) => writeln!(
            text,
            "Bundle: {} ({}, mode 0600), with {REDACTIONS}: these counts, never the values",
            summary.bundle,
            human_size(bytes)
        ),
        None => writeln!(
            text,
            "Dry run: nothing written; the bundle would be {}, with {REDACTIONS}: these counts, \
             never the values",
            summary.bundle
        ),
    };
    text.push_str("Redaction hides known secret patterns only: look through the bundle before attaching it.\n");
    let _ = writeln!(text, "Reminder: {CORE_REMINDER}");
    out!("{text}");
    Ok(())
}

fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests;
