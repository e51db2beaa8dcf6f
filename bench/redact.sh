#!/usr/bin/env bash
# How fast does `wazo-astdebug report` redact a big Asterisk log, against
# `gzip -c` on the same file (what `tar czf` / `wazo-debug collect` spends
# on it anyway), and in how much memory?
#
# Why a script and not a test: timings depend on the machine and its load,
# so they are measured side by side in one run, never asserted by `cargo test`.
#
# Usage: bench/redact.sh [SIZE_MB]   (default 512)
#   WAZO_ASTDEBUG=path/to/binary  use this binary instead of building release
#   KEEP=1                        keep the generated files (printed at the end)
set -euo pipefail

size_mb=${1:-512}
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
run=$work/20261201-080000-pbx1
mkdir -p "$run"
log=$run/full

echo "generating ${size_mb} MB of Asterisk full log in $work ..."
# What the `full` log holds with the pjsip logger on: SIP messages with their
# digests, dialplan lines, Wazo HTTP calls with tokens; every line unique (so
# gzip has real work), about one in six holding a secret.
awk -v bytes=$((size_mb * 1024 * 1024)) 'BEGIN {
    srand(42); n = 0; total = 0
    while (total < bytes) {
        n++; t = sprintf("[Dec  1 08:%02d:%02d] ", (n / 60000) % 60, n % 60); k = n % 12
        if (k == 0) line = t "VERBOSE[5353] res_pjsip_logger.c: <--- Received SIP request (640 bytes) from UDP:10.0.0." n % 250 ":5060 --->"
        else if (k == 1) line = "REGISTER sip:wazo.example.com SIP/2.0"
        else if (k == 2) line = "Via: SIP/2.0/UDP 10.0.0." n % 250 ":5060;rport;branch=z9hG4bKPj" n
        else if (k == 3) line = "From: <sip:" 1000 + n % 900 "@wazo.example.com>;tag=" int(rand() * 1e9)
        else if (k == 4) line = sprintf("Authorization: Digest username=\"%d\", realm=\"wazo\", nonce=\"%d/%x\", uri=\"sip:wazo.example.com\", response=\"%08x%08x\", algorithm=MD5, cnonce=\"%x\", qop=auth, nc=00000001", 1000 + n % 900, n, int(rand() * 1e9), int(rand() * 1e9), n, int(rand() * 1e9))
        else if (k == 5) line = "Call-ID: " int(rand() * 1e9) "-" n
        else if (k == 6) line = t "VERBOSE[5360][C-" sprintf("%08x", n) "] pbx.c: Executing [s@user-" n % 50 ":1] Dial(\"PJSIP/" 1000 + n % 900 "-" sprintf("%08x", n) "\", \"PJSIP/1002,30\") in new stack"
        else if (k == 7) line = t "NOTICE[5364] res_pjsip/pjsip_distributor.c: Request REGISTER from <sip:" 1000 + n % 900 "@10.0.0.5> failed for 10.0.0.5:5060 (callid: " n ") - No matching endpoint found"
        else if (k == 8) line = t "VERBOSE[5362] http.c: GET /ari/events?api_key=wazo-calld:" sprintf("%x", int(rand() * 1e9)) "&app=callcontrol HTTP/1.1 id=" n
        else if (k == 9) line = t "DEBUG[5365] res_stasis.c: channel PJSIP/" 1000 + n % 900 "-" sprintf("%08x", n) " entered application callcontrol, bridge " int(rand() * 1e9)
        else if (k == 10) line = t "WARNING[5366] chan_pjsip.c: Endpoint " 1000 + n % 900 " is now Reachable (rtt " n % 300 "ms) qualify " int(rand() * 1e6)
        else line = "Content-Length:  0"
        print line
        total += length(line) + 1
    }
}' > "$log"
ls -l "$log"

# Best of 3 runs of "$@", output to $work/out. Sets seconds and rss_kb.
measure() {
    local best="" rss="" out=$work/out err=$work/time
    for _ in 1 2 3; do
        rm -f "$run.tar.gz"
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

row() { printf '  %-44s %8.2f s  %8d KB peak RSS  %7.1f MB/s\n' "$1" "$2" "$3" "$(awk -v s="$2" -v m="$size_mb" 'BEGIN { print (s > 0 ? m / s : 0) }')"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }

# Warm the page cache so every tool reads from memory.
cat "$log" > /dev/null

measure gzip -6 -c "$log"
gzip_s=$seconds gzip_kb=$rss_kb
measure "$bin" --dry-run report "$run"
dry_s=$seconds dry_kb=$rss_kb
redacted=$(awk '/^  full  \(/ { print }' "$work/out")
measure "$bin" report "$run"
full_s=$seconds full_kb=$rss_kb
rm -f "$run.tar.gz"
"$bin" report "$run" > /dev/null
bundle=$(stat -c %s "$run.tar.gz")
leaks=$(tar -xzOf "$run.tar.gz" | grep -c 'response="[0-9a-f]\{16\}"' || true)

echo
echo "${size_mb} MB full log, $(wc -l < "$log") lines:"
row "gzip -6 -c (what tar czf spends on it)" "$gzip_s" "$gzip_kb"
row "report --dry-run (redaction, counts)" "$dry_s" "$dry_kb"
row "report (redaction + tar.gz bundle)" "$full_s" "$full_kb"
echo "  ratio report --dry-run / gzip -c: $(ratio "$dry_s" "$gzip_s")  (below 1 is faster)"
echo "  ratio report / gzip -c:           $(ratio "$full_s" "$gzip_s")  (the bundle is gzip too)"
echo "  bundle: $bundle bytes; digest responses left in it: $leaks"
echo "  dry run said:$redacted"
if [[ -n ${KEEP:-} ]]; then echo "kept: $work"; fi
