//! Fuzzing the timestamp parsers of `syslog::stamp`.

use crate::test_support::*;
use proptest::prelude::*;

use super::*;

const SEEDS: &[&[u8]] = &[
    b"2026-11-28T04:12:43.123456+01:00 pbx kernel: x",
    b"2026-11-28T04:12:43+0100 pbx kernel:",
    b"2026-11-28T03:12:43Z",
    b"2026-11-28 04:12:43,5 pbx kernel: y",
    b"Oct 16 16:12:43 xivo-1 kernel: [10295061.047120] a",
    b"Feb 29 00:00:00 h kernel: z",
    b"[  141.451421] sv[3009]: segfault at 10",
];

const WORDS: &[&str] = &[
    "2026",
    "-",
    "11",
    "28",
    "T",
    " ",
    ":",
    "04",
    "12",
    "43",
    ".",
    ",",
    "123456789123",
    "+",
    "01:00",
    "0100",
    "Z",
    "Oct",
    "Feb",
    "29",
    "[",
    "]",
    "141.451421",
    "99999999999999999999999",
    "kernel: ",
];

const SPECS: &[&str] = &[
    "now",
    "today",
    "yesterday",
    "-",
    "2",
    "9223372036854775807",
    "h",
    "m",
    "d",
    "w",
    "s",
    "days",
    "2026-11-28",
    " ",
    "04:00",
    "T",
    "+01:00",
    "262143",
    "-262144",
    "9999",
];

fn any_time() -> impl Strategy<Value = DateTime<Local>> {
    // Every time a file's mtime can hold (tmpfs takes any `touch -d @N`),
    // up to a few days from chrono's limits.
    let max = DateTime::<chrono::Utc>::MAX_UTC.timestamp() - 3 * 86_400;
    let min = DateTime::<chrono::Utc>::MIN_UTC.timestamp() + 3 * 86_400;
    prop_oneof![
        8 => -(1i64 << 40)..(1i64 << 40),
        1 => (max - 86_400)..=max,
        1 => min..=(min + 86_400),
    ]
    .prop_map(|secs| {
        DateTime::from_timestamp(secs, 0)
            .expect("in range")
            .with_timezone(&Local)
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn fuzz_stamp_line(
        line in prop_oneof![mutated(SEEDS), words(WORDS, 30), bytes(64)],
        mtime in proptest::option::of(any_time()),
        boot_time in proptest::option::of(any::<i64>()),
    ) {
        let clock = Clock { mtime, boot_time };
        timed("stamps", CASE_BUDGET, || {
            if let Some((_, end)) = parse_iso(&line) {
                assert!(end <= line.len());
            }
            if let Some((_, end)) = parse_bsd(&line, mtime) {
                assert!(end <= line.len());
            }
            if let Some((_, end)) = parse_uptime(&line, boot_time) {
                assert!(end <= line.len());
            }
            stamp_of(&line, &clock)
        });
    }

    #[test]
    fn fuzz_stamp_time_spec(
        spec in prop_oneof![words_text(SPECS, 8), any::<String>()],
        now in any_time(),
    ) {
        let _ = timed("parse_time_spec", CASE_BUDGET, || parse_time_spec(&spec, now));
    }
}

/// Found by `fuzz_stamp_line`: a dmesg stamp too large for the boot time
/// (or a huge `btime` in a copied /proc/stat) overflowed `boot_time *
/// 1_000_000 + micros`: a panic in debug builds, a wrapped date in release.
#[test]
fn regression_stamp_uptime_overflow() {
    assert!(parse_uptime(b"[  141.451421] x", Some(i64::MAX)).is_none());
    assert!(parse_uptime(b"[99999999999999999999] x", Some(1)).is_none());
    assert!(parse_uptime(b"[  141.451421] x", Some(i64::MIN)).is_none());
    assert!(parse_uptime(b"[  141.451421] x", Some(1_700_000_000)).is_some());
}

/// A file dated at the very end of chrono's range (tmpfs takes any
/// `touch -d @N`): "a line is at most a day newer than its file" overflowed,
/// and east of UTC its local time did not exist (both panics).
#[test]
fn regression_stamp_bsd_mtime_at_the_end_of_time() {
    for secs in [
        DateTime::<chrono::Utc>::MAX_UTC.timestamp() - 3_600,
        DateTime::<chrono::Utc>::MIN_UTC.timestamp() + 3_600,
    ] {
        let Some(mtime) = DateTime::from_timestamp(secs, 0) else {
            continue;
        };
        let mtime = mtime.with_timezone(&Local);
        let _ = parse_bsd(b"Dec 31 23:59:59 h kernel: x", Some(mtime));
        let _ = parse_bsd(b"Jan  1 00:00:00 h kernel: x", Some(mtime));
    }
}
