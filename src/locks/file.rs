//! A saved `core show locks` output, read as a user hands it over: a path or
//! `-`, refused clearly when it is a directory, a core, a gzip file or not a
//! lock dump at all, and streamed so that a dump of any size goes through.

use std::io::{self, Read};
use std::path::Path;

use crate::error::{Error, Result};
use crate::locks::dump::{self, DumpInfo};
use crate::locks::graph::LockGraph;
use crate::locks::render::SourceInfo;

/// Big enough that the per-line work, not the reads, sets the pace, and
/// small enough to stay in a core's L2 cache while its lines are read. Where
/// it starts in its page matters more than its size (`host::read_buffer`).
const READ_BUFFER: usize = 256 << 10;

/// Reads and parses FILE (or stdin), refusing what is not a lock dump.
pub fn read_dump(path: &Path) -> Result<(LockGraph, DumpInfo)> {
    if path == Path::new("-") {
        let stdin = io::stdin();
        let (graph, info) = parse_reader(stdin.lock(), path)?;
        return check(graph, info, "standard input");
    }
    let file = crate::host::files::open_input(
        path,
        "give the file holding the output of `asterisk -rx \"core show locks\"`",
    )?;
    let (graph, info) = parse_reader(file, path)?;
    check(graph, info, &path.display().to_string())
}

fn parse_reader(input: impl Read, path: &Path) -> Result<(LockGraph, DumpInfo)> {
    let mut reader = crate::host::read_buffer::AlignedReader::with_capacity(READ_BUFFER, input);
    let magic = {
        use std::io::BufRead;
        let buffer = reader
            .fill_buf()
            .map_err(|source| Error::read(path, source))?;
        buffer.get(..4).map(<[u8]>::to_vec).unwrap_or_default()
    };
    let name = if path == Path::new("-") {
        "standard input".to_string()
    } else {
        path.display().to_string()
    };
    if magic.starts_with(b"\x7fELF") {
        return Err(Error::NotALockDump {
            name,
            what: "is an ELF file (a core dump?), not a saved `core show locks` output".to_string(),
            hint: String::new(),
        });
    }
    if magic.starts_with(b"\x1f\x8b") {
        return Err(Error::bad_input(format!(
            "{name} is gzip-compressed; decompress it first (`zcat {name} | wazo-astdebug graph -`)"
        )));
    }
    dump::parse(crate::host::files::Interruptible(reader))
        .map_err(|source| crate::host::files::read_error(path, source))
}

fn check(graph: LockGraph, info: DumpInfo, name: &str) -> Result<(LockGraph, DumpInfo)> {
    if !info.recognized {
        let what = if info.lines == 0 {
            "is empty"
        } else {
            "holds no `core show locks` output (no `=== Thread ID:` nor `Currently Held Locks` line)"
        };
        return Err(Error::NotALockDump {
            name: name.to_string(),
            what: what.to_string(),
            hint: " (the command exists only in an Asterisk built with DEBUG_THREADS)".to_string(),
        });
    }
    Ok((graph, info))
}

pub fn source_info(path: &Path, info: &DumpInfo) -> SourceInfo {
    let mut notes = Vec::new();
    if info.dumps > 1 {
        notes.push(format!(
            "the file holds {} dumps; only the last one is analysed",
            info.dumps
        ));
    }
    if info.unreadable_lock_lines > 0 {
        notes.push(format!(
            "{} not be read (cut or mangled) and skipped",
            count(
                info.unreadable_lock_lines,
                "lock line could",
                "lock lines could"
            )
        ));
    }
    if info.orphan_lock_lines > 0 {
        notes.push(format!(
            "{} before any thread line (the paste starts mid-thread) and skipped",
            count(info.orphan_lock_lines, "lock line came", "lock lines came")
        ));
    }
    if info.cuts > 0 {
        notes.push("the paste has `...` cuts: threads or locks may be missing".to_string());
    }
    if info.suspended > 0 {
        notes.push(format!(
            "{} (released inside a condition wait), not counted as held",
            count(info.suspended, "lock was suspended", "locks were suspended")
        ));
    }
    SourceInfo {
        source: if path == Path::new("-") {
            "standard input".to_string()
        } else {
            path.display().to_string()
        },
        version: info.version.clone(),
        taken_at: info.taken_at.clone(),
        notes,
        unlisted_why: None,
        stuck: Vec::new(),
        holders_unknown: None,
    }
}

fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
