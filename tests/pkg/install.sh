#!/bin/sh
# install.sh — `make install` into a scratch PREFIX (and DESTDIR staging) puts every file where
# docs/operations.md says, libnudge.so carries its soname, a program builds against the installed
# copy through nudge.pc (shared, and static with --static) and runs, and `make uninstall`
# leaves nothing behind. Prints "install: N passed, N failed". Run from the repository's root.
set -u
tmp=$(mktemp -d /tmp/nudge-install.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
check() {
    what=$1
    shift
    if "$@" >/dev/null 2>&1; then pass=$((pass + 1)); else
        echo "install: FAIL: $what"
        fail=$((fail + 1))
    fi
}
p=$tmp/prefix
make --no-print-directory install PREFIX="$p" >"$tmp/make.log" 2>&1 || {
    tail -20 "$tmp/make.log"
    echo "install: 0 passed, 1 failed"
    exit 1
}
version=$(sed -n 's/^#define NUDGE_VERSION "\(.*\)"$/\1/p' protocol/version.h)
for f in bin/nudged bin/nudge lib/libnudge.a "lib/libnudge.so.$version" lib/libnudge.so.0 \
    lib/libnudge.so include/nudge.h include/nudge/wire.h include/nudge/pub.h include/nudge/sub.h \
    lib/pkgconfig/nudge.pc share/man/man8/nudged.8 share/man/man1/nudge.1; do
    check "$f installed" test -e "$p/$f"
done
check "libnudge.so's soname is libnudge.so.0" sh -c "objdump -p '$p/lib/libnudge.so' | grep -q 'SONAME *libnudge.so.0\$'"
export PKG_CONFIG_PATH="$p/lib/pkgconfig"
check "nudge.pc says version $version" test "$(pkg-config --modversion nudge)" = "$version"
cat >"$tmp/app.c" <<'C'
#include <stdio.h>
#include <nudge.h>
int main(void)
{
    printf("%s %s\n", nudge_version(), nudge_strerror(NUDGE_ETIMEOUT));
    return 0;
}
C
want="$version timed out"
check "a program builds with pkg-config --cflags --libs nudge and runs on libnudge.so.0" sh -c \
    "cc -std=c11 '$tmp/app.c' -o '$tmp/app' \$(pkg-config --cflags --libs nudge) &&
     [ \"\$(LD_LIBRARY_PATH='$p/lib' '$tmp/app')\" = '$want' ] &&
     objdump -p '$tmp/app' | grep -q 'NEEDED *libnudge.so.0\$'"
check "a program links libnudge.a with pkg-config --static and runs" sh -c \
    "cc -std=c11 '$tmp/app.c' -o '$tmp/app-static' \$(pkg-config --cflags nudge) \
       -Wl,-Bstatic -lnudge -Wl,-Bdynamic \$(pkg-config --static --libs nudge | sed 's/-lnudge//') &&
     [ \"\$('$tmp/app-static')\" = '$want' ] && ! objdump -p '$tmp/app-static' | grep -q libnudge"
check "installed nudged and nudge print the version" sh -c \
    "[ \"\$('$p/bin/nudged' --version)\" = 'nudged $version' ] && [ \"\$('$p/bin/nudge' --version)\" = 'nudge $version' ]"
check "MANPATH finds the installed pages" sh -c "MANPATH='$p/share/man' man -w nudged | grep -q '$p'"

d=$tmp/stage
make --no-print-directory install install-systemd DESTDIR="$d" PREFIX=/usr/local >"$tmp/make.log" 2>&1
check "DESTDIR stages under its root, paths as for PREFIX" test -x "$d/usr/local/bin/nudged"
check "install-systemd: the unit runs PREFIX's nudged with /etc/nudge/nudged.conf" grep -qx \
    'ExecStart=/usr/local/bin/nudged --config /etc/nudge/nudged.conf' "$d/etc/systemd/system/nudged.service"
check "install-systemd: the sample config" cmp "$d/etc/nudge/nudged.conf" broker/dist/nudged.conf

make --no-print-directory uninstall PREFIX="$p" >"$tmp/make.log" 2>&1
check "make uninstall leaves no file" sh -c "[ -z \"\$(find '$p' -type f -o -type l)\" ]"
echo "install: $pass passed, $fail failed"
[ "$fail" = 0 ]
