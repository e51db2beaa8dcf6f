//! The bundle against the redaction corpus: every seeded secret replaced,
//! the structure kept, each kind counted per file.

use predicates::prelude::*;
use std::fs;
use std::path::PathBuf;

use crate::report::{PINS, RUN, bin, contains, gunzip, gzip, read_bundle};

pub(crate) fn markers_in(text: &[u8]) -> Vec<String> {
    let mut found: Vec<String> = text
        .windows(4)
        .enumerate()
        .filter(|(_, w)| w.starts_with(b"Zq") && w[2].is_ascii_digit() && w[3].is_ascii_digit())
        .map(|(at, _)| {
            let len = text[at..]
                .iter()
                .take_while(|b| b.is_ascii_alphanumeric())
                .count();
            String::from_utf8_lossy(&text[at..at + len]).into_owned()
        })
        .collect();
    found.extend(
        PINS.iter()
            .filter(|pin| contains(text, pin))
            .map(|pin| pin.to_string()),
    );
    found
}

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/secrets");

/// Where each corpus file goes in the run directory, as on a server.
fn corpus_place(name: &str) -> String {
    match name {
        "full" | "wazo-auth.log" | "wazo-calld.log" => format!("logs/{name}"),
        name if name.ends_with(".conf") || name.ends_with(".yml") => format!("etc/{name}"),
        name => name.to_string(),
    }
}

/// A run directory with the whole corpus, plus a rotated, gzipped copy of
/// the `full` log.
pub(crate) fn corpus_run() -> (tempfile::TempDir, PathBuf, usize) {
    let base = tempfile::tempdir().unwrap();
    let run = base.path().join(RUN);
    let mut planted = 0;
    for entry in fs::read_dir(CORPUS).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = fs::read(&path).unwrap();
        planted += markers_in(&text).len();
        let target = run.join(corpus_place(&name));
        fs::create_dir_all(target.parent().unwrap()).unwrap();
        fs::write(&target, &text).unwrap();
        if name == "full" {
            fs::write(run.join("logs/full.1.gz"), gzip(&text)).unwrap();
        }
    }
    (base, run, planted)
}

#[test]
fn corpus_bundle_has_no_marker_and_keeps_the_structure() {
    let (base, run, planted) = corpus_run();
    assert!(planted >= 80, "only {planted} markers planted");
    let output = bin().arg("report").arg(&run).assert().success();
    let stdout = String::from_utf8_lossy(&output.get_output().stdout).into_owned();
    let entries = read_bundle(&base.path().join(format!("{RUN}.tar.gz")));
    let mut everything = Vec::new();
    let mut leaks = Vec::new();
    for (name, _, content) in &entries {
        let plain = if name.ends_with(".gz") {
            gunzip(content)
        } else {
            content.clone()
        };
        for marker in markers_in(&plain) {
            leaks.push(format!("{name}: {marker}"));
        }
        everything.extend_from_slice(&plain);
        everything.push(b'\n');
    }
    assert!(leaks.is_empty(), "leaked: {leaks:?}");
    // What a developer still reads: frames, keys, header names, structure.
    for kept in [
        "#1  0x00007f3a3a2b1c3d in pjsip_auth_create_digest (result=0x7f3a2b7fd2a0, nonce=0x55d5c0a41c10,",
        "        auth_pass = 0x55d5c0a3b2f0 \"[REDACTED]\"",
        "        md5_creds = 0x55d5c0a3b300 \"[REDACTED]\"",
        "cred = {realm = {ptr = 0x55d5c0a41c00 \"wazo\", slen = 4}",
        "data = {ptr = 0x55d5c0a41c40 \"[REDACTED]\", slen = 12}",
        "buf = \"Authorization: Digest username=\\\"1001\\\", realm=\\\"wazo\\\", nonce=\\\"[REDACTED]\\\"",
        "$1 = 0x55d5c0a3b2f0 \"[REDACTED]\"",
        "$3 = 0x55d5c0a3c100 \"PJSIP/1001-00000001\"",
        "0x55d5c0a3b2f0:\t\"[REDACTED]\"",
        "REGISTER sip:wazo.example.com SIP/2.0",
        "WWW-Authenticate: Digest realm=\"wazo\",nonce=\"[REDACTED]\",opaque=\"3f1a2b\"",
        "Authorization: Digest username=\"1001\", realm=\"wazo\", nonce=\"[REDACTED]\"",
        "Authentication-Info: nextnonce=\"[REDACTED]\", rspauth=\"[REDACTED]\"",
        "Proxy-Authorization: Digest username=\"trunkuser\"",
        "'sip:trunkuser:[REDACTED]@sip.provider.example'",
        "GET /0.1/token/[REDACTED] HTTP/1.1",
        "{'X-Auth-Token': '[REDACTED]', 'Content-Type': 'application/json'}",
        "Cookie: session=[REDACTED]; csrftoken=[REDACTED]",
        "password reset requested for user 1001",
        "curl -k -u admin:[REDACTED] https://localhost:9497/0.1/token",
        "mysql -u root -p[REDACTED] asterisk",
        "1001 => [REDACTED],Alice Martin,alice@example.com",
        "password = [REDACTED]\n",
        "  username: wazo-calld\n  password: [REDACTED]\n  key_file: /var/lib/wazo-auth-keys/wazo-calld-key.yml",
        "secret: |\n  [REDACTED]\n  [REDACTED]\ncertificate_key: >-",
        "register => trunkuser:[REDACTED]@sip.provider.example/1000",
        "same => n,Set(DB(secret/1001)=[REDACTED])",
        "rocommunity [REDACTED]",
        "-----BEGIN PRIVATE KEY-----\n[REDACTED]\n-----END PRIVATE KEY-----",
    ] {
        assert!(contains(&everything, kept), "{kept:?} is gone");
    }
    // REDACTIONS.txt: the same counts as the summary, and no value.
    let list = entries
        .iter()
        .find(|(name, ..)| *name == format!("{RUN}/REDACTIONS.txt"))
        .map(|(_, mode, content)| (*mode, String::from_utf8_lossy(content).into_owned()))
        .expect("REDACTIONS.txt in the bundle");
    assert_eq!(list.0 & 0o077, 0);
    assert!(markers_in(list.1.as_bytes()).is_empty());
    assert!(
        list.1
            .contains("  etc/voicemail.conf: 3 (3 voicemail-pin)\n"),
        "{}",
        list.1
    );
    assert!(
        list.1
            .contains("  logs/full.1.gz: 13 (3 credential, 9 sip-digest, 1 uri-password)\n"),
        "{}",
        list.1
    );
    assert!(
        stdout.contains("etc/voicemail.conf  (text; 3 secrets redacted: 3 voicemail-pin)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("logs/full.1.gz  (gzip text; 13 secrets redacted: 3 credential, 9 sip-digest, 1 uri-password)"),
        "{stdout}"
    );
    assert!(stdout.contains("with REDACTIONS.txt"), "{stdout}");
}

#[test]
fn dry_run_and_json_count_each_kind_per_file() {
    let (base, run, _) = corpus_run();
    bin()
        .args(["--dry-run", "report"])
        .arg(&run)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "bt-full-pjsip.txt  (text; 16 secrets redacted: 11 credential, 3 sip-digest, 2 gdb-value)",
        ))
        .stdout(predicate::str::contains(
            "etc/config.yml  (text; 8 secrets redacted: 4 credential, 1 uri-password, 3 yaml-block)",
        ))
        .stdout(predicate::str::contains("Dry run: nothing written"));
    assert_eq!(
        fs::read_dir(base.path()).unwrap().count(),
        1,
        "dry run wrote"
    );
    let output = bin()
        .args(["--json", "--dry-run", "report"])
        .arg(&run)
        .assert()
        .success();
    let summary: serde_json::Value = serde_json::from_slice(&output.get_output().stdout).unwrap();
    let file = summary["included"]
        .as_array()
        .unwrap()
        .iter()
        .find(|file| file["path"] == "logs/wazo-auth.log")
        .unwrap()
        .clone();
    assert_eq!(file["redactions_by_kind"]["token"], 3, "{file}");
    assert_eq!(file["redactions_by_kind"]["http-auth"], 3, "{file}");
    let total: u64 = summary["redactions_by_kind"]
        .as_object()
        .unwrap()
        .values()
        .map(|count| count.as_u64().unwrap())
        .sum();
    assert_eq!(summary["redactions"].as_u64().unwrap(), total);
    assert!(markers_in(&output.get_output().stdout).is_empty());
}

#[test]
fn a_redactions_txt_of_the_run_directory_is_left_out() {
    let base = tempfile::tempdir().unwrap();
    let run = base.path().join(RUN);
    fs::create_dir(&run).unwrap();
    fs::write(run.join("REDACTIONS.txt"), "mine: secret=Zq99mine\n").unwrap();
    bin()
        .arg("report")
        .arg(&run)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "REDACTIONS.txt  (the bundle's own",
        ));
    let entries = read_bundle(&base.path().join(format!("{RUN}.tar.gz")));
    let lists: Vec<_> = entries
        .iter()
        .filter(|(name, ..)| name.ends_with("REDACTIONS.txt"))
        .collect();
    assert_eq!(lists.len(), 1);
    assert!(!contains(&lists[0].2, "mine"));
}
