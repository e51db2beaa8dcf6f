use super::*;
use crate::locks::graph::LockKind;

fn deadlock() -> LockGraph {
    let mut g = LockGraph::new();
    let a = g.add_thread("0xa", Some(1), "pbx_thread started at [ 1] pbx.c x()");
    let b = g.add_thread("0xb", None, "say \"hi\" \\o/");
    let c = g.add_thread("0xc", None, "behind");
    let l1 = g.add_lock("0x1", "chan");
    let l2 = g.add_lock("0x2", "&p->lock");
    let l3 = g.add_lock("0x3", "");
    g.holds(
        a,
        l1,
        LockKind::Mutex,
        Site::new("channel.c", Some(10), "f"),
    );
    g.waits_for(
        a,
        l2,
        LockKind::Mutex,
        Site::new("chan_sip.c", Some(20), "g"),
    );
    g.holds(
        b,
        l2,
        LockKind::Mutex,
        Site::new("chan_sip.c", Some(30), "h"),
    );
    g.waits_for(
        b,
        l1,
        LockKind::Mutex,
        Site::new("channel.c", Some(40), "i"),
    );
    g.waits_for(c, l1, LockKind::Mutex, Site::default());
    g.waits_for(c, l3, LockKind::Mutex, Site::default());
    g
}

#[test]
fn text_names_the_pair_and_the_count_behind() {
    let g = deadlock();
    let text = text(&g, &g.analyze(), &SourceInfo::default());
    assert!(
        text.contains(
            "DEADLOCK: thread 0xa LWP 1 (pbx_thread) holds chan 0x1 (channel.c:10 f) and waits \
             for &p->lock 0x2 (chan_sip.c:20 g), held by thread 0xb (say \"hi\" \\o/) \
             (chan_sip.c:30 h), which waits for chan 0x1."
        ),
        "{text}"
    );
    assert!(
        text.contains("1 thread is stuck behind it: thread 0xc (behind)."),
        "{text}"
    );
    assert!(text.contains("holder is not listed (1;"), "{text}");
    assert!(
        text.contains("thread 0xc (behind) waits for lock 0x3"),
        "{text}"
    );
}

#[test]
fn text_says_when_there_is_no_deadlock() {
    let mut g = LockGraph::new();
    let a = g.add_thread("1", None, "");
    let b = g.add_thread("2", None, "");
    let l = g.add_lock("0x1", "x");
    g.holds(a, l, LockKind::Mutex, Site::default());
    g.waits_for(b, l, LockKind::Mutex, Site::default());
    let text = text(&g, &g.analyze(), &SourceInfo::default());
    assert!(text.contains("No deadlock"), "{text}");
    assert!(
        text.contains("x 0x1: 1 waiting, held by thread 1"),
        "{text}"
    );
}

#[test]
fn dot_escapes_and_colours() {
    let g = deadlock();
    let mut out = Vec::new();
    dot(&g, &g.analyze(), &mut out).unwrap();
    let dot = String::from_utf8(out).unwrap();
    assert!(
        dot.contains(r#""t1" [label="0xb\nsay \"hi\" \\o/", color=red"#),
        "{dot}"
    );
    assert!(
        dot.contains(r#""t0" -> "t1" [label="&p->lock", color=red"#),
        "{dot}"
    );
    assert!(dot.contains(r#""t2" -> "t0" [label="chan"];"#), "{dot}");
    assert!(dot.contains("holder not listed"), "{dot}");
    assert_eq!(dot_quote("a\"b\\c\nd\u{1}"), r#""a\"b\\c\nd ""#);
}

#[test]
fn json_fields() {
    let g = deadlock();
    let mut out = Vec::new();
    json(&g, &g.analyze(), &mut out).unwrap();
    let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(value["cycles"], serde_json::json!([["0xa", "0xb"]]));
    assert_eq!(value["blocked_on_cycles"], serde_json::json!(["0xc"]));
    assert_eq!(value["threads"][0]["lwp"], 1);
    assert_eq!(value["threads"][0]["start"], "pbx_thread");
    assert_eq!(value["edges"][0]["waiter"], "0xa");
    assert_eq!(value["edges"][0]["holder"], "0xb");
    assert_eq!(value["edges"][0]["lock"], "0x2");
    assert!(value["edges"][3]["holder"].is_null());
    assert_eq!(value["locks"][0]["holders"][0]["thread"], "0xa");
}
