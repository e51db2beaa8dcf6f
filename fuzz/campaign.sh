#!/usr/bin/env bash
# A fuzzing campaign: every parser's proptest fuzzers, one module after the
# other, single-threaded, with many more cases than `cargo test` runs.
#
#   fuzz/campaign.sh            # about 20 minutes on one core
#   SCALE=10 fuzz/campaign.sh   # a tenth of that
#   ONLY="redact dump" fuzz/campaign.sh   # some modules only
#
# Each line of the output gives the module, the cases per fuzzer, the wall
# time and cargo's verdict. A failure prints proptest's minimal input: turn
# it into a `regression_*` test next to the fuzzer, then fix the parser.
# The fuzzers live beside each parser, in src/<layer>/<module>/fuzz_tests.rs (see src/test_support.rs).
set -uo pipefail
cd "$(dirname "$0")/.."
scale=${SCALE:-1}
status=0
cargo test -q --lib --no-run
# module filter : cases per fuzzer (up to about 80 s per module on one core;
# syslog's scanner sets up a 1 MiB buffer per call, hence its fewer cases)
for target in \
  segfault_line::fuzz_tests:350000 \
  binary::fuzz_tests:200000 \
  elf_symbols::fuzz_tests:20000 \
  version::fuzz_tests:250000 \
  runbook::fuzz_tests:110000 \
  apt_sources::fuzz_tests:500000 \
  cores::fuzz_tests:500000 \
  setup_dbg::fuzz_tests:500000 \
  elf::fuzz_tests:500000 \
  symptoms::fuzz_tests:500000 \
  syslog::fuzz_tests:4000 \
  stamp::fuzz_tests:400000 \
  astlog::fuzz_tests:500000 \
  taskprocessors::fuzz_tests:50000 \
  graph::fuzz_tests:60000 \
  dump::fuzz_tests:85000 \
  threads::fuzz_tests:250000 \
  redact::fuzz_tests:120000; do
  filter=${target%%:*}
  if [ -n "${ONLY:-}" ] && ! grep -qw "${filter%%::*}" <<<"$ONLY"; then
    continue
  fi
  cases=$(( ${target##*:} / scale ))
  start=$(date +%s)
  out=$(PROPTEST_CASES=$cases cargo test -q --lib "$filter::fuzz_" -- --test-threads=1 \
        --skip _are_linear --skip _adversarial --skip _are_bounded --skip long_lines 2>&1)
  code=$?
  [ $code -eq 0 ] || status=1
  # A filter that matches nothing is a campaign that tested nothing.
  if grep -qE '^test result: ok\. 0 passed' <<<"$out"; then
    echo "$filter: no fuzzer matched (renamed module?)" >&2
    status=1
  fi
  printf '%-24s %7d cases %5ds  %s\n' "$filter" "$cases" $(( $(date +%s) - start )) \
    "$(grep -E '^test result' <<<"$out")"
  [ $code -eq 0 ] || grep -E -A30 'minimal failing input|panicked' <<<"$out" | head -60
done
exit $status
