use std::io::Write;
use std::path::PathBuf;

use chrono::TimeZone;

use super::*;
use crate::gdb::threads::{Frame, Task, TaskCandidate, Thread};

fn lines(text: &str) -> Vec<String> {
    text.lines().map(str::to_string).collect()
}

/// Asterisk 22, as the test bed's Debian package answers.
const ASTERISK_22: &str = include_str!("../../../tests/fixtures/taskprocessors/asterisk-22.txt");

/// Asterisk 13 to 18: six columns.
const ASTERISK_13: &str = "
Processor                                      Processed   In Queue  Max Depth  Low water High water
app_voicemail                                         4          0          1        450        500
subm:cdr_engine-00000001                           1200       7311       7311        450        500

2 taskprocessors
";

/// Asterisk 1.8 and 11: boxed, four columns.
const ASTERISK_11: &str = "
\t+----- Processor -----+--- Processed ---+- In Queue -+- Max Depth -+
           app_voicemail                   0            0            0
  sip_reload task queue                   17          245          245
\t+---------------------+-----------------+------------+-------------+
\t2 taskprocessors
";

#[test]
fn reads_every_release_layout() {
    let table = parse_table(&lines(ASTERISK_22)).unwrap();
    assert_eq!(table.count, Some(3));
    assert_eq!(table.skipped, 0);
    assert_eq!(
        table.rows[1],
        Row {
            name: "astdebug-blocked".to_string(),
            processed: Some(0),
            in_queue: 600,
            max_depth: Some(0),
            low_water: Some(450),
            high_water: Some(500),
        }
    );
    assert_eq!(table.rows[2].max_depth, Some(3));

    let table = parse_table(&lines(ASTERISK_13)).unwrap();
    assert_eq!(table.rows[1].name, "subm:cdr_engine-00000001");
    assert_eq!(table.rows[1].in_queue, 7311);
    assert_eq!(table.rows[1].high_water, Some(500));

    let table = parse_table(&lines(ASTERISK_11)).unwrap();
    assert_eq!(table.count, Some(2));
    // A name with spaces: everything before the numbers.
    assert_eq!(table.rows[1].name, "sip_reload task queue");
    assert_eq!(table.rows[1].in_queue, 245);
    assert_eq!(table.rows[1].high_water, None);
}

#[test]
fn garbage_is_counted_or_refused_never_guessed() {
    let table = parse_table(&lines(
        "Processor Processed In Queue\nok 1 2\nbroken 1 x\nalone\n-1 -2 -3\nname 3 -4\n",
    ))
    .unwrap();
    assert_eq!(table.rows.len(), 1, "{table:?}");
    // A negative queue size is no size: that row is skipped.
    assert_eq!(table.skipped, 4);
    assert!(
        parse_table(&lines("No such command 'core show taskprocessors'"))
            .unwrap_err()
            .contains("No such command")
    );
    assert!(parse_table(&[]).unwrap_err().contains("empty answer"));
}

#[test]
fn reads_both_wordings_of_the_queue_warning() {
    let new = queue_warning(
        "[Dec  1 14:04:34] WARNING[21493] taskprocessor.c: Taskprocessor 'astdebug-blocked' \
         queue reached 500 scheduled tasks (high water mark: 500).",
    )
    .unwrap();
    assert_eq!(new.name, "astdebug-blocked");
    assert_eq!(new.reached, 500);
    assert_eq!(new.high_water, Some(500));
    assert!(!new.again);
    let old = queue_warning(
        "[2026-11-28 04:12:43.123] WARNING[77]: taskprocessor.c:888 taskprocessor_push: The \
         'subm:cdr_engine-00000001' task processor queue reached 3000 scheduled tasks again.",
    )
    .unwrap();
    assert_eq!(old.name, "subm:cdr_engine-00000001");
    assert_eq!(old.reached, 3000);
    assert_eq!(old.high_water, None);
    assert!(old.again);
    assert!(old.at.is_some());
    for junk in [
        "queue reached 5 scheduled tasks",
        "The '' task processor queue reached 5 scheduled tasks.",
        "Taskprocessor 'x' queue reached many scheduled tasks",
        "Taskprocessor 'x' queue reached 5 tasks",
    ] {
        assert_eq!(queue_warning(junk), None, "{junk}");
    }
}

fn at(text: &str) -> DateTime<FixedOffset> {
    let naive = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").unwrap();
    Local.from_local_datetime(&naive).unwrap().fixed_offset()
}

fn warning_line(time: &str, name: &str, reached: u64) -> String {
    format!(
        "[{time}.000] WARNING[12] taskprocessor.c: Taskprocessor '{name}' queue reached \
         {reached} scheduled tasks (high water mark: 500).\n"
    )
}

#[test]
fn keeps_the_warnings_of_the_window_among_other_lines() {
    let mut log = String::new();
    log.push_str(&warning_line("2026-11-28 03:00:00", "too-early", 500));
    log.push_str("[2026-11-28 04:00:01.000] VERBOSE[13] pbx.c: Executing [s@default:1]\n");
    log.push_str(&warning_line(
        "2026-11-28 04:00:02",
        "stasis/p:channel:all",
        500,
    ));
    log.push_str("  a continuation line, no stamp\n");
    log.push_str(&warning_line(
        "2026-11-28 04:00:03",
        "pjsip/default-0000001a",
        500,
    ));
    log.push_str(&"x".repeat(200_000));
    log.push('\n');
    log.push_str(
        &warning_line("2026-11-28 04:00:04", "stasis/p:channel:all", 1000)
            .replace(".\n", " again.\n"),
    );
    log.push_str(&warning_line("2026-11-28 05:00:00", "too-late", 500));
    let mut found = Vec::new();
    scan_reader(
        log.as_bytes(),
        None,
        at("2026-11-28 04:00:00"),
        at("2026-11-28 04:30:00"),
        &mut found,
    )
    .unwrap();
    let names: Vec<(&str, u64, bool)> = found
        .iter()
        .map(|w| (w.name.as_str(), w.reached, w.again))
        .collect();
    assert_eq!(
        names,
        [
            ("stasis/p:channel:all", 500, false),
            ("pjsip/default-0000001a", 500, false),
            ("stasis/p:channel:all", 1000, true),
        ]
    );
}

#[test]
fn reaches_into_the_rotated_copy_when_the_window_does() {
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full");
    std::fs::write(
        &full,
        format!(
            "[2026-11-28 00:00:05.000] VERBOSE[1] logger.c: rotated\n{}",
            warning_line("2026-11-28 00:01:00", "after", 600)
        ),
    )
    .unwrap();
    let rotated = dir.path().join("full.1.gz");
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&rotated).unwrap(),
        flate2::Compression::default(),
    );
    gz.write_all(
        format!(
            "{}{}",
            warning_line("2026-11-27 20:00:00", "long-before", 500),
            warning_line("2026-11-27 23:58:00", "before", 500)
        )
        .as_bytes(),
    )
    .unwrap();
    gz.finish().unwrap();
    let copies = vec![
        LogCopy {
            path: full,
            starts: Some(at("2026-11-28 00:00:05")),
        },
        LogCopy {
            path: rotated,
            starts: Some(at("2026-11-27 00:00:01")),
        },
        LogCopy {
            path: PathBuf::from("/nonexistent/full.2.gz"),
            starts: Some(at("2026-11-26 00:00:01")),
        },
    ];
    let (found, problems) = scan_copies(
        &copies,
        at("2026-11-27 23:50:00"),
        at("2026-11-28 00:05:00"),
    );
    // The older copy was not needed: no problem reading it.
    assert!(problems.is_empty(), "{problems:?}");
    let names: Vec<&str> = found.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, ["before", "after"]);
    // A window inside `full` alone reads nothing else.
    let (found, _) = scan_copies(
        &copies,
        at("2026-11-28 00:00:30"),
        at("2026-11-28 00:05:00"),
    );
    assert_eq!(found.len(), 1);
}

fn frame(function: &str, object: &str) -> Frame {
    Frame {
        function: function.to_string(),
        pc: None,
        file: None,
        line: None,
        no_symbols: function == "??",
        object: Some(object.to_string()),
        offset: Some("0x1522".to_string()),
    }
}

fn server(lwp: i64, task: Task) -> Thread {
    Thread {
        num: 2,
        lwp,
        name: Some("asterisk".to_string()),
        start: None,
        frames: vec![
            frame("pthread_cond_wait", "/usr/lib/x86_64-linux-gnu/libc.so.6"),
            frame("??", "/usr/lib/asterisk/modules/res_astdebug_test.so"),
            frame("ast_taskprocessor_execute", "/usr/sbin/asterisk"),
            frame("??", "/usr/sbin/asterisk"),
        ],
        waits: None,
        task: Some(task),
    }
}

fn candidates(strings: &[&str], holds_self: bool) -> TaskCandidate {
    TaskCandidate {
        strings: strings.iter().map(|s| s.to_string()).collect(),
        holds_self,
    }
}

fn listing() -> Listing {
    Listing::Listed(parse_table(&lines(ASTERISK_22)).unwrap())
}

#[test]
fn names_the_stuck_queue_and_the_thread_whose_memory_holds_its_name_and_id() {
    let threads = vec![server(
        21494,
        Task {
            frame: 2,
            name: None,
            candidates: vec![
                candidates(&["unrelated", "ast_msg_queue"], false),
                candidates(&["astdebug-blocked", "garbage!"], true),
            ],
        },
    )];
    let report = judge(&listing(), &[], Some(&threads), "the last 10 min");
    assert_eq!(report.queues.len(), 1, "{report:?}");
    let queue = &report.queues[0];
    assert_eq!(queue.name, "astdebug-blocked");
    assert_eq!(queue.in_queue, Some(600));
    assert_eq!(queue.served_by_lwp, Some(21494));
    assert!(queue.rests_on.contains("own id"), "{}", queue.rests_on);
    assert!(
        report.text.contains("res_astdebug_test.so+0x1522"),
        "{}",
        report.text
    );
    assert!(report.text.contains("listed 3"), "{}", report.text);
}

#[test]
fn cannot_tell_is_said_when_memory_is_silent_or_ambiguous() {
    let silent = vec![server(7, Task::default())];
    let report = judge(&listing(), &[], Some(&silent), "the last 10 min");
    assert_eq!(report.queues[0].served_by_lwp, None);
    assert!(report.queues[0].rests_on.contains("cannot tell"));
    let two = |lwp| {
        server(
            lwp,
            Task {
                frame: 2,
                name: None,
                candidates: vec![candidates(&["astdebug-blocked"], false)],
            },
        )
    };
    let threads = vec![two(8), two(9)];
    let report = judge(&listing(), &[], Some(&threads), "the last 10 min");
    assert_eq!(report.queues[0].served_by_lwp, None);
    assert!(
        report.queues[0].rests_on.contains("LWPs 8, 9"),
        "{report:?}"
    );
    // With symbols gdb reads the name: that is enough, known or not.
    let named = vec![server(
        10,
        Task {
            frame: 2,
            name: Some("astdebug-blocked".to_string()),
            candidates: Vec::new(),
        },
    )];
    let report = judge(&Listing::NotAsked, &[], Some(&named), "the last 10 min");
    assert!(report.queues.is_empty());
    assert!(report.text.contains("cannot tell"), "{}", report.text);
}

#[test]
fn the_log_alone_names_a_queue_when_the_cli_does_not_answer() {
    let warned = vec![
        queue_warning(&warning_line(
            "2026-11-28 04:00:02",
            "stasis/p:channel:all",
            500,
        ))
        .unwrap(),
        queue_warning(&warning_line(
            "2026-11-28 04:00:09",
            "stasis/p:channel:all",
            500,
        ))
        .unwrap(),
    ];
    let report = judge(&Listing::NotAsked, &warned, None, "the last 10 min");
    // Two warnings may be two runs of Asterisk: no "filled again" without Asterisk's word.
    assert!(!report.queues[0].rests_on.contains("filled again"));
    let mut warned = warned;
    warned.push(
        queue_warning(
            &warning_line("2026-11-28 04:00:19", "stasis/p:channel:all", 500)
                .replace(".\n", " again.\n"),
        )
        .unwrap(),
    );
    let report = judge(
        &Listing::Unanswered("no answer within 3 s".to_string()),
        &warned,
        None,
        "the last 10 min",
    );
    let queue = &report.queues[0];
    assert_eq!(queue.in_queue, None);
    assert_eq!(queue.log_reached, Some(500));
    assert_eq!(queue.high_water, Some(500));
    assert!(
        queue.rests_on.contains("3 warnings, 1 saying \"again\""),
        "{}",
        queue.rests_on
    );
    assert!(queue.rests_on.contains("gdb gave no stacks"));
    assert!(
        report.text.contains("no answer within 3 s"),
        "{}",
        report.text
    );
}

#[test]
fn an_idle_list_names_nothing_and_says_on_what() {
    let idle = parse_table(&lines(ASTERISK_13.replace("7311", "2").as_str())).unwrap();
    let report = judge(&Listing::Listed(idle), &[], Some(&[]), "the last 10 min");
    assert!(report.queues.is_empty());
    assert!(report.text.contains("no queue is large"), "{}", report.text);
    assert!(report.text.contains("one reading"), "{}", report.text);
}
