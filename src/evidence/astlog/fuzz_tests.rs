//! Fuzzing `astlog::line_stamp` and the head read of `first_stamp`.

use std::io::Write;

use crate::test_support::*;
use proptest::prelude::*;

use super::*;

const SEEDS: &[&[u8]] = &[
    b"[2026-11-28 04:12:43.123] VERBOSE[1234] pbx.c: Executing",
    b"[Nov 28 04:12:43] NOTICE[1234]: chan_sip.c:1 x",
    b"[2026-11-28 04:12:43] ERROR[1]",
];

proptest! {
    #![proptest_config(config())]

    #[test]
    fn fuzz_astlog_line_stamp(
        line in prop_oneof![mutated(SEEDS), bytes(64)],
        secs in proptest::option::of(-(1i64 << 40)..(1i64 << 40)),
    ) {
        let mtime = secs.and_then(|s| DateTime::from_timestamp(s, 0)).map(|t| t.with_timezone(&Local));
        let _ = timed("line_stamp", CASE_BUDGET, || line_stamp(&line, mtime));
    }
}

#[test]
fn fuzz_astlog_large_inputs_are_linear() {
    assert_linear(
        "open bracket, no close",
        1 << 20,
        |n| {
            let mut line = b"[".to_vec();
            line.resize(n, b'2');
            line
        },
        |line| {
            line_stamp(line, None);
        },
    );
}

/// Found by review while fuzzing: `first_stamp` read its 200 head lines
/// with no length bound, so a copy of `full` made of one 64 MiB junk
/// "line" (a NUL run after a hard reset) was read whole into memory.
#[test]
fn regression_astlog_first_stamp_reads_a_bounded_head() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(&vec![0u8; 64 << 20]).unwrap();
    file.write_all(b"\n[2026-11-28 04:12:43] ERROR[1] x\n")
        .unwrap();
    assert_eq!(
        timed("first_stamp", BIG_BUDGET, || first_stamp(file.path())),
        None
    );
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(b"junk\n[2026-11-28 04:12:43] ERROR[1] x\n")
        .unwrap();
    assert!(first_stamp(file.path()).is_some());
}
