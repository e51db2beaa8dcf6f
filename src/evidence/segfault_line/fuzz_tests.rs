//! Fuzzing `segfault::parse_kernel_line` and `kernel_stamp`.

use crate::test_support::*;
use proptest::prelude::*;

use super::*;

const SEEDS: &[&[u8]] = &[
    b"Oct 16 16:12:43 xivo-1 kernel: [10295061.047120] asterisk[1255]: segfault at e ip b751aa6b sp b5ef14d4 error 4 in libc-2.11.3.so[b74ad000+140000]",
    b"[  141.451421] sv[3009]: segfault at 10 ip 0000564047d6c139 sp 00007fff570de850 error 4 in sv[1139,564047d6c000+1000] likely on CPU 1 (core 1, socket 0)",
    b"2026-11-28T04:12:43+0100 pbx kernel: Web Content[77]: segfault at 0 ip 1 sp 2 error 6",
    b"kernel: asterisk[9]: segfault at 0000000000000000 rip 00002aaaab0c1d2e rsp 0000000040a00f40 error 4",
];

const WORDS: &[&str] = &[
    "kernel: ",
    "segfault at ",
    "]: segfault at ",
    "asterisk[",
    "ip ",
    "rip ",
    "sp ",
    "rsp ",
    "error ",
    " in ",
    "libc.so[",
    "+",
    ",",
    "likely on CPU ",
    "(core 1, socket 0)",
    "[ 141.45] ",
    "b751aa6b",
    "ffffffffffffffff",
    "11111111111111111",
    "0x",
];

fn check(line: &[u8]) {
    let parsed = timed("parse_kernel_line", CASE_BUDGET, || parse_kernel_line(line));
    timed("kernel_stamp", CASE_BUDGET, || kernel_stamp(line));
    if let Some(segfault) = parsed {
        // Every derived value must be computable without panicking.
        let _ = (
            segfault.offset(),
            segfault.addr2line_offset(),
            segfault.error_words(),
        );
        assert!(!segfault.process.is_empty());
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn fuzz_segfault_bytes(line in bytes(512)) {
        check(&line);
    }

    #[test]
    fn fuzz_segfault_words(line in words(WORDS, 40)) {
        check(&line);
    }

    #[test]
    fn fuzz_segfault_mutated(line in mutated(SEEDS)) {
        check(&line);
    }

    #[test]
    fn fuzz_segfault_decode_any_code(code in any::<u64>()) {
        prop_assert!(!decode_error(code).is_empty());
    }
}

/// The real lines still parse once wrapped in any prefix without `[`.
#[test]
fn fuzz_segfault_seeds_parse() {
    for seed in SEEDS {
        assert!(parse_kernel_line(seed).is_some());
    }
}

#[test]
fn fuzz_segfault_large_inputs_are_linear() {
    for (what, unit) in [
        ("markers", &b"]: segfault at "[..]),
        ("markers after pids", b"a[1]: segfault at "),
        (
            "markers after a kernel prefix",
            b"kernel: a[1]: segfault at zz ",
        ),
        ("open brackets", b"["),
        ("stamps", b"[ 1.5] "),
        ("segfault", b"segfault"),
    ] {
        assert_linear(
            what,
            64 << 10,
            |size| unit.repeat(size / unit.len()),
            |line| {
                parse_kernel_line(line);
                kernel_stamp(line);
            },
        );
    }
}

/// Found by `fuzz_segfault_large_inputs_are_linear`: 512 KiB of
/// "]: segfault at " took 42 s (each marker scanned back to the line start).
#[test]
fn regression_segfault_many_markers_in_one_line() {
    let line = b"]: segfault at ".repeat((1 << 20) / 15);
    assert_eq!(
        timed("markers", BIG_BUDGET, || parse_kernel_line(&line)),
        None
    );
    let mut line = b"a[1]: segfault at ".repeat((1 << 20) / 18);
    line.extend_from_slice(b"x");
    assert_eq!(
        timed("pid markers", BIG_BUDGET, || parse_kernel_line(&line)),
        None
    );
    // The kernel's own marker, first on the line, still wins.
    let mut line = SEEDS[0].to_vec();
    line.extend(b" a[1]: segfault at ".repeat(10_000));
    assert_eq!(parse_kernel_line(&line).unwrap().process, "asterisk");
}
