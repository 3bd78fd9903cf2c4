#!/bin/sh
# unit.sh BINDIR MANDIR — broker/dist/nudged.service passes `systemd-analyze verify` with nothing
# to say (it exits 0 on unknown keys and bad values, printing a warning: any output fails here),
# and `systemd-analyze security` rates its sandbox at most 2.0 ("OK"). Verify wants the unit's
# programs and man page to exist: the copy checked runs BINDIR's nudged and finds nudged(8) in
# MANDIR; nothing else in it changes. Needs systemd-analyze (Debian's systemd package), not a
# running systemd. Prints "unit: N passed, N failed".
set -u
bin=$(cd "$1" && pwd) man=$(cd "$2" && pwd)
if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "unit: systemd-analyze missing (apt-get install systemd): skipped"
    exit 0
fi
tmp=$(mktemp -d /tmp/nudge-unit.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
sed "s|/usr/bin/nudged|$bin/nudged|" broker/dist/nudged.service >"$tmp/nudged.service"
pass=0 fail=0
out=$(MANPATH=$man systemd-analyze verify "$tmp/nudged.service" 2>&1)
if [ $? = 0 ] && [ -z "$out" ]; then pass=$((pass + 1)); else
    echo "unit: systemd-analyze verify: $out"
    fail=$((fail + 1))
fi
out=$(systemd-analyze security --offline=yes --threshold=20 "$tmp/nudged.service" 2>&1)
if [ $? = 0 ]; then pass=$((pass + 1)); else
    printf 'unit: systemd-analyze security: exposure above 2.0:\n%s\n' "$(printf '%s\n' "$out" | grep -e '✗' -e Overall)"
    fail=$((fail + 1))
fi
printf '%s\n' "$out" | grep Overall | sed 's/^→ */unit: /'
echo "unit: $pass passed, $fail failed"
[ "$fail" = 0 ]
