//! One line: the prefilter, the rules it lets run, and the spans they
//! find.
//!
//! Most log lines hold no secret: one pass of the prefilter finds the
//! words every rule needs ([`trigger`]), and a line without any is copied
//! untouched. The rules of each family (`config`, `sip`, `http`, the gdb
//! value history in `values`) then say where values start ([`Candidate`]),
//! and [`resolve`] reads each value once, left to right, so a line is read
//! a constant number of times whatever it holds.

use std::borrow::Cow;
use std::sync::OnceLock;

use regex::bytes::Regex;

use super::config::ConfigRules;
use super::http::HttpRules;
use super::prefilter::Prefilter;
use super::sip::SipRules;
use super::values::{GdbRules, MAX_GDB_SYMBOL, skip_gdb_pointer, value_spans};
use super::{Counts, Kind, LineContext, MARK, trim_end};

/// What the prefilter found, as the rules it lets run.
pub(super) const T_CRED: u32 = 1;
pub(super) const T_COM2SEC: u32 = 1 << 1;
pub(super) const T_MYSQL: u32 = 1 << 2;
pub(super) const T_USER: u32 = 1 << 3;
pub(super) const T_DIGEST: u32 = 1 << 4;
pub(super) const T_BEARER: u32 = 1 << 5;
pub(super) const T_COOKIE: u32 = 1 << 6;
pub(super) const T_JWT: u32 = 1 << 7;
pub(super) const T_URL: u32 = 1 << 8;
pub(super) const T_SIP: u32 = 1 << 9;
pub(super) const T_REGISTER: u32 = 1 << 10;
pub(super) const T_VOICEMAIL: u32 = 1 << 11;

/// The rules a prefilter match lets run.
fn trigger(found: &[u8]) -> u32 {
    let is = |word: &[u8]| found.eq_ignore_ascii_case(word);
    if found.ends_with(b"=>") {
        T_VOICEMAIL
    } else if is(b"://") {
        T_URL
    } else if is(b"-p") {
        T_MYSQL
    } else if is(b"-u") || is(b"--user") {
        T_USER
    } else if is(b"com2sec") {
        T_COM2SEC
    } else if is(b"mysql") || is(b"mariadb") {
        T_MYSQL
    } else if is(b"nonce")
        || is(b"response")
        || is(b"rspauth")
        || is(b"auth")
        || is(b"digest")
        || is(b"basic")
    {
        T_DIGEST
    } else if is(b"bearer") {
        T_BEARER
    } else if is(b"cookie") {
        T_COOKIE
    } else if is(b"eyj") {
        T_JWT
    } else if is(b"sip") {
        T_SIP
    } else if is(b"register") {
        T_REGISTER
    } else {
        T_CRED
    }
}

/// Compiles a built-in pattern.
pub(super) fn compile(pattern: &str) -> Regex {
    // The patterns are constants of these modules, checked by the unit
    // tests: failing here is a programming error, not bad input.
    Regex::new(pattern).expect("built-in pattern")
}

/// One hidden value: `start..end` of the line, found by a rule that
/// matched from `key`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Found {
    start: usize,
    end: usize,
    kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// A value that ends at a delimiter (or a quoted or bracketed one).
    Token,
    /// A config-style value: the rest of the line.
    ToLineEnd,
    /// A span a pattern found: hidden as is.
    Fixed(usize),
}

/// Where a value starts, found by one of the rules.
#[derive(Debug, Clone, Copy)]
pub(super) struct Candidate {
    /// Where the rule matched (the key), to never cut a long line between
    /// a key and its value.
    key: usize,
    at: usize,
    mode: Mode,
    kind: Kind,
}

/// One line being read: what every rule reads, and the values they found.
pub(super) struct Scan<'a> {
    pub(super) line: &'a [u8],
    /// The end of the line without its line ending and trailing blanks.
    pub(super) end: usize,
    /// Where the line's text starts, after its indentation.
    pub(super) indent: usize,
    /// The rules the prefilter lets run (`T_*`).
    mask: u32,
    candidates: Vec<Candidate>,
}

impl Scan<'_> {
    /// Whether the prefilter lets the rules of `bits` run.
    pub(super) fn has(&self, bits: u32) -> bool {
        self.mask & bits != 0
    }

    /// A value found at `at` by a rule that matched from `key`.
    pub(super) fn push(&mut self, key: usize, at: usize, mode: Mode, kind: Kind) {
        self.candidates.push(Candidate {
            key,
            at,
            mode,
            kind,
        })
    }

    /// The first group of each match of `pattern`, hidden as is.
    pub(super) fn groups(&mut self, pattern: &Regex, kind: Kind) {
        let line = self.line;
        for found in pattern.captures_iter(line) {
            if let (Some(whole), Some(group)) = (found.get(0), found.get(1)) {
                self.push(whole.start(), group.start(), Mode::Fixed(group.end()), kind);
            }
        }
    }

    /// At a line start the value runs to the line end (`passwd my pass`);
    /// at the start of a quoted line (`"...\nrequirepass X\n..."`), to a
    /// delimiter.
    pub(super) fn mode_at(&self, start: usize) -> Mode {
        match self.line[start] {
            b'"' | b'\'' | b'\\' => Mode::Token,
            _ => Mode::ToLineEnd,
        }
    }
}

/// The compiled patterns. Build one with [`Redactor::shared`].
pub struct Redactor {
    /// Lines that may hold a secret: everything else is copied untouched
    /// without running the other patterns (most log lines). Every
    /// pattern's trigger is in it.
    pub(super) prefilter: Prefilter,
    gdb: GdbRules,
    config: ConfigRules,
    sip: SipRules,
    http: HttpRules,
}

impl Redactor {
    /// The process-wide redactor: the patterns are compiled once.
    pub fn shared() -> &'static Redactor {
        static SHARED: OnceLock<Redactor> = OnceLock::new();
        SHARED.get_or_init(|| Redactor {
            prefilter: Prefilter::new(),
            gdb: GdbRules::new(),
            config: ConfigRules::new(),
            sip: SipRules::new(),
            http: HttpRules::new(),
        })
    }

    /// Redacts one line on its own (with or without its line ending, which
    /// is kept). Returns the line and the number of values replaced.
    #[cfg(test)]
    pub fn redact_line<'a>(&self, line: &'a [u8]) -> (Cow<'a, [u8]>, usize) {
        let (out, counts) = self.redact(line, &mut LineContext::default());
        (out, counts.total() as usize)
    }

    /// Redacts one line (or piece of a long line), reading and updating
    /// what the lines before left in `context`.
    pub fn redact<'a>(&self, line: &'a [u8], context: &mut LineContext) -> (Cow<'a, [u8]>, Counts) {
        let mut counts = Counts::default();
        let found = self.find(line, context, &mut Vec::new());
        if found.is_empty() {
            return (Cow::Borrowed(line), counts);
        }
        let mut out = Vec::with_capacity(line.len() + MARK.len());
        let mut copied = 0;
        let mut covered = 0;
        for Found { start, end, kind } in found {
            if start < covered {
                // Overlaps a value already hidden (a bearer token that is
                // also a JWT): one secret, one count.
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
            counts.add(kind, 1);
        }
        out.extend_from_slice(&line[copied..]);
        (Cow::Owned(out), counts)
    }

    /// The values to hide, sorted by start; `regions` gets, for every
    /// candidate, where its key starts and where its value ends
    /// (`usize::MAX` when it may go on past the end of `line`).
    pub(super) fn find(
        &self,
        line: &[u8],
        context: &mut LineContext,
        regions: &mut Vec<(usize, usize)>,
    ) -> Vec<Found> {
        let continued = std::mem::take(context);
        context.gdb_secret = continued.gdb_secret;
        context.block = continued.block;
        if line.starts_with(b"(gdb)") {
            context.gdb_secret = false;
        }
        let gdb_value = continued.gdb_secret && self.gdb.is_value(line);
        // Which rules can match, from one pass of the prefilter: most lines
        // run none, and a SIP header line only the SIP rules.
        let mut mask = 0;
        for (start, end) in self.prefilter.find_iter(line) {
            mask |= trigger(&line[start..end]);
        }
        if continued.cookie || gdb_value {
            mask = u32::MAX;
        }
        if mask == 0 {
            return Vec::new();
        }
        let end = trim_end(line);
        let indent = line[..end]
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(end);
        let mut scan = Scan {
            line,
            end,
            indent,
            mask,
            candidates: Vec::new(),
        };
        // In this order: candidates that start at the same byte keep it.
        if gdb_value {
            self.gdb.value(&mut scan);
        }
        self.gdb.command(&scan, context);
        self.config.settings(&mut scan, context, regions);
        self.config.command_lines(&mut scan);
        self.sip.digest(&mut scan, continued.digest, context);
        self.http.credentials(&mut scan, continued.cookie, context);
        self.sip.uris(&mut scan);
        self.config.asterisk(&mut scan);
        resolve(line, end, scan.candidates, regions)
    }
}

/// Turns candidates into spans in one pass over the line: a candidate
/// whose value starts inside a value already read is skipped (its value is
/// hidden with the outer one), so no byte is scanned twice whatever the
/// line holds.
fn resolve(
    line: &[u8],
    end: usize,
    mut candidates: Vec<Candidate>,
    regions: &mut Vec<(usize, usize)>,
) -> Vec<Found> {
    candidates.sort_by_key(|candidate| candidate.at);
    let mut found = Vec::new();
    let mut scanned = 0;
    for candidate in candidates {
        let Candidate {
            key,
            at,
            mode,
            kind,
        } = candidate;
        if let Mode::Fixed(stop) = mode {
            if at < stop && !line[at..].starts_with(MARK) {
                found.push(Found {
                    start: at,
                    end: stop,
                    kind,
                });
            }
            regions.push((key, if stop >= end { usize::MAX } else { stop }));
            scanned = scanned.max(stop);
            continue;
        }
        if at < scanned {
            continue;
        }
        let before = found.len();
        let stop = value_spans(
            line,
            at,
            end,
            mode == Mode::ToLineEnd,
            &mut |start, stop| {
                found.push(Found {
                    start,
                    end: stop,
                    kind,
                })
            },
        );
        let open = stop >= end
            || (found.len() == before && at >= end)
            || (line[at..].starts_with(b"0x")
                && skip_gdb_pointer(line, at).is_none()
                && line.len() - at < MAX_GDB_SYMBOL + 64);
        regions.push((key, if open { usize::MAX } else { stop }));
        scanned = scanned.max(stop);
    }
    found.sort_by_key(|found| found.start);
    found
}
