//! Fuzzing `setup_dbg::parse_dpkg_query`.

use crate::test_support::*;
use proptest::prelude::*;

use super::*;

const WORDS: &[&str] = &["asterisk", "\t", "ii ", "un ", "8:20.5.0-1", "\n", " "];

proptest! {
    #![proptest_config(config())]

    #[test]
    fn fuzz_setup_dbg_dpkg_query(text in prop_oneof![words_text(WORDS, 40), any::<String>()]) {
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        let found = timed("parse_dpkg_query", CASE_BUDGET, || parse_dpkg_query(&lines));
        for (package, version) in found {
            prop_assert!(!package.is_empty() && !version.is_empty());
        }
    }
}
