use std::io::Write;

use chrono::TimeZone;
use flate2::Compression;
use flate2::write::GzEncoder;

use super::*;

fn at(text: &str) -> DateTime<FixedOffset> {
    let naive = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").unwrap();
    Local.from_local_datetime(&naive).unwrap().fixed_offset()
}

fn line(time: &str, lwp: u64, text: &str) -> String {
    format!("[{time}.000] VERBOSE[{lwp}][C-00000001] pbx.c: {text}\n")
}

/// `full` (today), `full.1` (yesterday) and `full.2.gz` (the day before),
/// with threads 10 and 20 interleaved and 30 as noise.
fn rotated_logs(dir: &std::path::Path) -> Vec<LogCopy> {
    let mut newest = String::new();
    let mut middle = String::new();
    let mut oldest = String::new();
    for i in 0..5 {
        oldest += &line("2026-11-29 10:00:00", 10, &format!("old {i}"));
    }
    for i in 0..3 {
        middle += &line("2026-11-30 10:00:00", 10, &format!("middle {i}"));
        middle += &line("2026-11-30 10:00:01", 30, "noise");
    }
    for i in 0..4 {
        newest += &line("2026-12-01 10:00:00", 20, &format!("new {i}"));
        newest += "  a continuation of 20's message\n";
        newest += &line("2026-12-01 10:00:01", 30, "noise");
        newest += "  a continuation of 30's message\n";
    }
    newest += &line("2026-12-01 10:00:02", 10, "last words");
    std::fs::write(dir.join("full"), newest).unwrap();
    std::fs::write(dir.join("full.1"), middle).unwrap();
    let mut gz = GzEncoder::new(
        std::fs::File::create(dir.join("full.2.gz")).unwrap(),
        Compression::default(),
    );
    gz.write_all(oldest.as_bytes()).unwrap();
    gz.finish().unwrap();
    // logrotate leaves each copy with the time of its last line.
    for (name, ended) in [
        ("full.1", "2026-11-30 23:59:59"),
        ("full.2.gz", "2026-11-29 23:59:59"),
    ] {
        std::fs::File::options()
            .append(true)
            .open(dir.join(name))
            .unwrap()
            .set_modified(at(ended).into())
            .unwrap();
    }
    vec![
        LogCopy {
            path: dir.join("full"),
            starts: Some(at("2026-12-01 10:00:00")),
        },
        LogCopy {
            path: dir.join("full.1"),
            starts: Some(at("2026-11-30 10:00:00")),
        },
        LogCopy {
            path: dir.join("full.2.gz"),
            starts: Some(at("2026-11-29 10:00:00")),
        },
    ]
}

fn texts(found: &ThreadLines, lwp: u64) -> Vec<String> {
    found.lines[&lwp]
        .iter()
        .map(|line| line.rsplit(": ").next().unwrap_or(line).to_string())
        .collect()
}

#[test]
fn reads_the_lwp_of_both_date_formats_and_nothing_else() {
    assert_eq!(
        lwp_of(b"[2026-12-01 13:50:01.123] VERBOSE[5353][C-00000001] pbx.c: x"),
        Some(5353)
    );
    assert_eq!(
        lwp_of(b"[Dec  1 13:50:01] WARNING[77] chan_pjsip.c: x"),
        Some(77)
    );
    assert_eq!(lwp_of(b"[Dec  1 13:50:01] DEBUG_X[8] x"), Some(8));
    for junk in [
        &b""[..],
        b"  continuation",
        b"[stamp] verbose[12] lower case",
        b"[stamp] VERBOSE[] x",
        b"[stamp] VERBOSE[12 x",
        b"[stamp] VERBOSE[99999999999999999999999] x",
        b"[stamp]VERBOSE[12] x",
        b"[no close",
    ] {
        assert_eq!(lwp_of(junk), None, "{}", String::from_utf8_lossy(junk));
    }
}

#[test]
fn the_last_lines_of_each_thread_across_rotated_and_gzipped_copies() {
    let dir = tempfile::tempdir().unwrap();
    let copies = rotated_logs(dir.path());
    let found = last_lines(&copies, &[10, 20], 6, Window::default());
    // 10: one line today, three yesterday, the last two of the gzipped copy.
    assert_eq!(
        texts(&found, 10),
        [
            "old 3",
            "old 4",
            "middle 0",
            "middle 1",
            "middle 2",
            "last words"
        ]
    );
    // 20: its lines and their continuation lines, never 30's.
    let twenty = &found.lines[&20];
    assert_eq!(twenty.len(), 6);
    assert!(
        twenty
            .iter()
            .all(|line| !line.contains("30's") && !line.contains("noise"))
    );
    assert!(twenty.last().unwrap().contains("continuation of 20's"));
    assert_eq!(found.read.len(), 3);
}

#[test]
fn stops_reading_when_every_thread_has_its_lines() {
    let dir = tempfile::tempdir().unwrap();
    let copies = rotated_logs(dir.path());
    let found = last_lines(&copies, &[20], 3, Window::default());
    assert_eq!(found.read, [dir.path().join("full")]);
}

#[test]
fn lines_before_the_process_started_belong_to_another_thread() {
    let dir = tempfile::tempdir().unwrap();
    let copies = rotated_logs(dir.path());
    let window = Window {
        since: Some(at("2026-11-30 00:00:00")),
        until: None,
    };
    let found = last_lines(&copies, &[10], 50, window);
    assert_eq!(
        texts(&found, 10),
        ["middle 0", "middle 1", "middle 2", "last words"]
    );
    // full.2.gz ended before `since`: not even opened.
    assert_eq!(found.read.len(), 2);
    let until = Window {
        since: None,
        until: Some(at("2026-12-01 00:00:00")),
    };
    let found = last_lines(&copies, &[10], 50, until);
    assert!(!texts(&found, 10).contains(&"last words".to_string()));
}

#[test]
fn junk_and_endless_lines_stay_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("full");
    let mut bytes = line("2026-12-01 10:00:00", 10, "before").into_bytes();
    bytes.extend(b"[2026-12-01 10:00:00.000] VERBOSE[10] x: ");
    bytes.extend(std::iter::repeat_n(b'A', 10 << 20));
    bytes.extend(b"\n\0\0\xff\xfe garbage\n");
    std::fs::write(&path, bytes).unwrap();
    let copies = [LogCopy { path, starts: None }];
    let found = last_lines(&copies, &[10], 50, Window::default());
    let lines = &found.lines[&10];
    assert_eq!(
        lines.len(),
        3,
        "{:?}",
        lines.iter().map(|l| l.len()).collect::<Vec<_>>()
    );
    assert!(lines[1].len() <= MAX_LINE);
}

#[test]
fn a_truncated_gzip_keeps_what_was_read_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::new();
    for i in 0..2000 {
        text += &line(
            "2026-12-01 10:00:00",
            10,
            &format!("line {i} of a long log"),
        );
    }
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(text.as_bytes()).unwrap();
    let bytes = gz.finish().unwrap();
    let path = dir.path().join("full.1.gz");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let copies = [LogCopy { path, starts: None }];
    let found = last_lines(&copies, &[10], 5, Window::default());
    assert_eq!(found.lines[&10].len(), 5);
    assert_eq!(found.warnings.len(), 1, "{:?}", found.warnings);
}

#[test]
fn no_thread_asked_reads_nothing() {
    let found = last_lines(&[], &[], 50, Window::default());
    assert!(found.lines.is_empty() && found.read.is_empty());
}
