#!/bin/sh
# deb.sh DEB WORKDIR — the Debian package installs on a clean Debian 12 and its nudged serves.
#
# A minbase bookworm made once by debootstrap (WORKDIR/base; its .debs cached in WORKDIR/cache)
# is copied afresh to WORKDIR/root for every run; apt-get installs DEB there, pulling its Depends
# from the mirror this machine's apt uses (the downloaded .debs and package lists are kept in
# WORKDIR/cache for the next run). Then: the files, the nudge user, the conffile and the state
# directory are checked, and nudged is started the way nudged.service would start it -- its
# ExecStart as written in the installed unit, as user nudge, umask 0077, in / -- inside a new
# network namespace (so the packaged default ports are free), since systemd cannot run in a
# chroot. It must print its ready line, take a publish from `nudge pub`, deliver it to a
# `nudge sub`, answer GET /healthz and /stats, reload on SIGHUP (ExecReload), write its data
# directory, and stop cleanly on SIGTERM. Last, apt-get purge removes it all.
#
# Needs root (debootstrap, chroot, mount); skips with a message otherwise. Everything mounted is
# unmounted and every process started is ended, also on failure. Prints "deb: N passed, N failed".
#
# deb.sh --base WORKDIR only makes the base system (make test starts it early, in the background
# and niced, so that its minutes overlap the other suites); a lock makes a run wait for it.
set -u
if [ "$1" = --base ]; then deb=; else deb=$(realpath "$1"); fi
work=$(mkdir -p "$2" && realpath "$2")
if [ "$(id -u)" != 0 ]; then
    echo "deb: skipped: needs root (debootstrap, chroot)"
    exit 0
fi
for t in debootstrap:debootstrap unshare:util-linux ip:iproute2; do
    if ! command -v "${t%%:*}" >/dev/null 2>&1; then
        echo "deb: installing ${t#*:}"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            --no-install-recommends "${t#*:}" >/dev/null || exit 1
    fi
done
# The Debian mirror this machine's apt uses (one-line or deb822 sources), else Debian's own.
mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources \
    2>/dev/null | grep -v '^ *#' | grep -o 'https\?://[^ ]*/debian/\?\( \|$\)' | head -1 | tr -d ' ')
mirror=${NUDGE_DEB_MIRROR:-${mirror:-http://deb.debian.org/debian}}

base=$work/base root=$work/root cache=$work/cache
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() {
    echo "deb: FAIL: $*"
    fail=$((fail + 1))
}
check() { # check WHAT COMMAND...: one test
    what=$1
    shift
    if "$@" >/dev/null 2>&1; then ok; else bad "$what"; fi
}
in_root() { chroot "$root" "$@"; }
# Unmount whatever is mounted under a directory (our proc; debootstrap's, when it was
# interrupted), deepest first; rm never crosses into a mount (--one-file-system) should one stay.
unmount_under() {
    awk -v w="$1/" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r |
        while read -r m; do umount -l "$m" || echo "deb: cannot unmount $m"; done
}
building=
cleanup() {
    if [ -n "$deb" ]; then
        unmount_under "$root"
        rm -rf --one-file-system "$root"
    fi
    if [ -n "$building" ]; then
        unmount_under "$base"
        rm -rf --one-file-system "$base"
    fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

t0=$(date +%s)
exec 9>"$work/base.lock"
flock 9
if [ ! -e "$base/.complete" ]; then
    echo "deb: debootstrap --variant=minbase bookworm from $mirror (once; then reused)"
    building=1
    unmount_under "$base"
    rm -rf --one-file-system "$base"
    mkdir -p "$cache/debootstrap"
    if ! debootstrap --variant=minbase --cache-dir="$cache/debootstrap" bookworm "$base" "$mirror" \
        >"$work/debootstrap.log" 2>&1; then
        tail -20 "$work/debootstrap.log"
        bad "debootstrap"
        exit 1
    fi
    rm -f "$base"/var/cache/apt/archives/*.deb
    touch "$base/.complete"
    building=
fi
flock -u 9
t1=$(date +%s)
if [ -z "$deb" ]; then
    echo "deb: base system ready in $((t1 - t0)) s"
    exit 0
fi

t1=$(date +%s)

unmount_under "$root"
rm -rf --one-file-system "$root"
mkdir "$root"
cp -a "$base/." "$root/"
mount -t proc proc "$root/proc"
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null
# No service starts in a chroot (the policy every Debian chroot builder sets).
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
mkdir -p "$cache/archives" "$cache/lists"
cp -a "$cache/lists/." "$root/var/lib/apt/lists/"
cp "$cache"/archives/*.deb "$root/var/cache/apt/archives/" 2>/dev/null
cp "$deb" "$root/tmp/"
name=$(basename "$deb")
if in_root apt-get update -qq >"$work/apt.log" 2>&1 &&
    DEBIAN_FRONTEND=noninteractive in_root apt-get install -y -q --no-install-recommends \
        "/tmp/$name" >>"$work/apt.log" 2>&1; then ok; else
    tail -20 "$work/apt.log"
    bad "apt-get install $name"
    exit 1
fi
# Keep what was downloaded for the next run (the package itself excepted).
cp -a "$root/var/lib/apt/lists/." "$cache/lists/"
find "$root/var/cache/apt/archives" -name '*.deb' ! -name 'nudge_*' -exec cp {} "$cache/archives/" \;
t2=$(date +%s)

# ---- what the package installed ------------------------------------------------------------
check "dpkg says nudge is installed" sh -c "chroot '$root' dpkg-query -W -f='\${Status}' nudge | grep -qx 'install ok installed'"
for f in /usr/bin/nudged /usr/bin/nudge /lib/systemd/system/nudged.service /etc/nudge/nudged.conf \
    /usr/share/man/man8/nudged.8.gz /usr/share/man/man1/nudge.1.gz /usr/include/nudge.h; do
    check "$f installed" test -s "$root$f"
done
ma=$(in_root sh -c 'ls -d /usr/lib/*-linux-gnu/pkgconfig' | head -1)
check "nudge.pc names the version and its libdir" grep -q "^Version: $(in_root nudged --version | cut -d' ' -f2)\$" "$root$ma/nudge.pc"
check "libnudge.so.0 is known to the dynamic linker (ldconfig trigger)" sh -c "chroot '$root' ldconfig -p | grep -q 'libnudge.so.0 '"
check "/etc/nudge/nudged.conf is a conffile" sh -c "chroot '$root' dpkg-query -W -f='\${Conffiles}' nudge | grep -q '/etc/nudge/nudged.conf '"
check "user nudge exists, a system user with no login shell" sh -c \
    "chroot '$root' getent passwd nudge | awk -F: '\$3 < 1000 && \$7 ~ /nologin/ { ok = 1 } END { exit !ok }'"
check "/var/lib/nudge belongs to nudge, mode 750" sh -c "[ \"\$(chroot '$root' stat -c '%U:%G %a' /var/lib/nudge)\" = 'nudge:nudge 750' ]"
check "the Depends are enough to run nudged and nudge" sh -c "chroot '$root' nudged --version && chroot '$root' nudge --version"

# ---- nudged as nudged.service starts it -----------------------------------------------------
exec_start=$(sed -n 's/^ExecStart=//p' "$root/lib/systemd/system/nudged.service")
prog=${exec_start%% *} args=" ${exec_start#* }"
uid=$(in_root id -u nudge) gid=$(in_root id -g nudge)
echo "deb: starting (as nudge, in a new network namespace):$prog$args"
# One shell in a new network namespace runs the broker and the clients; bounded everywhere.
unshare --net sh -s "$root" "$uid:$gid" "$prog" "$args" "$work" <<'NS' >"$work/serve.log" 2>&1
set -u
root=$1 user=$2 prog=$3 args=$4 work=$5
ip link set lo up
# umask 0077 and / as the unit's UMask= and WorkingDirectory's default
(umask 077; exec chroot --userspec="$user" "$root" $prog $args) >"$work/nudged.out" 2>"$work/nudged.err" &
pid=$!
i=0
until grep -q '^nudged ready' "$work/nudged.out" || [ $i -ge 100 ]; do sleep 0.1; i=$((i + 1)); done
grep '^nudged ready' "$work/nudged.out" || { echo "no ready line"; kill -KILL $pid; exit 1; }
rc=0
chroot --userspec=65534:65534 "$root" nudge sub --count 1 --timeout 10 deb:hello >"$work/sub.out" 2>"$work/sub.err" &
sub=$!
i=0
until grep -q 'subscribed deb:hello' "$work/sub.err" || [ $i -ge 100 ]; do sleep 0.1; i=$((i + 1)); done
chroot --userspec=65534:65534 "$root" nudge pub --timeout 5 --data '{"by":"deb"}' deb:hello || rc=1
wait $sub || rc=1
cat "$work/sub.out"
grep -q '"topic":"deb:hello","seq":1' "$work/sub.out" || { echo "no hint"; rc=1; }
http() { # http PATH: GET on the admin port through bash's /dev/tcp, in the chroot
    chroot --userspec=65534:65534 "$root" timeout 5 bash -c \
        "exec 3<>/dev/tcp/127.0.0.1/7402; printf 'GET $1 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' >&3; cat <&3"
}
http /healthz | tee "$work/healthz.out" | head -1 | grep -q ' 200 ' || { echo "healthz not 200"; rc=1; }
chroot --userspec=65534:65534 "$root" timeout 5 nudge stats --json >"$work/stats.out" || rc=1
grep -q '"publishes": *1[,}]' "$work/stats.out" || { echo "stats: not 1 publish"; rc=1; }
# ExecReload= (kill -HUP): the config file is read again, and nudged goes on serving.
kill -HUP $pid
i=0
until grep -q 'SIGHUP: reloaded' "$work/nudged.err" || [ $i -ge 50 ]; do sleep 0.1; i=$((i + 1)); done
grep -q 'SIGHUP: reloaded' "$work/nudged.err" || { echo "no reload on SIGHUP"; rc=1; }
http /healthz | head -1 | grep -q ' 200 ' || { echo "healthz not 200 after the reload"; rc=1; }
kill -TERM $pid
i=0
# (within the default --drain-deadline, 30 s, as systemd's TimeoutStopSec=60s allows)
while kill -0 $pid 2>/dev/null && [ $i -lt 400 ]; do sleep 0.1; i=$((i + 1)); done
if kill -0 $pid 2>/dev/null; then echo "still running 40 s after SIGTERM"; kill -KILL $pid; rc=1; fi
wait $pid || { echo "nudged exited $?"; rc=1; }
exit $rc
NS
if [ $? = 0 ]; then ok; else
    cat "$work/serve.log"
    tail -20 "$work/nudged.err"
    bad "the installed nudged serves (publish, subscribe, /healthz, /stats, SIGHUP, clean stop)"
fi
check "nudged kept its data in /var/lib/nudge, owned by nudge" sh -c \
    "[ \"\$(chroot '$root' stat -c %U /var/lib/nudge/EPOCH)\" = nudge ]"

# ---- purge ----------------------------------------------------------------------------------
DEBIAN_FRONTEND=noninteractive in_root apt-get purge -y -q nudge >>"$work/apt.log" 2>&1
check "apt-get purge removes the binaries, the conffile and the data" sh -c \
    "[ ! -e '$root/usr/bin/nudged' ] && [ ! -e '$root/etc/nudge/nudged.conf' ] && [ ! -e '$root/var/lib/nudge' ]"
t3=$(date +%s)

echo "deb: base system $((t1 - t0)) s, install $((t2 - t1)) s, checks and serve $((t3 - t2)) s"
echo "deb: $pass passed, $fail failed"
[ "$fail" = 0 ]
