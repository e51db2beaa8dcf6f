//! `wazo-astdebug report` run as a support engineer would: on a run
//! directory holding a real core (made by gcore), the same core under an
//! innocent name, and text files full of secrets; on the corpus of
//! `tests/fixtures/secrets/` (what a Wazo server really holds, each secret
//! a marker); on cores in every wrapping. The bundle is read back with the
//! tar and flate2 crates, byte by byte.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};

use assert_cmd::Command;
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use predicates::prelude::*;

use crate::report_corpus::{corpus_run, markers_in};

pub(crate) const RUN: &str = "20261128-045500-testpbx";

/// Values that must never reach the bundle.
const SECRETS: &[&str] = &[
    "hunter2",
    "s1pPeerPass",
    "trunkMd5Hash",
    "amiSecret42",
    "4f2a9c1e0bde",
    "n0nceValue",
    "cn0nce77",
    "fullLogPass",
    "rotatedPass",
    "eyJhbGciOiJIUzI1NiJ9",
];

const BT_THREADS: &str = "\
Thread 1 (Thread 0x7f0c1bfff700 (LWP 1255)):
#0  0x00007f0c2a1b3d2a in __strlen_avx2 () from /lib/x86_64-linux-gnu/libc.so.6
No symbol table info available.
#1  0x00007f0c0a2b1c3d in build_peer (name=0x55d5c0a3b2c0 \"1001\", v=0x55d5c0a40000) at chan_sip.c:31337
        peer = 0x55d5c0a3c000
        secret = 0x55d5c0a3b2f0 \"hunter2\"
        password = \"hunter2\"
        md5secret = 0x0
        conf = {name = \"1001\", secret = \"s1pPeerPass\", context = \"default\"}
#2  0x000055d5bfa1b2c3 in main (argc=4, argv=0x7ffd1f2c3e48) at asterisk.c:4242
";

const SIP_LOG: &str = "\
[Nov 28 04:55:00] VERBOSE[1255] chan_sip.c: <--- SIP read from UDP:10.0.0.5:5060 --->
REGISTER sip:wazo.example.com SIP/2.0\r
From: <sip:1001@wazo.example.com>\r
Authorization: Digest username=\"1001\", realm=\"wazo\", nonce=\"n0nceValue\", uri=\"sip:wazo.example.com\", response=\"4f2a9c1e0bde\", algorithm=MD5, cnonce=\"cn0nce77\", qop=auth, nc=00000001\r
Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig\r
";

const SIP_CONF: &str = "\
[1001]
type=friend
secret=s1pPeerPass
md5secret = trunkMd5Hash
host=dynamic
";

const AMI_LOG: &str = "Action: Login\r\nUsername: wazo-calld\r\nSecret: amiSecret42\r\n\r\n";

/// Makes a real core of a short-lived `sleep` with gcore, or `None` (with
/// a note) where gcore cannot attach, e.g. ptrace is not permitted.
fn real_core(dir: &Path) -> Option<PathBuf> {
    let mut child = Process::new("sleep").arg("30").spawn().ok()?;
    let prefix = dir.join("gcore");
    let status = Process::new("gcore")
        .arg("-o")
        .arg(&prefix)
        .arg(child.id().to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let _ = child.kill();
    let _ = child.wait();
    let core = dir.join(format!("gcore.{}", child.id()));
    if matches!(status, Ok(status) if status.success()) && core.exists() {
        Some(core)
    } else {
        eprintln!(
            "note: gcore failed (not installed, or ptrace not permitted); using a synthetic ELF core header instead"
        );
        None
    }
}

/// A fake core: a valid little-endian 64-bit ELF header with e_type 4.
fn synthetic_core() -> Vec<u8> {
    let mut bytes = vec![0u8; 4096];
    bytes[..4].copy_from_slice(b"\x7fELF");
    bytes[4] = 2;
    bytes[5] = 1;
    bytes[6] = 1;
    bytes[16] = 4;
    bytes
}

pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// A base directory with one run directory holding every kind of file.
struct Fixture {
    base: tempfile::TempDir,
    real_core: bool,
}

impl Fixture {
    fn new() -> Fixture {
        let base = tempfile::tempdir().unwrap();
        let run = base.path().join(RUN);
        fs::create_dir(&run).unwrap();
        let scratch = tempfile::tempdir().unwrap();
        let core = match real_core(scratch.path()) {
            Some(path) => fs::read(path).unwrap(),
            None => synthetic_core(),
        };
        let real_core = core.len() > 4096;
        fs::write(run.join("core.1255.1764305700"), &core).unwrap();
        fs::write(run.join("notes.txt"), &core).unwrap();
        fs::write(run.join("asterisk.core.gz"), gzip(&core)).unwrap();
        // Past the first 8 KiB that tell text from binary.
        let mut log_then_core = b"a log line\n".repeat(1000);
        log_then_core.extend_from_slice(&core[..64]);
        fs::write(run.join("appended.log"), log_then_core).unwrap();
        fs::write(run.join("core.txt"), "core show locks: no locks held\n").unwrap();
        fs::write(run.join("bt-threads.txt"), BT_THREADS).unwrap();
        fs::write(run.join("sip-debug.log"), SIP_LOG).unwrap();
        fs::write(run.join("sip.conf"), SIP_CONF).unwrap();
        fs::write(run.join("ami.log"), AMI_LOG).unwrap();
        fs::copy("/bin/true", run.join("true")).unwrap();
        symlink("/etc/passwd", run.join("passwd-link")).unwrap();
        let fifo = run.join("a-fifo");
        let made = Process::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|status| status.success()), "mkfifo");
        fs::create_dir(run.join("logs")).unwrap();
        let mut full = b"[Nov 28] DEBUG \xff\xfe invalid utf-8 password=fullLogPass end\n".to_vec();
        full.extend_from_slice(b"no newline at the end");
        fs::write(run.join("logs/full"), full).unwrap();
        fs::write(
            run.join("logs/full.2.gz"),
            gzip(b"[Nov 27] manager.c: Secret: rotatedPass\n"),
        )
        .unwrap();
        Fixture { base, real_core }
    }

    fn run_dir(&self) -> PathBuf {
        self.base.path().join(RUN)
    }

    fn bundle(&self) -> PathBuf {
        self.base.path().join(format!("{RUN}.tar.gz"))
    }

    fn listing(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.base.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

pub(crate) fn bin() -> Command {
    Command::cargo_bin("wazo-astdebug").unwrap()
}

/// Every entry of the bundle: path, mode, content.
pub(crate) fn read_bundle(path: &Path) -> Vec<(String, u32, Vec<u8>)> {
    let mut archive = tar::Archive::new(GzDecoder::new(fs::File::open(path).unwrap()));
    let mut entries = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let mode = entry.header().mode().unwrap();
        let mut content = Vec::new();
        entry.read_to_end(&mut content).unwrap();
        entries.push((name, mode, content));
    }
    entries
}

pub(crate) fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    GzDecoder::new(bytes).read_to_end(&mut out).unwrap();
    out
}

pub(crate) fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

#[test]
fn bundle_has_no_core_and_no_secret() {
    let fixture = Fixture::new();
    if !fixture.real_core {
        eprintln!("note: this run checked a synthetic core, not a gcore one");
    }
    let output = bin()
        .arg("report")
        .arg(fixture.run_dir())
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&output.get_output().stdout).into_owned();
    for left_out in [
        "core.1255.1764305700",
        "notes.txt",
        "asterisk.core.gz",
        "appended.log",
        "true",
        "passwd-link",
        "a-fifo",
    ] {
        assert!(
            stdout
                .lines()
                .any(|line| line.trim_start().starts_with(left_out)),
            "{left_out} not listed in:\n{stdout}"
        );
    }
    assert!(stdout.contains("ELF core file"), "{stdout}");
    assert!(stdout.contains("only with people you trust"), "{stdout}");
    assert!(stdout.contains(&fixture.bundle().display().to_string()));

    let bundle = fixture.bundle();
    let mode = fs::metadata(&bundle).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(
        fixture.listing(),
        vec![RUN.to_string(), format!("{RUN}.tar.gz")]
    );

    let entries = read_bundle(&bundle);
    let names: Vec<&str> = entries.iter().map(|(name, ..)| name.as_str()).collect();
    for (name, mode, content) in &entries {
        assert!(
            name == RUN || name.starts_with(&format!("{RUN}/")),
            "{name}"
        );
        assert_eq!(mode & 0o077, 0, "{name} is readable by others");
        let plain = if name.ends_with(".gz") {
            gunzip(content)
        } else {
            content.clone()
        };
        assert!(!contains(&plain, "\x7fELF"), "{name} holds ELF bytes");
        for secret in SECRETS {
            assert!(!contains(&plain, secret), "{name} leaks {secret}");
        }
    }
    for excluded in [
        "notes.txt",
        "core.1255.1764305700",
        "asterisk.core.gz",
        "true",
        "passwd-link",
        "a-fifo",
    ] {
        assert!(
            !names.contains(&format!("{RUN}/{excluded}").as_str()),
            "{excluded} in {names:?}"
        );
    }
    let file = |name: &str| -> Vec<u8> {
        let wanted = format!("{RUN}/{name}");
        let (_, _, content) = entries
            .iter()
            .find(|(path, ..)| *path == wanted)
            .unwrap_or_else(|| panic!("{name} missing from {names:?}"));
        content.clone()
    };
    let bt = file("bt-threads.txt");
    assert!(contains(&bt, "secret = 0x55d5c0a3b2f0 \"[REDACTED]\""));
    assert!(contains(&bt, "password = \"[REDACTED]\""));
    assert!(contains(
        &bt,
        "name = \"1001\", secret = \"[REDACTED]\", context = \"default\""
    ));
    let sip = file("sip-debug.log");
    assert!(contains(
        &sip,
        "username=\"1001\", realm=\"wazo\", nonce=\"[REDACTED]\""
    ));
    assert!(contains(&sip, "response=\"[REDACTED]\""));
    assert!(contains(&sip, "Authorization: Bearer [REDACTED]\r\n"));
    let conf = file("sip.conf");
    assert!(contains(
        &conf,
        "secret=[REDACTED]\nmd5secret = [REDACTED]\nhost=dynamic"
    ));
    assert_eq!(
        file("ami.log"),
        b"Action: Login\r\nUsername: wazo-calld\r\nSecret: [REDACTED]\r\n\r\n"
    );
    assert_eq!(file("core.txt"), b"core show locks: no locks held\n");
    assert_eq!(
        file("logs/full"),
        b"[Nov 28] DEBUG \xff\xfe invalid utf-8 password=[REDACTED] end\nno newline at the end"
    );
    assert_eq!(
        gunzip(&file("logs/full.2.gz")),
        b"[Nov 27] manager.c: Secret: [REDACTED]\n"
    );
    assert!(
        stdout.contains("bt-threads.txt  (text; 3 secrets redacted: 3 credential)"),
        "{stdout}"
    );
}

#[test]
fn dry_run_writes_nothing() {
    let fixture = Fixture::new();
    let before = fixture.listing();
    bin()
        .args(["--dry-run", "report"])
        .arg(fixture.run_dir())
        .assert()
        .success()
        .stdout(predicate::str::contains("Dry run: nothing written"))
        .stdout(predicate::str::contains(
            "sip.conf  (text; 2 secrets redacted: 2 credential)",
        ))
        .stdout(predicate::str::contains("notes.txt  (ELF core file"));
    assert_eq!(fixture.listing(), before);
}

#[test]
fn json_summary_and_output_dir_as_default() {
    let fixture = Fixture::new();
    let output = bin()
        .args(["--json", "--output-dir"])
        .arg(fixture.run_dir())
        .arg("report")
        .assert()
        .success();
    let summary: serde_json::Value = serde_json::from_slice(&output.get_output().stdout).unwrap();
    assert_eq!(summary["bundle"], fixture.bundle().display().to_string());
    assert!(summary["bundle_bytes"].as_u64().unwrap() > 0);
    let included = summary["included"].as_array().unwrap();
    let sip = included
        .iter()
        .find(|file| file["path"] == "sip.conf")
        .unwrap();
    assert_eq!(sip["redactions"], 2);
    let left_out = summary["left_out"].as_array().unwrap();
    assert!(
        left_out.iter().any(|file| file["path"] == "notes.txt"
            && file["reason"].as_str().unwrap().contains("ELF core"))
    );
    assert!(
        summary["reminder"]
            .as_str()
            .unwrap()
            .contains("people you trust")
    );
}

#[test]
fn an_existing_bundle_needs_force() {
    let fixture = Fixture::new();
    fs::write(fixture.bundle(), b"attached yesterday").unwrap();
    bin()
        .arg("report")
        .arg(fixture.run_dir())
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("already exists").and(predicate::str::contains("--force")),
        );
    assert_eq!(fs::read(fixture.bundle()).unwrap(), b"attached yesterday");
    bin()
        .args(["report", "--force"])
        .arg(fixture.run_dir())
        .assert()
        .success();
    assert!(!read_bundle(&fixture.bundle()).is_empty());
    assert_eq!(fixture.listing().len(), 2, "no temporary file left behind");
}

#[test]
fn bad_directories_exit_2() {
    let base = tempfile::tempdir().unwrap();
    let missing = base.path().join("20261128-045500-nowhere");
    bin().arg("report").arg(&missing).assert().code(2).stderr(
        predicate::str::contains(missing.display().to_string())
            .and(predicate::str::contains("does not exist")),
    );
    let file = base.path().join("bt-threads.txt");
    fs::write(&file, "bt").unwrap();
    bin()
        .arg("report")
        .arg(&file)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not a directory"));
    assert_eq!(fs::read_dir(base.path()).unwrap().count(), 1);
}

#[test]
fn an_unreadable_file_is_left_out_with_a_reason() {
    let fixture = Fixture::new();
    let locked = fixture.run_dir().join("locked.log");
    fs::write(&locked, "secret=x\n").unwrap();
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).unwrap();
    if fs::File::open(&locked).is_ok() {
        eprintln!(
            "note: running as root, a mode 000 file is still readable; unreadable-file test skipped"
        );
        return;
    }
    bin()
        .arg("report")
        .arg(fixture.run_dir())
        .assert()
        .success()
        .stdout(predicate::str::contains("locked.log  (cannot read"));
}

/// Every planted secret of `tests/fixtures/secrets/`: `Zq` and two digits,
/// and the voicemail PINs (digits, as real ones are).
pub(crate) const PINS: &[&str] = &["80417293", "61529048", "74392015"];

/// A core's memory, with a marker that must never reach the bundle.
fn core_with_memory() -> Vec<u8> {
    let mut core = synthetic_core();
    core.extend_from_slice(b"\x00\x00COREMEMORYMARK sip secret in memory\x00\x00");
    core
}

#[test]
fn cores_never_reach_the_bundle_whatever_their_wrapping() {
    const MAX_LINE: usize = 1 << 20;
    let base = tempfile::tempdir().unwrap();
    let run = base.path().join(RUN);
    fs::create_dir(&run).unwrap();
    let core = core_with_memory();
    fs::write(run.join("renamed.txt"), &core).unwrap();
    fs::write(run.join("gzipped.log.gz"), gzip(&core)).unwrap();
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(core.len() as u64);
    header.set_mode(0o600);
    header.set_cksum();
    tar.append_data(&mut header, "core.1255", &core[..])
        .unwrap();
    let tarball = tar.into_inner().unwrap();
    fs::write(run.join("cores.tar"), &tarball).unwrap();
    fs::write(run.join("cores.tar.gz"), gzip(&tarball)).unwrap();
    let mut appended = b"[Dec  1 08:04:34] VERBOSE[5353] a log line\n".repeat(400);
    appended.extend_from_slice(&core);
    fs::write(run.join("appended.log"), &appended).unwrap();
    // A line over 1 MiB is read in pieces of MAX_LINE bytes: the header cut
    // at every one of its 18 bytes, and once just before and after it.
    for cut in 0..=18 {
        let mut text = b"[Dec  1 08:04:34] VERBOSE[5353] long: ".to_vec();
        text.resize(MAX_LINE - cut, b'a');
        text.extend_from_slice(&core);
        fs::write(run.join(format!("long-{cut:02}.log")), &text).unwrap();
    }
    // Raw memory (no ELF header) after 10 KiB of text.
    let mut memory = b"(gdb) x/64xg $sp\n".repeat(600);
    let text_len = memory.len();
    memory.extend_from_slice(b"\x10\xe0\x7f\x3a\x00\x00\x00\x00RAWMEMORYMARK\x01\x02\x00\xff\n");
    memory.extend_from_slice(b"more text after the memory\n");
    fs::write(run.join("memory.txt"), &memory).unwrap();

    let output = bin()
        .args(["--json", "report"])
        .arg(&run)
        .assert()
        .success();
    let summary: serde_json::Value = serde_json::from_slice(&output.get_output().stdout).unwrap();
    let reason = |path: &str| -> String {
        summary["left_out"]
            .as_array()
            .unwrap()
            .iter()
            .find(|file| file["path"] == path)
            .unwrap_or_else(|| panic!("{path} not left out: {summary}"))["reason"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(reason("renamed.txt").contains("ELF core file"));
    assert!(reason("gzipped.log.gz").contains("ELF core file"));
    assert!(reason("cores.tar").contains("binary"));
    assert!(reason("cores.tar.gz").contains("binary"));
    assert!(reason("appended.log").contains("ELF core header inside"));
    for cut in 0..=18 {
        let path = format!("long-{cut:02}.log");
        assert!(
            reason(&path).contains("ELF core header inside"),
            "{path}: {}",
            reason(&path)
        );
    }
    let memory_entry = summary["included"]
        .as_array()
        .unwrap()
        .iter()
        .find(|file| file["path"] == "memory.txt")
        .expect("the text part of memory.txt is in")
        .clone();
    assert!(
        memory_entry["note"]
            .as_str()
            .unwrap()
            .contains(&format!("turns binary at byte {text_len}")),
        "{memory_entry}"
    );
    for (name, _, content) in read_bundle(&base.path().join(format!("{RUN}.tar.gz"))) {
        let plain = if name.ends_with(".gz") {
            gunzip(&content)
        } else {
            content
        };
        assert!(!contains(&plain, "\x7fELF"), "{name} holds ELF bytes");
        assert!(
            !contains(&plain, "COREMEMORYMARK"),
            "{name} holds core memory"
        );
        assert!(
            !contains(&plain, "RAWMEMORYMARK"),
            "{name} holds raw memory"
        );
        assert!(!plain.contains(&0), "{name} holds a NUL byte");
        if name.ends_with("memory.txt") {
            assert_eq!(plain.len(), text_len);
        }
    }
}

#[test]
fn mask_ids_gives_each_identifier_one_placeholder_and_keeps_the_map_on_the_server() {
    let (base, run, _) = corpus_run();
    fs::write(
        run.join("logs/syslog"),
        "Dec  1 08:04:34 testpbx kernel: asterisk[5353]: segfault, peer 10.0.0.5 called +33612345678\n",
    )
    .unwrap();
    // Without the flag, nothing is masked.
    bin().arg("report").arg(&run).assert().success();
    let bundle = base.path().join(format!("{RUN}.tar.gz"));
    let plain = read_bundle(&bundle);
    assert!(
        plain
            .iter()
            .any(|(_, _, content)| contains(content, "10.0.0.5"))
    );
    let output = bin()
        .args(["report", "--force", "--mask-ids"])
        .arg(&run)
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&output.get_output().stdout).into_owned();
    let map_path = base.path().join(format!("{RUN}.mask-map.txt"));
    assert!(
        stdout.contains(&format!(
            "the map stays on this server: {}",
            map_path.display()
        )),
        "{stdout}"
    );
    assert_eq!(
        fs::metadata(&map_path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let map = fs::read_to_string(&map_path).unwrap();
    let placeholder = |value: &str| -> String {
        map.lines()
            .find(|line| line.ends_with(&format!("\t{value}")))
            .unwrap_or_else(|| panic!("{value} not in the map:\n{map}"))
            .split('\t')
            .next()
            .unwrap()
            .to_string()
    };
    let ip = placeholder("10.0.0.5");
    let host = placeholder("testpbx");
    let provider = placeholder("sip.provider.example");
    let phone = placeholder("+33612345678");
    let entries = read_bundle(&bundle);
    let masked_top = format!("20261128-045500-{host}");
    let file = |name: &str| -> String {
        let wanted = format!("{masked_top}/{name}");
        entries
            .iter()
            .find(|(path, ..)| *path == wanted)
            .map(|(_, _, content)| String::from_utf8_lossy(content).into_owned())
            .unwrap_or_else(|| panic!("{wanted} not in the bundle"))
    };
    // The same value, the same placeholder, in every file.
    assert!(file("logs/full").contains(&format!("from UDP:{ip}:5060")));
    assert!(file("logs/syslog").contains(&format!(
        "{host} kernel: asterisk[5353]: segfault, peer {ip} called {phone}"
    )));
    assert!(file("etc/pjsip.conf").contains("client_uri = sip:user-"));
    assert!(file("etc/pjsip.conf").contains(&format!("[REDACTED]@{provider}")));
    assert!(file("logs/full").contains(&format!(
        "INVITE sip:{}@{provider}",
        placeholder("0611223344")
    )));
    for (name, _, content) in &entries {
        assert!(name.starts_with(&masked_top), "{name}");
        let content = &if name.ends_with(".gz") {
            gunzip(content)
        } else {
            content.clone()
        };
        for value in [
            "10.0.0.5",
            "testpbx",
            "sip.provider.example",
            "+33612345678",
            "trunkuser@",
        ] {
            assert!(!contains(content, value), "{name} still holds {value}");
        }
        assert!(markers_in(content).is_empty(), "{name}");
    }
    assert!(!entries.iter().any(|(name, ..)| name.contains("mask-map")));
    assert!(file("REDACTIONS.txt").contains("Identifiers masked (--mask-ids)"));
}
