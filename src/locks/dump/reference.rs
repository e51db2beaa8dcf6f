//! The reader `dump` had before its byte-level fast path (issue 16), kept
//! as the reference of the differential tests (`dump/fuzz_tests.rs`,
//! `dump/tests.rs`): every fixture and fuzz input must give the same graph
//! and the same counts through both. A format added to the reader must be
//! added here too while this is kept; drop it once the new reader has run a
//! fuzz campaign of its own (`PROPTEST_CASES=20000 cargo test --lib
//! locks::dump::fuzz_tests` passed once, on 2026-12-01).

#![allow(dead_code)]

use std::io::{self, BufRead};

use memchr::{memchr, memmem};

use super::{DumpInfo, MAX_LINE};
use crate::locks::graph::{LockGraph, LockKind, ThreadRef};

#[derive(Default)]
struct Parser {
    graph: LockGraph,
    info: DumpInfo,
    thread: Option<ThreadRef>,
    /// The last wait of the current thread, for its "Locked Here" lines.
    last_wait: Option<usize>,
    /// Just after a `=====` rule: the next `=== text` line may be the version.
    after_rule: bool,
}

/// Parses a whole dump from `reader`.
pub fn parse<R: BufRead>(mut reader: R) -> io::Result<(LockGraph, DumpInfo)> {
    let mut parser = Parser::default();
    let mut carry: Vec<u8> = Vec::new();
    // The current line started in an earlier buffer and is being dropped.
    let mut skipping = false;
    loop {
        let buffer = match reader.fill_buf() {
            Ok(buffer) => buffer,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        if buffer.is_empty() {
            break;
        }
        let length = buffer.len();
        let mut start = 0;
        while let Some(offset) = buffer.get(start..).and_then(|rest| memchr(b'\n', rest)) {
            let end = start + offset;
            let piece = buffer.get(start..end).unwrap_or(&[]);
            if skipping || carry.is_empty() && piece.first() == Some(&b'\t') {
                // Backtrace lines, the bulk of the input: counted, not read.
                parser.info.lines += 1;
            } else if carry.is_empty() {
                parser.line(piece);
            } else {
                append_capped(&mut carry, piece);
                let line = std::mem::take(&mut carry);
                parser.line(&line);
                carry = line;
                carry.clear();
            }
            skipping = false;
            start = end + 1;
        }
        let rest = buffer.get(start..).unwrap_or(&[]);
        if !rest.is_empty() && !skipping {
            if carry.is_empty() && rest.first() == Some(&b'\t') {
                skipping = true;
            } else {
                append_capped(&mut carry, rest);
            }
        }
        reader.consume(length);
    }
    if !carry.is_empty() {
        parser.line(&carry);
    } else if skipping {
        parser.info.lines += 1;
    }
    parser.info.threads = parser.graph.threads().len();
    Ok((parser.graph, parser.info))
}

fn append_capped(carry: &mut Vec<u8>, piece: &[u8]) {
    let room = MAX_LINE.saturating_sub(carry.len());
    carry.extend_from_slice(piece.get(..room.min(piece.len())).unwrap_or(&[]));
}

impl Parser {
    fn line(&mut self, raw: &[u8]) {
        self.info.lines += 1;
        // Backtrace lines: the bulk of every dump, never needed.
        if raw.first() == Some(&b'\t') {
            return;
        }
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let raw = raw.get(..MAX_LINE.min(raw.len())).unwrap_or(&[]);
        let trimmed = trim_start(raw);
        let rest = if let Some(rest) = trimmed.strip_prefix(b"===") {
            rest
        } else if trimmed.is_empty() {
            return;
        } else if trimmed == b"..." || trimmed == "…".as_bytes() {
            self.info.cuts += 1;
            return;
        } else if let Some(pos) = memmem::find(trimmed, b"=== ") {
            // A prefix added by a log viewer or a console prompt.
            trimmed.get(pos + 3..).unwrap_or(&[])
        } else {
            return;
        };
        // Separators (`=== ---...`, `===`) are a third of the `===` lines:
        // drop them before paying for UTF-8 checks.
        let body = trim_start(rest);
        if body.is_empty()
            || body.first() == Some(&b'-')
                && !body.starts_with(b"--->")
                && !body.starts_with(b"--- --->")
        {
            self.after_rule = false;
            return;
        }
        // Control characters are replaced where strings are stored (the
        // graph's `intern`), not here on every line.
        let text = match std::str::from_utf8(rest) {
            Ok(text) => std::borrow::Cow::Borrowed(text),
            Err(_) => String::from_utf8_lossy(rest),
        };
        self.dump_line(text.trim());
    }

    fn dump_line(&mut self, text: &str) {
        if text.starts_with('=') {
            // A `=====` rule (what is left after the leading `===`).
            self.after_rule = true;
            return;
        }
        let after_rule = std::mem::take(&mut self.after_rule);
        if let Some(rest) = text.strip_prefix("Thread ID:") {
            self.thread_line(rest);
        } else if let Some(rest) = text.strip_prefix("--- --->") {
            self.locked_here_line(rest.trim());
        } else if let Some(rest) = text.strip_prefix("--->") {
            self.lock_line(rest.trim());
        } else if let Some(rest) = text.strip_prefix("Currently Held Locks") {
            self.header_line(rest);
        } else if after_rule && !text.is_empty() && !text.starts_with('<') {
            self.info.version = Some(crate::locks::graph::clean(text).into_owned());
        }
    }

    fn header_line(&mut self, rest: &str) {
        self.info.recognized = true;
        self.info.dumps += 1;
        if !self.graph.is_empty() {
            // A second dump in the same file: merging the two would invent
            // waits that never coexisted, so only the newest one counts.
            let version = self.info.version.take();
            self.graph = LockGraph::new();
            self.info = DumpInfo {
                recognized: true,
                dumps: self.info.dumps,
                version,
                cuts: self.info.cuts,
                lines: self.info.lines,
                ..DumpInfo::default()
            };
        }
        self.thread = None;
        self.last_wait = None;
        self.info.taken_at = rest
            .trim()
            .strip_prefix("at Time:")
            .map(|time| {
                crate::locks::graph::clean(time.trim().trim_end_matches('=').trim()).into_owned()
            })
            .filter(|time| !time.is_empty());
    }

    /// `Thread ID: <id> [LWP:<n> ](<name>)`
    fn thread_line(&mut self, rest: &str) {
        let rest = rest.trim();
        let id_end = rest
            .find(|c: char| c.is_whitespace() || c == '(')
            .unwrap_or(rest.len());
        let id = rest.get(..id_end).unwrap_or("").trim_end_matches("...");
        if id.is_empty() {
            return;
        }
        let mut rest = rest.get(id_end..).unwrap_or("").trim_start();
        let mut lwp = None;
        if let Some(after) = rest.strip_prefix("LWP:") {
            let digits = after
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(after.len());
            lwp = after.get(..digits).and_then(|d| d.parse().ok());
            rest = after.get(digits..).unwrap_or("").trim_start();
        }
        let name = rest.strip_prefix('(').unwrap_or(rest);
        let name = name.strip_suffix(')').unwrap_or(name);
        let name = collapse_spaces(name);
        self.info.recognized = true;
        self.thread = Some(self.graph.add_thread(id, lwp, &name));
        self.last_wait = None;
    }

    /// `[Waiting for |Tried and failed to get ]Lock #N (file): KIND line func name addr[ (count[ - suspended])]`
    fn lock_line(&mut self, body: &str) {
        let (claim, body) = if let Some(rest) = body.strip_prefix("Waiting for ") {
            (Claim::Wait, rest)
        } else if let Some(rest) = body.strip_prefix("Tried and failed to get ") {
            (Claim::Tried, rest)
        } else {
            (Claim::Hold, body)
        };
        let Some(body) = body.strip_prefix("Lock #") else {
            // Not a lock line (the 2023 timing line, or something unknown).
            return;
        };
        self.info.lock_lines += 1;
        self.last_wait = None;
        let Some(parsed) = parse_lock_fields(body) else {
            self.info.unreadable_lock_lines += 1;
            return;
        };
        if parsed.suspended {
            self.info.suspended += 1;
            return;
        }
        let Some(thread) = self.thread else {
            self.info.orphan_lock_lines += 1;
            return;
        };
        let lock = self.graph.add_lock(parsed.addr, parsed.name);
        let site = self.graph.site(parsed.file, parsed.line, parsed.func);
        match claim {
            Claim::Hold => {
                self.graph.holds(thread, lock, parsed.kind, site);
            }
            Claim::Wait => {
                self.last_wait = Some(self.graph.waits_for(thread, lock, parsed.kind, site));
            }
            Claim::Tried => {
                self.graph.tried_and_failed(thread, lock, parsed.kind, site);
            }
        }
    }

    /// `Locked Here: file line N (func)`
    fn locked_here_line(&mut self, rest: &str) {
        let Some(rest) = rest.strip_prefix("Locked Here:") else {
            return;
        };
        let Some(wait) = self.last_wait else {
            return;
        };
        let rest = rest.trim();
        let (file, after) = match find(rest, " line ") {
            Some(pos) => (
                rest.get(..pos).unwrap_or(""),
                rest.get(pos + 6..).unwrap_or(""),
            ),
            None => (rest, ""),
        };
        let after = after.trim();
        let digits = after
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(after.len());
        let line = after.get(..digits).and_then(|d| d.parse().ok());
        let func = after.get(digits..).unwrap_or("").trim();
        let func = func.strip_prefix('(').unwrap_or(func);
        let func = func.strip_suffix(')').unwrap_or(func);
        let site = self.graph.site(file.trim(), line, func.trim());
        self.graph.add_locked_here(wait, site);
    }
}

#[derive(Clone, Copy)]
enum Claim {
    Hold,
    Wait,
    Tried,
}

#[derive(Debug, PartialEq, Eq)]
struct LockFields<'a> {
    file: &'a str,
    kind: LockKind,
    line: Option<u32>,
    func: &'a str,
    name: &'a str,
    addr: &'a str,
    suspended: bool,
}

/// Reads `N (file): KIND line func name addr[ (count[ - suspended])]`, the
/// part after `Lock #`. The name is a C expression that may hold spaces, so
/// the address is taken from the right.
fn parse_lock_fields(body: &str) -> Option<LockFields<'_>> {
    let open = body.find('(')?;
    let close = open + find(body.get(open..)?, "):")?;
    let file = body.get(open + 1..close)?.trim();
    let mut rest = body.get(close + 2..)?.trim();
    let cut = rest.ends_with("...");
    if cut {
        rest = rest.get(..rest.len() - 3)?.trim_end();
    }
    let mut suspended = false;
    let mut counted = false;
    if rest.ends_with(')') {
        if let Some(paren) = rest.rfind('(') {
            let inner = rest.get(paren + 1..rest.len() - 1).unwrap_or("");
            let count = match find(inner, " - ") {
                Some(dash) => inner.get(..dash).unwrap_or(""),
                None => inner,
            }
            .trim();
            if !count.is_empty() && count.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
                suspended = find(inner, "suspended").is_some();
                counted = true;
                rest = rest.get(..paren)?.trim_end();
            }
        }
    }
    // Cut before its end, a line's last word may be half an address.
    if cut && !counted {
        return None;
    }
    let kind_end = rest.find(' ')?;
    let kind = LockKind::parse(rest.get(..kind_end)?);
    let rest = rest.get(kind_end..)?.trim_start();
    let line_end = rest.find(' ')?;
    let line = rest.get(..line_end)?.parse().ok();
    let rest = rest.get(line_end..)?.trim_start();
    let func_end = rest.find(' ')?;
    let func = rest.get(..func_end)?;
    let rest = rest.get(func_end..)?.trim();
    let (name, addr) = match rest.rfind(' ') {
        Some(space) => (rest.get(..space)?.trim(), rest.get(space + 1..)?),
        None => ("", rest),
    };
    if !is_address(addr) || line.is_none() && kind == LockKind::Unknown {
        return None;
    }
    Some(LockFields {
        file,
        kind,
        line,
        func,
        name,
        addr,
        suspended,
    })
}

fn is_address(word: &str) -> bool {
    match word.strip_prefix("0x").or_else(|| word.strip_prefix("0X")) {
        Some(hex) => !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        None => word == "(nil)",
    }
}

fn trim_start(bytes: &[u8]) -> &[u8] {
    let skip = bytes
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(bytes.len());
    bytes.get(skip..).unwrap_or(&[])
}

/// `str::find` with a string pattern builds a two-way searcher per call;
/// memchr's is several times cheaper on these short lines.
fn find(haystack: &str, needle: &str) -> Option<usize> {
    memmem::find(haystack.as_bytes(), needle.as_bytes())
}

/// `%-20s` pads the start function; the padding is noise in a label.
fn collapse_spaces(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}
