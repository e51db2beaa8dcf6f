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

#[test]
fn contents_compressed_apart_read_back_as_one_archive() {
    use std::io::Read as _;
    let dir = tempfile::tempdir().unwrap();
    let (temp, scratch) = tar_gz::create(dir.path(), "run").unwrap();
    let mut tar = tar_gz::builder(&temp).unwrap();
    tar_gz::append_dir(&mut tar, Path::new("run"), dir.path()).unwrap();
    // A name past tar's 100 bytes goes in a long-name entry of its own.
    let long = format!("run/{}.log", "x".repeat(150));
    let contents: Vec<Vec<u8>> = vec![
        b"secret=[REDACTED]\n".repeat(40_000),
        Vec::new(),
        // A multiple of the tar block: no padding after it.
        vec![b'z'; 1024],
    ];
    for (index, content) in contents.iter().enumerate() {
        let mut apart = Apart::new(&scratch).unwrap();
        apart.write_all(content).unwrap();
        let compressed = apart.finish().unwrap();
        let name = if index == 0 {
            long.clone()
        } else {
            format!("run/{index}")
        };
        tar_gz::append_compressed(
            &mut tar,
            Path::new(&name),
            content.len() as u64,
            dir.path(),
            compressed,
            &scratch,
        )
        .unwrap();
    }
    tar_gz::append_file(&mut tar, Path::new("run/list"), 4, dir.path(), &b"list"[..]).unwrap();
    tar_gz::finish(tar).unwrap();

    let bundle = fs::File::open(temp.path()).unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bundle));
    let mut read = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let mut content = Vec::new();
        entry.read_to_end(&mut content).unwrap();
        read.push((entry.path().unwrap().display().to_string(), content));
    }
    let names: Vec<&str> = read.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["run", long.as_str(), "run/1", "run/2", "run/list"]);
    for (index, content) in contents.iter().enumerate() {
        assert!(&read[index + 1].1 == content, "entry {index}");
    }
    assert_eq!(read[4].1, b"list");
}
