//! Fuzzing `runbook::parse` (a user's `eras.toml`).

use crate::test_support::*;
use proptest::prelude::*;

use super::*;

const SEEDS: &[&[u8]] = &[include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/runbooks/eras.toml"
))];

const WORDS: &[&str] = &[
    "[[era]]",
    "[[hole]]",
    "floor = ",
    "minimum = ",
    "name = ",
    "\"16.01\"",
    "\"25.15\"",
    "[",
    "]",
    "{version}",
    "{",
    "}",
    "archive = ",
    "production = ",
    "[\"wazo-dist\", \"-a\", \"wazo-{version}\"]",
    "sources_list = ",
    "\"/etc/apt/x.list\"",
    "é",
    "\u{1F600}",
    "\"\"\"",
    "'''",
    "#",
    "=",
    "\n",
];

fn check(text: &str) {
    let _ = timed("runbook::parse", CASE_BUDGET, || {
        parse(text, "eras.toml", RunbookSource::BuiltIn)
    });
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn fuzz_runbook_mutated(text in mutated_text(SEEDS)) {
        check(&text);
    }

    #[test]
    fn fuzz_runbook_words(text in words_text(WORDS, 60)) {
        check(&text);
    }

    #[test]
    fn fuzz_runbook_any(text in any::<String>()) {
        check(&text);
    }
}

#[test]
fn fuzz_runbook_adversarial_nesting_and_size() {
    for text in [
        "a = ".to_string() + &"[".repeat(1 << 20),
        "a = ".to_string() + &"{ b = ".repeat(100_000),
        "[".repeat(1 << 20),
        "a.".repeat(100_000) + "b = 1",
        format!(
            "minimum = \"16.01\"\n[[era]]\nname = \"{}\"\n",
            "é".repeat(1 << 19)
        ),
    ] {
        assert!(
            timed("nested toml", BIG_BUDGET, || parse(
                &text,
                "eras.toml",
                RunbookSource::BuiltIn
            ))
            .is_err()
        );
    }
}
