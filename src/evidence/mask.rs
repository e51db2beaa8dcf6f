//! `report --mask-ids`: who and where, replaced by consistent placeholders.
//!
//! Redaction hides secrets; some sites also do not want to publish who
//! called whom from where. With `--mask-ids`, IPv4 addresses, host names,
//! phone numbers and the user part of SIP URIs become `ip-1`, `host-1`,
//! `phone-1`, `user-1`: the same value gets the same placeholder in every
//! file of the bundle (as `sos clean` does), so a developer still follows
//! one endpoint through the logs. The map from placeholder to value is
//! written beside the bundle on the server, mode 0600, never into it.
//!
//! It runs on lines already redacted, so a secret never becomes a
//! placeholder that the map would then hold.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{self, Write};

use regex::bytes::Regex;

use crate::evidence::redact::MARK;

/// What kind of identifier a placeholder stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Class {
    Ip,
    Host,
    Phone,
    User,
}

impl Class {
    fn prefix(self) -> &'static str {
        match self {
            Class::Ip => "ip",
            Class::Host => "host",
            Class::Phone => "phone",
            Class::User => "user",
        }
    }
}

/// IPv4 addresses (loopback, `0.0.0.0` and broadcast stay: they identify
/// nobody).
const IPV4: &str = r"(?-u)\b(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(?:\.(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}\b";
/// Host names under a public or site-local suffix (`sip.provider.example`,
/// `pbx1.corp.lan`): file names such as `pjsip.conf` or `chan_sip.c` end
/// in no such suffix.
const HOST: &str = r"(?i-u)\b(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:com|net|org|io|fr|de|be|ch|ca|uk|eu|us|es|it|nl|info|biz|cloud|local|lan|internal|intra|corp|home|localdomain|example|test|invalid)\b";
/// Phone numbers: international (`+33612345678`, `0033612345678`) and
/// 10-digit national ones (`0612345678`).
const PHONE: &str = r"(?-u)(?:\+|\b00)[1-9][0-9]{7,14}\b|\b0[1-9][0-9]{8}\b";
/// The user part of a SIP URI: `sip:USER@host`, `sip:USER:[REDACTED]@host`.
const SIP_USER: &str = r#"(?i-u)\bsips?:([^@:;>\s"'\\]+)(?::[^@\s]*)?@"#;

/// Replaces identifiers with placeholders, the same one for the same value
/// across everything it sees.
pub struct Masker {
    ipv4: Regex,
    host: Regex,
    phone: Regex,
    sip_user: Regex,
    placeholders: HashMap<(Class, Vec<u8>), Vec<u8>>,
    /// In the order they were given out, for the map.
    given: Vec<(Vec<u8>, Vec<u8>)>,
    counters: HashMap<Class, u64>,
    /// Host names known beforehand, found as whole words.
    known: Vec<Vec<u8>>,
    masked: u64,
}

impl Default for Masker {
    fn default() -> Self {
        Masker::new()
    }
}

impl Masker {
    pub fn new() -> Masker {
        // Constants of this file, checked by its tests.
        let compile = |pattern: &str| Regex::new(pattern).expect("built-in pattern");
        Masker {
            ipv4: compile(IPV4),
            host: compile(HOST),
            phone: compile(PHONE),
            sip_user: compile(SIP_USER),
            placeholders: HashMap::new(),
            given: Vec::new(),
            counters: HashMap::new(),
            known: Vec::new(),
            masked: 0,
        }
    }

    /// How many identifiers were replaced so far.
    pub fn masked(&self) -> u64 {
        self.masked
    }

    /// The placeholder of a host name known beforehand (the server's own,
    /// from the run directory's name).
    pub fn host(&mut self, name: &[u8]) -> Vec<u8> {
        if !name.is_empty() && !self.known.iter().any(|known| known == name) {
            self.known.push(name.to_vec());
        }
        self.placeholder(Class::Host, name)
    }

    fn placeholder(&mut self, class: Class, value: &[u8]) -> Vec<u8> {
        let key = (class, value.to_ascii_lowercase());
        if let Some(known) = self.placeholders.get(&key) {
            return known.clone();
        }
        let counter = self.counters.entry(class).or_insert(0);
        *counter += 1;
        let made = format!("{}-{counter}", class.prefix()).into_bytes();
        self.given.push((made.clone(), value.to_vec()));
        self.placeholders.insert(key, made.clone());
        made
    }

    /// Masks one line.
    pub fn mask_line<'a>(&mut self, line: &'a [u8]) -> Cow<'a, [u8]> {
        let mut spans: Vec<(usize, usize, Class)> = Vec::new();
        for found in self.sip_user.captures_iter(line) {
            if let Some(user) = found.get(1) {
                spans.push((user.start(), user.end(), Class::User));
            }
        }
        let word =
            |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_alphanumeric() || b"_-.".contains(b));
        for known in &self.known {
            for at in memchr::memmem::find_iter(line, known) {
                let end = at + known.len();
                if !word(at.checked_sub(1).and_then(|before| line.get(before)))
                    && !word(line.get(end))
                {
                    spans.push((at, end, Class::Host));
                }
            }
        }
        for (pattern, class) in [
            (&self.ipv4, Class::Ip),
            (&self.host, Class::Host),
            (&self.phone, Class::Phone),
        ] {
            for found in pattern.find_iter(line) {
                spans.push((found.start(), found.end(), class));
            }
        }
        if spans.is_empty() {
            return Cow::Borrowed(line);
        }
        // A phone number as a SIP user is one identifier: the first span
        // found at a place wins, overlaps are dropped.
        spans.sort_by_key(|&(start, end, _)| (start, std::cmp::Reverse(end)));
        let mut out = Vec::with_capacity(line.len());
        let mut copied = 0;
        let mut changed = false;
        for (start, end, class) in spans {
            let value = &line[start..end];
            if start < copied || kept(class, value) {
                continue;
            }
            let placeholder = self.placeholder(class, value);
            out.extend_from_slice(&line[copied..start]);
            out.extend_from_slice(&placeholder);
            copied = end;
            changed = true;
            self.masked += 1;
        }
        if !changed {
            return Cow::Borrowed(line);
        }
        out.extend_from_slice(&line[copied..]);
        Cow::Owned(out)
    }

    /// The map, one `placeholder<TAB>value` a line, for the server only.
    pub fn map_text(&self) -> String {
        let mut text = String::from(
            "# wazo-astdebug report --mask-ids: placeholder, then the value it stands for.\n\
             # Keep this file on the server: it undoes the masking.\n",
        );
        for (placeholder, value) in &self.given {
            text.push_str(&String::from_utf8_lossy(placeholder));
            text.push('\t');
            text.push_str(&String::from_utf8_lossy(value));
            text.push('\n');
        }
        text
    }
}

/// Values that identify nobody, and placeholders themselves (masking twice
/// changes nothing).
fn kept(class: Class, value: &[u8]) -> bool {
    let placeholder = ["ip-", "host-", "phone-", "user-"].iter().any(|prefix| {
        value
            .strip_prefix(prefix.as_bytes())
            .is_some_and(|digits| !digits.is_empty() && digits.iter().all(u8::is_ascii_digit))
    });
    placeholder
        || value.starts_with(MARK)
        || (class == Class::Ip
            && (value.starts_with(b"127.") || value == b"0.0.0.0" || value == b"255.255.255.255"))
}

/// A writer that masks each line it is given before passing it on. Lines
/// are gathered up to a newline; one longer than `max` bytes is masked in
/// pieces.
pub struct MaskingWriter<'a, W: Write> {
    inner: W,
    masker: &'a mut Masker,
    line: Vec<u8>,
    max: usize,
}

impl<'a, W: Write> MaskingWriter<'a, W> {
    pub fn new(inner: W, masker: &'a mut Masker, max: usize) -> MaskingWriter<'a, W> {
        MaskingWriter {
            inner,
            masker,
            line: Vec::new(),
            max,
        }
    }

    fn emit(&mut self) -> io::Result<()> {
        let masked = self.masker.mask_line(&self.line);
        self.inner.write_all(&masked)?;
        self.line.clear();
        Ok(())
    }
}

impl<W: Write> Write for MaskingWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        while let Some(newline) = memchr::memchr(b'\n', rest) {
            self.line.extend_from_slice(&rest[..=newline]);
            self.emit()?;
            rest = &rest[newline + 1..];
        }
        self.line.extend_from_slice(rest);
        if self.line.len() > self.max {
            self.emit()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.line.is_empty() {
            self.emit()?;
        }
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(masker: &mut Masker, line: &str) -> String {
        String::from_utf8(masker.mask_line(line.as_bytes()).into_owned()).unwrap()
    }

    #[test]
    fn the_same_value_gets_the_same_placeholder() {
        let mut masker = Masker::new();
        assert_eq!(
            mask(
                &mut masker,
                "Contact: <sip:1001@10.0.0.5:5060;ob> via 10.0.0.5"
            ),
            "Contact: <sip:user-1@ip-1:5060;ob> via ip-1"
        );
        assert_eq!(
            mask(
                &mut masker,
                "INVITE sip:0611223344@sip.provider.example SIP/2.0 from 10.0.0.6"
            ),
            "INVITE sip:user-2@host-1 SIP/2.0 from ip-2"
        );
        assert_eq!(
            mask(&mut masker, "call from +33612345678 to 10.0.0.5"),
            "call from phone-1 to ip-1"
        );
        assert_eq!(
            mask(
                &mut masker,
                "client_uri = sip:trunkuser:[REDACTED]@SIP.provider.example"
            ),
            "client_uri = sip:user-3:[REDACTED]@host-1"
        );
        assert_eq!(masker.masked(), 10);
        assert!(masker.map_text().contains("ip-1\t10.0.0.5\n"));
        assert!(masker.map_text().contains("user-2\t0611223344\n"));
    }

    #[test]
    fn the_server_name_is_masked_as_a_word() {
        let mut masker = Masker::new();
        assert_eq!(masker.host(b"pbx1"), b"host-1");
        assert_eq!(
            mask(
                &mut masker,
                "Dec  1 08:04:34 pbx1 kernel: pbx10 pbx1.corp.lan"
            ),
            "Dec  1 08:04:34 host-1 kernel: pbx10 host-2"
        );
    }

    #[test]
    fn what_identifies_nobody_stays() {
        let mut masker = Masker::new();
        for line in [
            "[Dec  1 08:04:34] VERBOSE[5353] res_pjsip_logger.c: 127.0.0.1 bound to 0.0.0.0",
            "loading pjsip.conf and chan_sip.c, Asterisk 22.10.1, SIP/2.0, id=1764576274",
            "already masked: sip:user-1@host-2 from ip-3",
        ] {
            assert_eq!(mask(&mut masker, line), line);
        }
    }

    #[test]
    fn the_writer_masks_whole_lines_whatever_the_writes() {
        let mut masker = Masker::new();
        let mut out = Vec::new();
        {
            let mut writer = MaskingWriter::new(&mut out, &mut masker, 1 << 20);
            for piece in [
                &b"from 10.0"[..],
                b".0.5 to ",
                b"10.0.0.6\nand 10.0.0.5",
                b"\n",
            ] {
                writer.write_all(piece).unwrap();
            }
            writer.flush().unwrap();
        }
        assert_eq!(out, b"from ip-1 to ip-2\nand ip-1\n");
    }
}
