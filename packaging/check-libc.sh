#!/usr/bin/env bash
# Usage: packaging/check-libc.sh BINARY [MAX_GLIBC]
# Exits 0 when BINARY runs on a system whose glibc is MAX_GLIBC (default 2.28,
# Debian buster: Wazo 19.13 to 23.05): either it is static (no program
# interpreter, no NEEDED library, as the musl build is), or every GLIBC_x.y
# symbol version it needs is <= MAX_GLIBC. Prints the verdict; exits 1 otherwise.
set -euo pipefail
bin=$1
max=${2:-2.28}

interp=$(readelf -lW "$bin" | sed -n 's/.*\[Requesting program interpreter: \(.*\)\]/\1/p')
needed=$(readelf -dW "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
if [ -z "$interp" ] && [ -z "$needed" ]; then
  echo "static: no program interpreter, no NEEDED library: runs with any libc (glibc $max included)"
  exit 0
fi
echo "dynamic: interpreter ${interp:-none}; NEEDED: ${needed:-none}"
versions=$(objdump -T "$bin" | { grep -o 'GLIBC_[0-9][0-9.]*' || true; } | sed 's/GLIBC_//' | sort -uV)
newest=$(tail -n 1 <<<"$versions")
if [ -z "$newest" ]; then
  echo "needs no GLIBC symbol version"
elif [ "$(printf '%s\n%s\n' "$newest" "$max" | sort -V | tail -n 1)" = "$max" ]; then
  echo "newest GLIBC symbol version needed: $newest <= $max"
else
  too_new=$(while read -r v; do
    [ "$(printf '%s\n%s\n' "$v" "$max" | sort -V | tail -n 1)" = "$max" ] || echo "$v"
  done <<<"$versions")
  pattern="GLIBC_($(tr '\n' '|' <<<"$too_new" | sed 's/|$//; s/\./\\./g'))\)?[[:space:]]"
  symbols=$(objdump -T "$bin" | { grep -E "$pattern" || true; } |
    awk '{ gsub(/[()]/, "", $(NF-1)); print $NF "@" $(NF-1) }' | sort -u | tr '\n' ' ')
  echo "needs glibc newer than $max: $symbols"
  exit 1
fi
