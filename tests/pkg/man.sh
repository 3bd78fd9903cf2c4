#!/bin/sh
# man.sh BINDIR MANDIR — the man pages and the sample config say what the binaries take:
#   - nudged.8 and nudge.1 render with groff without a warning (-ww);
#   - every option `nudged --help` names is in nudged.8 and in broker/dist/nudged.conf (as a
#     `# key` or `key` line), but for the command-line-only ones;
#   - every command `nudge --help` lists has a section in nudge.1, and every option of
#     `nudge COMMAND --help` is in it;
#   - the sample config's commented-out examples, uncommented, pass nudged --check-config.
# Prints one line per problem and "man: N passed, N failed". Run from the repository's root.
set -u
bin=$1 man=$2
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "man: $*"; fail=$((fail + 1)); }
# Options as a man page writes them (\-\-flag), as plain words.
page_opts() { sed 's/\\-/-/g' "$1" | grep -o -- '--[a-z][a-z0-9-]*' | sort -u; }
help_opts() { "$bin/$@" 2>&1 | grep -o -- '--[a-z][a-z0-9-]*' | sort -u; }

for p in "$man/man8/nudged.8" "$man/man1/nudge.1"; do
    w=$(groff -man -Tutf8 -ww -z "$p" 2>&1)
    if [ -s "$p" ] && [ -z "$w" ]; then ok; else bad "$p: missing or groff warns: $w"; fi
done

inpage=$(page_opts "$man/man8/nudged.8")
for o in $(help_opts nudged --help); do
    if printf '%s\n' "$inpage" | grep -qx -- "$o"; then ok; else bad "nudged.8 lacks $o"; fi
    case $o in
    --help | --version | --config | --check-config) continue ;;
    esac
    k=${o#--}
    if grep -Eq "^(# )?$k( |$)" broker/dist/nudged.conf; then ok; else
        bad "broker/dist/nudged.conf lacks $k"
    fi
done

# The sample config's commented examples are values nudged accepts: uncommented (paths to files
# left out but a token secret, which --public needs), `nudged --check-config` takes them.
if "$bin/nudged" --help | grep -q -- '--check-config'; then
    tmp=$(mktemp -d /tmp/nudge-man.XXXXXX)
    head -c 48 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$tmp/secret"
    keys=$(help_opts nudged --help | sed 's/^--//')
    grep -E '^# [a-z-]+( |$)' broker/dist/nudged.conf | sed 's/^# //' | while read -r k v; do
        printf '%s\n' "$keys" | grep -qx -- "$k" || continue
        case $v in /*) continue ;; esac
        [ "$k" = tls-listeners ] && continue
        printf '%s %s\n' "$k" "$v"
    done >"$tmp/all.conf"
    echo "token-secret-file $tmp/secret" >>"$tmp/all.conf"
    if out=$("$bin/nudged" --check-config "$tmp/all.conf" 2>&1); then ok; else
        bad "broker/dist/nudged.conf's examples, uncommented, are refused: $(printf '%s\n' "$out" | grep -v 'warn:')"
    fi
    rm -rf "$tmp"
fi

inpage=$(page_opts "$man/man1/nudge.1")
cmds=$("$bin/nudge" --help | awk '/^Commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 } on && /^$/ { on = 0 }')
[ -n "$cmds" ] || bad "nudge --help lists no command"
for c in $cmds; do
    if grep -q "^\.SS nudge $c\$" "$man/man1/nudge.1"; then ok; else bad "nudge.1 has no section for nudge $c"; fi
    for o in $(help_opts nudge "$c" --help); do
        if printf '%s\n' "$inpage" | grep -qx -- "$o"; then ok; else bad "nudge.1 lacks $o (nudge $c)"; fi
    done
done

echo "man: $pass passed, $fail failed"
[ "$fail" = 0 ]
