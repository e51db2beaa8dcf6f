//! The direct JSON writer against the serde version it replaced: the same
//! bytes on every fixture, on mangled dumps and on hostile strings.

use proptest::prelude::*;

use super::*;
use crate::locks::dump::fuzz_tests::SEEDS;
use crate::locks::dump::parse_bytes;
use crate::locks::graph::LockKind;
use crate::test_support::*;

fn both(graph: &LockGraph) -> (String, String) {
    let analysis = graph.analyze();
    let mut direct = Vec::new();
    json(graph, &analysis, &mut direct).unwrap();
    let mut serde = Vec::new();
    reference::json_serde(graph, &analysis, &mut serde).unwrap();
    (
        String::from_utf8(direct).unwrap(),
        String::from_utf8(serde).unwrap(),
    )
}

#[test]
fn fixtures_give_serdes_bytes() {
    for seed in SEEDS {
        let (graph, _) = parse_bytes(seed);
        let (direct, serde) = both(&graph);
        assert_eq!(direct, serde);
    }
    let (direct, serde) = both(&LockGraph::new());
    assert_eq!(direct, serde);
}

#[test]
fn hostile_strings_are_escaped_as_serde_escapes_them() {
    let mut g = LockGraph::new();
    let a = g.add_thread(
        "0xa \"quoted\" \\ back",
        Some(u64::MAX),
        "é ☃ \u{7f} /slash",
    );
    let b = g.add_thread("0xb", None, "");
    let lock = g.add_lock("0x10", "&p->lock \"x\"");
    let other = g.add_lock("(nil)", "");
    let site = g.site("a\\b.c", Some(u32::MAX), "f\"n");
    g.holds(a, lock, LockKind::Mutex, site.clone());
    let wait = g.waits_for(b, lock, LockKind::Wrlock, Site::new("", None, ""));
    g.add_locked_here(wait, site.clone());
    g.add_locked_here(wait, Site::new("x.c", None, "??"));
    g.waits_for(a, other, LockKind::Rdlock, site.clone());
    g.probably_holds(b, other, site.clone());
    g.tried_and_failed(b, lock, LockKind::Unknown, site);
    let (direct, serde) = both(&g);
    assert_eq!(direct, serde);
    // Controls never reach a string (the graph cleans them); the escapes
    // are still serde's if one does.
    let mut out = Out {
        buffer: Vec::new(),
        out: &mut io::sink(),
    };
    out.string("\u{0}\u{8}\t\n\u{c}\r\u{1f}\"\\").unwrap();
    assert_eq!(
        out.buffer,
        serde_json::to_string("\u{0}\u{8}\t\n\u{c}\r\u{1f}\"\\")
            .unwrap()
            .into_bytes()
    );
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn fuzz_json_writer_matches_serde(data in mutated(SEEDS)) {
        let (graph, _) = parse_bytes(&data);
        let (direct, serde) = both(&graph);
        prop_assert_eq!(direct, serde);
    }
}
