# Sourced by bench/freeze.sh and bench/freeze-bed.sh: how long a command
# takes and how long it keeps a process stopped, watched from outside.
# Needs $work (a scratch directory) and $runs (runs per figure) set.
# shellcheck shell=bash

: "${work:?set work before sourcing stopwatch.sh}" "${runs:?set runs before sourcing stopwatch.sh}"

# Watches the tracer of PID until told to stop; prints the seconds from the
# first to the last time a tracer was seen (polled every millisecond).
cat > "$work/watch.py" <<'EOF'
import os, sys, time
pid, stop = sys.argv[1], sys.argv[2]
first = last = None
while not os.path.exists(stop):
    try:
        with open("/proc/%s/status" % pid) as status:
            traced = any(l.startswith("TracerPid:") and l.split()[1] != "0" for l in status)
    except OSError:
        break
    if traced:
        now = time.monotonic()
        first = first or now
        last = now
    time.sleep(0.001)
print("%.3f" % ((last - first) if first else 0.0))
EOF

realtime=
if [[ $(id -u) == 0 ]] && command -v chrt >/dev/null && chrt -f 10 true 2>/dev/null; then
    realtime="chrt -f 10"
fi
now() { date +%s.%N; }
# Runs "$@" once, watching PID (or none: "-"): prints "wall stopped cpu",
# cpu being user + system time of the command and its children (gdb): on a
# shared machine it moves far less than wall time.
once() {
    local pid=$1 start end stopped="0.000" cpu
    shift
    rm -f "$work/stop"
    if [[ $pid != - ]]; then
        # Real-time priority where allowed: on a loaded machine a plain watcher
        # was starved and saw only part of an attach (0.07 s of 0.36 s).
        $realtime python3 "$work/watch.py" "$pid" "$work/stop" > "$work/watched" &
        local watcher=$!
        sleep 0.05
    fi
    start=$(now)
    /usr/bin/time -o "$work/cpu" -f "%U %S" "$@" < /dev/null > "$work/out" 2> "$work/err" || { cat "$work/err" >&2; return 1; }
    end=$(now)
    cpu=$(awk '{ printf "%.2f", $1 + $2 }' "$work/cpu")
    if [[ $pid != - ]]; then
        touch "$work/stop"
        wait "$watcher"
        stopped=$(cat "$work/watched")
    fi
    awk -v a="$start" -v b="$end" -v s="$stopped" -v c="$cpu" 'BEGIN { printf "%.3f %s %s\n", b - a, s, c }'
}
# Best wall and cpu time of $runs runs, and their median stopped time: the
# smallest stopped time is the likeliest to be a watcher that saw only part
# of an attach, so it is no "best".
best() {
    local wall="" cpu="" w s c stops=()
    less() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }
    for _ in $(seq "$runs"); do
        read -r w s c < <(once "$@")
        if [[ -z $wall ]] || less "$w" "$wall"; then wall=$w; fi
        # 0 is a watcher that never saw the tracer (it started late), not a run without a stop.
        if [[ $s != 0.000 ]]; then stops+=("$s"); fi
        if [[ -z $cpu ]] || less "$c" "$cpu"; then cpu=$c; fi
    done
    local stopped=0.000
    if ((${#stops[@]})); then
        stopped=$(printf '%s\n' "${stops[@]}" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
    fi
    echo "$wall $stopped $cpu"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
