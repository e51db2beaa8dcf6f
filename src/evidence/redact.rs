//! Streaming redaction of secrets in logs, configs and backtraces.
//!
//! What goes to the bug tracker is public, and Wazo's own `wazo-debug
//! collect` tars logs and `/etc` as they are. The files of a debugging run
//! are full of secrets, and the redactor knows where they live on a Wazo
//! server, not only in `key=value`:
//!
//! - gdb output: `bt full` locals, struct fields and value history whose
//!   name names a credential (`auth_pass = 0x55... "..."`, `md5_creds`,
//!   `cred = {... data = 0x55... "..."}`, `$1 = ...` after `p peer->secret`),
//!   C string escapes understood (`buf = "... response=\"...\""`);
//! - SIP: the credential parameters of `Authorization`,
//!   `Proxy-Authorization`, `WWW-Authenticate`, `Authentication-Info`
//!   (`response`, `nonce`, `cnonce`, `nextnonce`, `rspauth`), and
//!   `sip:user:password@`;
//! - HTTP: `X-Auth-Token`, `Authorization: Bearer|Basic|Token ...`, cookie
//!   values, query parameters named like a credential (URL-encoded too),
//!   Wazo's token routes (`/token/<token>`), JWTs anywhere;
//! - configs: Asterisk `.conf` keys, `register =>`, `auth =`, voicemail
//!   mailbox lines (`1001 => PIN,Name,...`), YAML (block scalars too), SNMP
//!   communities, shell and CLI forms (`--password X`, `mysql -pX`,
//!   `curl -u user:X`, `PGPASSWORD=X`), URIs with passwords, PEM keys.
//!
//! Each value is replaced by [`MARK`] while its key and the structure
//! around it stay, so a reader still sees *which* setting was there ("the
//! peer had a secret", "the digest had a response") and still reads the
//! backtrace. Redaction errs on the side of hiding too much, and is
//! idempotent: `[REDACTED]` is never redacted again.
//!
//! Files are processed line by line as bytes, never as `String`: logs hold
//! invalid UTF-8, and lines without a secret come out byte for byte. Lines
//! are bounded in length ([`MAX_LINE`]), and each line is read a constant
//! number of times whatever it holds: a value already hidden is never
//! scanned again for the keys inside it.
//!
//! This file holds the public API and the streaming (lines read in
//! bounded pieces, what spans lines, the counts); the rest is in
//! `redact/`: `line` (the spans found on one line), `prefilter` (the words
//! that let the rules run),
//! the rule families `config` (settings and shell forms), `sip` (digests
//! and URIs), `http` (tokens, JWTs, cookies), `values` (how far a value
//! goes, in what gdb and configs print), and `vocabulary` (the words that
//! name a credential). A new secret pattern goes in its family's file.

use std::io::{self, BufRead, Write};
use std::sync::OnceLock;

use memchr::memmem;

mod config;
mod http;
mod line;
mod prefilter;
mod sip;
mod values;
mod vocabulary;

pub use line::Redactor;
use values::MAX_GDB_SYMBOL;

/// What a secret value is replaced with.
pub const MARK: &[u8] = b"[REDACTED]";

/// The longest line handled in one piece; longer ones are cut (see
/// [`LineReader`]).
pub const MAX_LINE: usize = 1 << 20;

/// Where a redacted value was found: what `report --list` counts per file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// A value whose key, local or field names a credential.
    Credential,
    /// A SIP digest parameter (`response`, `nonce`, ...).
    SipDigest,
    /// An HTTP credential: `Authorization` schemes, cookies.
    HttpAuth,
    /// A token: a JWT, a wazo-auth token in a URL path.
    Token,
    /// The password of a URI (`scheme://user:PASS@`, `sip:user:PASS@`,
    /// `register =>`, `auth =`, `curl -u`).
    UriPassword,
    /// A voicemail PIN (`1001 => PIN,...`).
    VoicemailPin,
    /// A gdb value printed after a command that names a credential.
    GdbValue,
    /// A YAML block scalar under a credential key.
    YamlBlock,
    /// A command-line password (`--password X`, `mysql -pX`).
    CommandLine,
    /// A PEM private key body.
    PrivateKey,
}

impl Kind {
    pub const ALL: [Kind; 10] = [
        Kind::Credential,
        Kind::SipDigest,
        Kind::HttpAuth,
        Kind::Token,
        Kind::UriPassword,
        Kind::VoicemailPin,
        Kind::GdbValue,
        Kind::YamlBlock,
        Kind::CommandLine,
        Kind::PrivateKey,
    ];

    /// The short name shown in counts and in `REDACTIONS.txt`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Credential => "credential",
            Kind::SipDigest => "sip-digest",
            Kind::HttpAuth => "http-auth",
            Kind::Token => "token",
            Kind::UriPassword => "uri-password",
            Kind::VoicemailPin => "voicemail-pin",
            Kind::GdbValue => "gdb-value",
            Kind::YamlBlock => "yaml-block",
            Kind::CommandLine => "command-line",
            Kind::PrivateKey => "private-key",
        }
    }
}

/// How many values of each [`Kind`] were redacted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts([u64; Kind::ALL.len()]);

impl Counts {
    pub fn add(&mut self, kind: Kind, count: u64) {
        self.0[kind as usize] += count;
    }

    pub fn merge(&mut self, other: &Counts) {
        for (mine, theirs) in self.0.iter_mut().zip(other.0) {
            *mine += theirs;
        }
    }

    pub fn get(&self, kind: Kind) -> u64 {
        self.0[kind as usize]
    }

    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// The kinds with a count, in [`Kind::ALL`] order.
    pub fn nonzero(&self) -> impl Iterator<Item = (Kind, u64)> + '_ {
        Kind::ALL
            .iter()
            .map(|&kind| (kind, self.get(kind)))
            .filter(|&(_, count)| count > 0)
    }

    /// `3 credential, 1 sip-digest`, or `nothing`.
    pub fn describe(&self) -> String {
        let parts: Vec<String> = self
            .nonzero()
            .map(|(kind, count)| format!("{count} {}", kind.name()))
            .collect();
        if parts.is_empty() {
            "nothing".to_string()
        } else {
            parts.join(", ")
        }
    }
}

/// What a line leaves for the next: a long line's later pieces, a YAML
/// block under a credential key, the value gdb prints after `p ...secret`.
#[derive(Debug, Default, Clone, Copy)]
pub struct LineContext {
    /// The line (or a piece before) named a SIP authentication header.
    digest: bool,
    /// The piece ended inside a `Cookie:` header's pairs.
    cookie: bool,
    /// The last gdb command printed something named like a credential.
    gdb_secret: bool,
    /// A YAML key without a value on its line: what follows, indented more.
    block: Option<Block>,
}

/// A YAML value on the lines after its key: a block scalar (`secret: |`)
/// is hidden whole; a nested value (`password:` then an indented line) is
/// hidden unless it is itself `key: value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Block {
    indent: usize,
    literal: bool,
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
    /// The redactions by kind (they add up to `redactions`).
    pub counts: Counts,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Lines longer than [`MAX_LINE`], handled in pieces.
    pub long_lines: u64,
}

/// Reads lines of at most `max` bytes from a `BufRead`.
///
/// A longer line is cut at a blank, `,`, `&` or `;` near the limit when
/// there is one, never between a key and its value (so a `key=value` pair
/// is not split), otherwise at the limit; the cut is counted in
/// [`LineReader::long_lines`].
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

/// How close two secret triggers (a key, a header name, an auth scheme)
/// must be to belong together (a gdb `<symbol>` may sit between a key and
/// its string).
const TRIGGER_GAP: usize = MAX_GDB_SYMBOL + 88;

/// Where to cut an over-long line: at a separator (blank, `,`, `&`, `;`) of
/// its last 4 KiB, before the run of secret triggers that reaches its end
/// (the word of a trigger moves whole: `--password X`, `1001 => PIN`),
/// never inside a key and value; else before the first key whose value
/// may go on; else at the end.
fn cut_point(line: &[u8]) -> usize {
    let floor = line.len().saturating_sub(4096).max(1);
    let window = &line[floor..];
    let redactor = Redactor::shared();
    // A key at the end of this piece would lose its value to the next one
    // (`password |= x`, `ha1 | = "x"`, `Bearer |x`, `secret = 0x55 |"x"`):
    // what may belong to a secret moves to the next piece whole.
    let mut limit = line.len();
    let triggers: Vec<(usize, usize)> = redactor
        .prefilter
        .find_iter(window)
        .map(|(start, end)| (floor + start, floor + end))
        .collect();
    for &(start, end) in triggers.iter().rev() {
        if end + TRIGGER_GAP < limit {
            break;
        }
        limit = start;
    }
    // The last word moves too: what follows it is not read yet (`1001 |=>
    // PIN`).
    let is_separator = |b: &u8| matches!(b, b' ' | b'\t' | b',' | b'&' | b';');
    let words_end = window
        .iter()
        .rposition(|b| !is_separator(b))
        .map_or(floor, |at| floor + at);
    let last_word = line[floor..words_end]
        .iter()
        .rposition(is_separator)
        .map_or(floor, |at| floor + at + 1);
    limit = limit.min(last_word.max(floor));
    let mut regions = Vec::new();
    redactor.find(window, &mut LineContext::default(), &mut regions);
    let regions: Vec<(usize, usize)> = regions
        .into_iter()
        .map(|(key, end)| (floor + key, end.saturating_add(floor)))
        .collect();
    let splits = |cut: usize| regions.iter().any(|&(key, end)| key < cut && cut < end);
    let separator = |at: usize| {
        matches!(line[at], b' ' | b'\t' | b',' | b'&' | b';')
            && !matches!(line[at - 1], b'=' | b':' | b' ' | b'\t')
            && !splits(at + 1)
    };
    let cut = (floor..limit.min(line.len()))
        .rev()
        .find(|&at| separator(at))
        .or_else(|| (floor..line.len()).rev().find(|&at| separator(at)))
        .map_or(line.len(), |at| at + 1);
    regions
        .iter()
        .filter(|&&(key, end)| key < cut && cut < end)
        .map(|&(key, _)| key)
        .min()
        .unwrap_or(cut)
        .max(1)
}

/// Redacts a stream line by line, with what spans lines: the body of PEM
/// private keys (`-----BEGIN ... PRIVATE KEY-----`), YAML block scalars
/// under a credential key, the value gdb prints after `p ...secret`, and
/// the pieces of a line cut for length.
pub struct StreamRedactor {
    redactor: &'static Redactor,
    pem: &'static PemMarkers,
    context: LineContext,
    in_private_key: bool,
    /// The previous piece did not end its line.
    mid_line: bool,
    /// The line going on is hidden whole (a PEM or YAML block line).
    hiding_line: bool,
    block_counted: bool,
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
            pem: PemMarkers::shared(),
            context: LineContext::default(),
            in_private_key: false,
            mid_line: false,
            hiding_line: false,
            block_counted: false,
            stats: Stats::default(),
        }
    }

    fn count(&mut self, kind: Kind) {
        self.stats.counts.add(kind, 1);
        self.stats.redactions += 1;
    }

    /// Redacts one line (or piece of a long line) and writes it to `out`.
    pub fn line(&mut self, line: &[u8], out: &mut impl Write) -> io::Result<()> {
        let continued = self.mid_line;
        self.mid_line = !line.ends_with(b"\n");
        self.stats.bytes_in += line.len() as u64;
        if !continued {
            self.stats.lines += 1;
        }
        let ending = &line[trim_end(line)..];
        let written = if continued && self.hiding_line {
            out.write_all(ending)?;
            ending.len()
        } else if !continued && self.hides_whole(line) {
            self.hiding_line = true;
            let mut indent = line[..trim_end(line)]
                .iter()
                .take_while(|b| matches!(b, b' ' | b'\t'))
                .count();
            if line[indent..].starts_with(b"- ") {
                // A YAML list item: the dash is structure.
                indent += 2;
            }
            out.write_all(&line[..indent])?;
            out.write_all(MARK)?;
            out.write_all(ending)?;
            indent + MARK.len() + ending.len()
        } else {
            self.hiding_line = false;
            if !continued {
                // What a piece carries over holds for its own line only.
                self.context.digest = false;
                self.context.cookie = false;
            }
            // `-----` is rare: look for it before the two markers.
            let dashes =
                memchr::memchr(b'-', line).is_some() && self.pem.dashes.find(line).is_some();
            let is_pem = |marker: &memmem::Finder| {
                dashes && marker.find(line).is_some() && self.pem.private.find(line).is_some()
            };
            if is_pem(&self.pem.begin) {
                self.in_private_key = true;
                self.count(Kind::PrivateKey);
            } else if self.in_private_key && is_pem(&self.pem.end) {
                self.in_private_key = false;
            }
            let block_before = self.context.block;
            let (redacted, counts) = self.redactor.redact(line, &mut self.context);
            if self.context.block.is_some() && self.context.block != block_before {
                self.block_counted = false;
            }
            self.stats.counts.merge(&counts);
            self.stats.redactions += counts.total();
            out.write_all(&redacted)?;
            redacted.len()
        };
        self.stats.bytes_out += written as u64;
        Ok(())
    }

    /// Whether a new line is hidden whole: inside a PEM key, or inside a
    /// YAML block under a credential key (a line indented more than it).
    fn hides_whole(&mut self, line: &[u8]) -> bool {
        let end = trim_end(line);
        if self.in_private_key {
            let is_end = self.pem.end.find(line).is_some() && self.pem.private.find(line).is_some();
            return !is_end && end > 0 && !line.starts_with(MARK);
        }
        let Some(block) = self.context.block else {
            return false;
        };
        let indent = line[..end]
            .iter()
            .take_while(|b| matches!(b, b' ' | b'\t'))
            .count();
        if end == 0 {
            // A blank line neither holds a secret nor ends the block.
            return false;
        }
        if indent <= block.indent {
            self.context.block = None;
            return false;
        }
        let content = &line[indent..end];
        if content == MARK {
            return false;
        }
        if !block.literal && is_mapping_entry(content) {
            return false;
        }
        if !self.block_counted {
            self.block_counted = true;
            self.count(Kind::YamlBlock);
        }
        true
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }
}

/// The searchers for PEM key markers, which every line with a `-` goes
/// through: built once, not at each search (`memmem::find` builds one).
struct PemMarkers {
    dashes: memmem::Finder<'static>,
    begin: memmem::Finder<'static>,
    end: memmem::Finder<'static>,
    private: memmem::Finder<'static>,
}

impl PemMarkers {
    fn shared() -> &'static PemMarkers {
        static SHARED: OnceLock<PemMarkers> = OnceLock::new();
        SHARED.get_or_init(|| PemMarkers {
            dashes: memmem::Finder::new(b"-----"),
            begin: memmem::Finder::new(b"-----BEGIN "),
            end: memmem::Finder::new(b"-----END "),
            private: memmem::Finder::new(b"PRIVATE KEY-----"),
        })
    }
}

/// `key: value` or `- key: value` (YAML): a line under a credential key
/// that names its own setting, read on its own.
fn is_mapping_entry(content: &[u8]) -> bool {
    let content = content.strip_prefix(b"- ").unwrap_or(content);
    let key = content
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || b"_-.\"'".contains(b))
        .count();
    key > 0
        && content.get(key) == Some(&b':')
        && content.get(key + 1).is_none_or(|b| b.is_ascii_whitespace())
}

/// Copies `reader` to `writer` with every secret replaced by [`MARK`]: the
/// plain form of [`redact_stream_checked`], which the fuzzers compare with
/// line-by-line redaction.
#[cfg(test)]
pub fn redact_stream(reader: impl BufRead, writer: impl Write) -> io::Result<Stats> {
    redact_stream_checked(reader, writer, |_, _| Ok(true))
}

/// [`redact_stream`] with lines cut at `max` bytes instead of [`MAX_LINE`].
#[cfg(test)]
pub fn redact_stream_max(
    reader: impl BufRead,
    mut writer: impl Write,
    max: usize,
) -> io::Result<Stats> {
    let mut lines = LineReader::with_max(reader, max);
    let mut stream = StreamRedactor::new();
    while let Some(line) = lines.next_line()? {
        stream.line(line, &mut writer)?;
    }
    Ok(stream.stats())
}

/// [`redact_stream`], showing `check` each line as read, with its byte
/// offset, before it is written: `Ok(false)` from `check` ends the copy
/// there (the rest of the file is not text), an error stops it (`report`
/// stops at a core appended to a log, or on Ctrl-C).
pub fn redact_stream_checked(
    reader: impl BufRead,
    mut writer: impl Write,
    mut check: impl FnMut(&[u8], u64) -> io::Result<bool>,
) -> io::Result<Stats> {
    let mut lines = LineReader::new(reader);
    let mut stream = StreamRedactor::new();
    let mut offset = 0u64;
    while let Some(line) = lines.next_line()? {
        if !check(line, offset)? {
            break;
        }
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
