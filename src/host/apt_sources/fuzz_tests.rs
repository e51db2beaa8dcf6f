//! Fuzzing `apt_sources::parse` and `is_archive`.

use crate::test_support::*;
use proptest::prelude::*;

use super::*;

const SEEDS: &[&[u8]] = &[
    b"\n# pelican-bookworm\ndeb http://mirror.wazo.community/debian/ pelican-bookworm main\n# deb-src http://mirror.wazo.community/debian/ pelican-bookworm main\n",
    b"deb [arch=amd64 signed-by=/k.gpg] http://h/debian phoenix main\n",
    b"\n# wazo-25.15\ndeb http://mirror.wazo.community/archive/ wazo-25.15 main\n",
];

const WORDS: &[&str] = &[
    "deb",
    "deb-src",
    " ",
    "[arch=amd64",
    "signed-by=/k]",
    "[",
    "]",
    "http://h/archive/",
    "wazo-25.15",
    "xivo-",
    "main",
    "\n",
    "#",
];

proptest! {
    #![proptest_config(config())]

    #[test]
    fn fuzz_apt_sources(text in prop_oneof![mutated_text(SEEDS), words_text(WORDS, 40), any::<String>()]) {
        if let Some((url, distribution)) = timed("apt_sources::parse", CASE_BUDGET, || parse(&text)) {
            prop_assert!(!url.is_empty() && !distribution.is_empty());
            prop_assert!(!url.contains(char::is_whitespace) && !distribution.contains(char::is_whitespace));
            let _ = is_archive(&url, &distribution);
        }
    }
}

#[test]
fn fuzz_apt_sources_large_inputs_are_linear() {
    assert_linear(
        "open options",
        64 << 10,
        |n| "deb [".to_string() + &" a".repeat(n / 2),
        |t| {
            parse(t);
        },
    );
    assert_linear(
        "deb lines",
        64 << 10,
        |n| "deb [x\n".repeat(n / 7),
        |t| {
            parse(t);
        },
    );
}
