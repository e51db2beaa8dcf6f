//! Configs and shell forms: secrets written as settings.
//!
//! `key = value` in every syntax a Wazo server has (Asterisk `.conf`,
//! YAML, JSON, Python dicts, C strings, URL-encoded), `KEY VALUE` config
//! lines (`requirepass X`, snmpd's communities), YAML values on the lines
//! after their key, command lines (`--password X`, `mysql -pX`, `curl -u
//! user:X`), and Asterisk's own forms: voicemail PINs and the astdb.
//! Which keys name a credential is the vocabulary's decision
//! ([`credential`]); these rules find the keys and where their values
//! start.

use regex::bytes::Regex;

use super::line::{Mode, Scan, T_COM2SEC, T_CRED, T_MYSQL, T_USER, T_VOICEMAIL, compile};
use super::vocabulary::{Strength, credential, path_names_credential};
use super::{Block, Kind, LineContext, trim_end};

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
/// voicemail.conf: `1001 => PIN,Full Name,email,...`.
const VOICEMAIL: &str = r#"(?-u)(?:^|["']|\\[nr])[ \t]*[0-9*#+]+[ \t]*=>[ \t]*"#;
/// Dialplan `Set(DB(secret/1001)=...)`.
const ASTDB_SET: &str = r"(?i-u)\bdb\(([^)\s]*)\)[ \t]*=[ \t]*";
/// `database show`: `/secret/1001    : value`.
const ASTDB_SHOW: &str = r#"(?-u)(?:^|["']|\\[nr])[ \t]*(/[^\s:"'\\]+)[ \t]*:[ \t]*"#;

/// The compiled config and shell patterns.
pub(super) struct ConfigRules {
    key_value: Regex,
    spaced_config: Regex,
    com2sec: Regex,
    spaced_flag: Regex,
    mysql: Regex,
    mysql_p: Regex,
    user_colon: Regex,
    voicemail: Regex,
    astdb_set: Regex,
    astdb_show: Regex,
}

impl ConfigRules {
    pub(super) fn new() -> ConfigRules {
        ConfigRules {
            key_value: compile(KEY_VALUE),
            spaced_config: compile(SPACED_CONFIG),
            com2sec: compile(COM2SEC),
            spaced_flag: compile(SPACED_FLAG),
            mysql: compile(MYSQL),
            mysql_p: compile(MYSQL_P),
            user_colon: compile(USER_COLON),
            voicemail: compile(VOICEMAIL),
            astdb_set: compile(ASTDB_SET),
            astdb_show: compile(ASTDB_SHOW),
        }
    }

    /// `key = value`, `KEY VALUE` and snmpd's `com2sec`; a YAML key whose
    /// value is on the next lines is left in `context` (and in `regions`:
    /// a long line is not cut after it).
    pub(super) fn settings(
        &self,
        scan: &mut Scan,
        context: &mut LineContext,
        regions: &mut Vec<(usize, usize)>,
    ) {
        let (line, end, indent) = (scan.line, scan.end, scan.indent);
        if scan.has(T_CRED) {
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
                scan.push(key.start(), whole.end(), mode, Kind::Credential);
            }
        }
        if scan.has(T_CRED) {
            for found in self.spaced_config.captures_iter(line) {
                if let (Some(whole), Some(key)) = (found.get(0), found.get(1)) {
                    let next = line.get(whole.end()).copied();
                    if !matches!(next, Some(b'=' | b':' | b'>'))
                        && credential(key.as_bytes()) == Some(Strength::Strong)
                    {
                        scan.push(
                            key.start(),
                            whole.end(),
                            scan.mode_at(whole.start()),
                            Kind::Credential,
                        );
                    }
                }
            }
        }
        if scan.has(T_COM2SEC) {
            scan.groups(&self.com2sec, Kind::Credential);
        }
    }

    /// `--password X`, `mysql -pX`, `curl -u user:X`.
    pub(super) fn command_lines(&self, scan: &mut Scan) {
        let line = scan.line;
        if scan.has(T_CRED) {
            for found in self.spaced_flag.captures_iter(line) {
                if let (Some(flag), Some(value)) = (found.get(1), found.get(2)) {
                    if credential(flag.as_bytes()) == Some(Strength::Strong) {
                        scan.push(flag.start(), value.start(), Mode::Token, Kind::CommandLine);
                    }
                }
            }
        }
        if scan.has(T_MYSQL) && self.mysql.is_match(line) {
            for found in self.mysql_p.captures_iter(line) {
                if let (Some(whole), Some(value)) = (found.get(0), found.get(1)) {
                    scan.push(whole.start(), value.start(), Mode::Token, Kind::CommandLine);
                }
            }
        }
        if scan.has(T_USER) {
            for found in self.user_colon.find_iter(line) {
                scan.push(found.start(), found.end(), Mode::Token, Kind::UriPassword);
            }
        }
    }

    /// Voicemail PINs and the astdb entries whose path names a credential.
    pub(super) fn asterisk(&self, scan: &mut Scan) {
        let line = scan.line;
        if scan.has(T_VOICEMAIL) {
            for found in self.voicemail.find_iter(line) {
                scan.push(found.start(), found.end(), Mode::Token, Kind::VoicemailPin);
            }
        }
        if scan.has(T_CRED) {
            for found in self.astdb_set.captures_iter(line) {
                if let (Some(whole), Some(path)) = (found.get(0), found.get(1)) {
                    if path_names_credential(path.as_bytes()) {
                        scan.push(whole.start(), whole.end(), Mode::Token, Kind::Credential);
                    }
                }
            }
        }
        if scan.has(T_CRED) {
            for found in self.astdb_show.captures_iter(line) {
                if let (Some(whole), Some(path)) = (found.get(0), found.get(1)) {
                    if path_names_credential(path.as_bytes()) {
                        scan.push(
                            whole.start(),
                            whole.end(),
                            scan.mode_at(whole.start()),
                            Kind::Credential,
                        );
                    }
                }
            }
        }
    }
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
