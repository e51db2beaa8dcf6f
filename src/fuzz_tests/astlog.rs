//! Fuzzing `astlog::line_stamp` and the head read of `first_stamp`.

use crate::lockgraph::fuzz_tests::support;

use proptest::prelude::*;
use support::*;

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
