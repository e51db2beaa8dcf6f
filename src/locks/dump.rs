//! Reads a saved `core show locks` output into a [`LockGraph`].
//!
//! One parser for every format Asterisk has printed since 1.8 (decimal then
//! hex thread ids, `LWP:<n>`, the `=== <version>` line, `(count - suspended)`,
//! and the 2023 format with `Currently Held Locks at Time:` and a timing line
//! after each lock), and for what pasting does to it: CRLF, tabs turned to
//! spaces, `...` cuts, prefixes added by log viewers.
//!
//! The input is streamed: dumps of a server with thousands of channels run to
//! gigabytes, nearly all of it tab-indented backtrace lines. Those are dropped
//! on their first byte without being copied, and a line is never kept beyond
//! [`MAX_LINE`] bytes, so memory follows the number of threads and locks, not
//! the size of the file (a core file with no newline for a gigabyte included).
//!
//! Every field comes from outside data: nothing here may panic, a line that
//! does not parse is counted and skipped.

use std::io::{self, BufRead};

use memchr::{memchr, memmem};

use crate::locks::graph::{LockGraph, LockKind, LockRef, Site, ThreadRef};

/// The useful part of any line is far shorter; the rest is dropped.
pub const MAX_LINE: usize = 16 * 1024;

/// What was found besides the graph, for the report and for refusing input
/// that is not a `core show locks` output at all.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DumpInfo {
    /// A header or a thread line was seen: this is a lock dump.
    pub recognized: bool,
    /// Headers seen; only the last dump of a file is kept.
    pub dumps: usize,
    /// The `=== <version>` line of Asterisk 12 and later.
    pub version: Option<String>,
    /// `Currently Held Locks at Time: ...` of 2023 and later.
    pub taken_at: Option<String>,
    pub threads: usize,
    pub lock_lines: usize,
    /// `... (1 - suspended)`: released while in a condition wait.
    pub suspended: usize,
    /// Lock lines that could not be read (cut by `...`, mangled).
    pub unreadable_lock_lines: usize,
    /// Lock lines before any thread line (the paste started mid-thread).
    pub orphan_lock_lines: usize,
    /// Lines that are a `...` cut mark.
    pub cuts: usize,
    pub lines: u64,
}

#[derive(Default)]
struct Parser {
    graph: LockGraph,
    info: DumpInfo,
    thread: Option<ThreadRef>,
    /// The last wait of the current thread, for its "Locked Here" lines.
    last_wait: Option<usize>,
    /// Just after a `=====` rule: the next `=== text` line may be the version.
    after_rule: bool,
    /// A thread's name as it is put together, kept from thread to thread.
    scratch: String,
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

/// Parses a dump held in memory.
#[cfg(test)]
pub fn parse_bytes(input: &[u8]) -> (LockGraph, DumpInfo) {
    match parse(input) {
        Ok(result) => result,
        // Reading a slice cannot fail; an empty result is the safe answer.
        Err(_) => (LockGraph::new(), DumpInfo::default()),
    }
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
        if rest.is_ascii() {
            if let Ok(text) = std::str::from_utf8(rest) {
                self.ascii_line(text);
                return;
            }
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
        self.lock_line_with(body, parse_lock_fields, |graph, fields| {
            graph.add_lock(fields.addr, fields.name)
        });
    }

    /// A lock line once `fields` has read it: the same counts and the same
    /// record for the general path and the ASCII one, which differ only in
    /// how they read the fields and key the lock.
    fn lock_line_with(
        &mut self,
        body: &str,
        fields: for<'a> fn(&'a str) -> Option<LockFields<'a>>,
        add_lock: fn(&mut LockGraph, &LockFields) -> LockRef,
    ) {
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
        let Some(parsed) = fields(body) else {
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
        let lock = add_lock(&mut self.graph, &parsed);
        let site = self.graph.site(parsed.file, parsed.line, parsed.func);
        self.record(claim, thread, lock, parsed.kind, site);
    }

    fn record(
        &mut self,
        claim: Claim,
        thread: ThreadRef,
        lock: LockRef,
        kind: LockKind,
        site: Site,
    ) {
        match claim {
            Claim::Hold => {
                self.graph.holds(thread, lock, kind, site);
            }
            Claim::Wait => {
                self.last_wait = Some(self.graph.waits_for(thread, lock, kind, site));
            }
            Claim::Tried => {
                self.graph.tried_and_failed(thread, lock, kind, site);
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
    /// The address's value, when the reader has read it (the ASCII path).
    value: Option<u64>,
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
        value: None,
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

mod ascii;

#[cfg(test)]
mod reference;

#[cfg(test)]
mod tests;

#[cfg(test)]
pub(crate) mod fuzz_tests;
