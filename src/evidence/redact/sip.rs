//! SIP: digest authentication and URIs with a password.
//!
//! The digest parameters of `Authorization`, `Proxy-Authorization`,
//! `WWW-Authenticate` and `Authentication-Info` allow an offline attack on
//! the password or a replay; a URI may carry the password itself
//! (`sip:user:PASS@`, `postgresql://user:PASS@`, chan_sip's `register =>`
//! and `auth =`). The user and the host stay: they say which endpoint it
//! was.

use regex::bytes::Regex;

use super::line::{Mode, Scan, T_DIGEST, T_REGISTER, T_SIP, T_URL, compile};
use super::{Kind, LineContext};

/// Digest parameters that allow an offline attack on the password or a
/// replay. `username` and `realm` are kept on purpose: they say which
/// endpoint failed to authenticate, the first thing a developer asks, and
/// they are in the From/To headers of the same message anyway.
const DIGEST_PARAM: &str =
    r"(?i-u)(?:^|[\s,;:])(?:response|nonce|cnonce|nextnonce|rspauth)[ \t]*=[ \t]*";
const DIGEST_CONTEXT: &str = r"(?i-u)digest|authenticat|authorization";
/// `postgresql://asterisk:PASSWORD@localhost/asterisk` (Wazo's `db_uri`).
const URL_PASSWORD: &str = r#"(?i-u)\b[a-z][a-z0-9+.\-]*://[^/\s:@"'\\]*:([^/\s@"'\\]+)@"#;
/// `sip:1001:PASSWORD@host`.
const SIP_URI: &str = r#"(?i-u)\bsips?:[^:@\s;>"'\\/<]+:([^@\s;>"'\\/<]+)@"#;
/// chan_sip `register => [peer?][transport://]user[@domain]:SECRET[:authuser]@host`.
const SIP_REGISTER: &str = r#"(?i-u)(?:^|["']|\\[nr])\s*register\s*=>?\s*(?:[^\s?]*\?)?(?:[a-z]+://)?[^:@/\s]+(?:@[^:@/\s]+)?:([^:@/\s]+)(?::[^@/\s]*)?@"#;
/// chan_sip `auth = user:SECRET@realm` (`#` for an MD5 hash).
const SIP_AUTH: &str = r#"(?i-u)(?:^|["']|\\[nr])\s*auth\s*=>?\s*[^:#@\s"'\\]+[:#]([^@\s"'\\]+)@"#;

/// The compiled SIP and URI patterns.
pub(super) struct SipRules {
    digest_param: Regex,
    digest_context: Regex,
    url_password: Regex,
    sip_uri: Regex,
    sip_register: Regex,
    sip_auth: Regex,
}

impl SipRules {
    pub(super) fn new() -> SipRules {
        SipRules {
            digest_param: compile(DIGEST_PARAM),
            digest_context: compile(DIGEST_CONTEXT),
            url_password: compile(URL_PASSWORD),
            sip_uri: compile(SIP_URI),
            sip_register: compile(SIP_REGISTER),
            sip_auth: compile(SIP_AUTH),
        }
    }

    /// The digest parameters of a line that names a SIP authentication
    /// header, or of the later pieces of one (`continued`): the header is
    /// left in `context` for them.
    pub(super) fn digest(&self, scan: &mut Scan, continued: bool, context: &mut LineContext) {
        let line = scan.line;
        if continued || (scan.has(T_DIGEST) && self.digest_context.is_match(line)) {
            context.digest = true;
            for found in self.digest_param.find_iter(line) {
                scan.push(found.start(), found.end(), Mode::Token, Kind::SipDigest);
            }
        }
    }

    /// The passwords of URIs, SIP URIs and chan_sip's `register =>` and
    /// `auth =`.
    pub(super) fn uris(&self, scan: &mut Scan) {
        if scan.has(T_URL) {
            scan.groups(&self.url_password, Kind::UriPassword);
        }
        if scan.has(T_SIP) {
            scan.groups(&self.sip_uri, Kind::UriPassword);
        }
        if scan.has(T_REGISTER) {
            scan.groups(&self.sip_register, Kind::UriPassword);
        }
        if scan.has(T_DIGEST) {
            scan.groups(&self.sip_auth, Kind::UriPassword);
        }
    }
}
