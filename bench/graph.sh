#!/usr/bin/env bash
# Benchmark of `wazo-astdebug graph` against `grep -c 'Thread ID'` on the same
# dump, in the same run, and against bench/dump_floor.c (the least work any reader
# of the thread and lock lines must do): the aims are 2x grep -c for text, 4x for json
# and under 256 MiB of peak memory.
#
# Usage: bench/graph.sh [THREADS]        (default 100000)
# Env:   BIN=path/to/wazo-astdebug       (default: release build, built once)
#        FRAMES=N                        backtrace lines per lock (default 8;
#                                        64 makes a ~1 GB dump of 100000 threads)
#        FORMAT=text|json                the output format timed (default text)
#        LOCKS=N                         locks each thread holds (default 1)
#        BT=plain|better                 backtrace lines as execinfo prints them
#                                        (default) or as BETTER_BACKTRACES does
#        DUMP=path                       time this dump instead of generating one
#        GENERATE_ONLY=path              write the generated dump there, time nothing
#        CALLGRIND=1                     also count instructions (valgrind --tool=callgrind),
#                                        repeatable on a busy machine where wall time is not
#        KEEP=1                          keep the generated dump
set -euo pipefail

threads=${1:-100000}
root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
bin=${BIN:-$target/release/wazo-astdebug}
if [[ ! -x $bin ]]; then
    echo "building $bin (once)" >&2
    (cd "$root" && cargo build --release --quiet)
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/graph-bench.XXXXXX")
if [[ -z ${KEEP:-} ]]; then
    trap 'rm -rf "$work"' EXIT
fi
dump=$work/core-show-locks.txt

# Thread i holds lock A_i; threads 2k and 2k+1 (k < 4) deadlock on each
# other's lock; every other thread waits for the lock of the one before it,
# except one in ten which waits on a lock nobody listed holds. Each lock line
# carries FRAMES tab-indented backtrace lines, as with DEBUG_THREADS + BKTR.
if [[ -n ${DUMP:-} ]]; then
    dump=$DUMP
else
awk -v n="$threads" -v frames="${FRAMES:-8}" -v held="${LOCKS:-1}" -v better="$([[ ${BT:-plain} == better ]] && echo 1 || echo 0)" 'BEGIN {
    print ""
    print "======================================================================="
    print "=== 20.3.0"
    print "=== Currently Held Locks"
    print "======================================================================="
    print "==="
    print "=== <pending> <lock#> (<file>): <lock type> <line num> <function> <lock name> <lock addr> (times locked)"
    print "==="
    bt = ""
    for (f = 0; f < frames; f++)
        if (better)
            bt = bt sprintf("\t[0x55d0c6a1c%03x] asterisk channel.c:%d ast_channel_frame_%d()\n", f * 16, 4240 + f, f)
        else
            bt = bt sprintf("\t/usr/sbin/asterisk(__ast_pthread_mutex_lock+0x%x) [0x55d0c6a1c%03x]\n", 0x9e + f, f * 16)
    for (i = 0; i < n; i++) {
        printf "=== Thread ID: 0x7f3a%08x LWP:%d (pbx_thread           started at [ 4787] pbx.c ast_pbx_start())\n", i * 4096, 10000 + i
        printf "=== ---> Lock #0 (channel.c): MUTEX 4240 ast_write chan 0x55d0%08x (1)\n", i * 64
        printf "%s", bt
        for (h = 1; h < held; h++) {
            printf "=== ---> Lock #%d (chan_pjsip.c): MUTEX %d chan_pjsip_write &pvt->lock 0x56e0%08x (1)\n", h, 900 + h, (i * 8 + h) * 64
            printf "%s", bt
        }
        if (i < 8) {
            peer = (i % 2 == 0) ? i + 1 : i - 1
            printf "=== ---> Waiting for Lock #1 (channel.c): MUTEX 1213 ast_queue_frame chan 0x55d0%08x (1)\n", peer * 64
            printf "%s", bt
            print "=== --- ---> Locked Here: channel.c line 4240 (ast_write)"
        } else if (i % 10 == 0) {
            printf "=== ---> Waiting for Lock #1 (res_pjsip.c): MUTEX 99 f &lock 0x7f00%08x (1)\n", i * 64
            printf "%s", bt
        } else {
            printf "=== ---> Waiting for Lock #1 (channel.c): MUTEX 1213 ast_queue_frame chan 0x55d0%08x (1)\n", (i - 1) * 64
            printf "%s", bt
            print "=== --- ---> Locked Here: channel.c line 4240 (ast_write)"
        }
        print "=== -------------------------------------------------------------------"
        print "==="
    }
    print "======================================================================="
}' > "$dump"
fi

if [[ -n ${GENERATE_ONLY:-} ]]; then
    cp "$dump" "$GENERATE_ONLY"
    exit 0
fi
size=$(stat -c %s "$dump")
echo "dump: $threads threads, $((size / 1024 / 1024)) MiB ($dump)"
cat "$dump" > /dev/null # page cache, for both

now() { date +%s.%N; }
# Output goes to a file, not /dev/null: GNU grep stops at the first match
# when it sees its output is /dev/null, which would time nothing.
best() { # best wall time of 3 runs of "$@"
    local best="" start end t
    for _ in 1 2 3; do
        start=$(now)
        "$@" > "$work/out"
        end=$(now)
        t=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }')
        if [[ -z $best ]] || awk -v a="$t" -v b="$best" 'BEGIN { exit !(a < b) }'; then
            best=$t
        fi
    done
    echo "$best"
}

# The least work any reader must do to find who waits for whom (ids and
# addresses read as numbers into tables, nothing else): the limit graph is
# measured against, beside grep's skim.
floor=$work/dump_floor
if ! cc -O2 -o "$floor" "$root/bench/dump_floor.c"; then
    echo "bench/dump_floor.c does not build (needs gcc)" >&2
    exit 1
fi

grep_count=$(grep -c 'Thread ID' "$dump")
grep_time=$(best grep -c 'Thread ID' "$dump")
wc_time=$(best wc -l "$dump")
floor_time=$(best "$floor" "$dump")
format=${FORMAT:-text}
aim=$([[ $format == json ]] && echo 4 || echo 2)
graph_time=$(best "$bin" graph -f "$format" "$dump")
"$bin" graph -f text "$dump" | head -3

echo "grep -c 'Thread ID': ${grep_time}s (found $grep_count)"
echo "wc -l (a line count): ${wc_time}s"
echo "floor reader (bench/dump_floor.c): ${floor_time}s ($("$floor" "$dump"))"
echo "graph -f $format:       ${graph_time}s"
awk -v g="$graph_time" -v r="$grep_time" -v w="$wc_time" -v f="$floor_time" -v aim="$aim" \
    'BEGIN { if (r > 0) printf "wall time ratio graph/grep: %.2f (aim: <= %s), graph/wc -l: %.2f, graph/floor: %.2f, floor/grep: %.2f\n", g / r, aim, (w > 0 ? g / w : 0), (f > 0 ? g / f : 0), f / r }'
if [[ -n ${CALLGRIND:-} ]] && command -v valgrind >/dev/null; then
    instructions() {
        valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1 > "$work/out" |
            awk '/Collected/ { print $NF }'
    }
    grep_ir=$(instructions grep -c 'Thread ID' "$dump")
    floor_ir=$(instructions "$floor" "$dump")
    graph_ir=$(instructions "$bin" graph -f "$format" "$dump")
    awk -v g="$graph_ir" -v r="$grep_ir" -v f="$floor_ir" 'BEGIN {
        printf "instructions (callgrind): grep %.0fM, floor %.0fM, graph %.0fM, ratio graph/grep %.1f, graph/floor %.1f\n", r / 1e6, f / 1e6, g / 1e6, g / r, g / f }'
fi

if [[ -x /usr/bin/time ]]; then
    rss() { /usr/bin/time -v "$@" 2>&1 > "$work/out" | awk -F': ' '/Maximum resident/ { print $2 }'; }
    grep_rss=$(rss grep -c 'Thread ID' "$dump")
    graph_rss=$(rss "$bin" graph -f "$format" "$dump")
    echo "peak RSS: grep ${grep_rss} KiB, graph ${graph_rss} KiB ($((graph_rss / 1024)) MiB, $((graph_rss * 1024 / threads)) B per thread; aim: <= 64 MiB at 100k threads, <= 256 MiB at 1M)"
    awk -v g="$graph_rss" -v r="$grep_rss" \
        'BEGIN { if (r > 0) printf "peak RSS ratio graph/grep: %.1f\n", g / r }'
else
    echo "peak RSS: /usr/bin/time not installed (apt-get install time)"
fi
