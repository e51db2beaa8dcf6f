//! Fuzzing `syslog::scan_lines` (the streaming `grep -a segfault`).

use std::io::{self, Read};

use crate::test_support::*;
use proptest::prelude::*;

use super::*;

const SEEDS: &[&[u8]] = &[
    include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/syslog/syslog"
    )),
    include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/syslog/kern.log"
    )),
    include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/syslog/syslog.1"
    )),
    include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/syslog/none.log"
    )),
];

const WORDS: &[&str] = &[
    "segfault", "segfaul", "t", "\n", "\r\n", "\0", "\0\0\0\0", "kernel: ", "x",
];

/// What `grep -a segfault` prints, cleaned as `scan_lines` documents it.
fn model(input: &[u8]) -> Vec<Vec<u8>> {
    let body = input.strip_suffix(b"\n").unwrap_or(input);
    if input.is_empty() {
        return Vec::new();
    }
    body.split(|&b| b == b'\n')
        .filter(|line| memchr::memmem::find(line, NEEDLE).is_some())
        .map(|line| clean(line).to_vec())
        .collect()
}

fn scan(reader: impl Read) -> (Vec<Vec<u8>>, io::Result<()>) {
    let mut lines = Vec::new();
    let outcome = scan_lines(reader, None, &mut |line| lines.push(line.to_vec()));
    (lines, outcome)
}

/// Hands out the input in pieces of the given sizes, as pipes and gzip do.
struct Pieces<'a> {
    data: &'a [u8],
    sizes: Vec<usize>,
    turn: usize,
    /// Fail once this many bytes were handed out.
    fail_at: Option<usize>,
    given: usize,
}

impl Read for Pieces<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.fail_at.is_some_and(|at| self.given >= at) {
            return Err(io::Error::other("injected"));
        }
        let size = self.sizes[self.turn % self.sizes.len()].max(1);
        self.turn += 1;
        let mut n = size.min(buf.len()).min(self.data.len());
        if let Some(at) = self.fail_at {
            n = n.min(at - self.given);
        }
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        self.given += n;
        Ok(n)
    }
}

fn input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![mutated(SEEDS), words(WORDS, 200), bytes(2048)]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn fuzz_syslog_scan_matches_grep(data in input()) {
        let (lines, outcome) = timed("scan_lines", CASE_BUDGET, || scan(&data[..]));
        prop_assert!(outcome.is_ok());
        prop_assert_eq!(lines, model(&data));
    }

    #[test]
    fn fuzz_syslog_scan_ignores_read_sizes(
        data in input(),
        sizes in proptest::collection::vec(1usize..300, 1..8),
    ) {
        let reader = Pieces { data: &data, sizes, turn: 0, fail_at: None, given: 0 };
        let (lines, outcome) = timed("scan_lines", CASE_BUDGET, || scan(reader));
        prop_assert!(outcome.is_ok());
        prop_assert_eq!(lines, model(&data));
    }

    /// After a read error only complete lines are reported: a cut
    /// "ip 7f2a1c" would be a wrong address.
    #[test]
    fn fuzz_syslog_scan_read_error_keeps_complete_lines(
        data in input(),
        sizes in proptest::collection::vec(1usize..300, 1..8),
        fail in any::<usize>(),
    ) {
        let fail_at = fail % (data.len() + 1);
        let reader = Pieces { data: &data, sizes, turn: 0, fail_at: Some(fail_at), given: 0 };
        let (lines, outcome) = timed("scan_lines", CASE_BUDGET, || scan(reader));
        prop_assert!(outcome.is_err());
        let read = &data[..fail_at];
        let complete = memchr::memrchr(b'\n', read).map_or(0, |p| p + 1);
        prop_assert_eq!(lines, model(&read[..complete]));
    }
}

proptest! {
    #![proptest_config(config())]

    /// File names of a copied /var/log: ranked or left out, never a panic.
    #[test]
    fn fuzz_syslog_rotation_rank(
        name in prop_oneof![
            any::<String>(),
            (any::<u64>(), any::<bool>()).prop_map(|(n, gz)| format!("syslog.{n}{}", if gz { ".gz" } else { "" })),
            "syslog-[0-9]{8}(\\.gz)?",
            "syslog[.-][0-9]{0,24}",
        ]
    ) {
        if let Some(rank) = rotation_rank(&name, "syslog") {
            prop_assert!(name.starts_with("syslog"));
            prop_assert!(rank == 0 || name.len() > "syslog".len());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..config() })]

    /// Inputs of several MiB, to cross the 1 MiB chunks with lines of every
    /// length, some over MAX_LINE.
    #[test]
    fn fuzz_syslog_scan_big_inputs(
        shape in proptest::collection::vec((0usize..200_000, any::<bool>(), any::<bool>()), 1..40),
    ) {
        let mut data = Vec::new();
        for (length, hit, at_end) in &shape {
            let mut line = vec![b'x'; *length];
            if *hit {
                let at = if *at_end { length.saturating_sub(8) } else { 0 };
                line.splice(at..(at + 8).min(*length), NEEDLE.iter().copied());
            }
            data.extend_from_slice(&line);
            data.push(b'\n');
        }
        let (lines, outcome) = timed("scan_lines", BIG_BUDGET, || scan(&data[..]));
        prop_assert!(outcome.is_ok());
        let expected = model(&data);
        if shape.iter().all(|(length, _, _)| *length + 9 < MAX_LINE) {
            prop_assert_eq!(lines, expected);
        } else {
            // A line crossing a chunk boundary past MAX_LINE keeps its end
            // only: a suffix of a real line.
            prop_assert!(lines.len() <= expected.len());
            for line in &lines {
                prop_assert!(line.len() <= CHUNK + MAX_LINE);
                prop_assert!(expected.iter().any(|e| e.ends_with(line)));
            }
        }
    }
}

#[test]
fn fuzz_syslog_large_inputs_are_linear() {
    let scan_all = |data: &Vec<u8>| {
        scan(&data[..]).1.unwrap();
    };
    assert_linear(
        "no newline",
        1 << 20,
        |n| b"segfault".repeat(n / 8),
        scan_all,
    );
    assert_linear("NUL run", 1 << 20, |n| vec![0u8; n], scan_all);
    assert_linear("newlines", 1 << 20, |n| vec![b'\n'; n], scan_all);
    assert_linear(
        "short hits",
        1 << 20,
        |n| b"segfault\n".repeat(n / 9),
        scan_all,
    );
}
