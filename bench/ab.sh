#!/usr/bin/env bash
# Two builds of wazo-astdebug on the same command, run in turn (A, B, A, B,
# ...) so that a change in the machine's load falls on both: the medians of
# wall, user and system time of each. For a change whose effect is smaller
# than the run-to-run noise of bench/graph.sh's best-of-3.
#
# Usage: bench/ab.sh RUNS BIN_A BIN_B -- ARGS...
#   e.g. bench/ab.sh 9 /tmp/before /tmp/after -- graph /tmp/dump.txt
# Output goes to /dev/null, which no wazo-astdebug command treats specially.
set -euo pipefail
[[ $# -ge 4 && $4 == -- ]] || { sed -n 2,9p "$0" >&2; exit 2; }
[[ -x /usr/bin/time ]] || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 2; }
runs=$1 a=$2 b=$3
shift 4

record=$(mktemp)
trap 'rm -f "$record"' EXIT
timed() {
    /usr/bin/time -o "$record" -f '%e %U %S' "$@" >/dev/null 2>&1 || true
    tail -1 "$record"
}
times_a=() times_b=()
for ((i = 0; i < runs; i++)); do
    times_a+=("$(timed "$a" "$@")")
    times_b+=("$(timed "$b" "$@")")
done

medians() {
    printf '%s\n' "$@" | awk '
        { w[NR] = $1; u[NR] = $2; s[NR] = $3 }
        function median(v, n,   i, j, t) {
            for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
            return v[int((n + 1) / 2)]
        }
        END { printf "wall %.2f s  user %.2f s  sys %.2f s", median(w, NR), median(u, NR), median(s, NR) }'
}
echo "A $a: $(medians "${times_a[@]}")  (median of $runs)"
echo "B $b: $(medians "${times_b[@]}")  (median of $runs)"
