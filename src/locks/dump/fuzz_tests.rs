//! Fuzzing the `core show locks` parser, then the analysis and renderers
//! on whatever graph it builds.

use std::io::BufReader;

use crate::test_support::*;
use proptest::prelude::*;

use super::*;
use crate::locks::graph::fuzz_tests::{check, render_all};

/// Every dump fixture: the fuzzers' seeds, and the inputs other tests of
/// the graph run on.
pub(crate) const SEEDS: &[&[u8]] = &[
    include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/core-show-locks.txt"
    )),
    include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/locks/ast11-hex.txt"
    )),
    include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/locks/ast12-version.txt"
    )),
    include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/locks/ast13-lwp.txt"
    )),
    include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/locks/ast18-decimal.txt"
    )),
    include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/locks/ast21-timing.txt"
    )),
    include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/locks/seed-excerpt.txt"
    )),
];

const WORDS: &[&str] = &[
    "=== ",
    "===",
    "=====",
    "Thread ID: ",
    "0x7f3a1c2f9700",
    "3077372784",
    "LWP:",
    "18211",
    "(pbx_thread started at [ 4787] pbx.c ast_pbx_start())",
    // The padding of a thread name, and the spaces only `char::is_whitespace` knows.
    "(do_monitor           started at [29519] chan_sip.c restart_monitor())",
    " ",
    "   ",
    "\u{b}",
    "\u{c}",
    "---> ",
    "--- ---> ",
    "Lock #",
    "Waiting for ",
    "Tried and failed to get ",
    "(bridge.c): ",
    "MUTEX ",
    "RDLOCK ",
    "WRLOCK ",
    "1591 ",
    "func ",
    "chan ",
    "0x55d0c8b4e100",
    "(nil)",
    " (1)",
    " (1 - suspended)",
    "...",
    "Locked Here: ",
    "bridge.c line 1887 (f)",
    "Currently Held Locks",
    " at Time: ",
    "\n",
    "\r\n",
    "\t",
    "…",
    "\u{1b}[31m",
];

/// The differential test: the reader and the one it replaced
/// (`reference.rs`) must build the same graph and counts from any input.
pub(super) fn same_as_reference(
    data: &[u8],
    graph: &LockGraph,
    info: &DumpInfo,
) -> Result<(), TestCaseError> {
    let (old, old_info) = super::reference::parse(data).unwrap();
    prop_assert_eq!(info, &old_info);
    prop_assert_eq!(graph.threads(), old.threads());
    prop_assert_eq!(graph.locks(), old.locks());
    prop_assert_eq!(graph.acquisitions(), old.acquisitions());
    Ok(())
}

fn parse_and_check(data: &[u8]) -> Result<(LockGraph, DumpInfo), TestCaseError> {
    let (graph, info) = timed("lockdump::parse", CASE_BUDGET, || parse_bytes(data));
    same_as_reference(data, &graph, &info)?;
    prop_assert_eq!(info.threads, graph.threads().len());
    prop_assert!(info.lines as usize <= data.len() + 1);
    check(&graph)?;
    timed("render", CASE_BUDGET, || render_all(&graph));
    Ok((graph, info))
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn fuzz_lockdump_mutated(data in mutated(SEEDS)) {
        parse_and_check(&data)?;
    }

    #[test]
    fn fuzz_lockdump_words(data in words(WORDS, 120)) {
        parse_and_check(&data)?;
    }

    #[test]
    fn fuzz_lockdump_bytes(data in bytes(1024)) {
        parse_and_check(&data)?;
    }

    /// The streaming parser must not depend on where its reads stop.
    #[test]
    fn fuzz_lockdump_ignores_buffer_size(
        data in prop_oneof![mutated(SEEDS), words(WORDS, 120)],
        capacity in 1usize..64,
    ) {
        let (whole, info) = parse_bytes(&data);
        let (pieces, pieces_info) = parse(BufReader::with_capacity(capacity, &data[..])).unwrap();
        prop_assert_eq!(info, pieces_info);
        prop_assert_eq!(whole.threads(), pieces.threads());
        prop_assert_eq!(whole.locks(), pieces.locks());
        prop_assert_eq!(whole.acquisitions(), pieces.acquisitions());
    }
}

/// Chunk invariance across MAX_LINE: lines longer than the cap, cut at
/// every buffer size.
#[test]
fn fuzz_lockdump_long_lines_ignore_buffer_size() {
    let mut data = Vec::new();
    data.extend_from_slice(b"=== Thread ID: 0x1 (a)\n");
    data.extend_from_slice(b"=== ---> Lock #0 (a.c): MUTEX 1 f ");
    data.extend(std::iter::repeat_n(b'x', MAX_LINE));
    data.extend_from_slice(b" 0x10 (1)\r\n\t");
    data.extend(std::iter::repeat_n(b'y', MAX_LINE * 2));
    data.extend_from_slice(
        b"\n=== Thread ID: 0x2 (b)\n=== ---> Waiting for Lock #0 (a.c): MUTEX 1 f n 0x10 (1)",
    );
    let (whole, info) = parse_bytes(&data);
    for capacity in [1, 7, 4096, MAX_LINE - 1, MAX_LINE, MAX_LINE + 1, 1 << 20] {
        let (pieces, pieces_info) = parse(BufReader::with_capacity(capacity, &data[..])).unwrap();
        assert_eq!(info, pieces_info, "capacity {capacity}");
        assert_eq!(
            whole.acquisitions(),
            pieces.acquisitions(),
            "capacity {capacity}"
        );
    }
}

/// A dump of `n` threads, each holding its lock and waiting for the next
/// one's, the last closing a 2-thread deadlock.
pub(super) fn chain_dump(n: usize) -> Vec<u8> {
    let mut out = b"=== Currently Held Locks\n".to_vec();
    for i in 0..n {
        let next = if i + 1 == n { n - 2 } else { i + 1 };
        out.extend_from_slice(
            format!(
                "=== Thread ID: 0x{i:x} LWP:{i} (t{i} started at [1] a.c f())\n\
                 === ---> Lock #0 (a.c): MUTEX 1 f chan 0x{:x} (1)\n\
                 \t[0x1] asterisk lock.c:1 f()\n\
                 === ---> Waiting for Lock #1 (a.c): MUTEX 2 g chan 0x{:x} (1)\n\
                 === --- ---> Locked Here: a.c line 1 (f)\n",
                i + 1,
                next + 1
            )
            .as_bytes(),
        );
    }
    out
}

#[test]
fn fuzz_lockdump_large_inputs_are_linear() {
    let parse_all = |data: &Vec<u8>| {
        parse_bytes(data);
    };
    assert_linear("no newline", 1 << 20, |n| vec![b'x'; n], parse_all);
    assert_linear(
        "tab, no newline",
        1 << 20,
        |n| {
            let mut d = vec![b'\t'];
            d.resize(n, b'y');
            d
        },
        parse_all,
    );
    assert_linear("=== runs", 1 << 20, |n| b"=== ".repeat(n / 4), parse_all);
    assert_linear(
        "open parens",
        1 << 20,
        |n| {
            let mut d = b"=== ---> Lock #0 ".to_vec();
            d.resize(n, b'(');
            d
        },
        parse_all,
    );
    assert_linear(
        "long lock lines",
        1 << 20,
        |n| {
            let mut line = b"=== ---> Lock #0 (".to_vec();
            line.resize(MAX_LINE - 1, b'(');
            line.push(b'\n');
            line.repeat(n / MAX_LINE)
        },
        parse_all,
    );
    assert_linear("chain", 2_000, chain_dump, |d| {
        parse_bytes(d).0.analyze();
    });
    // 6 MB; the 100,000-thread graph itself is in the lockgraph fuzzers
    // (parsing 25 MB in a debug build takes longer than the budget).
    let dump = chain_dump(25_000);
    let (graph, info) = timed("25k threads", BIG_BUDGET, || parse_bytes(&dump));
    assert_eq!(info.threads, 25_000);
    same_as_reference(&dump, &graph, &info).unwrap();
    let analysis = timed("25k analysis", BIG_BUDGET, || graph.analyze());
    assert_eq!(analysis.deadlocks[0].behind.len(), 24_998);
}
