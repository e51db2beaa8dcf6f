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

use std::borrow::Cow;
use std::io::{self, BufRead, Write};
use std::sync::OnceLock;

use regex::bytes::Regex;

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

/// `key = value` in every form a Wazo server writes it: `key=value`,
/// `key => value`, `key: value`, `"key": value`, `\"key\": \"value\"`
/// (JSON inside a C string), gdb's `key = value` and URL-encoded
/// `key%3Dvalue`. The key is then checked by [`credential`].
const KEY_VALUE: &str = r#"(?i-u)([a-z0-9_.\-]*(?:pass|pwd|pin|key|cred|token|secret|jwt|communit|phrase|ha1)[a-z0-9_.\-]*)(\\*["']?)([ \t]*)(=>|=|:|%3d)([ \t]*)"#;
/// A config line `KEY VALUE` (`passwd X`, `rocommunity X`, `requirepass X`).
const SPACED_CONFIG: &str = r#"(?i-u)(?:^|["']|\\[nr])[ \t]*(?:-[ \t]+)?([a-z0-9_.\-]+)[ \t]+"#;
/// `com2sec NAME SOURCE COMMUNITY` (snmpd.conf).
const COM2SEC: &str =
    r#"(?i-u)(?:^|["']|\\[nr])[ \t]*com2sec6?[ \t]+(?:-cn[ \t]+\S+[ \t]+)?\S+[ \t]+\S+[ \t]+(\S+)"#;
/// `--password X`, `access_token X`.
const SPACED_FLAG: &str = r#"(?i-u)(?:^|[\s"'(;|&,])(--?[a-z][a-z0-9_\-]*|[a-z0-9_\-]*(?:access|refresh|auth|api)[_\-]?token)[ \t]+([^\s\-=:])"#;
const MYSQL: &str = r"(?i-u)\b(?:mysql|mysqldump|mysqladmin|mariadb)\b";
/// `mysql -pX` (a bare `-p` prompts: nothing to hide).
const MYSQL_P: &str = r"(?-u)(?:^|\s)-p(\S)";
/// `curl -u user:X`, `--user user:X`.
const USER_COLON: &str = r#"(?-u)(?:^|\s)(?:-u|--user)[ \t=]*\\*["']?[^\s:"'\\]+:"#;
/// Digest parameters that allow an offline attack on the password or a
/// replay. `username` and `realm` are kept on purpose: they say which
/// endpoint failed to authenticate, the first thing a developer asks, and
/// they are in the From/To headers of the same message anyway.
const DIGEST_PARAM: &str =
    r"(?i-u)(?:^|[\s,;:])(?:response|nonce|cnonce|nextnonce|rspauth)[ \t]*=[ \t]*";
const DIGEST_CONTEXT: &str = r"(?i-u)digest|authenticat|authorization";
/// `Authorization: SCHEME CREDENTIALS` (Basic, Bearer, Token, ...), also as
/// a JSON or Python dict key.
const AUTH_HEADER: &str =
    r#"(?i-u)\b(?:proxy-)?authorization\\*["']?[ \t]*[:=][ \t]*\\*["']?([a-z][a-z0-9_\-]*)[ \t]+"#;
const BEARER: &str = r"(?i-u)\bbearer[ \t]+([a-z0-9._~+/-]{8,}=*)";
const COOKIE: &str = r#"(?i-u)\b(?:set-)?cookie2?\\*["']?[ \t]*:[ \t]*"#;
/// wazo-auth's routes carry the token in the path: `GET /0.1/token/<token>`,
/// `HEAD /0.1/token/<token>/scopes/check`.
const TOKEN_ROUTE: &str = r"(?i-u)/tokens?/([a-z0-9._~\-]{8,})";
/// Three base64url parts, the first a JSON object (`{"` is `eyJ`).
const JWT: &str = r"(?-u)\beyJ[A-Za-z0-9_\-]{2,}\.[A-Za-z0-9_\-]{2,}\.[A-Za-z0-9_\-]*";
/// `postgresql://asterisk:PASSWORD@localhost/asterisk` (Wazo's `db_uri`).
const URL_PASSWORD: &str = r#"(?i-u)\b[a-z][a-z0-9+.\-]*://[^/\s:@"'\\]*:([^/\s@"'\\]+)@"#;
/// `sip:1001:PASSWORD@host`.
const SIP_URI: &str = r#"(?i-u)\bsips?:[^:@\s;>"'\\/<]+:([^@\s;>"'\\/<]+)@"#;
/// chan_sip `register => [peer?][transport://]user[@domain]:SECRET[:authuser]@host`.
const SIP_REGISTER: &str = r#"(?i-u)(?:^|["']|\\[nr])\s*register\s*=>?\s*(?:[^\s?]*\?)?(?:[a-z]+://)?[^:@/\s]+(?:@[^:@/\s]+)?:([^:@/\s]+)(?::[^@/\s]*)?@"#;
/// chan_sip `auth = user:SECRET@realm` (`#` for an MD5 hash).
const SIP_AUTH: &str = r#"(?i-u)(?:^|["']|\\[nr])\s*auth\s*=>?\s*[^:#@\s"'\\]+[:#]([^@\s"'\\]+)@"#;
/// voicemail.conf: `1001 => PIN,Full Name,email,...`.
const VOICEMAIL: &str = r#"(?-u)(?:^|["']|\\[nr])[ \t]*[0-9*#+]+[ \t]*=>[ \t]*"#;
/// Dialplan `Set(DB(secret/1001)=...)`.
const ASTDB_SET: &str = r"(?i-u)\bdb\(([^)\s]*)\)[ \t]*=[ \t]*";
/// `database show`: `/secret/1001    : value`.
const ASTDB_SHOW: &str = r#"(?-u)(?:^|["']|\\[nr])[ \t]*(/[^\s:"'\\]+)[ \t]*:[ \t]*"#;
/// A gdb command that prints a value: `(gdb) p peer->secret`.
const GDB_PRINT: &str = r"(?i-u)^[ \t]*(?:\(gdb\)[ \t]*)?(?:p|print|output|call|inspect|x|display)(?:/[a-z0-9]+)?[ \t]+(.+)";
/// What gdb prints for it: `$1 = ...`, or `0x55... <sym>:  "..."` for `x/s`.
const GDB_VALUE: &str =
    r"(?i-u)^(?:\$[0-9]+[ \t]*=[ \t]*|0x[0-9a-f]+(?:[ \t]*<[^>]{0,512}>)?:[ \t]*)";
/// Lines that may hold a secret: everything else is copied untouched
/// without running the other patterns (most log lines). Every pattern's
/// trigger is here.
const PREFILTER: &str = r"(?i-u)mysql|mariadb|pass|pwd|pin|key|cred|token|secret|jwt|communit|phrase|ha1|com2sec|bearer|basic|digest|nonce|response|rspauth|://|sip|register|auth|cookie|eyj|[0-9*#+][ \t]*=>|-p|-u|--user";

/// What the prefilter found, as the rules it lets run.
const T_CRED: u32 = 1;
const T_COM2SEC: u32 = 1 << 1;
const T_MYSQL: u32 = 1 << 2;
const T_USER: u32 = 1 << 3;
const T_DIGEST: u32 = 1 << 4;
const T_BEARER: u32 = 1 << 5;
const T_COOKIE: u32 = 1 << 6;
const T_JWT: u32 = 1 << 7;
const T_URL: u32 = 1 << 8;
const T_SIP: u32 = 1 << 9;
const T_REGISTER: u32 = 1 << 10;
const T_VOICEMAIL: u32 = 1 << 11;

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

/// Identifier parts that name a credential (`auth_pass`, `md5_creds`,
/// `db.password`, `X-Auth-Token`).
const CREDENTIAL_PARTS: &[&str] = &[
    "pass",
    "passwd",
    "password",
    "passwords",
    "pwd",
    "pin",
    "pincode",
    "key",
    "cred",
    "creds",
    "credential",
    "credentials",
    "token",
    "secret",
    "secrets",
    "jwt",
    "passphrase",
    "community",
    "apikey",
    "authkey",
    "privkey",
    "requirepass",
    "authpass",
    // A digest's HA1 is MD5(user:realm:password): as good as the password.
    "ha1",
];

/// Endings that make a credential of a part (`md5secret`, `remotesecret`,
/// `PGPASSWORD`, `authtoken`, `rocommunity`).
const CREDENTIAL_ENDINGS: &[&str] = &[
    "secret",
    "password",
    "passwd",
    "passphrase",
    "token",
    "pincode",
    "community",
    "apikey",
];

/// A last part that makes the whole a setting *about* a credential
/// (`key_file`, `token_expiration`, `pin_timeout`), not one.
const NOT_A_VALUE: &[&str] = &[
    "file",
    "path",
    "dir",
    "type",
    "len",
    "length",
    "size",
    "algorithm",
    "algo",
    "method",
    "format",
    "expires",
    "expiry",
    "expiration",
    "ttl",
    "timeout",
    "policy",
    "count",
    "retries",
    "max",
    "min",
    "mode",
    "enabled",
    "required",
];

/// Keys too common in prose to be taken with `:` or a blank (`unexpected
/// token: ')'`, `key: 1001`): only with `=` or as a quoted key.
const WEAK: &[&str] = &[
    "token",
    "key",
    "keys",
    "jwt",
    "cred",
    "creds",
    "credential",
    "credentials",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strength {
    Weak,
    Strong,
}

/// Whether an identifier names a credential: a whole `_`, `-` or
/// `.`-separated part, or a part ending in a credential word.
fn credential(ident: &[u8]) -> Option<Strength> {
    let lower = ident.to_ascii_lowercase();
    let trimmed: &[u8] = {
        let start = lower
            .iter()
            .position(|b| !b"-_.$".contains(b))
            .unwrap_or(lower.len());
        &lower[start..]
    };
    let parts: Vec<&[u8]> = trimmed
        .split(|b| b"_-.".contains(b))
        .filter(|part| !part.is_empty())
        .collect();
    if parts.len() > 1
        && parts
            .last()
            .is_some_and(|last| NOT_A_VALUE.iter().any(|w| w.as_bytes() == *last))
    {
        return None;
    }
    let named = parts.iter().any(|part| {
        CREDENTIAL_PARTS.iter().any(|w| w.as_bytes() == *part)
            || CREDENTIAL_ENDINGS.iter().any(|w| {
                // `rwcommunity6`, `secret2`: a number after the word.
                let digits = part.iter().rev().take_while(|b| b.is_ascii_digit()).count();
                part[..part.len() - digits].ends_with(w.as_bytes())
            })
    });
    if !named {
        return None;
    }
    let weak = parts.len() == 1 && WEAK.iter().any(|w| w.as_bytes() == parts[0]);
    Some(if weak {
        Strength::Weak
    } else {
        Strength::Strong
    })
}

/// Whether a path (`secret/1001`, `/secret/1001`, `peer->secret`) names a
/// credential in one of its parts.
fn path_names_credential(path: &[u8]) -> bool {
    path.split(|b| !(b.is_ascii_alphanumeric() || b"_-.".contains(b)))
        .any(|part| credential(part).is_some())
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

/// One hidden value: `start..end` of the line, found by a rule that
/// matched from `key`.
#[derive(Debug, Clone, Copy)]
struct Found {
    start: usize,
    end: usize,
    kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// A value that ends at a delimiter (or a quoted or bracketed one).
    Token,
    /// A config-style value: the rest of the line.
    ToLineEnd,
    /// A span a pattern found: hidden as is.
    Fixed(usize),
}

/// Where a value starts, found by one of the rules.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    /// Where the rule matched (the key), to never cut a long line between
    /// a key and its value.
    key: usize,
    at: usize,
    mode: Mode,
    kind: Kind,
}

/// The compiled patterns. Build one with [`Redactor::shared`].
pub struct Redactor {
    prefilter: Regex,
    key_value: Regex,
    spaced_config: Regex,
    com2sec: Regex,
    spaced_flag: Regex,
    mysql: Regex,
    mysql_p: Regex,
    user_colon: Regex,
    digest_param: Regex,
    digest_context: Regex,
    auth_header: Regex,
    bearer: Regex,
    cookie: Regex,
    token_route: Regex,
    jwt: Regex,
    url_password: Regex,
    sip_uri: Regex,
    sip_register: Regex,
    sip_auth: Regex,
    voicemail: Regex,
    astdb_set: Regex,
    astdb_show: Regex,
    gdb_print: Regex,
    gdb_value: Regex,
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
                spaced_config: compile(SPACED_CONFIG),
                com2sec: compile(COM2SEC),
                spaced_flag: compile(SPACED_FLAG),
                mysql: compile(MYSQL),
                mysql_p: compile(MYSQL_P),
                user_colon: compile(USER_COLON),
                digest_param: compile(DIGEST_PARAM),
                digest_context: compile(DIGEST_CONTEXT),
                auth_header: compile(AUTH_HEADER),
                bearer: compile(BEARER),
                cookie: compile(COOKIE),
                token_route: compile(TOKEN_ROUTE),
                jwt: compile(JWT),
                url_password: compile(URL_PASSWORD),
                sip_uri: compile(SIP_URI),
                sip_register: compile(SIP_REGISTER),
                sip_auth: compile(SIP_AUTH),
                voicemail: compile(VOICEMAIL),
                astdb_set: compile(ASTDB_SET),
                astdb_show: compile(ASTDB_SHOW),
                gdb_print: compile(GDB_PRINT),
                gdb_value: compile(GDB_VALUE),
            }
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
    fn find(
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
        let gdb_value = continued.gdb_secret && self.gdb_value.is_match(line);
        // Which rules can match, from one pass of the prefilter: most lines
        // run none, and a SIP header line only the SIP rules.
        let mut mask = 0;
        for found in self.prefilter.find_iter(line) {
            mask |= trigger(found.as_bytes());
        }
        if continued.cookie || gdb_value {
            mask = u32::MAX;
        }
        if mask == 0 {
            return Vec::new();
        }
        let has = |bits: u32| mask & bits != 0;
        let end = trim_end(line);
        let indent = line[..end]
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(end);
        let mut candidates = Vec::new();
        let mut push = |key: usize, at: usize, mode: Mode, kind: Kind| {
            candidates.push(Candidate {
                key,
                at,
                mode,
                kind,
            })
        };
        let groups =
            |pattern: &Regex, kind: Kind, push: &mut dyn FnMut(usize, usize, Mode, Kind)| {
                for found in pattern.captures_iter(line) {
                    if let (Some(whole), Some(group)) = (found.get(0), found.get(1)) {
                        push(whole.start(), group.start(), Mode::Fixed(group.end()), kind);
                    }
                }
            };

        if gdb_value {
            if let Some(found) = self.gdb_value.find(line) {
                push(0, found.end(), Mode::ToLineEnd, Kind::GdbValue);
            }
        }
        if let Some(found) = has(T_CRED).then(|| self.gdb_print.captures(line)).flatten() {
            if let Some(expression) = found.get(1) {
                context.gdb_secret = path_names_credential(expression.as_bytes());
            }
        }
        if has(T_CRED) {
            for found in self.key_value.captures_iter(line) {
                let (Some(whole), Some(key), Some(quote), Some(_before), Some(sep), Some(_after)) = (
                    found.get(0),
                    found.get(1),
                    found.get(2),
                    found.get(3),
                    found.get(4),
                    found.get(5),
                ) else {
                    continue;
                };
                let separator = sep.as_bytes();
                let next = line.get(sep.end()).copied();
                // `password == NULL` is a comparison, `token://` no key, `key::`
                // a C++ scope.
                if (separator == b"=" && next == Some(b'='))
                    || (separator == b":" && matches!(next, Some(b'/' | b':')))
                {
                    continue;
                }
                let Some(strength) = credential(key.as_bytes()) else {
                    continue;
                };
                let quoted_key = !quote.is_empty()
                    || (key.start() > 0 && matches!(line[key.start() - 1], b'"' | b'\''));
                let at_line_start = !quoted_key && key.start() <= indent
                    || line[indent..key.start()].starts_with(b"- ")
                        && line[indent + 2..key.start()]
                            .iter()
                            .all(|b| b.is_ascii_whitespace());
                if separator == b":" && at_line_start {
                    // YAML: the value is on the next lines.
                    let rest = &line[whole.end().min(end)..end];
                    if rest.is_empty() || is_block_indicator(rest) {
                        context.block = Some(Block {
                            indent: key.start(),
                            literal: !rest.is_empty(),
                        });
                        regions.push((key.start(), usize::MAX));
                        continue;
                    }
                }
                if separator == b":" && !quoted_key && strength == Strength::Weak {
                    continue;
                }

                let mode = if at_line_start {
                    Mode::ToLineEnd
                } else {
                    Mode::Token
                };
                push(key.start(), whole.end(), mode, Kind::Credential);
            }
        }
        // At a line start the value runs to the line end (`passwd my pass`);
        // at the start of a quoted line (`"...\nrequirepass X\n..."`), to a
        // delimiter.
        let mode_at = |start: usize| match line[start] {
            b'"' | b'\'' | b'\\' => Mode::Token,
            _ => Mode::ToLineEnd,
        };
        if has(T_CRED) {
            for found in self.spaced_config.captures_iter(line) {
                if let (Some(whole), Some(key)) = (found.get(0), found.get(1)) {
                    let next = line.get(whole.end()).copied();
                    if !matches!(next, Some(b'=' | b':' | b'>'))
                        && credential(key.as_bytes()) == Some(Strength::Strong)
                    {
                        push(
                            key.start(),
                            whole.end(),
                            mode_at(whole.start()),
                            Kind::Credential,
                        );
                    }
                }
            }
        }
        if has(T_COM2SEC) {
            groups(&self.com2sec, Kind::Credential, &mut push);
        }
        if has(T_CRED) {
            for found in self.spaced_flag.captures_iter(line) {
                if let (Some(flag), Some(value)) = (found.get(1), found.get(2)) {
                    if credential(flag.as_bytes()) == Some(Strength::Strong) {
                        push(flag.start(), value.start(), Mode::Token, Kind::CommandLine);
                    }
                }
            }
        }
        if has(T_MYSQL) && self.mysql.is_match(line) {
            for found in self.mysql_p.captures_iter(line) {
                if let (Some(whole), Some(value)) = (found.get(0), found.get(1)) {
                    push(whole.start(), value.start(), Mode::Token, Kind::CommandLine);
                }
            }
        }
        if has(T_USER) {
            for found in self.user_colon.find_iter(line) {
                push(found.start(), found.end(), Mode::Token, Kind::UriPassword);
            }
        }
        if continued.digest || (has(T_DIGEST) && self.digest_context.is_match(line)) {
            context.digest = true;
            for found in self.digest_param.find_iter(line) {
                push(found.start(), found.end(), Mode::Token, Kind::SipDigest);
            }
        }
        if has(T_DIGEST) {
            for found in self.auth_header.captures_iter(line) {
                if let (Some(whole), Some(scheme)) = (found.get(0), found.get(1)) {
                    if !scheme.as_bytes().eq_ignore_ascii_case(b"digest") {
                        push(whole.start(), whole.end(), Mode::Token, Kind::HttpAuth);
                    }
                }
            }
        }
        if has(T_BEARER) {
            groups(&self.bearer, Kind::HttpAuth, &mut push);
        }
        let mut cookie = if continued.cookie {
            Some((0, 0))
        } else if !has(T_COOKIE) {
            None
        } else {
            self.cookie
                .find(line)
                .map(|found| (found.start(), found.end()))
        };
        // Each header's pairs are read once: the next header is looked for
        // after them.
        while let Some((key, start)) = cookie {
            let stop = cookie_pairs(line, start, end, &mut |from, to| {
                push(key, from, Mode::Fixed(to), Kind::HttpAuth)
            });
            context.cookie = stop >= end;
            cookie = self
                .cookie
                .find_at(line, stop)
                .map(|found| (found.start(), found.end()));
        }
        if has(T_CRED) {
            groups(&self.token_route, Kind::Token, &mut push);
        }
        if has(T_JWT) {
            for found in self.jwt.find_iter(line) {
                push(
                    found.start(),
                    found.start(),
                    Mode::Fixed(found.end()),
                    Kind::Token,
                );
            }
        }
        if has(T_URL) {
            groups(&self.url_password, Kind::UriPassword, &mut push);
        }
        if has(T_SIP) {
            groups(&self.sip_uri, Kind::UriPassword, &mut push);
        }
        if has(T_REGISTER) {
            groups(&self.sip_register, Kind::UriPassword, &mut push);
        }
        if has(T_DIGEST) {
            groups(&self.sip_auth, Kind::UriPassword, &mut push);
        }
        if has(T_VOICEMAIL) {
            for found in self.voicemail.find_iter(line) {
                push(found.start(), found.end(), Mode::Token, Kind::VoicemailPin);
            }
        }
        if has(T_CRED) {
            for found in self.astdb_set.captures_iter(line) {
                if let (Some(whole), Some(path)) = (found.get(0), found.get(1)) {
                    if path_names_credential(path.as_bytes()) {
                        push(whole.start(), whole.end(), Mode::Token, Kind::Credential);
                    }
                }
            }
        }
        if has(T_CRED) {
            for found in self.astdb_show.captures_iter(line) {
                if let (Some(whole), Some(path)) = (found.get(0), found.get(1)) {
                    if path_names_credential(path.as_bytes()) {
                        push(
                            whole.start(),
                            whole.end(),
                            mode_at(whole.start()),
                            Kind::Credential,
                        );
                    }
                }
            }
        }
        resolve(line, end, candidates, regions)
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

/// `|`, `>`, `|-`, `>+2`... then maybe a comment: a YAML block scalar.
fn is_block_indicator(rest: &[u8]) -> bool {
    let (indicator, comment) = match memchr::memchr(b'#', rest) {
        Some(at) => (&rest[..at], true),
        None => (rest, false),
    };
    let indicator = &indicator[..trim_end(indicator)];
    let _ = comment;
    matches!(indicator.first(), Some(b'|' | b'>'))
        && indicator[1..].iter().all(|b| b"+-0123456789".contains(b))
}

/// Hides the values of `name=value; name=value` from `at`; returns where
/// the pairs end. Cookie attributes (`Path`, `Expires`...) stay.
fn cookie_pairs(
    line: &[u8],
    mut at: usize,
    end: usize,
    hide: &mut dyn FnMut(usize, usize),
) -> usize {
    const ATTRIBUTES: &[&[u8]] = &[
        b"path",
        b"domain",
        b"expires",
        b"max-age",
        b"samesite",
        b"priority",
    ];
    loop {
        while at < end && matches!(line[at], b' ' | b'\t') {
            at += 1;
        }
        let name = at;
        while at < end && !b" \t;=,\"'\\".contains(&line[at]) {
            at += 1;
        }
        if at >= end || line[at] != b'=' || at == name {
            return at;
        }
        let attribute = ATTRIBUTES
            .iter()
            .any(|known| line[name..at].eq_ignore_ascii_case(known));
        at += 1;
        let quoted = line.get(at) == Some(&b'"');
        let value = at + usize::from(quoted);
        at = value;
        while at < end
            && !(if quoted {
                b"\"" as &[u8]
            } else {
                b" \t;,\"'\\"
            })
            .contains(&line[at])
        {
            at += 1;
        }
        if !attribute && at > value && !line[value..].starts_with(MARK) {
            hide(value, at);
        }
        at += usize::from(quoted && at < end);
        if at < end && line[at] == b';' {
            at += 1;
            continue;
        }
        return at;
    }
}

/// The secret parts of the value that starts at `start`, given to `hide`;
/// returns where the value ends (how far the line was read).
///
/// `to_line_end`: a config-style line (`secret = my pass ; comment`), where
/// the value may hold spaces: hide the rest of the line.
fn value_spans(
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
                } else if stop > from
                    && !line[from..].starts_with(MARK)
                    && !kept(&stack, credentials, field)
                {
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
                } else if stop > at + 1
                    && !line[at + 1..].starts_with(MARK)
                    && !kept(&stack, credentials, field)
                {
                    values.push((at + 1, stop));
                }
                at = stop + 1;
                continue;
            }
            _ => {}
        }
        at += 1;
    }
    if !fields && values.is_empty() {
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
    // `\"` after the address: the local is printed inside a C string.
    let slashes = line[at..]
        .iter()
        .take(8)
        .take_while(|&&b| b == b'\\')
        .count();
    matches!(line.get(at + slashes), Some(b'"' | b'\'')).then_some(at)
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
        .map(|found| (floor + found.start(), floor + found.end()))
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
            // `-----` is rare: look for it before building two searchers.
            let dashes = memchr::memchr(b'-', line).is_some()
                && memchr::memmem::find(line, b"-----").is_some();
            let is_pem = |marker: &[u8]| {
                dashes
                    && memchr::memmem::find(line, marker).is_some()
                    && memchr::memmem::find(line, b"PRIVATE KEY-----").is_some()
            };
            if is_pem(b"-----BEGIN ") {
                self.in_private_key = true;
                self.count(Kind::PrivateKey);
            } else if self.in_private_key && is_pem(b"-----END ") {
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
            let is_end = memchr::memmem::find(line, b"-----END ").is_some()
                && memchr::memmem::find(line, b"PRIVATE KEY-----").is_some();
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
