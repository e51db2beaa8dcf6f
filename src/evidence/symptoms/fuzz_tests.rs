//! Fuzzing `symptoms::judge_channels` and `lacks_debug_threads`.

use std::time::Duration;

use crate::test_support::*;
use proptest::prelude::*;

use super::*;

const WORDS: &[&str] = &[
    "0",
    "12",
    "-1",
    "99999999999999999999",
    " active channels",
    " active channel",
    "active calls",
    "\n",
    " ",
    "No such command",
    "core show locks",
];

proptest! {
    #![proptest_config(config())]

    #[test]
    fn fuzz_symptoms_channels(text in prop_oneof![words_text(WORDS, 30), any::<String>()]) {
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        let symptom = timed("judge_channels", CASE_BUDGET, || {
            judge_channels(&CliAnswer::Output(lines.clone()), Duration::from_secs(10))
        });
        prop_assert!(["ok", "idle", "freeze", "unknown"].contains(&symptom.verdict.as_str()));
        let _ = lacks_debug_threads(&lines);
    }
}
