//! HTTP: `Authorization` schemes, `X-Auth-Token`-style tokens, cookies,
//! wazo-auth's token routes and JWTs anywhere.
//!
//! Wazo's services talk REST with wazo-auth tokens: the tokens show up in
//! headers, in URL paths (`/0.1/token/<token>`), in cookies and as JWTs in
//! logs of every kind. Query parameters named like a credential are
//! `key=value` pairs, found by the config rules.

use regex::bytes::Regex;

use super::line::{Mode, Scan, T_BEARER, T_COOKIE, T_CRED, T_DIGEST, T_JWT, compile};
use super::{Kind, LineContext, MARK};

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

/// The compiled HTTP patterns.
pub(super) struct HttpRules {
    auth_header: Regex,
    bearer: Regex,
    cookie: Regex,
    token_route: Regex,
    jwt: Regex,
}

impl HttpRules {
    pub(super) fn new() -> HttpRules {
        HttpRules {
            auth_header: compile(AUTH_HEADER),
            bearer: compile(BEARER),
            cookie: compile(COOKIE),
            token_route: compile(TOKEN_ROUTE),
            jwt: compile(JWT),
        }
    }

    /// `Authorization` credentials (Digest is the SIP rules' work), bearer
    /// tokens, cookie values (on from the piece before when `continued`:
    /// whether the pairs go on is left in `context`), token routes, JWTs.
    pub(super) fn credentials(&self, scan: &mut Scan, continued: bool, context: &mut LineContext) {
        let (line, end) = (scan.line, scan.end);
        if scan.has(T_DIGEST) {
            for found in self.auth_header.captures_iter(line) {
                if let (Some(whole), Some(scheme)) = (found.get(0), found.get(1)) {
                    if !scheme.as_bytes().eq_ignore_ascii_case(b"digest") {
                        scan.push(whole.start(), whole.end(), Mode::Token, Kind::HttpAuth);
                    }
                }
            }
        }
        if scan.has(T_BEARER) {
            scan.groups(&self.bearer, Kind::HttpAuth);
        }
        let mut cookie = if continued {
            Some((0, 0))
        } else if !scan.has(T_COOKIE) {
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
                scan.push(key, from, Mode::Fixed(to), Kind::HttpAuth)
            });
            context.cookie = stop >= end;
            cookie = self
                .cookie
                .find_at(line, stop)
                .map(|found| (found.start(), found.end()));
        }
        if scan.has(T_CRED) {
            scan.groups(&self.token_route, Kind::Token);
        }
        if scan.has(T_JWT) {
            for found in self.jwt.find_iter(line) {
                scan.push(
                    found.start(),
                    found.start(),
                    Mode::Fixed(found.end()),
                    Kind::Token,
                );
            }
        }
    }
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
