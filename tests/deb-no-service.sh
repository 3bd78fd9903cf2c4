#!/bin/sh
# tests/deb-no-service.sh COMMAND PACKAGE SERVICE WHY: for `make deps-test`. When COMMAND is
# missing, install Debian's PACKAGE (no recommends) without letting its postinst start SERVICE
# (a policy-rc.d that forbids starting services, ours only while apt-get runs), and keep that
# service from starting at boot: the tests start their own servers, on free loopback ports.
# Not root: say what to run and fail.
cmd=$1 pkg=$2 svc=$3 why=$4
command -v "$cmd" >/dev/null 2>&1 && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "deps-test: $cmd missing; as root run: apt-get install --no-install-recommends $pkg" \
    "(then: systemctl disable --now $svc)"
  exit 1
fi
echo "deps-test: installing $pkg ($why; its service is not started)"
rc=/usr/sbin/policy-rc.d own=
if [ ! -e $rc ]; then printf '#!/bin/sh\nexit 101\n' >$rc && chmod 755 $rc && own=1; fi
apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
  --no-install-recommends "$pkg" >/dev/null
ok=$?
[ -n "$own" ] && rm -f $rc
[ $ok = 0 ] || exit 1
update-rc.d "$svc" disable >/dev/null 2>&1 || true
if [ -d /run/systemd/system ]; then systemctl disable "$svc" >/dev/null 2>&1 || true; fi
exit 0
