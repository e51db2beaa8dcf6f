#!/usr/bin/env bash
# Instructions gdb executes while a frozen program is stopped: bare `gdb
# -batch -ex "thread apply all bt"` against freeze's own gdb run, counted by
# callgrind (valgrind), on bench/frozen.c with N threads. Wall time on a
# shared machine moves by 2x from one run to the next; these counts repeat
# to a few parts in a thousand, so a change of a few percent shows.
#
# The work done while stopped is a run's count less that of the same gdb
# attaching and detaching at once: for bare gdb, `gdb -batch -ex detach`;
# for freeze, its script loaded and compiled but its main only detaching.
# freeze's JSON is written after the detach: it is counted apart.
#
# The script and gdb's arguments are freeze's own: one `freeze --pid` run
# through a `gdb` on PATH that keeps a copy of what it was given.
#
# Usage: bench/freeze-cg.sh [THREADS]      (default: 1000)
# Env:   BIN=path/to/wazo-astdebug         (default: release build, built once)
#        STRIPPED=1                        -O2 and stripped, as on a server; run it under
#          unshare -m sh -c 'mount --bind "$(mktemp -d)" /usr/lib/debug && STRIPPED=1 bench/freeze-cg.sh'
#          to hide libc6-dbg's symbols too
set -euo pipefail

n=${1:-1000}
[[ $n =~ ^[0-9]+$ ]] || { echo "THREADS must be a number" >&2; exit 2; }
root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
bin=${BIN:-$target/release/wazo-astdebug}
if [[ ! -x $bin ]]; then
    echo "building $bin (once)" >&2
    (cd "$root" && cargo build --release --quiet)
fi
for tool in gdb valgrind cc; do
    command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 2; }
done
real_gdb=$(command -v gdb)

work=$(mktemp -d "${TMPDIR:-/tmp}/freeze-cg.XXXXXX")
pid=""
cleanup() {
    if [[ -n $pid ]]; then kill "$pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/path" "$work/bin"
printf '#!/bin/sh\necho active\n' > "$work/path/systemctl"
printf '#!/bin/sh\necho "Unable to connect to remote asterisk"\nexit 1\n' > "$work/path/asterisk"
# gdb as freeze runs it: its arguments kept, its script copied.
cat > "$work/path/gdb" <<EOF
#!/usr/bin/env bash
printf '%s\0' "\$@" > "$work/argv"
prev=""
for arg in "\$@"; do
    if [[ \$prev == -ix ]]; then cp "\$arg" "$work/script.py"; fi
    prev=\$arg
done
exec "$real_gdb" "\$@"
EOF
chmod +x "$work/path/"*

program=$work/bin/asterisk-bench
if [[ -n ${STRIPPED:-} ]]; then
    cc -O2 -pthread -o "$program" "$root/bench/frozen.c"
    strip "$program"
else
    cc -g -O0 -pthread -o "$program" "$root/bench/frozen.c"
fi
"$program" "$n" > /dev/null 2>&1 &
pid=$!
sleep 2

PATH="$work/path:$PATH" "$bin" --yes -o "$work/run" freeze --asterisk-bin "$program" --pid "$pid" \
    --wazo-version 25.15 > /dev/null 2> "$work/freeze.err" || { cat "$work/freeze.err" >&2; exit 1; }
[[ -s $work/script.py ]] || { echo "freeze ran no gdb script" >&2; exit 1; }
mapfile -d '' argv < "$work/argv"

printf 'def wazo_astdebug_main():\n    detach()\n' > "$work/only-detach.py"
printf 'def wazo_astdebug_main():\n    analyse()\n    detach()\n' > "$work/no-json.py"

# freeze's gdb command in `fargs`, its script the copy, and one more file
# after it (`-ix`, read in order: its main replaces the script's).
freeze_args() {
    local prev=""
    fargs=()
    for arg in "${argv[@]}"; do
        if [[ $prev == -ix ]]; then
            fargs+=("$work/script.py")
            if [[ -n $1 ]]; then fargs+=(-ix "$1"); fi
        else
            fargs+=("$arg")
        fi
        prev=$arg
    done
}

count() {
    rm -f "$work"/cg.*
    valgrind --tool=callgrind --callgrind-out-file="$work/cg.%p" "$@" > /dev/null 2>&1 || true
    awk '/^summary:/ { total += $2 } END { printf "%.0f\n", total }' "$work"/cg.*
}

bare=$(count "$real_gdb" -batch -nx -ex "thread apply all bt" "$program" -p "$pid")
bare_empty=$(count "$real_gdb" -batch -nx -ex detach "$program" -p "$pid")
freeze_args ""
freeze_all=$(count "$real_gdb" "${fargs[@]}")
freeze_args "$work/no-json.py"
freeze_stop=$(count "$real_gdb" "${fargs[@]}")
freeze_args "$work/only-detach.py"
freeze_empty=$(count "$real_gdb" "${fargs[@]}")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
m() { awk -v a="$1" 'BEGIN { printf "%7.0fM", a / 1e6 }'; }
bare_work=$((bare - bare_empty))
freeze_work=$((freeze_stop - freeze_empty))
echo "$n threads${STRIPPED:+, stripped}, instructions (callgrind), gdb $("$real_gdb" --version | head -1 | awk '{print $NF}'):"
printf '  %-44s %s\n' 'bare gdb, attach + bt + detach' "$(m "$bare")"
printf '  %-44s %s\n' 'bare gdb, attach + detach' "$(m "$bare_empty")"
printf '  %-44s %s\n' 'freeze gdb, attach + script + detach' "$(m "$freeze_stop")"
printf '  %-44s %s\n' 'freeze gdb, attach + detach (script loaded)' "$(m "$freeze_empty")"
printf '  %-44s %s\n' 'freeze gdb, and the JSON after the detach' "$(m "$((freeze_all - freeze_stop))")"
echo "  work while stopped: bare $(m "$bare_work"), freeze $(m "$freeze_work"): $(ratio "$freeze_work" "$bare_work")x"
echo "  attach to detach: bare $(m "$bare"), freeze $(m "$((bare_empty + freeze_work))") (bare's attach): $(ratio "$((bare_empty + freeze_work))" "$bare")x"
echo "aim <= 1.05x bare gdb"
