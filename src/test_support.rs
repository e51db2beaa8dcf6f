//! Shared pieces of the parser fuzz tests (proptest, stable Rust).
//!
//! Each parser module keeps its fuzz tests beside it, in
//! `<module>/fuzz_tests.rs` (`#[cfg(test)] mod fuzz_tests;`), and they all
//! share this file, which is also open to ordinary unit tests. Inputs are arbitrary bytes, strings built from a parser's own
//! vocabulary, and mutations of the real fixtures. Every call runs under a
//! time budget, so a hang or a quadratic blow-up fails like a panic.
//!
//! Runs with `cargo test fuzz_`; more cases with `PROPTEST_CASES=N`.

use std::time::{Duration, Instant};

use proptest::prelude::*;

/// What one parser call may take on a fuzz input (a few KiB) in a debug
/// build on a loaded machine: only a hang or a blow-up takes this long.
/// These bounds catch hangs, they measure nothing: speed is measured by
/// `bench/run`, as ratios, never asserted in a test.
pub const CASE_BUDGET: Duration = Duration::from_secs(20);

/// What one call may take on a large adversarial input (MiBs).
pub const BIG_BUDGET: Duration = Duration::from_secs(60);

/// Runs `f`, failing when it takes longer than `budget`.
pub fn timed<T>(what: &str, budget: Duration, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    let took = start.elapsed();
    assert!(took <= budget, "{what}: took {took:?}, budget {budget:?}");
    out
}

/// Runs `f` on the input made by `make(small)` and `make(8 * small)`, and
/// fails when the large one costs far more than 8 times the small one
/// (quadratic would be 64 times), or more than [`BIG_BUDGET`]. Small
/// inputs are timed several times to smooth out a noisy shared machine.
pub fn assert_linear<I>(what: &str, small: usize, make: impl Fn(usize) -> I, f: impl Fn(&I)) {
    let input = make(small);
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let start = Instant::now();
        f(&input);
        best = best.min(start.elapsed());
    }
    let input = make(8 * small);
    let mut large = Duration::MAX;
    for _ in 0..2 {
        let start = Instant::now();
        f(&input);
        large = large.min(start.elapsed());
    }
    assert!(large <= BIG_BUDGET, "{what}: large input took {large:?}");
    // 8x the input may cost 8x; quadratic costs 64x. 40x leaves room for a
    // busy CI machine (each side is the best of several runs) and still
    // tells the two apart.
    let limit = best * 40 + Duration::from_millis(200);
    assert!(
        large <= limit,
        "{what}: {small} units took {best:?}, {} took {large:?}: not linear",
        8 * small
    );
}

/// Proptest settings: no files written on failure (each finding becomes a
/// named regression test instead); the case count comes from
/// `PROPTEST_CASES` (256 by default).
pub fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: None,
        max_shrink_time: 30_000,
        ..ProptestConfig::default()
    }
}

/// Arbitrary bytes, up to `max` of them.
pub fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..max)
}

/// Concatenations of `words` (a parser's vocabulary), separators and a
/// few random bytes: reaches deep parser states that random bytes do not.
pub fn words(words: &'static [&'static str], max: usize) -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        6 => proptest::sample::select(words).prop_map(|w| w.as_bytes().to_vec()),
        2 => proptest::sample::select(&[" ", "  ", "\t", "\n", "\r\n", "[", "]", "(", ")", ":", "=", ",", ".", "0", "1", "9", "ff", "0x", "-", "\"", "'", "\0"][..])
            .prop_map(|w| w.as_bytes().to_vec()),
        1 => proptest::collection::vec(any::<u8>(), 0..4),
    ];
    proptest::collection::vec(piece, 0..max).prop_map(|pieces| pieces.concat())
}

/// Like [`words`], as a `String` (lossy).
pub fn words_text(list: &'static [&'static str], max: usize) -> impl Strategy<Value = String> {
    words(list, max).prop_map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// One edit of a seed: (kind, position, length, bytes).
type Edit = (u8, usize, usize, Vec<u8>);

/// A real input with a few random edits: bytes inserted, deleted,
/// overwritten, a range duplicated or the tail cut.
pub fn mutated(seeds: &'static [&'static [u8]]) -> impl Strategy<Value = Vec<u8>> {
    let edit = (
        0u8..6,
        any::<usize>(),
        0usize..64,
        proptest::collection::vec(any::<u8>(), 0..12),
    );
    (
        proptest::sample::select(seeds),
        proptest::collection::vec(edit, 0..8),
    )
        .prop_map(|(seed, edits)| apply(seed, &edits))
}

/// Like [`mutated`], as a `String` (lossy).
pub fn mutated_text(seeds: &'static [&'static [u8]]) -> impl Strategy<Value = String> {
    mutated(seeds).prop_map(|b| String::from_utf8_lossy(&b).into_owned())
}

fn apply(seed: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut out = seed.to_vec();
    for (kind, position, length, bytes) in edits {
        let at = if out.is_empty() {
            0
        } else {
            position % (out.len() + 1)
        };
        let end = (at + length).min(out.len());
        match kind {
            0 => {
                out.splice(at..at, bytes.iter().copied());
            }
            1 => {
                out.drain(at..end);
            }
            2 => {
                for (slot, byte) in out[at..].iter_mut().zip(bytes) {
                    *slot = *byte;
                }
            }
            3 => {
                let copy = out[at..end].to_vec();
                out.splice(at..at, copy);
            }
            4 => out.truncate(at),
            _ => {
                // Swap two lines' worth of bytes: moves lines around.
                let copy = out[at..end].to_vec();
                out.drain(at..end);
                let to = if out.is_empty() {
                    0
                } else {
                    length * 7919 % (out.len() + 1)
                };
                out.splice(to..to, copy);
            }
        }
    }
    out
}
