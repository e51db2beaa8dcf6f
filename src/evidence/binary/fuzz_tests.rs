//! Fuzzing `TextGuard`: wherever a file is cut into pieces, a core inside
//! is found at its offset, and text is never taken for binary.

use crate::test_support::*;
use proptest::prelude::*;

use super::*;

fn core_header() -> Vec<u8> {
    let mut bytes = vec![0u8; 64];
    bytes[..4].copy_from_slice(elf::MAGIC);
    bytes[4] = 2;
    bytes[5] = 1;
    bytes[6] = 1;
    bytes[16] = 4;
    bytes
}

/// Text: printable bytes, blanks, escapes, newlines, high bytes.
fn text(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![
            8 => 0x20u8..0x7f,
            1 => proptest::sample::select(&b"\t\n\r\x1b\x0c"[..]),
            1 => 0x80u8..=0xff,
        ],
        0..max,
    )
}

/// The first verdict that is not `Text` when `data` is fed in pieces cut
/// at `cuts` (offsets, taken modulo the length).
fn first_verdict(data: &[u8], cuts: &[usize]) -> Verdict {
    let mut points: Vec<usize> = cuts.iter().map(|cut| cut % (data.len() + 1)).collect();
    points.push(0);
    points.push(data.len());
    points.sort_unstable();
    points.dedup();
    let mut guard = TextGuard::new();
    for pair in points.windows(2) {
        let verdict = timed("TextGuard::check", CASE_BUDGET, || {
            guard.check(&data[pair[0]..pair[1]], pair[0] as u64)
        });
        if verdict != Verdict::Text {
            return verdict;
        }
    }
    Verdict::Text
}

proptest! {
    #![proptest_config(config())]

    /// A core after any text, in pieces cut anywhere: found, at its offset.
    #[test]
    fn fuzz_binary_a_core_is_found_wherever_the_pieces_are_cut(
        before in text(300),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let mut data = before.clone();
        data.extend_from_slice(&core_header());
        prop_assert_eq!(first_verdict(&data, &cuts), Verdict::Core(before.len() as u64));
    }

    /// Text alone, in any pieces, stays text.
    #[test]
    fn fuzz_binary_text_is_text_in_any_pieces(
        data in text(600),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        prop_assert_eq!(first_verdict(&data, &cuts), Verdict::Text);
    }

    /// Arbitrary bytes never panic, and a NUL is never let through.
    #[test]
    fn fuzz_binary_arbitrary_bytes(
        data in bytes(400),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let verdict = first_verdict(&data, &cuts);
        if data.contains(&0) {
            prop_assert_ne!(verdict, Verdict::Text);
        }
    }
}
