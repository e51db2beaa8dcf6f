//! The last minutes of Asterisk's `full` log before the freeze, read from
//! the log's tail so that a log of gigabytes costs no more than its end.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Local};

use crate::context::Context;
use crate::error::{Error, Result};
use crate::evidence::astlog;
use crate::host::sys::create_private;

/// The tail of `full` searched for the last minutes: bounded, whatever the log's size.
const LOG_TAIL_BYTES: u64 = 256 << 20;

/// The last `minutes` of `full`, up to now, streamed from its tail.
pub fn last_minutes(context: &Context, minutes: u64, out: &Path) -> Result<Option<PathBuf>> {
    let log = context.host.path(astlog::LOG_DIR).join("full");
    let Ok(mut file) = File::open(&log) else {
        return Ok(None);
    };
    let size = file
        .metadata()
        .map_err(|error| Error::read(&log, error))?
        .len();
    let mtime = file
        .metadata()
        .and_then(|m| m.modified())
        .ok()
        .map(DateTime::<Local>::from);
    let start = size.saturating_sub(LOG_TAIL_BYTES);
    file.seek(SeekFrom::Start(start))
        .map_err(|error| Error::read(&log, error))?;
    // A --log-minutes past chrono's range is "the whole tail", never a panic.
    let cutoff = i64::try_from(minutes)
        .ok()
        .and_then(chrono::Duration::try_minutes)
        .and_then(|span| Local::now().checked_sub_signed(span))
        .map(|cutoff| cutoff.fixed_offset())
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC.fixed_offset());
    let path = out.join(format!("asterisk-full-last-{minutes}min.log"));
    let mut writer = std::io::BufWriter::new(create_private(&path)?);
    let mut keeping = false;
    let mut first = start > 0;
    for line in BufReader::new(file).split(b'\n') {
        let line = line.map_err(|error| Error::read(&log, error))?;
        if std::mem::take(&mut first) {
            continue; // a partial line at the seek point
        }
        if let Some(time) = astlog::line_stamp(&line, mtime) {
            keeping = time >= cutoff;
        }
        if keeping {
            writer
                .write_all(&line)
                .and_then(|_| writer.write_all(b"\n"))
                .map_err(|error| Error::write(&path, error))?;
        }
    }
    writer.flush().map_err(|error| Error::write(&path, error))?;
    Ok(Some(path))
}
