#!/usr/bin/env bash
# Is `wazo-astdebug segfaults` at least as fast as `grep -F segfault` on a
# plain syslog and `zgrep` on a gzipped one, in bounded memory?
#
# Why a script and not a test: timings depend on the machine and its load,
# so they are measured side by side in one run, never asserted by `cargo test`.
#
# Usage: bench/segfaults.sh [SIZE_MB]   (default 1024)
#   WAZO_ASTDEBUG=path/to/binary  use this binary instead of building release
#   KEEP=1                        keep the generated files (printed at the end)
set -euo pipefail

size_mb=${1:-1024}
here=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$here/target}
bin=${WAZO_ASTDEBUG:-$target/release/wazo-astdebug}
if [[ -z ${WAZO_ASTDEBUG:-} ]]; then
    if ! built=$(cd "$here" && cargo build --release 2>&1); then
        echo "$built" >&2
        exit 1
    fi
fi
[[ -x /usr/bin/time ]] || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 2; }

work=$(mktemp -d)
if [[ -z ${KEEP:-} ]]; then trap 'rm -rf "$work"' EXIT; fi
log=$work/syslog

echo "generating ${size_mb} MB of syslog in $work ..."
# Unique, realistic lines (so gzip has real work), with a few kernel segfault
# lines of asterisk and other processes spread through the file.
awk -v bytes=$((size_mb * 1024 * 1024)) 'BEGIN {
    srand(42); n = 0; total = 0
    every = int(bytes / 110 / 7) + 1; other = int(every * 1.5) + 1
    split("asterisk[1234]: VERBOSE[5678] pbx.c: Executing [s@wazo-user:1] Dial(\"PJSIP/abc-0000\", \"PJSIP/def\")|systemd[1]: Started session-42.scope - Session of user root.|CRON[999]: (root) CMD (command -v debian-sa1 > /dev/null && debian-sa1 1 1)|wazo-calld[800]: INFO: request GET /1.0/calls 200|kernel: [  42.000001] IPv6: ADDRCONF(NETDEV_CHANGE): eth0: link becomes ready|nginx[700]: 10.0.0.1 - - \"GET /api/auth/0.1/token HTTP/1.1\" 200 512", msgs, "|")
    while (total < bytes) {
        n++
        if (n % every == 0) {
            line = sprintf("Nov 28 04:%02d:%02d pbx1 kernel: [%d.%06d] asterisk[%d]: segfault at 0 ip 00007f2a1c0d4b3e sp 00007f29d57f9a40 error 4 in libc.so.6[7f2a1c060000+155000]", (n / 60000) % 60, n % 60, n, n % 1000000, 10000 + n % 4000000)
        } else if (n % other == 0) {
            line = sprintf("Nov 28 04:%02d:%02d pbx1 kernel: [%d.5] sv[%d]: segfault at 10 ip 1 sp 2 error 4", (n / 60000) % 60, n % 60, n, n % 4000000)
        } else if (n % 997 == 0) {
            line = sprintf("Nov 28 04:%02d:%02d pbx1 asterisk[1234]: WARNING[5679] app.c: the word segfault, not a crash id=%d", (n / 60000) % 60, n % 60, n)
        } else {
            line = sprintf("Nov 28 04:%02d:%02d pbx1 %s id=%d r=%d", (n / 60000) % 60, n % 60, msgs[1 + n % 6], n, int(rand() * 1e9))
        }
        print line
        total += length(line) + 1
    }
}' > "$log"
touch -d "2026-11-28 12:00" "$log"
echo "compressing with gzip -6 ..."
gzip -6 -c "$log" > "$log.2.gz"
touch -d "2026-11-28 12:00" "$log.2.gz"
ls -l "$log" "$log.2.gz"

expected=$(grep -aF segfault "$log" | grep -c 'kernel: .* asterisk\[[0-9]*\]: segfault at' || true)
echo "asterisk kernel segfault lines in the file (grep): $expected"

# Best of 3 runs of "$@", output to a file (grep stops at the first match
# when its output is /dev/null). Sets seconds and rss_kb.
measure() {
    local best="" rss="" out=$work/out err=$work/time
    for _ in 1 2 3; do
        /usr/bin/time -v -o "$err" "$@" > "$out" 2>/dev/null || true
        local wall kb
        wall=$(awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s }' "$err")
        kb=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$err")
        if [[ -z $best ]] || awk -v a="$wall" -v b="$best" 'BEGIN { exit !(a < b) }'; then
            best=$wall rss=$kb
        fi
    done
    seconds=$best rss_kb=$rss
}

report() { printf '  %-40s %8.2f s  %8d KB peak RSS\n' "$1" "$2" "$3"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }

# Warm the page cache so both tools read from memory.
cat "$log" "$log.2.gz" > /dev/null

echo
echo "plain file (${size_mb} MB):"
measure grep -F segfault "$log"
grep_s=$seconds grep_rss=$rss_kb
report "grep -F segfault" "$grep_s" "$grep_rss"
measure "$bin" segfaults --log "$log"
ours_s=$seconds ours_rss=$rss_kb
report "wazo-astdebug segfaults --log" "$ours_s" "$ours_rss"
found=$("$bin" --json segfaults --log "$log" | grep -c '"lwp"' || true)
echo "  ratio wazo-astdebug/grep: $(ratio "$ours_s" "$grep_s")  (below 1 is faster); found $found of $expected"

echo
echo "gzip file ($(du -m "$log.2.gz" | cut -f1) MB compressed):"
measure zgrep -F segfault "$log.2.gz"
zgrep_s=$seconds zgrep_rss=$rss_kb
report "zgrep -F segfault" "$zgrep_s" "$zgrep_rss"
measure "$bin" segfaults --log "$log.2.gz"
ourz_s=$seconds ourz_rss=$rss_kb
report "wazo-astdebug segfaults --log (gz)" "$ourz_s" "$ourz_rss"
foundz=$("$bin" --json segfaults --log "$log.2.gz" | grep -c '"lwp"' || true)
echo "  ratio wazo-astdebug/zgrep: $(ratio "$ourz_s" "$zgrep_s")  (below 1 is faster); found $foundz of $expected"
echo "  (zgrep's RSS is its grep's; gzip -d runs beside it)"

status=0
[[ $found == "$expected" && $foundz == "$expected" ]] || { echo "MISMATCH: not the lines grep finds" >&2; status=1; }
[[ -n ${KEEP:-} ]] && echo "files kept in $work"
exit $status
