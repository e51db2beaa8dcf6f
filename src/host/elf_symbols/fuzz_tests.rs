use proptest::prelude::*;

use super::tests::tiny_elf_with;
use super::*;
use crate::test_support::{CASE_BUDGET, timed};

fn read_all(bytes: &[u8]) {
    timed("ElfTables::read", CASE_BUDGET, || {
        if let Some(tables) = ElfTables::read(&bytes) {
            for at in [0, 0x3000, 0x4040, u64::MAX] {
                let _ = tables.object_at(at);
                let _ = tables.section_at(at);
            }
        }
        let _ = ElfTables::section_bytes(&bytes, ".rodata", 1 << 20);
    });
}

proptest! {
    #[test]
    fn fuzz_arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        read_all(&bytes);
    }

    #[test]
    fn fuzz_a_damaged_elf_never_panics(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..16),
        cut in any::<usize>(),
    ) {
        let mut bytes = tiny_elf_with(Some(("agents_lock", 0x4040, 40)), b"release version 2.36.");
        for (at, value) in edits {
            let at = at % bytes.len();
            bytes[at] = value;
        }
        let keep = cut % (bytes.len() + 1);
        read_all(&bytes[..keep]);
        read_all(&bytes);
    }

    #[test]
    fn fuzz_huge_header_counts_stay_bounded(phnum in any::<u16>(), shnum in any::<u16>(), size in any::<u64>()) {
        let mut bytes = tiny_elf_with(Some(("agents_lock", 0x4040, 40)), b"");
        bytes[56..58].copy_from_slice(&phnum.to_le_bytes());
        bytes[60..62].copy_from_slice(&shnum.to_le_bytes());
        // The last section header's size (.shstrtab's).
        let len = bytes.len();
        bytes[len - 32..len - 24].copy_from_slice(&size.to_le_bytes());
        read_all(&bytes);
    }
}
