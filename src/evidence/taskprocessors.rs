//! Taskprocessors: the queues most of Asterisk's work goes through (stasis,
//! PJSIP serializers, the CDR engine). A freeze that is no lock cycle is
//! often one of them stuck: its thread blocked inside one task, every task
//! pushed after it waiting, the PBX answering nothing that goes through it.
//!
//! Three readings, each said with what it rests on: `core show taskprocessors`
//! (every queue's size when asked), the `full` log's "queue reached N
//! scheduled tasks" warnings in the incident window (what happened before),
//! and gdb's stacks (which thread is inside `ast_taskprocessor_execute` for
//! which taskprocessor; see `task_of` in `gdb_locks.py`).

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use chrono::{DateTime, FixedOffset, Local};
use serde::Serialize;

use crate::evidence::astlog::{self, LogCopy};

mod verdict;

pub use verdict::{Report, Verdict, judge};

/// The tail of a plain `full` scanned for warnings: bounded, whatever its size.
const LOG_TAIL_BYTES: u64 = 256 << 20;
/// What a rotated, compressed copy may decompress to before the scan stops.
const ROTATED_BYTES: u64 = 1 << 30;
/// Longest line kept whole; a longer one is cut (the warnings are short).
const LINE_BYTES: usize = 64 << 10;

/// One line of `core show taskprocessors`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    pub name: String,
    pub processed: Option<u64>,
    pub in_queue: u64,
    pub max_depth: Option<u64>,
    pub low_water: Option<i64>,
    pub high_water: Option<i64>,
}

/// The parsed answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    pub rows: Vec<Row>,
    /// The footer's `N taskprocessors`, when it came.
    pub count: Option<usize>,
    /// Lines after the header that were neither a row nor the footer.
    pub skipped: usize,
}

/// What `core show taskprocessors` gave this run.
#[derive(Debug, Clone, Default)]
pub enum Listing {
    /// Not asked: a core, or `--no-attach`.
    #[default]
    NotAsked,
    Listed(Table),
    /// No usable answer, and why (a timeout, a failure, an unreadable table).
    Unanswered(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Processed,
    InQueue,
    MaxDepth,
    LowWater,
    HighWater,
    /// Asterisk 20+: `Low time(us)`, `High time(us)`; read, not kept.
    Other,
}

/// The column titles of every release: Asterisk 1.8/11 (`+--- Processed ---+`),
/// 13 to 18 (six columns), 20+ (eight, with the task times).
const TITLES: &[(&str, Column)] = &[
    ("processed", Column::Processed),
    ("in queue", Column::InQueue),
    ("max depth", Column::MaxDepth),
    ("low water", Column::LowWater),
    ("high water", Column::HighWater),
    ("low time", Column::Other),
    ("high time", Column::Other),
];

/// The columns of a header line, in order, or `None` when it is not one.
fn header_columns(line: &str) -> Option<Vec<Column>> {
    let lower = line.to_ascii_lowercase();
    if !lower.contains("processor") {
        return None;
    }
    let mut found: Vec<(usize, Column)> = TITLES
        .iter()
        .filter_map(|(title, column)| lower.find(title).map(|at| (at, *column)))
        .collect();
    found.sort_by_key(|(at, _)| *at);
    let columns: Vec<Column> = found.into_iter().map(|(_, column)| column).collect();
    columns.contains(&Column::InQueue).then_some(columns)
}

/// `core show taskprocessors`, in any release's layout. A name is what
/// precedes the numbers, so a name with spaces survives; a line that does
/// not fit is counted, never guessed at.
pub fn parse_table(lines: &[String]) -> Result<Table, String> {
    let Some((at, columns)) = lines
        .iter()
        .enumerate()
        .find_map(|(at, line)| header_columns(line).map(|columns| (at, columns)))
    else {
        let first = lines
            .iter()
            .find(|line| !line.trim().is_empty())
            .map(|line| line.chars().take(120).collect::<String>())
            .unwrap_or_else(|| "an empty answer".to_string());
        return Err(format!(
            "not a `core show taskprocessors` table (no header with `In Queue`): {first}"
        ));
    };
    let mut table = Table::default();
    for line in &lines[at + 1..] {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.is_empty() || words.iter().all(|word| word.starts_with("+-")) {
            continue;
        }
        if let [count, noun] = words[..] {
            if noun == "taskprocessors" {
                if let Ok(count) = count.parse() {
                    table.count = Some(count);
                    continue;
                }
            }
        }
        match parse_row(&words, &columns) {
            Some(row) => table.rows.push(row),
            None => table.skipped += 1,
        }
    }
    Ok(table)
}

fn parse_row(words: &[&str], columns: &[Column]) -> Option<Row> {
    let split = words.len().checked_sub(columns.len())?;
    if split == 0 {
        return None;
    }
    let numbers: Vec<i64> = words[split..]
        .iter()
        .map(|word| word.parse::<i64>().ok())
        .collect::<Option<_>>()?;
    let mut row = Row {
        name: words[..split].join(" "),
        processed: None,
        in_queue: 0,
        max_depth: None,
        low_water: None,
        high_water: None,
    };
    let mut in_queue = None;
    for (column, value) in columns.iter().zip(numbers) {
        let count = u64::try_from(value).ok();
        match column {
            Column::Processed => row.processed = count,
            Column::InQueue => in_queue = count,
            Column::MaxDepth => row.max_depth = count,
            Column::LowWater => row.low_water = Some(value),
            Column::HighWater => row.high_water = Some(value),
            Column::Other => {}
        }
    }
    row.in_queue = in_queue?;
    Some(row)
}

/// One "queue reached N scheduled tasks" warning of the `full` log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueWarning {
    pub name: String,
    pub reached: u64,
    /// Asterisk 20+ says the high water mark in the warning.
    pub high_water: Option<u64>,
    /// Asterisk adds " again" once the queue had drained below its low water mark.
    pub again: bool,
    pub at: Option<DateTime<FixedOffset>>,
}

/// The warning in a line, in both wordings: `Taskprocessor 'NAME' queue
/// reached N scheduled tasks (high water mark: H).` (Asterisk 20+) and `The
/// 'NAME' task processor queue reached N scheduled tasks.` (13 to 18).
pub fn queue_warning(line: &str) -> Option<QueueWarning> {
    const REACHED: &str = " queue reached ";
    let reached_at = line.find(REACHED)?;
    let before = &line[..reached_at];
    let before = before.strip_suffix(" task processor").unwrap_or(before);
    let before = before.strip_suffix('\'')?;
    let open = ["Taskprocessor '", "The '"]
        .iter()
        .filter_map(|opening| before.rfind(opening).map(|at| at + opening.len()))
        .max()?;
    let name = &before[open..];
    let after = &line[reached_at + REACHED.len()..];
    let digits = after.bytes().take_while(u8::is_ascii_digit).count();
    let reached = after[..digits].parse().ok()?;
    let rest = after[digits..].strip_prefix(" scheduled tasks")?;
    let high_water = rest.strip_prefix(" (high water mark: ").and_then(|mark| {
        let digits = mark.bytes().take_while(u8::is_ascii_digit).count();
        mark[..digits].parse().ok()
    });
    if name.is_empty() {
        return None;
    }
    Some(QueueWarning {
        name: name.to_string(),
        reached,
        high_water,
        again: rest.contains(" again"),
        at: astlog::line_stamp(line.as_bytes(), None),
    })
}

/// The warnings of one log, kept when stamped within `since..=until` (or
/// unstamped: the line before them had no time either).
pub fn scan_reader(
    reader: impl Read,
    mtime: Option<DateTime<Local>>,
    since: DateTime<FixedOffset>,
    until: DateTime<FixedOffset>,
    found: &mut Vec<QueueWarning>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(reader);
    let mut line = Vec::new();
    let mut inside = false;
    loop {
        line.clear();
        let read = (&mut reader)
            .take(LINE_BYTES as u64)
            .read_until(b'\n', &mut line)?;
        if read == 0 {
            return Ok(());
        }
        if line.len() == LINE_BYTES && line.last() != Some(&b'\n') {
            // The rest of an overlong line: skipped, never held whole.
            let mut sink = Vec::new();
            while !sink.ends_with(b"\n") {
                sink.clear();
                if (&mut reader)
                    .take(LINE_BYTES as u64)
                    .read_until(b'\n', &mut sink)?
                    == 0
                {
                    break;
                }
            }
        }
        let stamp = astlog::line_stamp(&line, mtime);
        if let Some(time) = stamp {
            inside = time >= since && time <= until;
        }
        if !inside || memchr::memmem::find(&line, b" queue reached ").is_none() {
            continue;
        }
        let text = String::from_utf8_lossy(&line);
        if let Some(mut warning) = queue_warning(text.trim_end()) {
            warning.at = stamp;
            found.push(warning);
        }
    }
}

/// The warnings of `since..=until` in the log's copies (newest first, as
/// [`astlog::copies`] gives them): `full`'s tail, and the rotated copies
/// while the window reaches back before the newer copy's first line.
/// Oldest warning first.
pub fn scan_copies(
    copies: &[LogCopy],
    since: DateTime<FixedOffset>,
    until: DateTime<FixedOffset>,
) -> (Vec<QueueWarning>, Vec<String>) {
    let mut found = Vec::new();
    let mut problems = Vec::new();
    for copy in copies {
        if copy.starts.is_some_and(|starts| starts > until) {
            continue;
        }
        let mut batch = Vec::new();
        if let Err(problem) = scan_copy(&copy.path, since, until, &mut batch) {
            problems.push(format!("{}: {problem}", copy.path.display()));
        }
        batch.append(&mut found);
        found = batch;
        // An undated copy says nothing of where the window starts: go on.
        if copy.starts.is_some_and(|starts| starts <= since) {
            break;
        }
    }
    (found, problems)
}

fn scan_copy(
    path: &Path,
    since: DateTime<FixedOffset>,
    until: DateTime<FixedOffset>,
    found: &mut Vec<QueueWarning>,
) -> Result<(), String> {
    let mtime = std::fs::metadata(path)
        .and_then(|metadata| metadata.modified())
        .ok()
        .map(DateTime::<Local>::from);
    let compressed = path.extension().is_some_and(|ext| ext == "gz");
    let reader: Box<dyn Read> = if compressed {
        Box::new(
            astlog::open(path)
                .map_err(|error| error.to_string())?
                .take(ROTATED_BYTES),
        )
    } else {
        let mut file =
            crate::host::files::open_untrusted(path).map_err(|error| error.to_string())?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        let start = size.saturating_sub(LOG_TAIL_BYTES);
        file.seek(SeekFrom::Start(start))
            .map_err(|error| error.to_string())?;
        let mut reader = BufReader::new(file);
        if start > 0 {
            // A partial line at the seek point.
            let mut partial = Vec::new();
            let _ = (&mut reader)
                .take(LINE_BYTES as u64)
                .read_until(b'\n', &mut partial);
        }
        Box::new(reader)
    };
    scan_reader(reader, mtime, since, until, found).map_err(|error| error.to_string())
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod fuzz_tests;
