//! Asterisk's `full` log, copied so that it really covers the incident.
//!
//! The doc says `cp -a /var/log/asterisk/full ...` and adds "make sure file
//! was not already logrotated". At night that check is the one forgotten:
//! `full` is rotated daily, so a crash before midnight is in `full.1`, or
//! `full.2.gz` a day later. We date each copy by its first line and take the
//! one(s) whose span holds the incident, decompressed, mode 0600.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use chrono::{DateTime, FixedOffset, Local};
use flate2::read::MultiGzDecoder;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::evidence::syslog::{self, stamp};
use crate::host::Host;
use crate::host::sys::create_private;

pub const LOG_DIR: &str = "/var/log/asterisk";
const LOG_NAME: &str = "full";
/// Lines read from the top of a log to find its first timestamp.
const HEAD_LINES: usize = 200;
/// Bytes read from the top of a log to find its first timestamp.
const HEAD_BYTES: u64 = 1 << 20;
/// An incident this close after a copy's first line may have its lead-up in
/// the older copy: take that one too.
const LEAD_UP_SECONDS: i64 = 30 * 60;

/// One copy of the log and the time its first line carries.
#[derive(Debug, Clone)]
pub struct LogCopy {
    pub path: PathBuf,
    pub starts: Option<DateTime<FixedOffset>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Copied {
    pub from: PathBuf,
    pub to: PathBuf,
    pub bytes: u64,
}

/// `full`, `full.1`, `full.2.gz`, ... newest first, each with its start time.
pub fn copies(host: &Host) -> Vec<LogCopy> {
    syslog::rotated_files(&host.path(LOG_DIR), LOG_NAME)
        .into_iter()
        .map(|path| LogCopy {
            starts: first_stamp(&path),
            path,
        })
        .collect()
}

/// The copies that hold `incident` (all of `full` when the time is unknown).
pub fn covering(copies: &[LogCopy], incident: Option<DateTime<FixedOffset>>) -> Vec<LogCopy> {
    let Some(incident) = incident else {
        return copies.iter().take(1).cloned().collect();
    };
    // Newest first: the first copy that started before the incident holds it.
    let Some(index) = copies
        .iter()
        .position(|copy| copy.starts.is_some_and(|starts| starts <= incident))
    else {
        // Older than every copy we can date: the oldest is the best we have.
        return copies.last().cloned().into_iter().collect();
    };
    let mut chosen = vec![copies[index].clone()];
    let close_to_start = copies[index]
        .starts
        .is_some_and(|starts| (incident - starts).num_seconds() < LEAD_UP_SECONDS);
    if close_to_start {
        if let Some(older) = copies.get(index + 1) {
            chosen.push(older.clone());
        }
    }
    chosen
}

/// Copies `copy` into `dir` as `<YYYYMMDD>-<host>-asterisk-full[.N].log`,
/// decompressing gzip, streaming (these logs can be gigabytes).
pub fn copy_into(copy: &LogCopy, dir: &Path, day: &str, hostname: &str) -> Result<Copied> {
    let to = dir.join(copy_name(copy, day, hostname));
    let mut reader = open(&copy.path)?;
    let mut writer = create_private(&to)?;
    let bytes = std::io::copy(&mut reader, &mut writer).map_err(|error| {
        let _ = std::fs::remove_file(&to);
        Error::read(&copy.path, error)
    })?;
    Ok(Copied {
        from: copy.path.clone(),
        to,
        bytes,
    })
}

/// The doc's name for the copy, `<YYYYMMDD>-<host>-asterisk-full.log`, with
/// the rotation number of a rotated copy (`full.2.gz` gives `...-full.2.log`).
pub fn copy_name(copy: &LogCopy, day: &str, hostname: &str) -> String {
    let suffix = copy
        .path
        .file_name()
        .and_then(|name| name.to_str())
        .and_then(|name| name.strip_prefix(LOG_NAME))
        .map(|rest| rest.trim_end_matches(".gz"))
        .unwrap_or_default();
    format!("{day}-{hostname}-asterisk-full{suffix}.log")
}

/// One copy of the log, plain or gzip (told by its first bytes, not its
/// name), opened as a file other accounts may have placed.
pub fn open(path: &Path) -> Result<Box<dyn Read>> {
    // /var/log/asterisk belongs to the account Asterisk runs as: no symlink out of it.
    let mut file = BufReader::new(crate::host::files::open_untrusted(path)?);
    let gzip = file
        .fill_buf()
        .map_err(|error| Error::read(path, error))?
        .starts_with(&[0x1f, 0x8b]);
    Ok(if gzip {
        Box::new(MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    })
}

/// The time of the first line that has one.
fn first_stamp(path: &Path) -> Option<DateTime<FixedOffset>> {
    let mtime = std::fs::metadata(path)
        .and_then(|metadata| metadata.modified())
        .ok()
        .map(DateTime::<Local>::from);
    // Bounded in bytes too: `split` holds a whole line, and a junk or
    // NUL-filled copy with no newline would be read whole into memory.
    let reader = BufReader::new(open(path).ok()?.take(HEAD_BYTES));
    reader
        .split(b'\n')
        .take(HEAD_LINES)
        .map_while(|line| line.ok())
        .find_map(|line| line_stamp(&line, mtime))
}

/// What Wazo's freeze check (xivo-res-freeze-check) logged before it
/// abort()ed Asterisk: the lock it could not take in 30 s (`the global
/// queues container lock`), or `None` when the log holds no such abort.
/// Streams the file (plain or gzip) in bounded memory.
pub fn freeze_check_lock(path: &Path) -> Option<String> {
    use std::io::BufRead;
    let file = std::fs::File::open(path).ok()?;
    let reader: Box<dyn std::io::Read> = if path.extension().is_some_and(|ext| ext == "gz") {
        Box::new(flate2::read::MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut lock = None;
    let mut aborted = false;
    for line in std::io::BufReader::new(reader)
        .split(b'\n')
        .map_while(|line| line.ok())
    {
        let line = String::from_utf8_lossy(&line);
        if let Some(rest) = line.split("failed to acquire ").nth(1) {
            if let Some(name) = rest.split(" in under").next() {
                lock = Some(name.trim().to_string());
            }
        }
        if line.contains("is most likely deadlocked: aborting") {
            aborted = true;
        }
    }
    aborted.then(|| lock.unwrap_or_else(|| "a lock it names in the log".to_string()))
}

/// `[2026-11-28 04:12:43.123] VERBOSE[...]` or `[Nov 28 04:12:43] ...`
/// (Asterisk's `dateformat`, ISO on Wazo, traditional by default).
pub fn line_stamp(line: &[u8], mtime: Option<DateTime<Local>>) -> Option<DateTime<FixedOffset>> {
    let inside = line.strip_prefix(b"[")?;
    let close = memchr::memchr(b']', inside)?;
    let stamp = &inside[..close];
    stamp::parse_iso(stamp)
        .or_else(|| stamp::parse_bsd(stamp, mtime))
        .map(|(time, _)| time)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(text: &str) -> DateTime<FixedOffset> {
        let naive = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").unwrap();
        Local.from_local_datetime(&naive).unwrap().fixed_offset()
    }

    #[test]
    fn reads_both_asterisk_date_formats() {
        let mtime = Some(
            Local
                .from_local_datetime(&at("2026-11-29 00:00:00").naive_local())
                .unwrap(),
        );
        assert_eq!(
            line_stamp(b"[2026-11-28 04:12:43.123] VERBOSE[12] x", None),
            Some(at("2026-11-28 04:12:43") + chrono::Duration::milliseconds(123))
        );
        assert_eq!(
            line_stamp(b"[Nov 28 04:12:43] NOTICE[12] x", mtime),
            Some(at("2026-11-28 04:12:43"))
        );
        assert_eq!(line_stamp(b"no stamp", None), None);
        assert_eq!(line_stamp(b"[garbage] x", None), None);
    }

    fn copy(name: &str, starts: &str) -> LogCopy {
        LogCopy {
            path: PathBuf::from(name),
            starts: Some(at(starts)),
        }
    }

    #[test]
    fn picks_the_copy_that_holds_the_incident() {
        let copies = vec![
            copy("full", "2026-11-28 00:00:05"),
            copy("full.1", "2026-11-27 00:00:03"),
            copy("full.2.gz", "2026-11-26 00:00:04"),
        ];
        let names = |chosen: Vec<LogCopy>| {
            chosen
                .into_iter()
                .map(|c| c.path.display().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(covering(&copies, Some(at("2026-11-28 04:00:00")))),
            ["full"]
        );
        assert_eq!(
            names(covering(&copies, Some(at("2026-11-27 23:59:00")))),
            ["full.1"]
        );
        assert_eq!(
            names(covering(&copies, Some(at("2026-11-26 12:00:00")))),
            ["full.2.gz"]
        );
        // Just after midnight: the lead-up is in yesterday's copy.
        assert_eq!(
            names(covering(&copies, Some(at("2026-11-28 00:10:00")))),
            ["full", "full.1"]
        );
        assert_eq!(
            names(covering(&copies, Some(at("2026-11-01 00:10:00")))),
            ["full.2.gz"]
        );
        assert_eq!(names(covering(&copies, None)), ["full"]);
    }
}

#[cfg(test)]
mod fuzz_tests;
