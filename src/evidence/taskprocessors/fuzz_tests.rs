//! Fuzzing the `core show taskprocessors` parser, the queue warning reader
//! and the log scan: any answer a broken Asterisk or a mangled paste gives
//! is read or refused, never a panic or a hang.

use crate::test_support::*;
use proptest::prelude::*;

use super::*;

const TABLES: &[&[u8]] = &[
    b"\nProcessor                 Processed   In Queue  Max Depth  Low water High water Low time(us) High time(us)\nastdebug-blocked   0   600   0   450   500   0   0\n\n1 taskprocessors\n",
    b"\nProcessor        Processed   In Queue  Max Depth  Low water High water\napp_voicemail    4   0   1   450   500\n\n1 taskprocessors\n",
    b"\n\t+----- Processor -----+--- Processed ---+- In Queue -+- Max Depth -+\n  sip_reload task queue   17   245   245\n\t+----+\n\t1 taskprocessors\n",
];

const WARNINGS: &[&[u8]] = &[
    b"[Dec  1 14:04:34] WARNING[21493] taskprocessor.c: Taskprocessor 'astdebug-blocked' queue reached 500 scheduled tasks (high water mark: 500).",
    b"[2026-11-28 04:12:43.123] WARNING[77]: taskprocessor.c:888 taskprocessor_push: The 'subm:cdr' task processor queue reached 3000 scheduled tasks again.",
];

const VOCABULARY: &[&str] = &[
    "Processor",
    "Processed",
    "In Queue",
    "Max Depth",
    "Low water",
    "High water",
    "High time(us)",
    "taskprocessors",
    "+-----",
    "Taskprocessor '",
    "The '",
    "' task processor",
    " queue reached ",
    " scheduled tasks",
    " (high water mark: ",
    " again",
    "18446744073709551616",
    "-9223372036854775808",
];

fn split_lines(text: &str) -> Vec<String> {
    text.lines().map(str::to_string).collect()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn fuzz_taskprocessors_table(
        text in prop_oneof![mutated_text(TABLES), words_text(VOCABULARY, 64), bytes(256).prop_map(|b| String::from_utf8_lossy(&b).into_owned())],
    ) {
        let lines = split_lines(&text);
        if let Ok(table) = timed("parse_table", CASE_BUDGET, || parse_table(&lines)) {
            for row in &table.rows {
                prop_assert!(!row.name.is_empty());
            }
            prop_assert!(table.rows.len() + table.skipped <= lines.len());
        }
    }

    #[test]
    fn fuzz_taskprocessors_warning(
        line in prop_oneof![mutated_text(WARNINGS), words_text(VOCABULARY, 32)],
    ) {
        if let Some(warning) = timed("queue_warning", CASE_BUDGET, || queue_warning(&line)) {
            prop_assert!(!warning.name.is_empty());
            prop_assert!(line.contains(&warning.name));
        }
    }

    #[test]
    fn fuzz_taskprocessors_scan(
        log in prop_oneof![mutated(WARNINGS), words(VOCABULARY, 64), bytes(512)],
    ) {
        let until = chrono::Local::now().fixed_offset();
        let since = until - chrono::Duration::days(36_500);
        let mut found = Vec::new();
        timed("scan_reader", CASE_BUDGET, || scan_reader(log.as_slice(), None, since, until, &mut found)).unwrap();
    }
}

fn any_thread() -> impl Strategy<Value = crate::gdb::threads::Thread> {
    use crate::gdb::threads::{Frame, Task, TaskCandidate, Thread};
    let name = || {
        proptest::sample::select(&["astdebug-blocked", "other-tps", "", "x"][..])
            .prop_map(str::to_string)
    };
    let candidate = (proptest::collection::vec(name(), 0..3), any::<bool>()).prop_map(
        |(strings, holds_self)| TaskCandidate {
            strings,
            holds_self,
        },
    );
    let task = (
        0usize..8,
        proptest::option::of(name()),
        proptest::collection::vec(candidate, 0..3),
    )
        .prop_map(|(frame, name, candidates)| Task {
            frame,
            name,
            candidates,
        });
    (-2i64..6, 0usize..5, proptest::option::of(task)).prop_map(|(lwp, frames, task)| Thread {
        num: 1,
        lwp,
        name: None,
        start: None,
        frames: (0..frames)
            .map(|at| Frame {
                function: if at == 2 {
                    "ast_taskprocessor_execute".to_string()
                } else {
                    "??".to_string()
                },
                pc: None,
                file: None,
                line: None,
                no_symbols: true,
                object: Some("/usr/sbin/asterisk".to_string()),
                offset: Some("0x10".to_string()),
            })
            .collect(),
        waits: None,
        task,
    })
}

proptest! {
    #![proptest_config(config())]

    /// Any table, any log warnings and any gdb reading give a report: the
    /// frame index of a task may even point past the stack.
    #[test]
    fn fuzz_taskprocessors_judge(
        table in mutated_text(TABLES),
        log in prop_oneof![mutated_text(WARNINGS), words_text(VOCABULARY, 16)],
        threads in proptest::collection::vec(any_thread(), 0..6),
        gdb_ran in any::<bool>(),
    ) {
        let listing = match parse_table(&split_lines(&table)) {
            Ok(table) => Listing::Listed(table),
            Err(why) => Listing::Unanswered(why),
        };
        let warnings: Vec<QueueWarning> = log.lines().filter_map(queue_warning).collect();
        let report = timed("judge", CASE_BUDGET, || {
            judge(&listing, &warnings, gdb_ran.then_some(threads.as_slice()), "the last 10 min")
        });
        prop_assert!(report.text.starts_with("Taskprocessors ("));
        for queue in &report.queues {
            prop_assert!(!queue.rests_on.is_empty());
            if let Some(lwp) = queue.served_by_lwp {
                prop_assert!(threads.iter().any(|thread| thread.lwp == lwp));
            }
        }
    }
}

#[test]
fn fuzz_taskprocessors_large_inputs_are_linear() {
    assert_linear(
        "rows of digits",
        1 << 14,
        |n| {
            let mut lines = vec!["Processor Processed In Queue".to_string()];
            lines.extend((0..n).map(|i| format!("n{i} {i} {i} 1 2 3")));
            lines
        },
        |lines| {
            let _ = parse_table(lines);
        },
    );
    assert_linear(
        "one line of quotes",
        1 << 18,
        |n| "Taskprocessor '".repeat(n / 15) + "' queue reached 5 scheduled tasks",
        |line| {
            let _ = queue_warning(line);
        },
    );
    assert_linear(
        "a log without newlines",
        1 << 18,
        |n| b"[2026-11-28 04:12:43] queue reached ".repeat(n / 36),
        |log| {
            let until = chrono::Local::now().fixed_offset();
            let mut found = Vec::new();
            scan_reader(log.as_slice(), None, until, until, &mut found).unwrap();
        },
    );
}
