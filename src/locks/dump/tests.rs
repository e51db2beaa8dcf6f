//! Parser tests: one per format generation, then what pasting does to a dump.

use super::*;
use crate::locks::graph::{Analysis, Claim as GraphClaim, Site};

const SEED: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/locks/seed-excerpt.txt"
));
const AST18: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/locks/ast18-decimal.txt"
));
const AST11: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/locks/ast11-hex.txt"
));
const AST12: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/locks/ast12-version.txt"
));
const AST13: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/locks/ast13-lwp.txt"
));
const AST21: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/locks/ast21-timing.txt"
));
const EXAMPLE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/core-show-locks.txt"
));

fn parse_str(text: &str) -> (LockGraph, DumpInfo) {
    parse_bytes(text.as_bytes())
}

fn ids(graph: &LockGraph, threads: &[crate::locks::graph::ThreadRef]) -> Vec<String> {
    threads
        .iter()
        .filter_map(|&t| graph.thread(t).map(|t| t.id.to_string()))
        .collect()
}

fn cycle_ids(graph: &LockGraph, analysis: &Analysis) -> Vec<Vec<String>> {
    analysis
        .deadlocks
        .iter()
        .map(|d| {
            let threads: Vec<_> = d.cycle.iter().map(|s| s.thread).collect();
            ids(graph, &threads)
        })
        .collect()
}

fn count(graph: &LockGraph, claim: GraphClaim) -> usize {
    graph
        .acquisitions()
        .iter()
        .filter(|a| a.claim == claim)
        .count()
}

#[test]
fn seed_excerpt() {
    let (graph, info) = parse_str(SEED);
    assert!(info.recognized);
    assert_eq!(info.dumps, 1);
    assert_eq!(info.cuts, 1);
    assert_eq!(
        ids(&graph, &[graph.find_thread("0xb71ffb70").unwrap()]),
        ["0xb71ffb70"]
    );
    let first = &graph.threads()[0];
    assert_eq!(first.short_name(), "tps_processing_function");
    assert_eq!(
        &*first.name,
        "tps_processing_function started at [ 457] taskprocessor.c ast_taskprocessor_get()"
    );
    assert_eq!(graph.threads()[1].short_name(), "do_devstate_changes");
    assert_eq!(count(&graph, GraphClaim::Holds), 3);
    assert_eq!(count(&graph, GraphClaim::WaitsFor), 2);
    let lock = graph.find_lock("0x822aa78").unwrap();
    assert_eq!(
        &*graph.lock(lock).unwrap().name,
        "&(&ast_event_subs[event_types[i]])->lock"
    );
    // Two "Locked Here" lines: one per reentrancy level.
    let wait = graph
        .acquisitions()
        .iter()
        .find(|a| a.claim == GraphClaim::WaitsFor && &*graph.lock(a.lock).unwrap().name == "chan")
        .unwrap();
    assert_eq!(wait.locked_here.len(), 2);
    assert_eq!(
        wait.locked_here[0],
        Site::new("channel.c", Some(3767), "__ast_read")
    );
    assert_eq!(
        wait.site,
        Site::new("channel.c", Some(1703), "ast_channel_cmp_cb")
    );
    // Both waits are on holders cut from the excerpt: edges without holder.
    let analysis = graph.analyze();
    assert_eq!(analysis.edges.len(), 2);
    assert!(analysis.edges.iter().all(|e| e.holder.is_none()));
    assert!(analysis.deadlocks.is_empty());
}

#[test]
fn asterisk_1_8_decimal_ids() {
    let (graph, info) = parse_str(AST18);
    assert!(info.recognized);
    assert_eq!(info.version, None);
    assert_eq!(graph.threads().len(), 2);
    assert_eq!(&*graph.threads()[0].id, "3077372784");
    assert_eq!(graph.threads()[0].short_name(), "do_monitor");
    let analysis = graph.analyze();
    assert_eq!(cycle_ids(&graph, &analysis), [["3077372784", "3060587376"]]);
}

#[test]
fn asterisk_11_hex_ids_readers_and_failed_trylock() {
    let (graph, _) = parse_str(AST11);
    assert_eq!(&*graph.threads()[0].id, "0xb71ffb70");
    assert_eq!(count(&graph, GraphClaim::TriedAndFailed), 1);
    let analysis = graph.analyze();
    // The writer waits for both readers, not only the last one.
    let holders: Vec<_> = analysis
        .edges
        .iter()
        .map(|e| e.holder.map(|h| graph.thread(h).unwrap().id.to_string()))
        .collect();
    assert_eq!(
        holders,
        [
            Some("0xb71ffb70".to_string()),
            Some("0xb6cffb70".to_string())
        ]
    );
    // A failed trylock is not a wait.
    assert!(
        analysis
            .edges
            .iter()
            .all(|e| &*graph.thread(e.waiter).unwrap().id == "0xb5dffb70")
    );
    assert!(analysis.deadlocks.is_empty());
}

#[test]
fn asterisk_12_version_line_and_suspended_count() {
    let (graph, info) = parse_str(AST12);
    assert_eq!(info.version.as_deref(), Some("12.8.2"));
    assert_eq!(info.suspended, 1);
    // The suspended lock is released (condition wait): not held.
    assert!(graph.find_lock("0x7f2a28011cb8").is_none());
    let analysis = graph.analyze();
    assert_eq!(
        cycle_ids(&graph, &analysis),
        [["0x7f2a3c1f5700", "0x7f2a3c0ad700"]]
    );
}

#[test]
fn asterisk_13_to_18_lwp_and_better_backtraces() {
    let (graph, info) = parse_str(AST13);
    assert_eq!(info.version.as_deref(), Some("18.12.1"));
    assert_eq!(graph.threads()[0].lwp, Some(24873));
    assert_eq!(graph.threads()[2].lwp, None);
    assert_eq!(
        graph.find_thread_by_lwp(24790),
        graph.find_thread("0x7f5b7d2f9700")
    );
    let analysis = graph.analyze();
    assert_eq!(
        cycle_ids(&graph, &analysis),
        [["0x7f5b7c6f6700", "0x7f5b7d2f9700"]]
    );
    assert_eq!(
        ids(&graph, &analysis.deadlocks[0].behind),
        ["0x7f5b7c8c1700"]
    );
}

#[test]
fn asterisk_21_timing_lines_and_no_count() {
    let (graph, info) = parse_str(AST21);
    assert_eq!(info.version.as_deref(), Some("21.4.1"));
    assert_eq!(info.taken_at.as_deref(), Some("14:02:17.482113"));
    assert_eq!(info.lock_lines, 4);
    assert_eq!(info.unreadable_lock_lines, 0);
    let lock = graph.find_lock("0x5612a8d05e20").unwrap();
    assert_eq!(&*graph.lock(lock).unwrap().name, "cache");
    let analysis = graph.analyze();
    assert_eq!(
        cycle_ids(&graph, &analysis),
        [["0x7f0e9a7ff6c0", "0x7f0e9b3fe6c0"]]
    );
}

#[test]
fn example_dump() {
    let (graph, info) = parse_str(EXAMPLE);
    assert_eq!(info.unreadable_lock_lines, 0);
    let analysis = graph.analyze();
    assert_eq!(analysis.deadlocks.len(), 1);
    assert!(analysis.deadlocks[0].behind.len() >= 3);
    assert!(analysis.edges.iter().any(|e| e.holder.is_none()));
    assert_eq!(count(&graph, GraphClaim::TriedAndFailed), 1);
}

#[test]
fn crlf_line_ends() {
    let crlf = AST13.replace('\n', "\r\n");
    let (graph, info) = parse_str(&crlf);
    assert_eq!(info.version.as_deref(), Some("18.12.1"));
    assert!(graph.threads()[0].name.ends_with(')'));
    assert_eq!(graph.locks().len(), 2);
    assert_eq!(graph.analyze().deadlocks.len(), 1);
}

#[test]
fn tabs_turned_to_spaces() {
    // SEED has raw backtraces, AST13 BETTER_BACKTRACES `[0x..]` and `[inlined]` lines.
    for dump in [SEED, AST13] {
        let spaced = dump.replace('\t', "        ");
        let (graph, _) = parse_str(&spaced);
        let (original, _) = parse_str(dump);
        assert_eq!(graph.threads(), original.threads());
        assert_eq!(graph.locks(), original.locks());
        assert_eq!(graph.acquisitions(), original.acquisitions());
        assert!(!graph.acquisitions().is_empty());
    }
}

#[test]
fn cuts_and_truncated_lines() {
    let text = "\
=== Thread ID: 0x1 (pbx_thread started at [ 1] pbx.c ast_pbx_start())
=== ---> Lock #0 (channel.c): MUTEX 10 f chan 0xaa (1)
...
=== ---> Waiting for Lock #1 (channel.c): MUTEX 1703 ast_channel_cmp_cb chan 0xae04...
=== ---> Waiting for Lock #2 (channel.c): MUTEX 1703 ast_ch...
=== Thread ID: 0x2 (do_devstate_ch...
=== ---> Waiting for Lock #0 (channel.c): MUTEX 11 g chan 0xaa (1)...
";
    let (graph, info) = parse_str(text);
    assert_eq!(info.cuts, 1);
    assert_eq!(info.unreadable_lock_lines, 2);
    assert_eq!(&*graph.threads()[1].name, "do_devstate_ch...");
    let analysis = graph.analyze();
    assert_eq!(analysis.edges.len(), 1);
    assert_eq!(analysis.edges[0].holder, graph.find_thread("0x1"));
}

#[test]
fn lock_line_before_any_thread_and_unlisted_holder() {
    let text = "\
=== ---> Lock #0 (channel.c): MUTEX 10 f chan 0xaa (1)
=== Thread ID: 0x2 (x started at [ 1] a.c b())
=== ---> Waiting for Lock #0 (channel.c): MUTEX 11 g chan 0xbb (1)
=== --- ---> Locked Here: channel.c line 99 (somewhere)
";
    let (graph, info) = parse_str(text);
    assert_eq!(info.orphan_lock_lines, 1);
    let analysis = graph.analyze();
    assert_eq!(analysis.edges.len(), 1);
    assert_eq!(analysis.edges[0].holder, None);
    assert_eq!(
        graph.acquisitions()[0].locked_here,
        [Site::new("channel.c", Some(99), "somewhere")]
    );
}

#[test]
fn several_waiters_on_one_lock() {
    let mut text = String::from(
        "=== Thread ID: 0x1 (holder)\n=== ---> Lock #0 (a.c): MUTEX 1 f big 0x100 (1)\n",
    );
    for i in 2..6 {
        text.push_str(&format!(
            "=== Thread ID: {i:#x} (waiter {i})\n=== ---> Waiting for Lock #0 (a.c): MUTEX 2 g big 0x100 (1)\n"
        ));
    }
    let (graph, _) = parse_str(&text);
    let analysis = graph.analyze();
    assert_eq!(analysis.edges.len(), 4);
    assert!(
        analysis
            .edges
            .iter()
            .all(|e| e.holder == graph.find_thread("0x1"))
    );
    assert_eq!(&*graph.threads()[1].name, "waiter 2");
}

#[test]
fn names_with_spaces_and_parentheses() {
    let text = "=== Thread ID: 0x7f LWP:42 (my (odd) thread   started at [ 12] x.c y())\n\
                === ---> Lock #0 (a b.c): MUTEX 5 fn &(obj->inner) lock 0x10 (3)\n";
    let (graph, _) = parse_str(text);
    assert_eq!(
        &*graph.threads()[0].name,
        "my (odd) thread started at [ 12] x.c y()"
    );
    assert_eq!(graph.threads()[0].lwp, Some(42));
    assert_eq!(&*graph.locks()[0].name, "&(obj->inner) lock");
    assert_eq!(&*graph.acquisitions()[0].site.file, "a b.c");
}

#[test]
fn nil_address_and_prefixed_lines() {
    let text = "[Nov 28 10:00:00] === Thread ID: 0x9 (t)\r\n\
                *CLI> === ---> Lock #0 (a.c): MUTEX 5 fn lock (nil) (1)\r\n";
    let (graph, _) = parse_str(text);
    assert_eq!(graph.threads().len(), 1);
    assert_eq!(graph.locks()[0].addr, "(nil)");
}

#[test]
fn second_dump_replaces_the_first() {
    let text = format!("{AST18}\n{AST13}");
    let (graph, info) = parse_str(&text);
    assert_eq!(info.dumps, 2);
    assert_eq!(graph.threads().len(), 3);
    assert!(graph.find_thread("3077372784").is_none());
}

#[test]
fn not_a_lock_dump() {
    for input in [
        &b""[..],
        b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x04\0\x3e\0",
        b"Oct 16 16:12:43 xivo-1 kernel: asterisk[1255]: segfault at e ip b751aa6b\n",
        b"=== something else\n=== ---> not a lock\n",
    ] {
        let (graph, info) = parse_bytes(input);
        assert!(!info.recognized, "{input:?}");
        assert!(graph.is_empty());
    }
}

#[test]
fn arbitrary_bytes_never_panic() {
    // A cheap deterministic fuzz: slices and splices of real dumps plus noise.
    let all = [SEED, AST18, AST11, AST12, AST13, AST21].concat();
    let bytes = all.as_bytes();
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    for _ in 0..2000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let start = (seed as usize) % bytes.len();
        let len = ((seed >> 20) as usize) % 400;
        let mut input = bytes[start..(start + len).min(bytes.len())].to_vec();
        if seed % 3 == 0 {
            let at = (seed as usize >> 8) % (input.len() + 1);
            input.insert(at, (seed >> 32) as u8);
        }
        let (graph, _) = parse_bytes(&input);
        let _ = graph.analyze();
    }
}

#[test]
fn huge_line_without_newline_is_capped() {
    let mut input = b"=== Thread ID: 0x1 (".to_vec();
    input.extend(std::iter::repeat_n(b'x', 3 * MAX_LINE));
    input.extend(b")\n=== ---> Lock #0 (a.c): MUTEX 1 f l 0x10 (1)\n");
    let (graph, _) = parse_bytes(&input);
    assert_eq!(graph.threads().len(), 1);
    assert!(graph.threads()[0].name.len() <= MAX_LINE);
    assert_eq!(graph.acquisitions().len(), 1);
}

#[test]
fn lines_split_across_buffers() {
    // A tiny buffer forces every line through the carry path.
    let reader = std::io::BufReader::with_capacity(7, AST13.as_bytes());
    let (graph, info) = parse(reader).unwrap();
    let (whole, whole_info) = parse_str(AST13);
    assert_eq!(graph.threads(), whole.threads());
    assert_eq!(graph.acquisitions(), whole.acquisitions());
    assert_eq!(info.lines, whole_info.lines);
}

#[test]
fn lock_fields() {
    let fields =
        parse_lock_fields("3 (astobj2.c): MUTEX 661 internal_ao2_callback c 0x9551498 (1)");
    assert_eq!(
        fields,
        Some(LockFields {
            file: "astobj2.c",
            kind: LockKind::Mutex,
            line: Some(661),
            func: "internal_ao2_callback",
            name: "c",
            addr: "0x9551498",
            value: None,
            suspended: false,
        })
    );
    assert!(parse_lock_fields("3 (a.c): MUTEX 661 f c 0x95514zz (1)").is_none());
    assert!(parse_lock_fields("3 (a.c): MUTEX").is_none());
    assert!(parse_lock_fields("").is_none());
    assert!(parse_lock_fields("(").is_none());
    assert!(parse_lock_fields("1 (a.c): ").is_none());
}

#[test]
fn control_characters_are_neutralised() {
    let text = "=== Thread ID: 0x1\x07 (evil\x1b[31m name)\n\
                === ---> Lock #0 (a\x1b.c): MUTEX 5 f\x08n lo\x1bck 0x10 (1)\n";
    let (graph, _) = parse_str(text);
    let thread = &graph.threads()[0];
    assert_eq!(&*thread.id, "0x1 ");
    assert_eq!(&*thread.name, "evil [31m name");
    assert_eq!(&*graph.locks()[0].name, "lo ck");
    let site = &graph.acquisitions()[0].site;
    assert_eq!((&*site.file, &*site.func), ("a .c", "f n"));
}

#[test]
fn truncated_fields_never_panic() {
    let lines = [
        "=== Thread ID:",
        "=== Thread ID: ",
        "=== Thread ID: (",
        "=== Thread ID: 0x1 LWP:",
        "=== Thread ID: 0x1 LWP:99999999999999999999999 (x)",
        "=== Thread ID: 0x1 )(",
        "=== --->",
        "=== ---> Lock #",
        "=== ---> Lock #0 (",
        "=== ---> Lock #0 ()",
        "=== ---> Lock #0 ():",
        "=== ---> Lock #0 (a.c): ",
        "=== ---> Waiting for Lock #1 (a.c): MUTEX",
        "=== ---> Waiting for Lock #1 (a.c): MUTEX 1",
        "=== ---> Waiting for Lock #1 (a.c): MUTEX 1 f",
        "=== ---> Waiting for Lock #1 (a.c): MUTEX 1 f 0x1",
        "=== ---> Waiting for Lock #1 (a.c): MUTEX 99999999999 f n 0x1 (1)",
        "=== ---> Lock #1 (a.c): MUTEX 1 f n 0x1 ()",
        "=== ---> Lock #1 (a.c): MUTEX 1 f n 0x1 (",
        "=== ---> Lock #1 (a.c): MUTEX 1 f n 0x1 ( - suspended)",
        "=== ---> Lock #1 (a.c): MUTEX 1 f n 0x1 (1 - )",
        "=== ---> Lock #1 (a.c): MUTEX 1 f n 0x1...",
        "=== ---> Lock #1 (a.c): MUTEX 1 f n 0x...",
        "=== ---> Lock #1 (a.c): MUTEX 1 f n ...",
        "=== --- --->",
        "=== --- ---> Locked Here:",
        "=== --- ---> Locked Here: a.c line",
        "=== --- ---> Locked Here: a.c line 99999999999 (",
        "=== Currently Held Locks at Time:",
        "=== Currently Held Locks at Time: ====",
        "===",
        "=",
        "…",
        "=== \u{1b}[2J",
        "=== ---> Lock #0 (\u{0}): \u{0} \u{0} \u{0} 0x0 (\u{0})",
    ];
    let mut all = String::from(
        "=== Thread ID: 0x9 (t)\n=== ---> Waiting for Lock #0 (a.c): MUTEX 1 f n 0x1 (1)\n",
    );
    for line in lines {
        let (graph, _) = parse_str(line);
        let _ = graph.analyze();
        all.push_str(line);
        all.push('\n');
    }
    let (graph, info) = parse_str(&all);
    let analysis = graph.analyze();
    let _ = crate::locks::render::text(&graph, &analysis, &Default::default());
    let mut out = Vec::new();
    crate::locks::render::dot(&graph, &analysis, &mut out).unwrap();
    crate::locks::render::json(&graph, &analysis, &mut out).unwrap();
    assert!(info.recognized);
}

/// A dump shaped as `bench/graph.sh` writes them: `locks` held a thread,
/// execinfo or BETTER_BACKTRACES frames, a chain with a deadlock at its head.
fn bench_dump(threads: usize, locks: usize, better: bool) -> String {
    let mut out = String::from("=== 20.3.0\n=== Currently Held Locks\n===\n");
    let frame = if better {
        "\t[0x55d0c6a1c010] asterisk channel.c:4240 ast_channel_frame_0()\n"
    } else {
        "\t/usr/sbin/asterisk(__ast_pthread_mutex_lock+0x9e) [0x55d0c6a1c010]\n"
    };
    for i in 0..threads {
        out.push_str(&format!(
            "=== Thread ID: 0x7f3a{:08x} LWP:{} (pbx_thread           started at [ 4787] pbx.c ast_pbx_start())\n\
             === ---> Lock #0 (channel.c): MUTEX 4240 ast_write chan 0x55d0{:08x} (1)\n{frame}",
            i * 4096,
            10000 + i,
            i * 64
        ));
        for h in 1..locks {
            out.push_str(&format!(
                "=== ---> Lock #{h} (chan_pjsip.c): MUTEX {} chan_pjsip_write &pvt->lock 0x56e0{:08x} (1)\n{frame}",
                900 + h,
                (i * 8 + h) * 64
            ));
        }
        let peer = match i {
            0..8 => i ^ 1,
            _ if i % 10 == 0 => usize::MAX,
            _ => i - 1,
        };
        if peer == usize::MAX {
            out.push_str(
                "=== ---> Waiting for Lock #1 (res_pjsip.c): MUTEX 99 f &lock 0x7f0000000001 (1)\n",
            );
        } else {
            out.push_str(&format!(
                "=== ---> Waiting for Lock #1 (channel.c): MUTEX 1213 ast_queue_frame chan 0x55d0{:08x} (1)\n{frame}\
                 === --- ---> Locked Here: channel.c line 4240 (ast_write)\n",
                peer * 64
            ));
        }
        out.push_str(
            "=== -------------------------------------------------------------------\n===\n",
        );
    }
    out
}

/// The differential test on every fixture and on what pasting does to them:
/// the byte-level reader builds the graph the reader before it built.
#[test]
fn same_graph_as_the_reference_reader() {
    let mut inputs: Vec<(String, Vec<u8>)> = [SEED, AST18, AST11, AST12, AST13, AST21, EXAMPLE]
        .iter()
        .enumerate()
        .map(|(at, text)| (format!("fixture {at}"), text.as_bytes().to_vec()))
        .collect();
    for (name, shape) in [
        ("plain", bench_dump(300, 1, false)),
        ("better", bench_dump(300, 5, true)),
    ] {
        inputs.push((name.to_string(), shape.into_bytes()));
    }
    inputs.push(("chain".to_string(), super::fuzz_tests::chain_dump(500)));
    let originals = inputs.clone();
    for (name, data) in originals {
        let text = String::from_utf8_lossy(&data).into_owned();
        let variants = [
            ("crlf", text.replace('\n', "\r\n")),
            ("tabs as spaces", text.replace('\t', "        ")),
            (
                "prefixed",
                text.replace("=== ", "[Dec  1 10:00:00] pbx*CLI> === "),
            ),
            ("indented", text.replace("\n===", "\n  ===")),
            (
                "non-ascii names",
                text.replace("chan ", "chän ").replace("started", "stärted"),
            ),
            ("vertical tabs", text.replace(' ', "\u{b}")),
            ("nbsp", text.replace(' ', "\u{a0}")),
            (
                "cuts",
                text.replace(" (1)\n", " ...\n")
                    .replacen("=== Thread", "...\n=== Thread", 3),
            ),
        ];
        for (variant, changed) in variants {
            inputs.push((format!("{name}, {variant}"), changed.into_bytes()));
        }
    }
    for (name, data) in &inputs {
        let (graph, info) = parse_bytes(data);
        if let Err(error) = super::fuzz_tests::same_as_reference(data, &graph, &info) {
            panic!("{name}: {error}");
        }
    }
}
