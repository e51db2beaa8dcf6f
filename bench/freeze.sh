#!/usr/bin/env bash
# Benchmark of `wazo-astdebug freeze` against bare `gdb -batch -ex "thread
# apply all bt"` on the same frozen process, in the same run: wall time, and
# the time the process is stopped (gdb attached), watched from outside
# through /proc/PID/status's TracerPid for both. Then the same on a core of
# that process (--core). The process is bench/frozen.c, built as
# `asterisk-bench`: freeze wants a name starting with asterisk, and a plain
# `asterisk` on a shared machine may be taken for a real one and killed.
#
# With MODULES=N, the program first dlopens N generated shared libraries, as
# Asterisk loads its modules (a Wazo Asterisk maps 477 distinct ones), and
# one thread in ten blocks inside one of them: gdb then has N libraries'
# symbols to read after it attaches, and backtraces pass through module
# frames. Each library has 100 to 300 exported functions, is built with
# `gcc -O2 -shared -fPIC` and stripped with --strip-unneeded (.dynsym kept),
# as Debian ships Asterisk's modules.
#
# Usage: bench/freeze.sh [THREADS...]      (default: 100 400 1000)
# Env:   BIN=path/to/wazo-astdebug         (default: release build, built once)
#        RUNS=N                            best of N (default 3)
#        MODULES=N                         shared libraries to load (default 0: none)
#        STRIPPED=1                        build the program -O2 and stripped, as
#                                          production servers run Asterisk
set -euo pipefail

sizes=("$@")
[[ ${#sizes[@]} -gt 0 ]] || sizes=(100 400 1000)
runs=${RUNS:-3}
modules=${MODULES:-0}
[[ $modules =~ ^[0-9]+$ ]] || { echo "MODULES must be a number" >&2; exit 2; }
root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
bin=${BIN:-$target/release/wazo-astdebug}
if [[ ! -x $bin ]]; then
    echo "building $bin (once)" >&2
    (cd "$root" && cargo build --release --quiet)
fi
command -v gdb >/dev/null || { echo "needs gdb" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/freeze-bench.XXXXXX")
frozen_pid=""
cleanup() {
    if [[ -n $frozen_pid ]]; then kill "$frozen_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

# Stand-ins for the checks freeze makes before gdb (a frozen Asterisk's CLI
# does not answer; their timeouts are not what is measured here).
mkdir -p "$work/path"
printf '#!/bin/sh\necho active\n' > "$work/path/systemctl"
printf '#!/bin/sh\necho "Unable to connect to remote asterisk"\nexit 1\n' > "$work/path/asterisk"
chmod +x "$work/path/systemctl" "$work/path/asterisk"
program=$work/bin/asterisk-bench
mkdir -p "$work/bin"
if [[ -n ${STRIPPED:-} ]]; then
    # As a production server has it: no debug symbols. Idle threads then
    # print the same backtrace, which freeze reads once.
    cc -O2 -pthread -o "$program" "$root/bench/frozen.c"
    strip "$program"
    if [[ -d /usr/lib/debug/.build-id ]]; then
        echo "note: /usr/lib/debug has detached symbols (libc6-dbg): gdb reads libc's; to hide them," >&2
        echo "  unshare -m sh -c 'mount --bind \"\$(mktemp -d)\" /usr/lib/debug && STRIPPED=1 bench/freeze.sh ...'" >&2
    fi
else
    cc -g -O0 -pthread -o "$program" "$root/bench/frozen.c"
fi
program_args=()
if ((modules > 0)); then
    # mod_NNNN.so: 100 to 300 small exported functions (minimal symbols for
    # gdb to read) and mod_NNNN_call(fn, arg), which calls fn(arg) and then
    # counts, so that its frame stays under the callback's (no tail call).
    mkdir -p "$work/modules" "$work/src"
    names=()
    for k in $(seq "$modules"); do
        name=$(printf 'mod_%04d' "$k")
        names+=("$name")
        awk -v m="$name" -v n=$((100 + (k * 53) % 201)) 'BEGIN {
            printf "volatile long %s_count;\n", m
            for (f = 0; f < n; f++)
                printf "long %s_f%d(long x) { return x * %d + %s_count; }\n", m, f, f + 1, m
            printf "void %s_call(void (*fn)(long), long arg) { fn(arg); %s_count++; }\n", m, m
        }' > "$work/src/$name.c"
    done
    echo "building $modules modules" >&2
    (cd "$work/src" && printf '%s\n' "${names[@]}" | xargs -P "$(nproc)" -I{} \
        sh -c 'gcc -O2 -shared -fPIC -o ../modules/{}.so {}.c && strip --strip-unneeded ../modules/{}.so')
    program_args=("$work/modules")
fi

# shellcheck source=bench/stopwatch.sh
. "$root/bench/stopwatch.sh"

# freeze [ARGS...], a fresh output directory each run (a script, for /usr/bin/time).
cat > "$work/freeze" <<EOF
#!/bin/sh
rm -rf "$work/run"
PATH="$work/path:\$PATH" exec "$bin" --yes -o "$work/run" freeze --asterisk-bin "$program" "\$@"
EOF
chmod +x "$work/freeze"
freeze=$work/freeze

for n in "${sizes[@]}"; do
    "$program" "$n" "${program_args[@]}" > "$work/ready" &
    frozen_pid=$!
    for _ in $(seq 600); do grep -q ready "$work/ready" 2>/dev/null && break; sleep 0.1; done
    grep -q ready "$work/ready" || { echo "the frozen program did not start $n threads" >&2; exit 1; }
    pid=$frozen_pid

    if ((modules > 0)); then
        libs=$(awk '$6 ~ /\.so(\.|$)/ { print $6 }' "/proc/$pid/maps" | sort -u | wc -l)
        echo "$n threads, $modules modules loaded, $libs shared libraries mapped, live (pid $pid), best of $runs (stopped: their median):"
    else
        echo "$n threads, live (pid $pid), best of $runs (stopped: their median):"
    fi
    read -r gdb_wall gdb_stop gdb_cpu < <(best "$pid" gdb -batch -nx -ex "thread apply all bt" "$program" -p "$pid")
    # shellcheck disable=SC2034 # read through ${!wall} and the like below
    read -r known_wall known_stop known_cpu < <(best "$pid" "$freeze" --pid "$pid" --wazo-version 25.15)
    # shellcheck disable=SC2034
    read -r unknown_wall unknown_stop unknown_cpu < <(best "$pid" "$freeze" --pid "$pid")
    said=$(grep -o 'stopped [0-9.]* s' "$work/err" || echo "stopped ? s")
    printf '  %-38s %6ss wall %6ss stopped %5ss cpu\n' 'gdb -batch -ex "thread apply all bt"' "$gdb_wall" "$gdb_stop" "$gdb_cpu"
    for row in "version known:known" "no version file:unknown"; do
        label=${row%%:*} var=${row##*:}
        wall=${var}_wall stop=${var}_stop cpu=${var}_cpu
        printf '  %-38s %6ss wall %6ss stopped %5ss cpu  (%s× / %s× / %s× gdb)\n' \
            "freeze, $label" "${!wall}" "${!stop}" "${!cpu}" \
            "$(ratio "${!wall}" "$gdb_wall")" "$(ratio "${!stop}" "$gdb_stop")" "$(ratio "${!cpu}" "$gdb_cpu")"
    done
    echo "  freeze's own report of its last run: Asterisk was $said"

    cores=()
    if gcore -o "$work/core" "$pid" > "$work/gcore.log" 2>&1; then cores=("$work"/core.*); fi
    if [[ ! -e ${cores[0]:-} ]]; then
        echo "  gcore failed: $(tail -1 "$work/gcore.log")" >&2
        exit 1
    fi
    core=${cores[0]}
    kill "$frozen_pid"
    wait "$frozen_pid" 2>/dev/null || true
    frozen_pid=""
    echo "$n threads, core ($(($(stat -c %s "$core") / 1024 / 1024)) MiB), best of $runs:"
    read -r core_gdb _ core_gdb_cpu < <(best - gdb -batch -nx -ex "thread apply all bt" "$program" "$core")
    # freeze --core writes bt-full.txt too: bare gdb writing the same evidence.
    read -r core_full _ core_full_cpu < <(best - gdb -batch -nx -ex "thread apply all bt full" "$program" "$core")
    read -r core_freeze _ core_freeze_cpu < <(best - "$freeze" --core "$core" --wazo-version 25.15)
    printf '  %-38s %6ss wall                 %5ss cpu\n' 'gdb -batch -ex "thread apply all bt"' "$core_gdb" "$core_gdb_cpu"
    printf '  %-38s %6ss wall                 %5ss cpu\n' 'gdb -batch -ex "thread apply all bt full"' "$core_full" "$core_full_cpu"
    printf '  %-38s %6ss wall                 %5ss cpu  (%s× / %s× gdb bt, %s× / %s× gdb bt full)\n' 'freeze --core' \
        "$core_freeze" "$core_freeze_cpu" "$(ratio "$core_freeze" "$core_gdb")" "$(ratio "$core_freeze_cpu" "$core_gdb_cpu")" \
        "$(ratio "$core_freeze" "$core_full")" "$(ratio "$core_freeze_cpu" "$core_full_cpu")"
    rm -f "$core"
done
echo "ratios: wall / stopped / cpu against bare gdb; aim <= 1.05x, live and on a core"
