//! The tar.gz itself: written to a temporary file beside the run
//! directory and renamed at the end, so a failure or Ctrl-C never leaves a
//! partial `DIR.tar.gz` that someone could attach by mistake.
//!
//! Every entry is mode 0600 (0700 for a directory) whatever it was on the
//! server, with the mtime of its source. A file's content is compressed
//! apart while it is redacted, and spliced in after its header (see
//! [`gz`]).

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::Path;
use std::time::UNIX_EPOCH;

use tempfile::NamedTempFile;

use crate::error::{Error, Result};
use gz::{Compressed, GzWriter};

mod gz;
pub use gz::Apart;

/// The archive being written into the temporary file.
pub type Tar<'a> = tar::Builder<GzWriter<io::BufWriter<&'a File>>>;

/// The temporary bundle, and a scratch file for each file's compressed
/// content.
pub fn create(parent: &Path, name: &str) -> Result<(NamedTempFile, File)> {
    // Same directory as the bundle, so the final rename is atomic; 0600 and
    // removed on drop, so an error or Ctrl-C leaves nothing behind.
    let temp = tempfile::Builder::new()
        .prefix(&format!(".{name}.tar.gz."))
        .suffix(".tmp")
        .tempfile_in(parent)
        .map_err(|error| Error::write(parent, error))?;
    // Compressed contents wait here (unnamed, 0600) because a tar header
    // needs the size before the content, and redaction changes the size.
    let scratch = tempfile::tempfile_in(parent).map_err(|error| Error::write(parent, error))?;
    Ok((temp, scratch))
}

pub fn builder(temp: &NamedTempFile) -> io::Result<Tar<'_>> {
    let out = io::BufWriter::with_capacity(1 << 16, temp.as_file());
    Ok(tar::Builder::new(GzWriter::new(out)?))
}

pub fn append_dir<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &Path,
    source: &Path,
) -> io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Directory);
    header.set_size(0);
    header.set_mode(0o700);
    header.set_mtime(mtime(source));
    tar.append_data(&mut header, path, io::empty())
}

/// A regular file of `size` bytes read from `content`, with the mtime of
/// `source`.
pub fn append_file<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &Path,
    size: u64,
    source: &Path,
    content: impl Read,
) -> io::Result<()> {
    tar.append_data(&mut file_header(size, source), path, content)
}

/// A regular file of `size` bytes that `compressed` holds in `scratch`.
pub fn append_compressed(
    tar: &mut Tar<'_>,
    path: &Path,
    size: u64,
    source: &Path,
    compressed: Compressed,
    scratch: &File,
) -> io::Result<()> {
    // The header (and a long name's entry) through tar, then the content
    // as it is: tar pads only what it copied itself, here nothing.
    tar.append_data(&mut file_header(size, source), path, io::empty())?;
    let out = tar.get_mut();
    out.splice(compressed, scratch)?;
    let pad = (512 - size % 512) % 512;
    out.write_all(&[0; 512][..pad as usize])
}

fn file_header(size: u64, source: &Path) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(size);
    header.set_mode(0o600);
    header.set_mtime(mtime(source));
    header
}

/// Ends the archive and syncs it; returns its size.
pub fn finish(tar: Tar<'_>) -> io::Result<u64> {
    let buffered = tar.into_inner().and_then(GzWriter::finish)?;
    let file = buffered.into_inner().map_err(|error| error.into_error())?;
    file.sync_all()?;
    Ok(file.metadata()?.len())
}

/// Renames the finished bundle into place.
pub fn persist(temp: NamedTempFile, bundle: &Path, force: bool) -> Result<()> {
    let persisted = if force {
        temp.persist(bundle)
    } else {
        // Refuse to clobber a bundle that appeared while we were packing.
        temp.persist_noclobber(bundle)
    };
    persisted.map_err(|error| Error::write(bundle, error.error))?;
    Ok(())
}

fn mtime(path: &Path) -> u64 {
    fs::metadata(path)
        .and_then(|meta| meta.modified())
        .ok()
        .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |since| since.as_secs())
}
