//! Fuzzing what is read from `gdb_locks.py`'s JSON: serde, the stack
//! groups, and the wait-for graph built from it.

use crate::test_support::*;
use proptest::prelude::*;

use super::*;
use crate::locks::graph::fuzz_tests::check;

const SEEDS: &[&[u8]] = &[
    br#"{"pid": 12, "current_thread": 1, "signal": {"number": 11, "code": 1, "address": "0x0"}, "threads": [{"num": 1, "lwp": 12, "name": "asterisk", "start": "main", "frames": [{"function": "__GI___pthread_mutex_lock", "pc": "0x1", "file": "a.c", "line": 3}, {"function": "??", "no_symbols": true}],
        "waits": {"kind": "mutex", "address": "0x10", "owner_lwp": 13, "where": {"file": "a.c", "line": 3, "function": "f"}}}],
        "errors": ["x"]}"#,
    br#"{"pid": 1, "threads": [
        {"num": 1, "lwp": 10, "start": "a", "waits": {"kind": "mutex", "address": "0x100", "name": "lock_b", "owner_lwp": 11}},
        {"num": 2, "lwp": 11, "start": "b", "waits": {"kind": "mutex", "address": "0x200", "name": "lock_a", "owner_lwp": 10}},
        {"num": 3, "lwp": 12, "start": "c", "waits": {"kind": "mutex", "address": "0x200", "owner_lwp": 10}},
        {"num": 4, "lwp": 13, "start": "d", "waits": {"kind": "rwlock", "mode": "read", "address": "0x300", "owner_lwp": 14}},
        {"num": 5, "lwp": 14, "start": "e"},
        {"num": 6, "lwp": 15, "start": "f", "waits": {"kind": "mutex"}}
    ]}"#,
];

fn use_analysis(analysis: &Analysis) -> Result<(), TestCaseError> {
    timed("views", CASE_BUDGET, || {
        for group in stack_groups(&analysis.threads) {
            for depth in 0..4 {
                describe_group(&group, depth);
            }
        }
        for thread in &analysis.threads {
            thread.label();
            thread.frames.iter().for_each(|f| {
                f.describe();
            });
        }
    });
    let built = timed("gdb_graph::build", CASE_BUDGET, || {
        crate::locks::from_gdb::build(analysis)
    });
    check(&built.graph)
}

fn threads() -> impl Strategy<Value = Analysis> {
    let wait = (
        0u8..3,
        0u8..3,
        proptest::option::of(0u64..6),
        proptest::option::of(-2i64..8),
    )
        .prop_map(|(kind, mode, address, owner)| Wait {
            kind: ["mutex", "rwlock", "cond"][kind as usize].to_string(),
            mode: [None, Some("read".to_string()), Some("write".to_string())][mode as usize]
                .clone(),
            address: address.map(|a| format!("0x{a:x}")),
            name: None,
            owner_lwp: owner,
            site: None,
            readers: None,
        });
    let thread = (
        0u32..4,
        -2i64..8,
        proptest::option::of(wait),
        proptest::collection::vec("[a-c?_]{0,3}", 0..4),
    )
        .prop_map(|(num, lwp, waits, frames)| Thread {
            num,
            lwp,
            name: None,
            start: Some(format!("s{lwp}")),
            frames: frames
                .into_iter()
                .map(|function| Frame {
                    function,
                    pc: None,
                    file: None,
                    line: None,
                    no_symbols: false,
                    object: None,
                    offset: None,
                })
                .collect(),
            waits,
            task: None,
        });
    proptest::collection::vec(thread, 0..12).prop_map(|threads| Analysis {
        pid: Some(1),
        current_thread: None,
        signal: None,
        threads,
        errors: Vec::new(),
        solibs: None,
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn fuzz_threads_json_mutated(data in prop_oneof![mutated(SEEDS), bytes(256)]) {
        let parsed = timed("serde", CASE_BUDGET, || serde_json::from_slice::<Analysis>(&data));
        if let Ok(analysis) = parsed {
            use_analysis(&analysis)?;
        }
    }

    /// Duplicate thread numbers and LWPs, owners that are not threads,
    /// waits without addresses: what a half-read core gives.
    #[test]
    fn fuzz_threads_random_analyses(analysis in threads()) {
        use_analysis(&analysis)?;
    }
}

#[test]
fn fuzz_threads_large_inputs_are_bounded() {
    for data in ["[".repeat(1 << 20), "{\"threads\":".repeat(100_000)] {
        assert!(
            timed(
                "deep json",
                BIG_BUDGET,
                || serde_json::from_str::<Analysis>(&data)
            )
            .is_err()
        );
    }
    let frames: Vec<Frame> = (0..1_000)
        .map(|i| Frame {
            function: format!("f{i}"),
            pc: None,
            file: None,
            line: None,
            no_symbols: false,
            object: None,
            offset: None,
        })
        .collect();
    assert_linear(
        "identical stacks",
        500,
        |n| {
            (0..n)
                .map(|i| Thread {
                    num: i as u32,
                    lwp: i as i64,
                    name: None,
                    start: None,
                    frames: frames.clone(),
                    waits: None,
                    task: None,
                })
                .collect::<Vec<_>>()
        },
        |threads| {
            stack_groups(threads);
        },
    );
}
