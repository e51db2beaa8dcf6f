//! Fuzzing `cores::parse_name` (file names of a crowded spool directory).

use crate::test_support::*;
use proptest::prelude::*;

use super::*;

proptest! {
    #![proptest_config(config())]

    #[test]
    fn fuzz_cores_parse_name(
        name in prop_oneof![
            any::<String>(),
            (any::<u32>(), any::<i64>()).prop_map(|(p, t)| format!("core.{p}.{t}")),
            (any::<i64>(), any::<i64>()).prop_map(|(p, t)| format!("core.{p}.{t}.gz")),
        ]
    ) {
        let _ = timed("parse_name", CASE_BUDGET, || parse_name(&name));
    }
}

#[test]
fn fuzz_cores_extreme_times() {
    for seconds in [
        i64::MIN,
        i64::MIN + 1,
        -8_334_632_851_200,
        8_210_298_412_799,
        i64::MAX,
        0,
        -1,
    ] {
        let _ = parse_name(&format!("core.1.{seconds}"));
    }
}
