#!/usr/bin/env bash
# bench/freeze.sh's comparison on the test bed's real Asterisk 22 (Debian's
# stripped build, see tests/testbed/build) with every module loaded, as on a
# Wazo server: hundreds of shared libraries for gdb to read after it attaches.
# Bare `gdb -batch -ex "thread apply all bt"` against `wazo-astdebug freeze`,
# both run inside the bed: wall time, cpu time (user + system of the command
# and its children) and the time Asterisk is stopped (a tracer attached),
# watched from outside through /proc/PID/status's TracerPid; then the same on
# a gcore'd core of it (--core).
#
# The bed's own files are left alone: /etc/asterisk is copied to a private
# directory in the bed's /tmp, where modules.conf says `autoload = yes` (but
# chan_dahdi, which needs DAHDI hardware) and asterisk.conf points
# astetcdir at the copy; Asterisk runs with -C on it, in a mount namespace of
# this script's own (tests/testbed/enter) with a private /run.
#
# Usage: bench/freeze-bed.sh                 (as root)
# Env:   BIN=path/to/wazo-astdebug           (default: release build, built once)
#        RUNS=N                              best of N (default 5)
set -euo pipefail

runs=${RUNS:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
bed=${WAZO_ASTDEBUG_TESTBED:-${HOME:-/root}/.cache/wazo-astdebug/testbed}
if [[ ! -f $bed/.testbed-stamp ]]; then
    echo "skipped: no test bed at $bed; build it once, as root, with tests/testbed/build"
    exit 0
fi
if [[ $(id -u) != 0 ]]; then
    echo "skipped: the test bed needs root"
    exit 0
fi
target=${CARGO_TARGET_DIR:-$root/target}
bin=${BIN:-$target/release/wazo-astdebug}
if [[ ! -x $bin ]]; then
    echo "building $bin (once)" >&2
    (cd "$root" && cargo build --release --quiet)
fi
enter=$root/tests/testbed/enter

work=$(mktemp -d "${TMPDIR:-/tmp}/freeze-bed.XXXXXX")
# The bed's /tmp seen from the host; $inside is the same directory from within.
private=$(mktemp -d "$bed/tmp/freeze-bed.XXXXXX")
inside=/tmp/${private##*/}
chmod 755 "$work" "$private"
mkdir -m 755 "$work/run"
holder=""
pid=""

in_bed() { "$enter" in "$holder" -- "$@"; }
# The processes named $1 in this script's namespace (the holder's): never
# another's.
ours() {
    local ns candidate
    ns=$(readlink "/proc/$holder/ns/mnt" 2>/dev/null) || return 0
    for candidate in $(pgrep -x "$1" || true); do
        [[ $(readlink "/proc/$candidate/ns/mnt" 2>/dev/null) == "$ns" ]] && echo "$candidate"
    done
    return 0
}
traced() { awk '/^TracerPid:/ { exit $2 == 0 }' "/proc/$1/status" 2>/dev/null; }
# Stops our Asterisk: `core stop now`, then SIGKILL, but never while a tracer
# is attached (a signal then could leave it stopped, or kill it under gdb).
stop_asterisk() {
    local left
    [[ -n $holder ]] || return 0
    left=$(ours asterisk)
    [[ -n $left ]] || return 0
    # A gdb or freeze of ours still running (the script interrupted) ends first.
    for _ in $(seq 600); do [[ -n $(ours gdb)$(ours wazo-astdebug) ]] || break; sleep 0.1; done
    for candidate in $left; do
        for _ in $(seq 600); do traced "$candidate" || break; sleep 0.1; done
    done
    in_bed timeout -s KILL 10 asterisk -rx 'core stop now' > /dev/null 2>&1 || true
    for _ in $(seq 100); do
        left=$(ours asterisk)
        [[ -n $left ]] || return 0
        sleep 0.1
    done
    for candidate in $left; do
        if traced "$candidate"; then
            echo "Asterisk $candidate still has a tracer: left running" >&2
        else
            kill -KILL "$candidate" 2>/dev/null || true
        fi
    done
    for _ in $(seq 100); do [[ -n $(ours asterisk) ]] || return 0; sleep 0.1; done
}
cleanup() {
    set +e
    # This script's own children (the subshells of `< <(best ...)`), by
    # parent pid: none of them starts another gdb once stopped.
    pkill -TERM -P $$ 2>/dev/null
    stop_asterisk
    if [[ -n $holder ]]; then
        kill "$holder" 2>/dev/null
        for _ in $(seq 100); do [[ -e /proc/$holder ]] || break; sleep 0.05; done
    fi
    rm -rf "$private" "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The tests share the bed (and kill every Asterisk under it when they start):
# take their lock for the whole run.
exec 9>> "$bed/.testbed-lock"
flock -w 900 9 || { echo "the test bed stayed busy (its lock) for 15 minutes" >&2; exit 1; }

cp -a "$bed/etc/asterisk" "$private/etc"
sed -i -e 's/^autoload *=.*/autoload = yes/' -e '/^load *=> *res_astdebug_test\.so/d' "$private/etc/modules.conf"
echo 'noload => chan_dahdi.so' >> "$private/etc/modules.conf"
sed -i -e 's/^\[directories\](!)/[directories]/' -e "s|^astetcdir *=>.*|astetcdir => $inside/etc|" "$private/etc/asterisk.conf"

# 9>&-: neither the holder nor Asterisk keeps the lock once this script is gone.
holder=$("$enter" start "$work/run" "$bin" 9>&-)
# Commands in the bed, as scripts (for /usr/bin/time): in-bed CMD..., and
# freeze ARGS... with a fresh output directory each run.
cat > "$work/in-bed" <<EOF
#!/bin/sh
exec "$enter" in "$holder" -- "\$@"
EOF
cat > "$work/freeze" <<EOF
#!/bin/sh
exec "$enter" in "$holder" -- sh -c 'rm -rf "\$1" && shift && exec wazo-astdebug "\$@"' sh "$inside/out" -o "$inside/out" freeze "\$@"
EOF
chmod +x "$work/in-bed" "$work/freeze"
in_bed sh -c "mkdir -p /run/asterisk && chown asterisk: /run/asterisk && cd /var/spool/asterisk &&
    timeout 60 asterisk -C $inside/etc/asterisk.conf -g -U asterisk" > "$work/start.log" 2>&1 9>&- ||
    { echo "Asterisk did not start: $(tail -3 "$work/start.log")" >&2; exit 1; }
booted=""
for _ in $(seq 120); do
    if in_bed timeout -s KILL 30 asterisk -rx 'core waitfullybooted' > /dev/null 2>&1; then booted=1; break; fi
    sleep 0.5
done
[[ -n $booted ]] || { echo "Asterisk did not boot fully" >&2; exit 1; }
pid=$(cat "$work/run/asterisk/asterisk.pid")
modules=$(in_bed timeout -s KILL 10 asterisk -rx 'module show' | awk '/modules loaded/ { print $1 }')
version=$(in_bed timeout -s KILL 10 asterisk -V)
libs=$(awk '$6 ~ /\.so(\.|$)/ { print $6 }' "/proc/$pid/maps" | sort -u | wc -l)
threads=$(find "/proc/$pid/task" -mindepth 1 -maxdepth 1 | wc -l)

# shellcheck source=bench/stopwatch.sh
. "$root/bench/stopwatch.sh"

echo "$version, $modules modules loaded, $libs shared libraries mapped, $threads threads, live (pid $pid), best of $runs (stopped: their median):"
read -r gdb_wall gdb_stop gdb_cpu < <(best "$pid" "$work/in-bed" gdb -batch -nx -ex "thread apply all bt" /usr/sbin/asterisk -p "$pid")
read -r live_wall live_stop live_cpu < <(best "$pid" "$work/freeze" --timeout 3)
said=$(grep -o 'stopped [0-9.]* s' "$work/err" || echo "stopped ? s")
printf '  %-38s %6ss wall %6ss stopped %5ss cpu\n' 'gdb -batch -ex "thread apply all bt"' "$gdb_wall" "$gdb_stop" "$gdb_cpu"
printf '  %-38s %6ss wall %6ss stopped %5ss cpu  (%s× / %s× / %s× gdb)\n' 'freeze --timeout 3' \
    "$live_wall" "$live_stop" "$live_cpu" \
    "$(ratio "$live_wall" "$gdb_wall")" "$(ratio "$live_stop" "$gdb_stop")" "$(ratio "$live_cpu" "$gdb_cpu")"
echo "  freeze's own report of its last run: Asterisk was $said"

if ! "$work/in-bed" gcore -o "$inside/core" "$pid" > "$work/gcore.log" 2>&1 || [[ ! -f $private/core.$pid ]]; then
    echo "  gcore failed: $(tail -1 "$work/gcore.log")" >&2
    exit 1
fi
core=$inside/core.$pid
stop_asterisk
echo "core ($(($(stat -c %s "$private/core.$pid") / 1024 / 1024)) MiB), best of $runs:"
read -r core_gdb _ core_gdb_cpu < <(best - "$work/in-bed" gdb -batch -nx -ex "thread apply all bt" /usr/sbin/asterisk "$core")
# freeze --core writes bt-full.txt too: bare gdb writing the same evidence.
read -r core_full _ core_full_cpu < <(best - "$work/in-bed" gdb -batch -nx -ex "thread apply all bt full" /usr/sbin/asterisk "$core")
read -r core_freeze _ core_freeze_cpu < <(best - "$work/freeze" --core "$core")
printf '  %-38s %6ss wall                 %5ss cpu\n' 'gdb -batch -ex "thread apply all bt"' "$core_gdb" "$core_gdb_cpu"
printf '  %-38s %6ss wall                 %5ss cpu\n' 'gdb -batch -ex "thread apply all bt full"' "$core_full" "$core_full_cpu"
printf '  %-38s %6ss wall                 %5ss cpu  (%s× / %s× gdb bt, %s× / %s× gdb bt full)\n' 'freeze --core' \
    "$core_freeze" "$core_freeze_cpu" "$(ratio "$core_freeze" "$core_gdb")" "$(ratio "$core_freeze_cpu" "$core_gdb_cpu")" \
    "$(ratio "$core_freeze" "$core_full")" "$(ratio "$core_freeze_cpu" "$core_full_cpu")"
echo "ratios: wall / stopped / cpu against bare gdb; aim <= 1.05x, live and on a core"
