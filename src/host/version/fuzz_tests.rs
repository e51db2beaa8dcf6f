//! Fuzzing `WazoVersion::parse`, `parse_apt_policy` and `read_version_file`.

use std::io::Write;

use crate::test_support::*;
use proptest::prelude::*;

use super::*;

const SEEDS: &[&[u8]] = &[
    b"wazo-platform:\n  Installed: 26.05.1-1\n  Candidate: 26.05.1-1\n  Version table:\n *** 26.05.1-1 500\n",
    b"wazo-platform:\n  Installed: 1:26.05~wazo1+b2\n",
    b"wazo-platform:\n  Installed: (none)\n",
    b"25.15\n",
    b" 16.01 \n",
];

const WORDS: &[&str] = &[
    "Installed:",
    " ",
    "26",
    "05",
    ".",
    "1",
    "-1",
    "~",
    "+",
    ":",
    "\n",
    "(none)",
    "000000",
    "9999999",
];

proptest! {
    #![proptest_config(config())]

    #[test]
    fn fuzz_version_parse_roundtrips(text in any::<String>()) {
        if let Some(version) = timed("parse", CASE_BUDGET, || WazoVersion::parse(&text)) {
            let again = WazoVersion::parse(&version.to_string());
            prop_assert_eq!(again.as_ref(), Some(&version));
            prop_assert_eq!(again.unwrap().cmp(&version), std::cmp::Ordering::Equal);
        }
        prop_assert!(quote_excerpt(&text).chars().count() <= 60 * 10 + 5);
    }

    #[test]
    fn fuzz_version_parse_valid_shapes(
        parts in proptest::collection::vec(0u64..1_000_000, 2..=3),
        pad in 0usize..3,
    ) {
        let text: Vec<String> = parts.iter().map(|p| format!("{p:0pad$}", pad = pad + 1)).collect();
        let text = text.join(".");
        let version = WazoVersion::parse(&text);
        prop_assert!(version.is_some(), "{}", text);
        let version = version.unwrap();
        prop_assert_eq!(version.as_str(), text.as_str());
        prop_assert_eq!(WazoVersion::parse(&version.to_string()), Some(version));
    }

    #[test]
    fn fuzz_version_apt_policy(text in prop_oneof![mutated_text(SEEDS), words_text(WORDS, 40), any::<String>()]) {
        if let Some(version) = timed("parse_apt_policy", CASE_BUDGET, || parse_apt_policy(&text)) {
            prop_assert_eq!(WazoVersion::parse(version.as_str()), Some(version));
        }
    }

    #[test]
    fn fuzz_version_file(content in prop_oneof![mutated(SEEDS), bytes(256)]) {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(&content).unwrap();
        let _ = timed("read_version_file", CASE_BUDGET, || read_version_file(file.path()));
    }
}

#[test]
fn fuzz_version_large_inputs_are_bounded() {
    // A wrong path pointing at something huge: only the head is read.
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(&b"9".repeat(16 << 20)).unwrap();
    assert!(
        timed("huge version file", BIG_BUDGET, || read_version_file(
            file.path()
        ))
        .is_err()
    );
    assert_linear(
        "apt policy lines",
        64 << 10,
        |n| "Installed: x\n".repeat(n / 13),
        |text| {
            parse_apt_policy(text);
        },
    );
    assert_linear(
        "dots",
        64 << 10,
        |n| ".".repeat(n),
        |text| {
            WazoVersion::parse(text);
        },
    );
}
