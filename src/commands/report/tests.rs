//! Unit tests of `report`, kept apart so the module reads as one concept.

use super::pack::{Sniff, sniff};
use super::*;
use std::time::{Duration, SystemTime};

#[test]
fn run_names() {
    assert!(is_run_name("20261128-045500-wazo"));
    assert!(!is_run_name("20261128-045500-"));
    assert!(!is_run_name("notes"));
    assert!(!is_run_name("2026112-8045500-wazo"));
}

#[test]
fn newest_run_is_found_by_mtime() {
    let base = tempfile::tempdir().unwrap();
    assert!(matches!(
        newest_run_dir(&base.path().join("missing")),
        Err(Error::BadInput(message)) if message.contains("does not exist")
    ));
    assert!(matches!(
        newest_run_dir(base.path()),
        Err(Error::BadInput(_))
    ));
    let old = base.path().join("20991231-235959-wazo");
    let new = base.path().join("20200101-000000-wazo");
    for dir in [&old, &new] {
        fs::create_dir(dir).unwrap();
    }
    fs::write(base.path().join("20300101-000000-file"), b"").unwrap();
    fs::create_dir(base.path().join("other")).unwrap();
    let past = SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::open(&old)
        .unwrap()
        .set_modified(past)
        .unwrap();
    assert_eq!(newest_run_dir(base.path()).unwrap(), new);
}

#[test]
fn sniffing() {
    assert!(matches!(sniff(b""), Sniff::Text));
    assert!(matches!(
        sniff(b"secret=x\n\xff\xfe latin-1 \xe9\n"),
        Sniff::Text
    ));
    assert!(matches!(sniff(b"a\x00b"), Sniff::Binary(_)));
    assert!(matches!(sniff(b"\x1f\x8b\x08\x00"), Sniff::Gzip));
    assert!(matches!(
        sniff(b"\x89PNG\r\n\x1a\n\x00\x00"),
        Sniff::Image(_)
    ));
    assert!(matches!(sniff(b"\x28\xb5\x2f\xfd"), Sniff::Binary(_)));
    assert!(matches!(sniff(b"\x7fELF\x02"), Sniff::Binary(_)));
}

#[test]
fn sizes() {
    assert_eq!(human_size(10), "10 bytes");
    assert_eq!(human_size(1536), "1.5 KiB");
    assert_eq!(human_size(3 << 20), "3.0 MiB");
}
