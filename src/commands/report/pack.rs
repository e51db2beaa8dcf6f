//! One file into the bundle: what it is, from its first bytes, and its
//! redacted copy.
//!
//! A core is recognised by its ELF header whatever its name, and so is a
//! core compressed, appended to a log or inside a file that turns binary;
//! text is redacted while it streams (then masked, with `--mask-ids`), so
//! a gigabyte log needs no more memory than a short one; a rotated log
//! (`full.2.gz`) goes in redacted and recompressed. What cannot be checked
//! stays out, with the reason.

use std::collections::BTreeMap;
use std::io::{self, BufReader, Cursor, Read, Write};
use std::path::Path;

use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use serde::Serialize;

use crate::engine::interrupt::Interrupt;
use crate::error::{Error, Result};
use crate::evidence::binary::{self, TextGuard, Verdict};
use crate::evidence::elf::{self, ElfKind};
use crate::evidence::mask::{Masker, MaskingWriter};
use crate::evidence::redact::{self, Counts};

/// How much of a file is looked at to tell text from binary.
const SNIFF_LEN: u64 = 8192;

/// A file that went in: what the summary and `REDACTIONS.txt` say of it.
#[derive(Debug, Serialize)]
pub struct Included {
    pub path: String,
    pub kind: &'static str,
    pub bytes: u64,
    pub redactions: u64,
    /// The redactions by kind (`credential`, `sip-digest`, ...).
    pub redactions_by_kind: BTreeMap<&'static str, u64>,
    #[serde(skip)]
    pub counts: Counts,
    /// With `--mask-ids`: how many identifiers became placeholders.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub masked_ids: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// What happened to one file.
pub enum Outcome {
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

/// What the first bytes of a file say about it. Images (a lock graph drawn
/// by graphviz, a screenshot) are the only binaries let in: someone put
/// them there to be seen, and they cannot carry process memory. Anything
/// compressed other than gzip cannot be checked, so it stays out.
pub enum Sniff {
    Elf(ElfKind),
    Gzip,
    Image(&'static str),
    Text,
    Binary(String),
}

pub fn sniff(head: &[u8]) -> Sniff {
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
pub fn pack_file<W: Write>(
    path: &Path,
    out: &mut W,
    out_path: &Path,
    interrupt: &Interrupt,
    masker: &mut Option<Masker>,
) -> Result<Outcome> {
    let masked_before = masker.as_ref().map(Masker::masked);
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
        crate::host::read_buffer::AlignedReader::with_capacity(1 << 16, reader),
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
