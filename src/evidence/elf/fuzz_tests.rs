//! Fuzzing `elf::classify` and `find_core_header`.

use crate::test_support::*;
use proptest::prelude::*;

use super::*;

const SEEDS: &[&[u8]] = &[
    b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x04\0",
    b"\x7fELF\x01\x02\x01\0\0\0\0\0\0\0\0\0\0\x03",
    b"log line\n\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x04\0rest",
];

proptest! {
    #![proptest_config(config())]

    #[test]
    fn fuzz_elf_classify(data in prop_oneof![bytes(64), mutated(SEEDS)]) {
        let kind = classify(&data);
        if kind.is_some() {
            prop_assert!(data.starts_with(MAGIC) && data.len() >= HEADER_LEN);
        }
        if let Some(at) = timed("find_core_header", CASE_BUDGET, || find_core_header(&data)) {
            prop_assert!(is_core(&data[at..]));
        }
        prop_assert_eq!(is_core(&data), kind == Some(ElfKind::Core));
    }
}

#[test]
fn fuzz_elf_large_inputs_are_linear() {
    assert_linear(
        "magic runs",
        256 << 10,
        |n| MAGIC.repeat(n / 4),
        |d| {
            find_core_header(d);
        },
    );
}
