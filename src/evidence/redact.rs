//! Streaming redaction of secrets in logs, configs and backtraces.
//!
//! What goes to the bug tracker is public, and Wazo's own `wazo-debug
//! collect` tars logs and `/etc` as they are. The files of a debugging run
//! are full of secrets: `sip.conf`/`pjsip.conf` passwords, AMI `Secret:`
//! lines, SIP digest answers in the Asterisk log, wazo-auth tokens in
//! service logs, database URLs with passwords, and `bt full` backtraces,
//! which print every local variable (`secret = 0x55... "hunter2"`).
//!
//! Each value is replaced by [`MARK`] while its key stays, so a reader still
//! sees *which* setting was there ("the peer had a secret", "the digest had
//! a response") without the value. Redaction errs on the side of hiding
//! too much: an unquoted value at the start of a line (config style) is
//! hidden up to the end of the line, comment included.
//!
//! Files are processed line by line as bytes, never as `String`: logs hold
//! invalid UTF-8 (binary SIP bodies, truncated writes), and lines without a
//! secret must come out byte for byte as they went in. Lines are bounded in
//! length ([`MAX_LINE`]) so a gigabyte file with no newline cannot take a
//! gigabyte of memory.

use std::borrow::Cow;
use std::io::{self, BufRead, Write};
use std::sync::OnceLock;

use regex::bytes::Regex;

/// What a secret value is replaced with.
pub const MARK: &[u8] = b"[REDACTED]";

/// The longest line handled in one piece; longer ones are cut (see
/// [`LineReader`]).
pub const MAX_LINE: usize = 1 << 20;

/// Keys whose value is secret in `key=value`, `key => value`, `key: value`,
/// `"key": value` and gdb's `key = value` forms. A key may have a prefix
/// (`db_password`, `client_secret`, `X-Auth-Token`). `service_key` is the
/// secret half of the wazo-auth service credentials in
/// `/var/lib/wazo-auth-keys/*.yml`.
const KEY_VALUE: &str = r#"(?i-u)([a-z0-9_.-]*(?:secret|passw(?:or)?d|passphrase|md5_cred|token|api[_-]?key|service[_-]?key|private[_-]?key))(["']?)[ \t]*(=>|=|:)[ \t]*"#;

/// Key endings that are secret whatever the separator. A bare `token`
/// (or `foo_token`) is only taken with `=` or as a quoted key: Asterisk
/// logs say "unexpected token: ')'" and that must stay readable.
const STRONG_KEYS: &[&str] = &[
    "secret",
    "password",
    "passwd",
    "passphrase",
    "md5_cred",
    "auth_token",
    "auth-token",
    "authtoken",
    "access_token",
    "access-token",
    "refresh_token",
    "refresh-token",
    "apikey",
    "api_key",
    "api-key",
    "service_key",
    "service-key",
    "private_key",
    "private-key",
    "privatekey",
];

/// Digest parameters that allow an offline attack on the password or a
/// replay. `username` and `realm` are kept on purpose: they say which
/// endpoint failed to authenticate, the first thing a developer asks, and
/// they are in the From/To headers of the same message anyway.
const DIGEST_PARAM: &str =
    r"(?i-u)(?:^|[\s,;:])(?:response|nonce|cnonce|nextnonce|rspauth)[ \t]*=[ \t]*";
const DIGEST_CONTEXT: &str = r"(?i-u)digest|authenticat|authorization";
const AUTHORIZATION: &str = r"(?i-u)authorization";
const BEARER: &str = r"(?i-u)\bbearer[ \t]+([a-z0-9._~+/-]{8,}=*)";
const BASIC: &str = r"(?i-u)\bbasic[ \t]+([a-z0-9+/]{4,}=*)";
/// `postgresql://asterisk:PASSWORD@localhost/asterisk` (Wazo's `db_uri`).
const URL_PASSWORD: &str = r"(?i-u)\b[a-z][a-z0-9+.-]*://[^/\s:@]*:([^/\s@]+)@";
/// chan_sip `register => [peer?][transport://]user[@domain]:SECRET[:authuser]@host`.
const SIP_REGISTER: &str = r"(?i-u)^\s*register\s*=>?\s*(?:[^\s?]*\?)?(?:[a-z]+://)?[^:@/\s]+(?:@[^:@/\s]+)?:([^:@/\s]+)(?::[^@/\s]*)?@";
/// chan_sip `auth = user:SECRET@realm` (`#` for an MD5 hash).
const SIP_AUTH: &str = r"(?i-u)^\s*auth\s*=>?\s*[^:#@\s]+[:#]([^@\s]+)@";
/// Lines that may hold a secret: everything else is copied untouched
/// without running the other patterns (most log lines).
const PREFILTER: &str = r"(?i-u)secret|passw|passphrase|md5_cred|token|api.?key|service.?key|private|bearer|basic|nonce|response|rspauth|://|register|auth";

/// The compiled patterns. Build one with [`Redactor::shared`].
pub struct Redactor {
    prefilter: Regex,
    key_value: Regex,
    digest_param: Regex,
    digest_context: Regex,
    authorization: Regex,
    bearer: Regex,
    basic: Regex,
    url_password: Regex,
    sip_register: Regex,
    sip_auth: Regex,
}

impl Redactor {
    /// The process-wide redactor: the patterns are compiled once.
    pub fn shared() -> &'static Redactor {
        static SHARED: OnceLock<Redactor> = OnceLock::new();
        SHARED.get_or_init(|| {
            // The patterns are constants of this file, checked by the unit
            // tests: failing here is a programming error, not bad input.
            let compile = |pattern: &str| Regex::new(pattern).expect("built-in pattern");
            Redactor {
                prefilter: compile(PREFILTER),
                key_value: compile(KEY_VALUE),
                digest_param: compile(DIGEST_PARAM),
                digest_context: compile(DIGEST_CONTEXT),
                authorization: compile(AUTHORIZATION),
                bearer: compile(BEARER),
                basic: compile(BASIC),
                url_password: compile(URL_PASSWORD),
                sip_register: compile(SIP_REGISTER),
                sip_auth: compile(SIP_AUTH),
            }
        })
    }

    /// Redacts one line (with or without its line ending, which is kept).
    /// Returns the line and the number of values replaced.
    pub fn redact_line<'a>(&self, line: &'a [u8]) -> (Cow<'a, [u8]>, usize) {
        if !self.prefilter.is_match(line) {
            return (Cow::Borrowed(line), 0);
        }
        let mut spans = Vec::new();
        self.key_value_spans(line, &mut spans);
        if self.digest_context.is_match(line) {
            for found in self.digest_param.find_iter(line) {
                spans.extend(value_span(line, found.end(), false));
            }
        }
        for found in self.bearer.captures_iter(line) {
            spans.extend(found.get(1).map(|m| (m.start(), m.end())));
        }
        if self.authorization.is_match(line) {
            for found in self.basic.captures_iter(line) {
                spans.extend(found.get(1).map(|m| (m.start(), m.end())));
            }
        }
        for pattern in [&self.url_password, &self.sip_register, &self.sip_auth] {
            for found in pattern.captures_iter(line) {
                spans.extend(found.get(1).map(|m| (m.start(), m.end())));
            }
        }
        spans.retain(|&(start, end)| start < end && &line[start..end] != MARK);
        if spans.is_empty() {
            return (Cow::Borrowed(line), 0);
        }
        spans.sort_unstable();
        let mut out = Vec::with_capacity(line.len() + MARK.len());
        let mut copied = 0;
        let mut count = 0;
        let mut covered = 0;
        for (start, end) in spans {
            if start < covered {
                // Overlaps a value already hidden (a bearer token that is
                // also the value of `X-Auth-Token:`): one secret, one count.
                if end > covered {
                    covered = end;
                    copied = end;
                }
                continue;
            }
            out.extend_from_slice(&line[copied..start]);
            out.extend_from_slice(MARK);
            copied = end;
            covered = end;
            count += 1;
        }
        out.extend_from_slice(&line[copied..]);
        (Cow::Owned(out), count)
    }

    fn key_value_spans(&self, line: &[u8], spans: &mut Vec<(usize, usize)>) {
        // The last unquoted value hidden, and whether it runs to the line end.
        let mut hidden: Option<(usize, usize, bool)> = None;
        let indent = line
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(line.len());
        for found in self.key_value.captures_iter(line) {
            let (Some(key), Some(quote), Some(sep), Some(whole)) =
                (found.get(1), found.get(2), found.get(3), found.get(0))
            else {
                continue;
            };
            let quoted_key = !quote.is_empty()
                || (key.start() > 0 && matches!(line[key.start() - 1], b'"' | b'\''));
            // `password == NULL` is a comparison, and `token://` no key.
            let next = line.get(sep.end()).copied();
            let sep = sep.as_bytes();
            if (sep == b"=" && next == Some(b'=')) || (sep == b":" && next == Some(b'/')) {
                continue;
            }
            let key_lower = key.as_bytes().to_ascii_lowercase();
            let strong = STRONG_KEYS
                .iter()
                .any(|strong| key_lower.ends_with(strong.as_bytes()));
            if !strong && sep == b":" && !quoted_key {
                continue;
            }
            // Only blanks before the key (`indent` is computed once: a scan
            // per key was quadratic on a line of blanks then many keys).
            let at_line_start = !quoted_key && key.start() <= indent;
            // A key inside the unquoted value just hidden ("secret=secret=
            // secret=..."): its own unquoted value would end where that one
            // ends (no delimiter in between), and everything ends by the line
            // end, so it adds nothing; reading it again made such a line
            // quadratic (77 s for 256 KiB). A quoted value may reach further
            // and is still read.
            let value = skip_gdb_pointer(line, whole.end()).unwrap_or(whole.end());
            let quoted = matches!(line.get(value), Some(b'"' | b'\''));
            if let Some((from, to, to_line_end)) = hidden {
                if value >= from && (to_line_end || value <= to && !quoted) {
                    continue;
                }
            }
            let span = value_span(line, whole.end(), at_line_start);
            if let (Some((from, to)), false) = (span, quoted) {
                hidden = Some((from, to, at_line_start));
            }
            spans.extend(span);
        }
    }
}

/// The secret part of the value that starts at `start`, if any.
///
/// `to_line_end`: a config-style line (`secret = my pass ; comment`), where
/// the value may hold spaces: hide the rest of the line.
fn value_span(line: &[u8], start: usize, to_line_end: bool) -> Option<(usize, usize)> {
    let content_end = trim_end(line);
    let start = skip_gdb_pointer(line, start).unwrap_or(start);
    if start >= content_end {
        return None;
    }
    let rest = &line[start..content_end];
    // Already hidden, or gdb's NULL pointer (no string behind it to hide).
    if rest.starts_with(MARK)
        || rest == b"0x0"
        || rest.starts_with(b"0x0,")
        || rest.starts_with(b"0x0}")
    {
        return None;
    }
    match rest[0] {
        // Already hidden inside quotes: a first pass can leave the quotes
        // unbalanced (`"[REDACTED]' <repeats 12 times>, "r2"`), and reading
        // them again hid a second, larger span: not idempotent.
        b'"' | b'\'' if rest[1..].starts_with(MARK) => None,
        b'"' | b'\'' => quoted_span(line, start, content_end),
        b'<' if is_gdb_note(rest) => None,
        _ if to_line_end => Some((start, content_end)),
        _ => {
            let len = rest
                .iter()
                .position(|&byte| byte.is_ascii_whitespace() || b",;&\"')}]>".contains(&byte))
                .unwrap_or(rest.len());
            Some((start, start + len))
        }
    }
}

/// gdb prints a `char *` as `0x55d5c0a3b2c0 "hunter2"` (sometimes with a
/// `<symbol>` in between): the address is no secret and helps debugging,
/// the string is. Returns where the string starts.
fn skip_gdb_pointer(line: &[u8], start: usize) -> Option<usize> {
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
    matches!(line.get(at), Some(b'"' | b'\'')).then_some(at)
}

/// The longest `<symbol+offset>` gdb prints between a pointer and its string.
const MAX_GDB_SYMBOL: usize = 512;

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
/// of a long value leaks. An unterminated string (cut by gdb, or a lone
/// quote) is hidden to the end of the line: we cannot tell better.
fn quoted_span(line: &[u8], open: usize, content_end: usize) -> Option<(usize, usize)> {
    let Some(mut close) = closing_quote(line, open, content_end) else {
        return (content_end > open + 1).then_some((open + 1, content_end));
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
                return Some((open + 1, content_end));
            }
            break;
        };
        if repeated == 0 && gdb_repeats_len(&line[next + 1..content_end]) == 0 {
            break;
        }
        close = next;
    }
    (close > open + 1).then_some((open + 1, close))
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

/// The end of the line without its `\r\n` and trailing blanks.
fn trim_end(line: &[u8]) -> usize {
    line.iter()
        .rposition(|byte| !byte.is_ascii_whitespace())
        .map_or(0, |last| last + 1)
}

/// Counts from one redacted stream.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub lines: u64,
    pub redactions: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Lines longer than [`MAX_LINE`], handled in pieces.
    pub long_lines: u64,
}

/// Reads lines of at most `max` bytes from a `BufRead`.
///
/// A longer line is cut at a blank, `,`, `&` or `;` near the limit when
/// there is one (so a `key=value` pair is rarely split), otherwise at the
/// limit; the cut is counted in [`LineReader::long_lines`].
pub struct LineReader<R> {
    inner: R,
    max: usize,
    line: Vec<u8>,
    carry: Vec<u8>,
    long_lines: u64,
}

impl<R: BufRead> LineReader<R> {
    pub fn new(inner: R) -> LineReader<R> {
        LineReader::with_max(inner, MAX_LINE)
    }

    pub fn with_max(inner: R, max: usize) -> LineReader<R> {
        LineReader {
            inner,
            max: max.max(2),
            line: Vec::new(),
            carry: Vec::new(),
            long_lines: 0,
        }
    }

    /// How many lines were cut for being longer than the limit.
    pub fn long_lines(&self) -> u64 {
        self.long_lines
    }

    /// The next line, with its `\n` if it has one; `None` at the end.
    pub fn next_line(&mut self) -> io::Result<Option<&[u8]>> {
        self.line.clear();
        self.line.append(&mut self.carry);
        loop {
            let buffer = match self.inner.fill_buf() {
                Ok(buffer) => buffer,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error),
            };
            if buffer.is_empty() {
                break;
            }
            let room = self.max - self.line.len().min(self.max);
            let window = &buffer[..buffer.len().min(room)];
            if let Some(newline) = memchr::memchr(b'\n', window) {
                self.line.extend_from_slice(&window[..=newline]);
                self.inner.consume(newline + 1);
                return Ok(Some(&self.line));
            }
            let taken = window.len();
            self.line.extend_from_slice(window);
            self.inner.consume(taken);
            if self.line.len() >= self.max {
                let cut = cut_point(&self.line);
                self.carry = self.line.split_off(cut);
                self.long_lines += 1;
                return Ok(Some(&self.line));
            }
        }
        Ok((!self.line.is_empty()).then_some(&self.line[..]))
    }
}

/// Where to cut an over-long line: after the last separator of its last
/// 4 KiB that does not follow `=` or `:`, else at the end.
fn cut_point(line: &[u8]) -> usize {
    let floor = line.len().saturating_sub(4096).max(1);
    // Never between a key and the end of its value: the next piece would
    // start with a value and no key, and go out unredacted (`password |=
    // x`, `secret = 0x55 |"x"`). A value that may go on past the limit
    // keeps its key with it in the next piece.
    let window = &line[floor..];
    let regions: Vec<(usize, usize)> = Redactor::shared()
        .key_value
        .captures_iter(window)
        .filter_map(|found| {
            let key = found.get(1)?;
            let start = found.get(0)?.end();
            // gdb's `0x55 <sym> "x"` cut before its string: the string is
            // the value, and it may come after the cut.
            let pointer = window[start..].starts_with(b"0x")
                && skip_gdb_pointer(window, start).is_none()
                && window.len() - start < MAX_GDB_SYMBOL + 64;
            let end = value_span(window, start, false)
                .map(|(_, end)| end)
                .filter(|&end| end < window.len() && !pointer)
                .map_or(usize::MAX, |end| floor + end);
            Some((floor + key.start(), end))
        })
        .collect();
    let splits = |cut: usize| regions.iter().any(|&(key, end)| key < cut && cut < end);
    let cut = (floor..line.len())
        .rev()
        .find(|&at| {
            matches!(line[at], b' ' | b'\t' | b',' | b'&' | b';')
                && !matches!(line[at - 1], b'=' | b':' | b' ')
                && !splits(at + 1)
        })
        .map_or(line.len(), |at| at + 1);
    regions
        .iter()
        .filter(|&&(key, end)| key < cut && cut < end)
        .map(|&(key, _)| key)
        .min()
        .unwrap_or(cut)
}

/// Redacts a stream line by line, also hiding the body of PEM private
/// keys (`-----BEGIN ... PRIVATE KEY-----`), which spans several lines.
pub struct StreamRedactor {
    redactor: &'static Redactor,
    in_private_key: bool,
    stats: Stats,
}

impl Default for StreamRedactor {
    fn default() -> Self {
        StreamRedactor::new()
    }
}

impl StreamRedactor {
    pub fn new() -> StreamRedactor {
        StreamRedactor {
            redactor: Redactor::shared(),
            in_private_key: false,
            stats: Stats::default(),
        }
    }

    /// Redacts one line and writes it to `out`.
    pub fn line(&mut self, line: &[u8], out: &mut impl Write) -> io::Result<()> {
        self.stats.lines += 1;
        self.stats.bytes_in += line.len() as u64;
        let is_pem = |marker: &[u8]| {
            memchr::memmem::find(line, marker).is_some()
                && memchr::memmem::find(line, b"PRIVATE KEY-----").is_some()
        };
        let written = if self.in_private_key {
            if is_pem(b"-----END ") {
                self.in_private_key = false;
                out.write_all(line)?;
                line.len()
            } else {
                let ending = &line[trim_end(line)..];
                out.write_all(MARK)?;
                out.write_all(ending)?;
                MARK.len() + ending.len()
            }
        } else {
            if is_pem(b"-----BEGIN ") {
                self.in_private_key = true;
                self.stats.redactions += 1;
            }
            let (redacted, count) = self.redactor.redact_line(line);
            self.stats.redactions += count as u64;
            out.write_all(&redacted)?;
            redacted.len()
        };
        self.stats.bytes_out += written as u64;
        Ok(())
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }
}

/// Copies `reader` to `writer` with every secret replaced by [`MARK`]: the
/// plain form of [`redact_stream_checked`], which the fuzzers compare with
/// line-by-line redaction.
#[cfg(test)]
pub fn redact_stream(reader: impl BufRead, writer: impl Write) -> io::Result<Stats> {
    redact_stream_checked(reader, writer, |_, _| Ok(()))
}

/// [`redact_stream`], showing `check` each line as read, with its byte
/// offset, before it is written: an error from `check` stops the copy
/// (`report` stops at a core appended to a log, or on Ctrl-C).
pub fn redact_stream_checked(
    reader: impl BufRead,
    mut writer: impl Write,
    mut check: impl FnMut(&[u8], u64) -> io::Result<()>,
) -> io::Result<Stats> {
    let mut lines = LineReader::new(reader);
    let mut stream = StreamRedactor::new();
    let mut offset = 0u64;
    while let Some(line) = lines.next_line()? {
        check(line, offset)?;
        offset += line.len() as u64;
        stream.line(line, &mut writer)?;
    }
    writer.flush()?;
    let mut stats = stream.stats();
    stats.long_lines = lines.long_lines();
    Ok(stats)
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod fuzz_tests;
