//! The fast path of the reader: a `===` line that is all ASCII (every line
//! of every real dump) read with byte searches, not `str`'s Unicode-aware
//! patterns and trims, which cost most of the time on a 100,000-thread dump.
//!
//! It must read exactly what the general path (`Parser::dump_line`) reads:
//! on ASCII text a char is a byte, `char::is_whitespace` is [`is_space`],
//! and every split falls on a char boundary. `reference.rs` (the reader
//! before this path) and the fuzzers hold the two to the same graph.

use memchr::{memchr, memrchr};

use super::{LockFields, Parser};
use crate::locks::graph::LockKind;

/// `char::is_whitespace` on an ASCII byte (0x0b too, unlike `u8::is_ascii_whitespace`).
fn is_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

#[inline(always)]
fn trim_start(text: &str) -> &str {
    let skip = text
        .bytes()
        .position(|b| !is_space(b))
        .unwrap_or(text.len());
    text.get(skip..).unwrap_or("")
}

#[inline(always)]
fn trim_end(text: &str) -> &str {
    let keep = text
        .bytes()
        .rposition(|b| !is_space(b))
        .map_or(0, |at| at + 1);
    text.get(..keep).unwrap_or("")
}

#[inline(always)]
fn trim(text: &str) -> &str {
    trim_end(trim_start(text))
}

/// A plain scan: the needles are a few bytes and the fields short, where
/// `memmem::find` spent more building its searcher than searching.
fn find(text: &str, needle: &str) -> Option<usize> {
    let needle = needle.as_bytes();
    let first = *needle.first()?;
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(offset) = bytes.get(from..).and_then(|rest| memchr(first, rest)) {
        let at = from + offset;
        if bytes.get(at..at + needle.len()) == Some(needle) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

fn tail(text: &str, from: usize) -> &str {
    text.get(from..).unwrap_or("")
}

fn head(text: &str, to: usize) -> &str {
    text.get(..to).unwrap_or("")
}

/// `str::parse::<u32>`: an optional `+`, then at least one digit, no overflow.
fn parse_u32(text: &str) -> Option<u32> {
    let digits = text.strip_prefix('+').unwrap_or(text);
    if digits.is_empty() {
        return None;
    }
    digits.bytes().try_fold(0u32, |value, byte| {
        if !byte.is_ascii_digit() {
            return None;
        }
        value.checked_mul(10)?.checked_add(u32::from(byte - b'0'))
    })
}

/// Leading ASCII digits of `text`, as `str::parse::<u64>` reads them.
fn parse_digits_u64(digits: &str) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.bytes().try_fold(0u64, |value, byte| {
        value.checked_mul(10)?.checked_add(u64::from(byte - b'0'))
    })
}

fn leading_digits(text: &str) -> usize {
    text.bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(text.len())
}

/// The value of `0x<hex>` when it fits 64 bits (the graph's own key), so
/// that the graph need not parse it again; `None` sends it the text.
fn hex_value(addr: &str) -> Option<u64> {
    let hex = match addr.as_bytes() {
        [b'0', b'x' | b'X', hex @ ..] if !hex.is_empty() => hex,
        _ => return None,
    };
    let zeros = hex.iter().take_while(|&&byte| byte == b'0').count();
    let significant = hex.get(zeros..).unwrap_or(&[]);
    if significant.len() > 16 {
        return None;
    }
    significant.iter().try_fold(0u64, |value, &byte| {
        Some(value << 4 | u64::from(hex_digit(byte)?))
    })
}

fn hex_digit(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Where `byte` first is in `text`, for the fields of a lock line, a few
/// bytes long: memchr's set-up costs more than such a scan.
fn find_near(text: &str, byte: u8) -> Option<usize> {
    text.bytes().position(|b| b == byte)
}

/// `super::parse_lock_fields`, on ASCII.
fn lock_fields(body: &str) -> Option<LockFields<'_>> {
    let open = find_near(body, b'(')?;
    let close = open + find(tail(body, open), "):")?;
    let file = trim(body.get(open + 1..close)?);
    let mut rest = trim(tail(body, close + 2));
    let cut = rest.ends_with("...");
    if cut {
        rest = trim_end(head(rest, rest.len() - 3));
    }
    let mut suspended = false;
    let mut counted = false;
    if rest.ends_with(')') {
        if let Some(paren) = memrchr(b'(', rest.as_bytes()) {
            let inner = rest.get(paren + 1..rest.len() - 1).unwrap_or("");
            let count = trim(match find(inner, " - ") {
                Some(dash) => head(inner, dash),
                None => inner,
            });
            if !count.is_empty() && count.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
                suspended = find(inner, "suspended").is_some();
                counted = true;
                rest = trim_end(head(rest, paren));
            }
        }
    }
    if cut && !counted {
        return None;
    }
    let kind_end = find_near(rest, b' ')?;
    let kind = LockKind::parse(head(rest, kind_end));
    let rest = trim_start(tail(rest, kind_end));
    let line_end = find_near(rest, b' ')?;
    let line = parse_u32(head(rest, line_end));
    let rest = trim_start(tail(rest, line_end));
    let func_end = find_near(rest, b' ')?;
    let func = head(rest, func_end);
    let rest = trim(tail(rest, func_end));
    let (name, addr) = match memrchr(b' ', rest.as_bytes()) {
        Some(space) => (trim(head(rest, space)), tail(rest, space + 1)),
        None => ("", rest),
    };
    // Read as a number once, here; `is_address` only for what is not one.
    let value = hex_value(addr);
    if value.is_none() && !super::is_address(addr) || line.is_none() && kind == LockKind::Unknown {
        return None;
    }
    Some(LockFields {
        file,
        kind,
        line,
        func,
        name,
        addr,
        value,
        suspended,
    })
}

/// `%-20s` pads the start function: runs of spaces become one, into
/// `out` (reused from line to line, not a `String` a thread).
/// In pieces: words separated by one ' ' are pushed together, so a name
/// costs two pushes, not one a word. `str::split` with a char predicate
/// decoded each char and cost 1 % more of a dump's whole reading.
/// What `split_whitespace` gives, not `split_ascii_whitespace`, which keeps
/// 0x0b.
fn collapse_spaces_into(text: &str, out: &mut String) {
    out.clear();
    let bytes = text.as_bytes();
    let mut at = 0;
    // Where the piece being read started, once it has a word.
    let mut piece = None;
    while at < bytes.len() {
        let rest = bytes.get(at..).unwrap_or(&[]);
        let Some(space) = rest.iter().position(|&b| is_space(b)) else {
            break;
        };
        let space = at + space;
        if space > at && piece.is_none() {
            piece = Some(at);
        }
        let after = bytes.get(space..).unwrap_or(&[]);
        let run = after
            .iter()
            .position(|&b| !is_space(b))
            .unwrap_or(after.len());
        let inside = run == 1 && after.first() == Some(&b' ') && space + 1 < bytes.len();
        if !inside {
            if let Some(start) = piece.take() {
                push_word(out, text.get(start..space).unwrap_or(""));
            }
        }
        at = space + run;
    }
    let start = piece.unwrap_or(at);
    if start < bytes.len() {
        push_word(out, tail(text, start));
    }
}

fn push_word(out: &mut String, word: &str) {
    if !out.is_empty() {
        out.push(' ');
    }
    out.push_str(word);
}

impl Parser {
    /// `Parser::dump_line` for a line that is all ASCII (`rest` untrimmed).
    pub(super) fn ascii_line(&mut self, rest: &str) {
        let text = trim(rest);
        if text.starts_with('=') {
            self.after_rule = true;
            return;
        }
        let after_rule = std::mem::take(&mut self.after_rule);
        if let Some(rest) = text.strip_prefix("Thread ID:") {
            self.ascii_thread_line(rest);
        } else if let Some(rest) = text.strip_prefix("--- --->") {
            self.ascii_locked_here_line(trim(rest));
        } else if let Some(rest) = text.strip_prefix("--->") {
            self.ascii_lock_line(trim(rest));
        } else {
            // Headers and version lines: a few a dump, the general path.
            self.after_rule = after_rule;
            self.dump_line(text);
        }
    }

    fn ascii_thread_line(&mut self, rest: &str) {
        let rest = trim(rest);
        let id_end = rest
            .bytes()
            .position(|b| is_space(b) || b == b'(')
            .unwrap_or(rest.len());
        let mut id = head(rest, id_end);
        while let Some(shorter) = id.strip_suffix("...") {
            id = shorter;
        }
        if id.is_empty() {
            return;
        }
        let mut rest = trim_start(tail(rest, id_end));
        let mut lwp = None;
        if let Some(after) = rest.strip_prefix("LWP:") {
            let digits = leading_digits(after);
            lwp = parse_digits_u64(head(after, digits));
            rest = trim_start(tail(after, digits));
        }
        let name = rest.strip_prefix('(').unwrap_or(rest);
        let name = name.strip_suffix(')').unwrap_or(name);
        collapse_spaces_into(name, &mut self.scratch);
        self.info.recognized = true;
        self.thread = Some(self.graph.add_thread(id, lwp, &self.scratch));
        self.last_wait = None;
    }

    fn ascii_lock_line(&mut self, body: &str) {
        self.lock_line_with(body, lock_fields, |graph, fields| match fields.value {
            Some(value) => graph.add_lock_value(value, fields.name),
            None => graph.add_lock(fields.addr, fields.name),
        });
    }

    fn ascii_locked_here_line(&mut self, rest: &str) {
        let Some(rest) = rest.strip_prefix("Locked Here:") else {
            return;
        };
        let Some(wait) = self.last_wait else {
            return;
        };
        let rest = trim(rest);
        let (file, after) = match find(rest, " line ") {
            Some(pos) => (head(rest, pos), tail(rest, pos + 6)),
            None => (rest, ""),
        };
        let after = trim(after);
        let digits = leading_digits(after);
        let line = parse_digits_u64(head(after, digits)).and_then(|n| u32::try_from(n).ok());
        let func = trim(tail(after, digits));
        let func = func.strip_prefix('(').unwrap_or(func);
        let func = func.strip_suffix(')').unwrap_or(func);
        let site = self.graph.site(trim(file), line, trim(func));
        self.graph.add_locked_here(wait, site);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_parse_as_str_parse_does() {
        for text in [
            "",
            "+",
            "+5",
            "-0",
            "12",
            "4294967295",
            "4294967296",
            "1a",
            "007",
        ] {
            assert_eq!(parse_u32(text), text.parse::<u32>().ok(), "{text:?}");
        }
        for text in ["", "0", "18446744073709551615", "18446744073709551616"] {
            assert_eq!(parse_digits_u64(text), text.parse::<u64>().ok(), "{text:?}");
        }
    }

    #[test]
    fn spaces_are_chars_whitespace() {
        for byte in 0u8..0x80 {
            assert_eq!(
                is_space(byte),
                char::from(byte).is_whitespace(),
                "{byte:#x}"
            );
        }
    }

    #[test]
    fn spaces_collapse_as_split_whitespace_does() {
        let mut out = String::from("left over");
        for text in [
            "",
            " ",
            "pbx_thread           started at [ 4787] pbx.c ast_pbx_start()",
            "  a\tb\x0bc\x0c\rd\n ",
            "one",
            " lead",
            "trail ",
            "a  b   c",
            "a b  c d",
            "a\tb",
            " a b ",
            "a \tb",
        ] {
            collapse_spaces_into(text, &mut out);
            assert_eq!(
                out,
                text.split_whitespace().collect::<Vec<_>>().join(" "),
                "{text:?}"
            );
        }
    }

    #[test]
    fn find_is_str_find() {
        for (text, needle) in [
            ("a):b", "):"),
            (")):", "):"),
            ("a line b", " line "),
            ("line", " line "),
            ("1 - 2", " - "),
            ("", " - "),
            ("x", ""),
        ] {
            assert_eq!(
                find(text, needle),
                text.find(needle).filter(|_| !needle.is_empty())
            );
        }
    }

    #[test]
    fn hex_values_agree_with_the_graph_key() {
        assert_eq!(hex_value("0x0"), Some(0));
        assert_eq!(hex_value("0X00ff"), Some(0xff));
        assert_eq!(hex_value("0xffffffffffffffff"), Some(u64::MAX));
        assert_eq!(hex_value("0x0000ffffffffffffffff"), Some(u64::MAX));
        assert_eq!(hex_value("0x1ffffffffffffffff"), None);
        assert_eq!(hex_value("0x"), None);
        assert_eq!(hex_value("(nil)"), None);
    }
}
