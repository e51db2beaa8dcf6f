//! The last lines each chosen thread wrote to Asterisk's `full` log.
//!
//! The Wazo doc's step "grep -E '(LWP1|LWP2)' full", done right: every
//! Asterisk log line names the LWP that logged it
//! (`[2026-12-01 13:50:01.123] VERBOSE[5353][C-00000001] pbx.c: ...`), so
//! the deadlocked threads' own last words are one pass away. Copies are read
//! newest first (`full`, `full.1`, `full.2.gz`, ...) and the reading stops as
//! soon as every thread has its lines or the copies predate the process:
//! LWP numbers are reused, so a line older than the Asterisk that froze is
//! another thread's.
//!
//! Memory is bounded by threads × lines × [`MAX_LINE`], whatever the logs'
//! size (a log with no newline for a gigabyte included).

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, ErrorKind};
use std::path::PathBuf;

use chrono::{DateTime, FixedOffset, Local};

use crate::evidence::astlog::{self, LogCopy};

/// Lines kept per thread unless asked otherwise (the issue's "last 50").
pub const LINES_PER_THREAD: usize = 50;
/// Longer lines are cut: a thread's last words fit far below this.
pub const MAX_LINE: usize = 4096;

/// The lines that count: not before the process started (`since`), not
/// after the evidence was taken (`until`: a core's time, after which a new
/// Asterisk may have reused the LWPs).
#[derive(Debug, Clone, Copy, Default)]
pub struct Window {
    pub since: Option<DateTime<FixedOffset>>,
    pub until: Option<DateTime<FixedOffset>>,
}

/// What was found for each LWP asked, oldest line first.
#[derive(Debug, Default)]
pub struct ThreadLines {
    pub lines: HashMap<u64, Vec<String>>,
    /// The copies read, newest first.
    pub read: Vec<PathBuf>,
    /// Copies that could not be read to their end, and why.
    pub warnings: Vec<String>,
}

/// The last `per_thread` lines of each of `lwps` in `copies` (newest copy
/// first, as [`astlog::copies`] gives them), within `window`.
pub fn last_lines(
    copies: &[LogCopy],
    lwps: &[u64],
    per_thread: usize,
    window: Window,
) -> ThreadLines {
    let mut found = ThreadLines::default();
    if lwps.is_empty() || per_thread == 0 {
        return found;
    }
    let mut kept: HashMap<u64, VecDeque<String>> =
        lwps.iter().map(|&lwp| (lwp, VecDeque::new())).collect();
    for copy in copies {
        let complete = |kept: &HashMap<u64, VecDeque<String>>| {
            kept.values().all(|lines| lines.len() >= per_thread)
        };
        if complete(&kept) {
            break;
        }
        // A copy that ends before the process started holds no line of it.
        if let (Some(since), Some(ends)) = (window.since, copy_end(copy)) {
            if ends < since {
                break;
            }
        }
        let mut reader = match astlog::open(&copy.path) {
            Ok(reader) => std::io::BufReader::with_capacity(1 << 16, reader),
            Err(error) => {
                found.warnings.push(error.to_string());
                continue;
            }
        };
        found.read.push(copy.path.clone());
        let mtime = std::fs::metadata(&copy.path)
            .and_then(|metadata| metadata.modified())
            .ok()
            .map(DateTime::<Local>::from);
        let mut this_copy: HashMap<u64, VecDeque<String>> = HashMap::new();
        // A message of several lines (a SIP packet, a dialplan dump) has its
        // prefix on the first only: the rest belong to the same thread.
        let mut current: Option<u64> = None;
        let scan = scan(&mut reader, |line| {
            if line.first() == Some(&b'[') {
                current = lwp_of(line)
                    .filter(|lwp| kept.contains_key(lwp))
                    .filter(|_| in_window(line, mtime, window));
            }
            if let Some(lwp) = current {
                let lines = this_copy.entry(lwp).or_default();
                if lines.len() == per_thread {
                    lines.pop_front();
                }
                lines.push_back(String::from_utf8_lossy(line).into_owned());
            }
        });
        if let Err(error) = scan {
            found.warnings.push(format!(
                "{}: read only in part ({error}); the lines before the error are kept",
                copy.path.display()
            ));
        }
        // This copy is older than what was kept: its lines go in front.
        for (lwp, mut older) in this_copy {
            if let Some(lines) = kept.get_mut(&lwp) {
                while lines.len() < per_thread {
                    match older.pop_back() {
                        Some(line) => lines.push_front(line),
                        None => break,
                    }
                }
            }
        }
        // The oldest copy that starts before the process: nothing older counts.
        if let (Some(since), Some(starts)) = (window.since, copy.starts) {
            if starts <= since {
                break;
            }
        }
    }
    found.lines = kept
        .into_iter()
        .map(|(lwp, lines)| (lwp, lines.into()))
        .collect();
    found
}

/// The LWP in `[stamp] LEVEL[LWP]` (and `LEVEL[LWP][C-0000001]`), the
/// prefix of every line Asterisk logs; `None` for anything else.
pub fn lwp_of(line: &[u8]) -> Option<u64> {
    let rest = line.strip_prefix(b"[")?;
    let close = memchr::memchr(b']', rest)?;
    let rest = rest.get(close + 1..)?.strip_prefix(b" ")?;
    let open = rest
        .iter()
        .position(|&b| !b.is_ascii_uppercase() && b != b'_')?;
    if open == 0 {
        return None;
    }
    let digits = rest.get(open..)?.strip_prefix(b"[")?;
    let end = digits.iter().position(|b| !b.is_ascii_digit())?;
    if end == 0 || end > 19 || digits.get(end) != Some(&b']') {
        return None;
    }
    std::str::from_utf8(&digits[..end]).ok()?.parse().ok()
}

fn in_window(line: &[u8], mtime: Option<DateTime<Local>>, window: Window) -> bool {
    if window.since.is_none() && window.until.is_none() {
        return true;
    }
    // A line whose time cannot be read is kept: better a line too many
    // than the one that explains the freeze.
    let Some(time) = astlog::line_stamp(line, mtime) else {
        return true;
    };
    window.since.is_none_or(|since| time >= since) && window.until.is_none_or(|until| time <= until)
}

/// When a copy ends, as far as its modification time tells.
fn copy_end(copy: &LogCopy) -> Option<DateTime<FixedOffset>> {
    let modified = std::fs::metadata(&copy.path).ok()?.modified().ok()?;
    Some(DateTime::<Local>::from(modified).fixed_offset())
}

/// Calls `on_line` with each line (without its newline and a trailing CR),
/// cut at [`MAX_LINE`] bytes, never holding more than that.
fn scan(reader: &mut impl BufRead, mut on_line: impl FnMut(&[u8])) -> std::io::Result<()> {
    let mut line = Vec::with_capacity(256);
    let mut overlong = false;
    loop {
        let buffer = match reader.fill_buf() {
            Ok(buffer) => buffer,
            Err(error) if error.kind() == ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        if buffer.is_empty() {
            if !line.is_empty() {
                on_line(trim_cr(&line));
            }
            return Ok(());
        }
        let (chunk, ends_line) = match memchr::memchr(b'\n', buffer) {
            Some(at) => (&buffer[..at], Some(at + 1)),
            None => (buffer, None),
        };
        if !overlong {
            let room = MAX_LINE.saturating_sub(line.len());
            line.extend_from_slice(&chunk[..chunk.len().min(room)]);
            overlong = chunk.len() > room;
        }
        let used = ends_line.unwrap_or(buffer.len());
        reader.consume(used);
        if ends_line.is_some() {
            on_line(trim_cr(&line));
            line.clear();
            overlong = false;
        }
    }
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests;
