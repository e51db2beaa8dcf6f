#!/usr/bin/env bash
# Builds the Debian package (packaging/build-deb.sh) and checks it as an
# administrator would use it on a buster-era Wazo server:
#   - its name, control fields and file list;
#   - the packaged binary needs no libc newer than buster's 2.28: a static
#     binary (no program interpreter, no NEEDED library) passes, and so would a
#     dynamic one whose GLIBC_x.y symbol versions are all <= 2.28; it also runs
#     chrooted into a directory that holds nothing but itself;
#   - unpacked with `dpkg -x` into a scratch root: the installed binary's
#     --version, every man page through `man -l`, and the completion scripts
#     through `bash -n` (and a real completion), `zsh -n` and `fish -n`.
#
# Run by .ci/run after cargo test. As root (CI) it installs what it lacks
# (man-db, zsh, fish, binutils) with apt-get; elsewhere it skips what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

max_glibc=2.28
started=$SECONDS
failures=0
checks=0
pass() { checks=$((checks + 1)); echo "check-deb: ok: $*"; }
fail() { checks=$((checks + 1)); failures=$((failures + 1)); echo "check-deb: FAIL: $*" >&2; }
skip() { echo "check-deb: skipped: $*"; }

if [ "$(id -u)" = 0 ]; then
  need=()
  for pair in man:man-db zsh:zsh fish:fish readelf:binutils objdump:binutils; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
  done
  if [ "${#need[@]}" -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" </dev/null >/dev/null
  fi
fi

deb=$(packaging/build-deb.sh | tail -n 1)
build_seconds=$((SECONDS - started))
version=$(cargo metadata --format-version 1 --no-deps |
  sed -n 's/.*"name":"wazo-astdebug","version":"\([^"]*\)".*/\1/p')
echo "check-deb: built $deb ($(stat -c %s "$deb") bytes) in ${build_seconds}s"

# The name and the control fields. (`grep -q` reads here-strings, never a
# pipe: with pipefail, a writer killed by grep's early exit would fail it.)
case "$(basename "$deb")" in
  "wazo-astdebug_${version}_amd64.deb") pass "file name $(basename "$deb")" ;;
  *) fail "file name $(basename "$deb"), expected wazo-astdebug_${version}_amd64.deb" ;;
esac
control=$(dpkg-deb --field "$deb")
echo "$control" | sed 's/^/    /'
field() { dpkg-deb --field "$deb" "$1"; }
[ "$(field Package)" = wazo-astdebug ] && pass "Package" || fail "Package: $(field Package)"
[ "$(field Version)" = "$version" ] && pass "Version $version" || fail "Version: $(field Version)"
[ "$(field Architecture)" = amd64 ] && pass "Architecture amd64" || fail "Architecture: $(field Architecture)"
case "$(field Section)" in admin | debug) pass "Section $(field Section)" ;; *) fail "Section: $(field Section)" ;; esac
[ "$(field Priority)" = optional ] && pass "Priority optional" || fail "Priority: $(field Priority)"
grep -qx apt <<<"$(field Depends)" && pass "Depends apt" || fail "Depends: $(field Depends)"
for package in gdb; do
  grep -qw "$package" <<<"$(field Recommends)" && pass "Recommends $package" || fail "Recommends lacks $package"
done
for package in graphviz valgrind dpkg-dev quilt; do
  grep -qw "$package" <<<"$(field Suggests)" && pass "Suggests $package" || fail "Suggests lacks $package"
done
if command -v dpkg-parsechangelog >/dev/null 2>&1; then
  changelog_version=$(dpkg-parsechangelog -l packaging/changelog -S Version)
  [ "$changelog_version" = "$version" ] && pass "packaging/changelog is at $version" ||
    fail "packaging/changelog is at $changelog_version, Cargo.toml at $version: add an entry"
else
  skip "packaging/changelog version (dpkg-dev not installed)"
fi
[ "$(sed -n '/^Description:/,$p' <<<"$control" | wc -l)" -gt 3 ] &&
  pass "extended description" || fail "no extended description"

# The file list.
contents=$(dpkg-deb --contents "$deb" | awk '{print $NF}' | sed 's|^\./|/|')
expected=(
  /usr/bin/wazo-astdebug
  /usr/share/bash-completion/completions/wazo-astdebug
  /usr/share/zsh/vendor-completions/_wazo-astdebug
  /usr/share/fish/vendor_completions.d/wazo-astdebug.fish
  /usr/share/doc/wazo-astdebug/copyright
  /usr/share/doc/wazo-astdebug/changelog.gz
  /lib/systemd/system/wazo-astdebug-watch.service
)
for page in man/*.1; do expected+=("/usr/share/man/man1/$(basename "$page").gz"); done
for path in "${expected[@]}"; do
  grep -qxF "$path" <<<"$contents" && pass "ships $path" || fail "does not ship $path"
done

# The freeze watch's unit: shipped, and disabled (no maintainer script
# enables or starts it).
scripts=$(dpkg-deb --ctrl-tarfile "$deb" | tar -t | sed 's|^\./||')
if grep -qE '^(postinst|preinst|prerm|postrm)$' <<<"$scripts"; then
  fail "maintainer scripts would enable or start the watch: $(tr '\n' ' ' <<<"$scripts")"
else
  pass "wazo-astdebug-watch.service ships disabled (no maintainer script)"
fi
if command -v systemd-analyze >/dev/null 2>&1; then
  # --man=no: the man page is in the package, not installed here; nor is
  # the binary ExecStart names (the only other thing it may say).
  # (It exits 1 for the missing binary alone: its status says nothing here.)
  verdict=$({ systemd-analyze verify --man=no packaging/wazo-astdebug-watch.service 2>&1 || true; } |
    { grep -v 'Command /usr/bin/wazo-astdebug is not executable' || true; })
  [ -z "$verdict" ] && pass "systemd-analyze verify wazo-astdebug-watch.service" ||
    fail "systemd-analyze verify: $verdict"
else
  skip "systemd-analyze verify (systemd not installed)"
fi

# lintian, where installed (not installed by CI: it is slow to install):
# errors fail, warnings are shown.
if command -v lintian >/dev/null 2>&1; then
  tags=$(lintian --tag-display-limit 0 "$deb" 2>&1 | { grep -v 'root privileges' || true; })
  [ -z "$tags" ] || echo "$tags" | sed 's/^/    /'
  if grep -q '^E:' <<<"$tags"; then fail "lintian errors"; else pass "lintian: no error"; fi
else
  skip "lintian (not installed)"
fi

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
dpkg -x "$deb" "$root/install"
bin=$root/install/usr/bin/wazo-astdebug
[ -x "$bin" ] && pass "dpkg -x: /usr/bin/wazo-astdebug is executable" || fail "dpkg -x: no executable binary"

# Which libc the binary needs.
echo "check-deb: $(file -b "$bin" 2>/dev/null || echo "(no file(1))")"
if ! command -v readelf >/dev/null 2>&1 || ! command -v objdump >/dev/null 2>&1; then
  fail "readelf/objdump (binutils) missing: cannot check the libc the binary needs"
elif verdict=$(packaging/check-libc.sh "$bin" "$max_glibc"); then
  pass "libc: $verdict"
else
  fail "libc: $verdict"
fi

# A root with nothing but the binary: no libc, no loader, no /proc.
if [ "$(id -u)" = 0 ] && mkdir "$root/empty" && cp "$bin" "$root/empty/wazo-astdebug" &&
  chroot "$root/empty" /wazo-astdebug --version >/dev/null 2>&1; then
  out=$(chroot "$root/empty" /wazo-astdebug --version)
  pass "runs in an empty chroot (no libc at all): $out"
elif [ "$(id -u)" != 0 ]; then
  skip "empty chroot (needs root)"
else
  fail "does not run in an empty chroot: $(chroot "$root/empty" /wazo-astdebug --version 2>&1 | head -n 3)"
fi

# The installed binary.
out=$("$bin" --version 2>&1) && [ "$out" = "wazo-astdebug $version" ] &&
  pass "--version: $out" || fail "--version: $out"
out=$("$bin" --dry-run --wazo-version 23.04 setup-dbg 2>&1) && grep -q wazo-dist <<<"$out" &&
  pass "--dry-run --wazo-version 23.04 setup-dbg prints the plan" || fail "setup-dbg --dry-run: $out"

# The man pages, through man-db as `man wazo-astdebug` would show them.
if command -v man >/dev/null 2>&1; then
  for page in "$root"/install/usr/share/man/man1/*.1.gz; do
    name=$(basename "$page" .1.gz)
    text=$(MANPAGER=cat MANWIDTH=80 man -l -P cat "$page" 2>"$root/man.err") || true
    if [ -s "$root/man.err" ]; then
      fail "man -l $name: $(head -n 3 "$root/man.err")"
    elif grep -q "^NAME" <<<"$text" && grep -q "$name" <<<"$text"; then
      pass "man -l $name.1.gz ($(echo "$text" | wc -l) lines)"
    else
      fail "man -l $name: no NAME section naming $name"
    fi
  done
else
  skip "man pages (man-db not installed)"
fi

# The completion scripts.
share=$root/install/usr/share
bash_script=$share/bash-completion/completions/wazo-astdebug
if bash -n "$bash_script"; then pass "bash -n $bash_script"; else fail "bash -n on the bash completion"; fi
words=$(bash -c '
  source "$1"
  COMP_WORDS=(wazo-astdebug cr); COMP_CWORD=1; COMP_LINE="wazo-astdebug cr"; COMP_POINT=${#COMP_LINE}
  "$(complete -p wazo-astdebug | sed "s/.*-F \([^ ]*\) .*/\1/")" wazo-astdebug cr wazo-astdebug
  echo "${COMPREPLY[*]}"' bash "$bash_script" 2>&1) || true
[ "$words" = crash ] && pass "bash completes 'wazo-astdebug cr' to: $words" || fail "bash completion of 'cr': $words"
for shell in zsh fish; do
  case $shell in
    zsh) script=$share/zsh/vendor-completions/_wazo-astdebug ;;
    fish) script=$share/fish/vendor_completions.d/wazo-astdebug.fish ;;
  esac
  if ! command -v "$shell" >/dev/null 2>&1; then
    skip "$shell -n ($shell not installed)"
  elif "$shell" -n "$script"; then
    pass "$shell -n $script"
  else
    fail "$shell -n on the $shell completion"
  fi
done

echo "check-deb: $((SECONDS - started))s in all"
echo "check-deb: $((checks - failures)) passed, $failures failed"
[ "$failures" = 0 ]
