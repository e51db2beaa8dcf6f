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
//!   so a gigabyte log needs no more memory than a short one;
//! - the bundle is written mode 0600 to a temporary file beside DIR and
//!   renamed at the end, so a failure or Ctrl-C never leaves a partial
//!   `DIR.tar.gz` that someone could attach by mistake.

use std::fmt::Write as _;
use std::fs;
use std::io::{self, BufReader, Cursor, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use serde::Serialize;

use crate::context::{Context, DEFAULT_OUTPUT_BASE};
use crate::engine::interrupt::Interrupt;
use crate::error::{Error, Result};
use crate::evidence::binary::{self, TextGuard, Verdict};
use crate::evidence::elf::{self, ElfKind};
use crate::evidence::mask::{Masker, MaskingWriter};
use crate::evidence::redact::{self, Counts};

/// The doc's warning, repeated every time a bundle is made.
pub const CORE_REMINDER: &str = "DO NOT attach the core file publicly! It may contain sensitive \
    information like passwords and should only be shared with people you trust.";

/// How much of a file is looked at to tell text from binary.
const SNIFF_LEN: u64 = 8192;

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

#[derive(Debug, Serialize)]
struct Included {
    path: String,
    kind: &'static str,
    bytes: u64,
    redactions: u64,
    /// The redactions by kind (`credential`, `sip-digest`, ...).
    redactions_by_kind: std::collections::BTreeMap<&'static str, u64>,
    #[serde(skip)]
    counts: Counts,
    /// With `--mask-ids`: how many identifiers became placeholders.
    #[serde(skip_serializing_if = "Option::is_none")]
    masked_ids: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

#[derive(Debug, Serialize)]
struct LeftOut {
    path: String,
    reason: String,
}

#[derive(Debug, Serialize)]
struct Summary {
    dir: String,
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
        dir: dir.display().to_string(),
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
                    context,
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

/// The newest `<YYYYMMDD-HHMMSS>-<hostname>` directory under `base`, by
/// modification time (a run touched later, e.g. by a second `crash` into
/// the same directory, is the one the engineer is working on).
pub fn newest_run_dir(base: &Path) -> Result<PathBuf> {
    let read = fs::read_dir(base).map_err(|error| {
        if error.kind() == io::ErrorKind::NotFound {
            Error::bad_input(format!(
                "no run directory: {} does not exist. Name the directory to pack \
                 (`wazo-astdebug report DIR`), or run a command that collects data first",
                base.display()
            ))
        } else {
            Error::read(base, error)
        }
    })?;
    let newest = read
        .filter_map(|entry| entry.ok())
        .filter(|entry| is_run_name(&entry.file_name().to_string_lossy()))
        .filter_map(|entry| {
            let meta = entry.path().symlink_metadata().ok()?;
            meta.is_dir()
                .then(|| (meta.modified().unwrap_or(UNIX_EPOCH), entry.file_name()))
        })
        .max();
    match newest {
        Some((_, name)) => Ok(base.join(name)),
        None => Err(Error::bad_input(format!(
            "no run directory (named YYYYMMDD-HHMMSS-HOSTNAME) under {}. Name the directory \
             to pack: `wazo-astdebug report DIR`",
            base.display()
        ))),
    }
}

fn is_run_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    bytes.len() > 16
        && bytes[..8].iter().all(u8::is_ascii_digit)
        && bytes[8] == b'-'
        && bytes[9..15].iter().all(u8::is_ascii_digit)
        && bytes[15] == b'-'
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

enum Entry {
    Dir { path: PathBuf, relative: PathBuf },
    File { path: PathBuf, relative: PathBuf },
}

/// Lists what can go in, sorted by name so that bundles are reproducible.
/// Symlinks are never followed: one could point at /etc/shadow.
fn walk(dir: &Path, relative: &Path, entries: &mut Vec<Entry>, left_out: &mut Vec<LeftOut>) {
    let mut children: Vec<_> = match fs::read_dir(dir) {
        Ok(read) => read.filter_map(|entry| entry.ok()).collect(),
        Err(error) => {
            left_out.push(left(
                relative,
                format!("cannot read this directory: {error}"),
            ));
            return;
        }
    };
    children.sort_by_key(|entry| entry.file_name());
    for child in children {
        let path = child.path();
        let child_relative = relative.join(child.file_name());
        let file_type = match path.symlink_metadata() {
            Ok(meta) => meta.file_type(),
            Err(error) => {
                left_out.push(left(&child_relative, format!("cannot read: {error}")));
                continue;
            }
        };
        if file_type.is_dir() {
            entries.push(Entry::Dir {
                path: path.clone(),
                relative: child_relative.clone(),
            });
            walk(&path, &child_relative, entries, left_out);
        } else if file_type.is_file() {
            entries.push(Entry::File {
                path,
                relative: child_relative,
            });
        } else {
            let what = match () {
                _ if file_type.is_symlink() => "symbolic link, not followed (it may point outside)",
                _ if file_type.is_fifo() => "not a regular file (named pipe)",
                _ if file_type.is_socket() => "not a regular file (socket)",
                _ => "not a regular file (device)",
            };
            left_out.push(left(&child_relative, what.to_string()));
        }
    }
}

fn left(relative: &Path, reason: String) -> LeftOut {
    LeftOut {
        path: relative.display().to_string(),
        reason,
    }
}

/// What happened to one file.
enum Outcome {
    /// Its path and size are filled in by the caller.
    Packed(Included),
    LeftOut(String),
}

fn packed(kind: &'static str, counts: Counts, note: Option<String>) -> Outcome {
    Outcome::Packed(Included {
        path: String::new(),
        kind,
        bytes: 0,
        redactions: counts.total(),
        redactions_by_kind: counts
            .nonzero()
            .map(|(kind, count)| (kind.name(), count))
            .collect(),
        counts,
        masked_ids: None,
        note,
    })
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
    // Same directory as the bundle, so the final rename is atomic; 0600 and
    // removed on drop, so an error or Ctrl-C leaves nothing behind.
    let temp = tempfile::Builder::new()
        .prefix(&format!(".{name}.tar.gz."))
        .suffix(".tmp")
        .tempfile_in(parent)
        .map_err(|error| Error::write(parent, error))?;
    let temp_path = temp.path().to_path_buf();
    let write_error = |error: io::Error| Error::write(&temp_path, error);
    // Redacted copies are staged here (unnamed, 0600) because a tar header
    // needs the size before the content, and redaction changes the size.
    let mut scratch = tempfile::tempfile_in(parent).map_err(|error| Error::write(parent, error))?;

    let encoder = GzEncoder::new(io::BufWriter::new(temp.as_file()), Compression::default());
    let mut tar = tar::Builder::new(encoder);
    append_dir(&mut tar, Path::new(name), dir).map_err(write_error)?;
    for entry in entries {
        context.interrupt.check()?;
        match entry {
            Entry::Dir { path, relative } => {
                append_dir(&mut tar, &Path::new(name).join(relative), path).map_err(write_error)?;
            }
            Entry::File { path, relative } => {
                scratch.set_len(0).map_err(write_error)?;
                scratch.seek(SeekFrom::Start(0)).map_err(write_error)?;
                let outcome = pack_file(path, &mut scratch, &temp_path, context, masker)?;
                if let Outcome::Packed(Included { bytes, .. }) = &outcome {
                    scratch.seek(SeekFrom::Start(0)).map_err(write_error)?;
                    let mut header = tar::Header::new_gnu();
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_size(*bytes);
                    header.set_mode(0o600);
                    header.set_mtime(mtime(path));
                    tar.append_data(
                        &mut header,
                        Path::new(name).join(relative),
                        (&scratch).take(*bytes),
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
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(list.len() as u64);
    header.set_mode(0o600);
    header.set_mtime(mtime(dir));
    tar.append_data(
        &mut header,
        Path::new(name).join(REDACTIONS),
        list.as_bytes(),
    )
    .map_err(write_error)?;
    let buffered = tar
        .into_inner()
        .and_then(GzEncoder::finish)
        .map_err(write_error)?;
    let file = buffered
        .into_inner()
        .map_err(|error| write_error(error.into_error()))?;
    file.sync_all().map_err(write_error)?;
    let size = file.metadata().map_err(write_error)?.len();
    let persisted = if force {
        temp.persist(bundle)
    } else {
        // Refuse to clobber a bundle that appeared while we were packing.
        temp.persist_noclobber(bundle)
    };
    persisted.map_err(|error| Error::write(bundle, error.error))?;
    Ok(size)
}

fn append_dir<W: Write>(tar: &mut tar::Builder<W>, path: &Path, source: &Path) -> io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Directory);
    header.set_size(0);
    header.set_mode(0o700);
    header.set_mtime(mtime(source));
    tar.append_data(&mut header, path, io::empty())
}

fn mtime(path: &Path) -> u64 {
    fs::metadata(path)
        .and_then(|meta| meta.modified())
        .ok()
        .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |since| since.as_secs())
}

/// What the first bytes of a file say about it. Images (a lock graph drawn
/// by graphviz, a screenshot) are the only binaries let in: someone put
/// them there to be seen, and they cannot carry process memory. Anything
/// compressed other than gzip cannot be checked, so it stays out.
enum Sniff {
    Elf(ElfKind),
    Gzip,
    Image(&'static str),
    Text,
    Binary(String),
}

fn sniff(head: &[u8]) -> Sniff {
    if let Some(kind) = elf::classify(head) {
        return Sniff::Elf(kind);
    }
    if head.starts_with(elf::MAGIC) {
        return Sniff::Binary("ELF-like binary with a damaged header (may be a core)".into());
    }
    if head.starts_with(b"\x1f\x8b") {
        return Sniff::Gzip;
    }
    for (magic, what) in [
        (&b"\x89PNG\r\n\x1a\n"[..], "PNG image"),
        (b"\xff\xd8\xff", "JPEG image"),
        (b"GIF87a", "GIF image"),
        (b"GIF89a", "GIF image"),
    ] {
        if head.starts_with(magic) {
            return Sniff::Image(what);
        }
    }
    for (magic, what) in [
        (&b"\x28\xb5\x2f\xfd"[..], "zstd"),
        (b"\xfd7zXZ\x00", "xz"),
        (b"BZh", "bzip2"),
        (b"PK\x03\x04", "zip"),
        (b"7z\xbc\xaf\x27\x1c", "7-zip"),
    ] {
        if head.starts_with(magic) {
            return Sniff::Binary(format!(
                "{what}-compressed: cannot be checked for a core or for secrets; \
                 decompress it into the run directory and run report again"
            ));
        }
    }
    let controls = binary::controls(head);
    if head.contains(&0) || controls * 10 > head.len() {
        return Sniff::Binary("binary file (unknown format: could hold memory or secrets)".into());
    }
    Sniff::Text
}

/// Writes what goes in the bundle for the file at `path` into `out`
/// (`out_path` names it in errors). A file that cannot be read is left
/// out; a failure to write (a full disk) or Ctrl-C stops the bundle.
fn pack_file<W: Write>(
    path: &Path,
    out: &mut W,
    out_path: &Path,
    context: &Context,
    masker: &mut Option<Masker>,
) -> Result<Outcome> {
    let masked_before = masker.as_ref().map(Masker::masked);
    let interrupt = &context.interrupt;
    // The run directory may be another account's: no symlink swapped in after the walk.
    let file = match crate::host::files::open_untrusted(path) {
        Ok(file) => file,
        Err(error) => return Ok(Outcome::LeftOut(format!("cannot read: {error}"))),
    };
    let mut file = BufReader::with_capacity(1 << 16, file);
    let head = match read_head(&mut file) {
        Ok(head) => head,
        Err(error) => return Ok(Outcome::LeftOut(format!("cannot read: {error}"))),
    };
    let mut out = Counted {
        inner: out,
        bytes: 0,
        failed: false,
    };
    let result = match sniff(&head) {
        Sniff::Elf(ElfKind::Core) => {
            return Ok(Outcome::LeftOut(format!(
                "{} (found by its header, whatever its name): share it only with people you trust",
                ElfKind::Core.describe()
            )));
        }
        Sniff::Elf(kind) => return Ok(Outcome::LeftOut(format!("{}: binary", kind.describe()))),
        Sniff::Binary(why) => return Ok(Outcome::LeftOut(why)),
        Sniff::Image(what) => io::copy(&mut Cursor::new(head).chain(file), &mut out)
            .map(|_| packed(what, Counts::default(), None)),
        Sniff::Text => redact_text(
            Cursor::new(head).chain(file),
            &mut out,
            interrupt,
            "text",
            masker,
        ),
        Sniff::Gzip => pack_gzip(Cursor::new(head).chain(file), &mut out, interrupt, masker),
    };
    if interrupt.received().is_some() {
        return Err(Error::Interrupted);
    }
    match result {
        Ok(Outcome::Packed(included)) => Ok(Outcome::Packed(Included {
            bytes: out.bytes,
            masked_ids: masked_before
                .zip(masker.as_ref().map(Masker::masked))
                .map(|(before, after)| after - before),
            ..included
        })),
        Ok(left_out) => Ok(left_out),
        Err(error) if out.failed => Err(Error::write(out_path, error)),
        Err(error) => Ok(Outcome::LeftOut(format!("cannot read: {error}"))),
    }
}

fn read_head(reader: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(SNIFF_LEN as usize);
    reader.take(SNIFF_LEN).read_to_end(&mut head)?;
    Ok(head)
}

/// Redacts line by line, and gives up on a file that turns out to carry
/// a core further on (a core appended to a log, an uncompressed tar); a
/// file that turns binary (process memory after a backtrace, the NULs of a
/// truncated write) goes in up to there only, with a note.
fn redact_text(
    reader: impl Read,
    out: &mut impl Write,
    interrupt: &Interrupt,
    kind: &'static str,
    masker: &mut Option<Masker>,
) -> io::Result<Outcome> {
    let mut core_at = None;
    let mut binary_at = None;
    let mut guard = TextGuard::new();
    let mut seen = 0u64;
    let mut masking;
    let writer: &mut dyn Write = match masker {
        Some(masker) => {
            // After redaction: a secret never becomes a placeholder.
            masking = MaskingWriter::new(&mut *out, masker, redact::MAX_LINE);
            &mut masking
        }
        None => &mut *out,
    };
    let copied = redact::redact_stream_checked(
        BufReader::with_capacity(1 << 16, reader),
        writer,
        |line, offset| {
            match guard.check(line, offset) {
                Verdict::Text => {}
                Verdict::Core(at) => {
                    core_at = Some(at);
                    return Err(io::Error::other("an ELF core header inside"));
                }
                Verdict::Binary(at, why) => {
                    binary_at = Some((at, why));
                    return Ok(false);
                }
            }
            seen += 1;
            if seen % 65_536 == 0 && interrupt.received().is_some() {
                return Err(io::Error::new(io::ErrorKind::Interrupted, "interrupted"));
            }
            Ok(true)
        },
    );
    if let Some(at) = core_at {
        return Ok(Outcome::LeftOut(format!(
            "text with an ELF core header inside (at byte {at}): share it only with people you trust"
        )));
    }
    let stats = copied?;
    let mut notes = Vec::new();
    if let Some((at, why)) = binary_at {
        notes.push(format!(
            "turns binary at byte {at} ({why}): only the text before it is in the bundle, \
             the rest (process memory or a damaged write) was left out"
        ));
    }
    if stats.long_lines > 0 {
        notes.push(format!(
            "{} line(s) over 1 MiB were redacted in pieces: check them by hand",
            stats.long_lines
        ));
    }
    let note = (!notes.is_empty()).then(|| notes.join("; "));
    Ok(packed(kind, stats.counts, note))
}

/// A rotated log (`full.2.gz`) goes in redacted and recompressed, under
/// its own name; a compressed core is still a core.
fn pack_gzip(
    reader: impl Read,
    out: &mut impl Write,
    interrupt: &Interrupt,
    masker: &mut Option<Masker>,
) -> io::Result<Outcome> {
    let mut decoder = MultiGzDecoder::new(reader);
    let head = read_head(&mut decoder)?;
    match sniff(&head) {
        Sniff::Text => {
            let mut encoder = GzEncoder::new(out, Compression::default());
            let outcome = redact_text(Cursor::new(head).chain(decoder), &mut encoder, interrupt, "gzip text", masker)?;
            encoder.finish()?;
            Ok(match outcome {
                Outcome::LeftOut(why) => Outcome::LeftOut(format!("gzip-compressed {why}")),
                packed => packed,
            })
        }
        Sniff::Elf(ElfKind::Core) => Ok(Outcome::LeftOut(
            "gzip-compressed ELF core file (found by its header): share it only with people you trust".into(),
        )),
        Sniff::Elf(kind) => Ok(Outcome::LeftOut(format!("gzip-compressed {}: binary", kind.describe()))),
        _ => Ok(Outcome::LeftOut(
            "gzip-compressed binary (e.g. a tar): cannot be checked for a core or for secrets; \
             unpack it into the run directory and run report again"
                .into(),
        )),
    }
}

/// Counts what is written, and remembers whether the *writer* failed, to
/// tell a full disk (fatal) from an unreadable input (one file left out).
struct Counted<'a, W> {
    inner: &'a mut W,
    bytes: u64,
    failed: bool,
}

impl<W: Write> Write for Counted<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf).inspect_err(|_| self.failed = true)?;
        self.bytes += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush().inspect_err(|_| self.failed = true)
    }
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
