//! How far a value goes, in the shapes gdb and configs print it, and the
//! gdb rule that hides a printed value.
//!
//! A rule finds where a value starts (after `secret=`, `auth_pass = `);
//! [`value_spans`] reads on from there and says what to hide: a plain
//! token or the rest of a config line, a quoted string with gdb's
//! continuations (`"hunt", 'e' <repeats 12 times>, "r2"`), a `\"value\"`
//! inside a C string, a `char *` as `0x55... "..."` (the address stays),
//! a gdb struct or a JSON object under a credential name (its field names
//! and the fields that say which account stay). gdb's notes
//! (`<optimized out>`) and bare addresses are no secrets and stay.
//!
//! gdb's value history (`$1 = ...` after `p peer->secret`) carries no key:
//! [`GdbRules`] remembers that the last command named a credential.

use regex::bytes::Regex;

use super::line::{Mode, Scan, T_CRED, compile};
use super::vocabulary::{credential, path_names_credential};
use super::{Kind, LineContext, MARK};

/// A gdb command that prints a value: `(gdb) p peer->secret`.
const GDB_PRINT: &str = r"(?i-u)^[ \t]*(?:\(gdb\)[ \t]*)?(?:p|print|output|call|inspect|x|display)(?:/[a-z0-9]+)?[ \t]+(.+)";
/// What gdb prints for it: `$1 = ...`, or `0x55... <sym>:  "..."` for `x/s`.
const GDB_VALUE: &str =
    r"(?i-u)^(?:\$[0-9]+[ \t]*=[ \t]*|0x[0-9a-f]+(?:[ \t]*<[^>]{0,512}>)?:[ \t]*)";

/// gdb's value history: a command that prints a value, then the value.
pub(super) struct GdbRules {
    print: Regex,
    value: Regex,
}

impl GdbRules {
    pub(super) fn new() -> GdbRules {
        GdbRules {
            print: compile(GDB_PRINT),
            value: compile(GDB_VALUE),
        }
    }

    /// Whether `line` is a value gdb printed (`$1 = ...`).
    pub(super) fn is_value(&self, line: &[u8]) -> bool {
        self.value.is_match(line)
    }

    /// Hides the value gdb printed after a command that names a credential.
    pub(super) fn value(&self, scan: &mut Scan) {
        if let Some(found) = self.value.find(scan.line) {
            scan.push(0, found.end(), Mode::ToLineEnd, Kind::GdbValue);
        }
    }

    /// Remembers whether a gdb command prints something named like a
    /// credential: its value, on the next lines, has no key.
    pub(super) fn command(&self, scan: &Scan, context: &mut LineContext) {
        if let Some(found) = scan
            .has(T_CRED)
            .then(|| self.print.captures(scan.line))
            .flatten()
        {
            if let Some(expression) = found.get(1) {
                context.gdb_secret = path_names_credential(expression.as_bytes());
            }
        }
    }
}

/// The secret parts of the value that starts at `start`, given to `hide`;
/// returns where the value ends (how far the line was read).
///
/// `to_line_end`: a config-style line (`secret = my pass ; comment`), where
/// the value may hold spaces: hide the rest of the line.
pub(super) fn value_spans(
    line: &[u8],
    start: usize,
    end: usize,
    to_line_end: bool,
    hide: &mut dyn FnMut(usize, usize),
) -> usize {
    let start = skip_gdb_pointer(line, start).unwrap_or(start);
    if start >= end {
        return start;
    }
    let rest = &line[start..end];
    // Already hidden, or gdb's NULL pointer (no string behind it to hide).
    if rest.starts_with(MARK) || is_address(rest) {
        return start;
    }
    match rest[0] {
        // Already hidden inside quotes: a first pass can leave the quotes
        // unbalanced (`"[REDACTED]' <repeats 12 times>, "r2"`), and reading
        // them again hid a second, larger span: not idempotent.
        b'"' | b'\'' if rest[1..].starts_with(MARK) => start,
        b'"' | b'\'' => {
            let (from, to) = quoted_span(line, start, end);
            if to > from {
                hide(from, to);
            }
            to
        }
        b'\\' => {
            // `\"value\"`: a quoted value inside a C string.
            let slashes = rest.iter().take_while(|&&b| b == b'\\').count();
            match rest.get(slashes) {
                Some(b'"' | b'\'') => {
                    let opener = &rest[..=slashes];
                    let from = start + opener.len();
                    if line[from..].starts_with(MARK) {
                        return from;
                    }
                    let to =
                        memchr::memmem::find(&line[from..end], opener).map_or(end, |at| from + at);
                    if to > from {
                        hide(from, to);
                    }
                    to
                }
                _ => plain_value(line, start, end, to_line_end, hide),
            }
        }
        b'{' | b'[' => bracketed(line, start, end, hide),
        b'<' if is_gdb_note(rest) => start,
        _ => plain_value(line, start, end, to_line_end, hide),
    }
}

fn plain_value(
    line: &[u8],
    start: usize,
    end: usize,
    to_line_end: bool,
    hide: &mut dyn FnMut(usize, usize),
) -> usize {
    let stop = if to_line_end {
        end
    } else {
        let rest = &line[start..end];
        let len = rest
            .iter()
            .enumerate()
            .position(|(at, &byte)| {
                byte.is_ascii_whitespace()
                    || b",;&\"')}]>".contains(&byte)
                    || (byte == b'\\'
                        && matches!(
                            rest.get(at + 1),
                            Some(b'"' | b'\'' | b'n' | b'r' | b't' | b'0')
                        ))
            })
            .unwrap_or(rest.len());
        start + len
    };
    if stop > start {
        hide(start, stop);
    }
    stop
}

/// An address alone (`0x55d5c0a3b2c0`, `0x0`, then a delimiter or the end):
/// gdb's pointers help debugging and hold no secret. Longer hex strings
/// are key material, not addresses.
fn is_address(rest: &[u8]) -> bool {
    let Some(after) = rest.strip_prefix(b"0x") else {
        return false;
    };
    let digits = after.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    (1..=16).contains(&digits)
        && after
            .get(digits)
            .is_none_or(|b| b.is_ascii_whitespace() || b",})]".contains(b))
}

/// Fields of a struct under a credential name whose values stay: they say
/// which account and how the value is laid out, not the secret
/// (`cred = {realm = {ptr = 0x55 "wazo", slen = 4}, ...}`).
const KEPT_FIELDS: &[&[u8]] = &[
    b"realm",
    b"scheme",
    b"username",
    b"user",
    b"auth_user",
    b"name",
    b"id",
    b"type",
    b"data_type",
    b"slen",
    b"len",
    b"length",
    b"size",
    b"count",
    b"flags",
    b"port",
];

/// A gdb struct or array, or a JSON object or list, under a credential
/// name: every value inside is hidden, strings and plain values, except
/// the values of [`KEPT_FIELDS`] outside any credential-named field; the
/// field names, addresses and gdb notes stay. One with no field names
/// (`{18, 52, ...}`) is hidden whole.
fn bracketed(line: &[u8], open: usize, end: usize, hide: &mut dyn FnMut(usize, usize)) -> usize {
    let name = |range: (usize, usize)| &line[range.0..range.1];
    // The field each open bracket belongs to, and how many of them name a
    // credential (kept as a count: a rescan per value was quadratic).
    let mut stack: Vec<Option<(usize, usize)>> = Vec::new();
    let mut credentials = 0usize;
    let mut field: Option<(usize, usize)> = None;
    let mut word: Option<(usize, usize)> = None;
    let mut word_start = None;
    let mut fields = false;
    let mut values = Vec::new();
    // A quoted value a first pass already hid still counts as a value: the
    // whole-bracket hiding below must not take it the second time round.
    let mut marked = false;
    let mut close = end;
    let kept =
        |stack: &[Option<(usize, usize)>], credentials: usize, field: Option<(usize, usize)>| {
            if credentials > 0 || field.is_some_and(|f| credential(name(f)).is_some()) {
                return false;
            }
            // A `pj_str_t`'s `ptr` (or `s`) belongs to the field around it.
            let owner = match field {
                Some(f) if matches!(name(f), b"ptr" | b"s") => stack.last().copied().flatten(),
                other => other,
            };
            owner.is_some_and(|f| KEPT_FIELDS.iter().any(|k| name(f).eq_ignore_ascii_case(k)))
        };
    let mut at = open;
    while at < end {
        let byte = line[at];
        let ident = byte.is_ascii_alphanumeric() || byte == b'_';
        match (ident, word_start) {
            (true, None) => word_start = Some(at),
            (false, Some(start)) => {
                word = Some((start, at));
                word_start = None;
            }
            _ => {}
        }
        match byte {
            b'{' | b'[' => {
                if field.is_some_and(|f| credential(name(f)).is_some()) {
                    credentials += 1;
                }
                stack.push(field.take());
            }
            b'}' | b']' => {
                if let Some(Some(f)) = stack.pop() {
                    if credential(name(f)).is_some() {
                        credentials -= 1;
                    }
                }
                field = None;
                if stack.is_empty() {
                    close = at;
                    break;
                }
            }
            b',' => field = None,
            b'=' | b':' => {
                fields = true;
                field = word.take();
                // An unquoted value: hidden too, unless it is an address, a
                // gdb note or structure.
                let mut value = at + 1;
                while value < end && matches!(line[value], b' ' | b'\t' | b'>') {
                    value += 1;
                }
                let rest = &line[value..end];
                let plain = rest.first().is_some_and(|b| !b"\"'{[<=:,}]".contains(b))
                    && !rest.starts_with(MARK)
                    && !is_address(rest)
                    && skip_gdb_pointer(line, value).is_none();
                if plain {
                    let len = rest
                        .iter()
                        .position(|b| b.is_ascii_whitespace() || b",}]\"'=:{[".contains(b))
                        .unwrap_or(rest.len());
                    if !kept(&stack, credentials, field) {
                        values.push((value, value + len));
                    }
                    at = value + len;
                    continue;
                }
            }
            b'\\' => {
                // `\"...\"`: a string inside a C string.
                let slashes = line[at..end].iter().take_while(|&&b| b == b'\\').count();
                if at + slashes >= end || !matches!(line[at + slashes], b'"' | b'\'') {
                    at += slashes;
                    continue;
                }
                let opener = &line[at..=at + slashes];
                let from = at + opener.len();
                let stop =
                    memchr::memmem::find(&line[from..end], opener).map_or(end, |to| from + to);
                let after = line[(stop + opener.len()).min(end)..end]
                    .iter()
                    .position(|b| !matches!(b, b' ' | b'\t'))
                    .map(|skip| stop + opener.len() + skip);
                if after.is_some_and(|after| line[after] == b':') {
                    word = Some((from, stop));
                } else if stop > from && line[from..].starts_with(MARK) {
                    marked = true;
                } else if stop > from && !kept(&stack, credentials, field) {
                    values.push((from, stop));
                }
                at = stop + opener.len();
                continue;
            }
            quote @ (b'"' | b'\'') => {
                let stop = closing_quote(line, at, end).unwrap_or(end);
                let after = line[(stop + 1).min(end)..end]
                    .iter()
                    .position(|b| !matches!(b, b' ' | b'\t'))
                    .map(|skip| stop + 1 + skip);
                let is_key = quote == b'"' && after.is_some_and(|after| line[after] == b':');
                if is_key {
                    word = Some((at + 1, stop));
                } else if stop > at + 1 && line[at + 1..].starts_with(MARK) {
                    marked = true;
                } else if stop > at + 1 && !kept(&stack, credentials, field) {
                    values.push((at + 1, stop));
                }
                at = stop + 1;
                continue;
            }
            _ => {}
        }
        at += 1;
    }
    if !fields && values.is_empty() && !marked {
        let inside = &line[open + 1..close];
        if !inside.is_empty() && inside != MARK && !(close == end && inside.starts_with(MARK)) {
            hide(open + 1, close);
        }
    }
    for (from, to) in values {
        hide(from, to);
    }
    close
}

/// gdb prints a `char *` as `0x55d5c0a3b2c0 "hunter2"` (sometimes with a
/// `<symbol>` in between): the address is no secret and helps debugging,
/// the string is. Returns where the string starts.
pub(super) fn skip_gdb_pointer(line: &[u8], start: usize) -> Option<usize> {
    let rest = &line[start..];
    let hex = rest.strip_prefix(b"0x")?;
    let digits = hex.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    let mut at = start + 2 + digits;
    let spaces = |at: usize| line[at..].iter().take_while(|&&b| b == b' ').count();
    if digits == 0 || spaces(at) == 0 {
        return None;
    }
    at += spaces(at);
    if line.get(at) == Some(&b'<') {
        // A symbol is short; an unbounded search per key was quadratic on a
        // line of `secret = 0x1 <` without `>` (4 s for 256 KiB).
        let close = line[at..]
            .iter()
            .take(MAX_GDB_SYMBOL)
            .position(|&b| b == b'>')?;
        at += close + 1;
        at += spaces(at);
    }
    // `\"` after the address: the local is printed inside a C string.
    let slashes = line[at..]
        .iter()
        .take(8)
        .take_while(|&&b| b == b'\\')
        .count();
    matches!(line.get(at + slashes), Some(b'"' | b'\'')).then_some(at)
}

/// The longest `<symbol+offset>` gdb prints between a pointer and its string.
pub(super) const MAX_GDB_SYMBOL: usize = 512;

/// gdb's notes in place of a value: not secrets, and useful.
fn is_gdb_note(rest: &[u8]) -> bool {
    [
        &b"<optimized out>"[..],
        b"<error",
        b"<synthetic pointer>",
        b"<repeats",
    ]
    .iter()
    .any(|note| rest.starts_with(note))
}

/// The inside of a quoted string starting at `open`, extended over gdb's
/// continuations (`"hunt", 'e' <repeats 12 times>, "r2"`) so that no piece
/// of a long value leaks; returns `(from, to)`, `to` the closing quote. An
/// unterminated string (cut by gdb, or a lone quote) is hidden to the end
/// of the line: we cannot tell better.
fn quoted_span(line: &[u8], open: usize, content_end: usize) -> (usize, usize) {
    let Some(mut close) = closing_quote(line, open, content_end) else {
        return (open + 1, content_end);
    };
    // gdb only splits a string around a `<repeats N times>` piece; JSON's
    // `"token": "a", "user": "b"` must not be taken for a continuation.
    loop {
        let mut at = close + 1;
        let repeated = gdb_repeats_len(&line[at..content_end]);
        at += repeated;
        let Some(after_comma) = line[at..content_end].strip_prefix(b", ") else {
            break;
        };
        if !matches!(after_comma.first(), Some(b'"' | b'\'')) {
            break;
        }
        let Some(next) = closing_quote(line, at + 2, content_end) else {
            if repeated > 0 {
                return (open + 1, content_end);
            }
            break;
        };
        if repeated == 0 && gdb_repeats_len(&line[next + 1..content_end]) == 0 {
            break;
        }
        close = next;
    }
    (open + 1, close)
}

/// The closing quote of the string opening at `open`, honouring
/// backslash escapes; `None` when the line ends first.
fn closing_quote(line: &[u8], open: usize, content_end: usize) -> Option<usize> {
    let quote = line[open];
    let mut at = open + 1;
    while at < content_end {
        match line[at] {
            b'\\' => at += 2,
            byte if byte == quote => return Some(at),
            _ => at += 1,
        }
    }
    None
}

/// Length of a leading ` <repeats N times>` in `rest`, or 0.
fn gdb_repeats_len(rest: &[u8]) -> usize {
    if !rest.starts_with(b" <repeats ") {
        return 0;
    }
    // " <repeats 4294967295 times>" is 27 bytes: an unbounded search per
    // string was quadratic on a line of `"a" <repeats ` without `>`.
    rest.iter()
        .take(40)
        .position(|&b| b == b'>')
        .map_or(0, |close| close + 1)
}
