#!/bin/sh
# tests/valgrind.sh BUILD_DIR — `make valgrind` runs it as `tests/valgrind.sh build`.
#
# Runs BUILD_DIR/nudged on ephemeral loopback ports under valgrind (full leak check; definite,
# indirect and possible leaks count as errors) with a token secret, a publisher key and an admin
# token, TLS on every listener (a self-signed certificate made with the openssl command), drives
# it with the CLI, every client with its credentials over TLS — two `nudge sub --count 3`
# subscribers (JSON and msgpack) in the background, three `nudge pub`, two HTTPS publishes
# (openssl s_client, one kept-alive connection), one `nudge stats`, a SIGHUP reload of its config
# file and one refused — then sends SIGTERM. Passes only when the subscribers got their 3 hints, the broker exited 0 and
# valgrind reported 0 errors (NUDGE_VALGRIND_KEEP=1 keeps the logs). Every wait is bounded; only processes started here are signalled.
# Prints a one-line verdict (and the valgrind log's tail on failure). Exit 0 = pass.
set -u

B=${1:-build}
NUDGED=$B/nudged
NUDGE=$B/nudge
TMP=$(mktemp -d /tmp/nudge-valgrind.XXXXXX) || exit 1
VG_PID=
SUB1_PID=
SUB2_PID=
SUB3_PID=

cleanup() {
    for p in $SUB1_PID $SUB2_PID $SUB3_PID $VG_PID; do
        kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null
    done
    if [ -n "${NUDGE_VALGRIND_KEEP:-}" ]; then echo "valgrind: files kept in $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
    echo "valgrind: FAIL — $*"
    if [ -s "$TMP/vg.log" ]; then
        echo "---- valgrind log (tail) ----"
        tail -n 60 "$TMP/vg.log"
    fi
    for f in nudged.err sub1.err sub2.err; do
        if [ -s "$TMP/$f" ]; then
            echo "---- $f (tail) ----"
            tail -n 15 "$TMP/$f"
        fi
    done
    exit 1
}

# wait_until SECONDS COMMAND...: run COMMAND every 0.1 s until it succeeds; 1 on timeout.
wait_until() {
    n=$(($1 * 10))
    shift
    while [ "$n" -gt 0 ]; do
        "$@" && return 0
        sleep 0.1
        n=$((n - 1))
    done
    return 1
}

# wait_exit SECONDS PID: 0 once PID is gone, 1 on timeout.
wait_exit() {
    wait_until "$1" sh -c "! kill -0 $2 2>/dev/null"
}

command -v valgrind >/dev/null 2>&1 || fail "valgrind is not installed (apt-get install valgrind)"
[ -x "$NUDGED" ] || fail "$NUDGED not built (make $NUDGED)"
[ -x "$NUDGE" ] || fail "$NUDGE not built (make $NUDGE)"

# ---- credentials: a token secret, a publisher key, an admin token; an HS256 token made with the
# openssl command (base64url of header.claims, HMAC-SHA256), so every client authenticates ----------
b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
command -v openssl >/dev/null 2>&1 || fail "the openssl command is not installed"
printf '%s' 'valgrind-token-secret-0123456789abcdef' >"$TMP/secret"
printf 'vg vg-publisher-key-0123456789\n' >"$TMP/keys"
printf '%s' 'vg-publisher-key-0123456789' >"$TMP/key"
printf '%s' 'vg-admin-token-0123456789' >"$TMP/admin"
hdr=$(printf '{"alg":"HS256","typ":"JWT"}' | b64url)
clm=$(printf '{"sub":"vg","exp":%d,"topics":["vg/a","vg/b","vgw:*"]}' $(($(date +%s) + 3600)) | b64url)
sig=$(printf '%s.%s' "$hdr" "$clm" | openssl dgst -sha256 -hmac 'valgrind-token-secret-0123456789abcdef' -binary | b64url)
printf '%s.%s.%s' "$hdr" "$clm" "$sig" >"$TMP/token"
# A self-signed P-256 certificate for 127.0.0.1 and localhost: both listeners speak TLS.
openssl req -x509 -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -days 1 \
    -subj /CN=localhost -addext 'subjectAltName=IP:127.0.0.1,DNS:localhost' \
    -keyout "$TMP/tls.key" -out "$TMP/tls.crt" >/dev/null 2>&1 || fail "openssl req failed"

printf 'max-subs 100\npublic vgp:*\n' >"$TMP/n.conf"

# ---- broker under valgrind ----------------------------------------------------------------------
valgrind --leak-check=full --show-leak-kinds=definite,indirect,possible \
    --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=99 \
    --track-fds=no --log-file="$TMP/vg.log" \
    "$NUDGED" --pub 127.0.0.1:0 --ws 127.0.0.1:0 --admin 127.0.0.1:0 --http 127.0.0.1:0 --coalesce 'vgw:*=200' \
    --data-dir "$TMP/data" --token-secret-file "$TMP/secret" --pub-keys "$TMP/keys" \
    --admin-token-file "$TMP/admin" --tls-cert "$TMP/tls.crt" --tls-key "$TMP/tls.key" \
    --config "$TMP/n.conf" >"$TMP/nudged.out" 2>"$TMP/nudged.err" &
VG_PID=$!

ready() { grep -q '^nudged ready ' "$TMP/nudged.out" 2>/dev/null || ! kill -0 "$VG_PID" 2>/dev/null; }
wait_until 60 ready || fail "nudged not ready within 60 s under valgrind"
kill -0 "$VG_PID" 2>/dev/null || fail "nudged exited before it was ready"
line=$(grep '^nudged ready ' "$TMP/nudged.out")
PUB=$(echo "$line" | sed -n 's/.* pub=\([^ ]*\).*/\1/p')
WS=$(echo "$line" | sed -n 's/.* ws=\([^ ]*\).*/\1/p')
ADMIN=$(echo "$line" | sed -n 's/.* admin=\([^ ]*\).*/\1/p')
HTTP=$(echo "$line" | sed -n 's/.* http=\([^ ]*\).*/\1/p')
[ -n "$PUB" ] && [ -n "$WS" ] && [ -n "$ADMIN" ] && [ -n "$HTTP" ] || fail "cannot parse ready line: $line"

# ---- two subscribers (JSON and msgpack), 3 hints each -----------------------------------------
"$NUDGE" sub --token-file "$TMP/token" --cafile "$TMP/tls.crt" --url "wss://localhost:${WS##*:}/" --count 3 --timeout 120 vg/a vg/b \
    >"$TMP/sub1.out" 2>"$TMP/sub1.err" &
SUB1_PID=$!
"$NUDGE" sub --token-file "$TMP/token" --msgpack --cafile "$TMP/tls.crt" --url "wss://localhost:${WS##*:}/" --count 3 --timeout 120 vg/a vg/b \
    >"$TMP/sub2.out" 2>"$TMP/sub2.err" &
SUB2_PID=$!
# A wildcard subscriber on a windowed pattern: history, the match trie and a held hint are all
# alive at shutdown, so their cleanup is checked too.
"$NUDGE" sub --token-file "$TMP/token" --cafile "$TMP/tls.crt" --url "wss://localhost:${WS##*:}/" --count 1 --timeout 120 'vgw:*' >"$TMP/sub3.out" 2>"$TMP/sub3.err" &
SUB3_PID=$!
# Both topics confirmed (or the subscriber already gave up).
subscribed() { [ "$(grep -c 'subscribed' "$TMP/$1" 2>/dev/null)" -ge 2 ] || ! kill -0 "$2" 2>/dev/null; }
wait_until 60 subscribed sub1.err "$SUB1_PID" || fail "JSON subscriber not subscribed within 60 s"
wait_until 60 subscribed sub2.err "$SUB2_PID" || fail "msgpack subscriber not subscribed within 60 s"
kill -0 "$SUB1_PID" 2>/dev/null || fail "JSON subscriber exited early: $(cat "$TMP/sub1.err")"
kill -0 "$SUB2_PID" 2>/dev/null || fail "msgpack subscriber exited early: $(cat "$TMP/sub2.err")"
subscribed1() { grep -q 'subscribed' "$TMP/$1" 2>/dev/null || ! kill -0 "$2" 2>/dev/null; }
wait_until 60 subscribed1 sub3.err "$SUB3_PID" || fail "wildcard subscriber not subscribed within 60 s"

# ---- three publishes --------------------------------------------------------------------------
"$NUDGE" pub --key-file "$TMP/key" --cafile "$TMP/tls.crt" --addr "$PUB" --timeout 30 vg/a >"$TMP/pub.out" 2>&1 || fail "nudge pub #1 failed: $(cat "$TMP/pub.out")"
"$NUDGE" pub --key-file "$TMP/key" --cafile "$TMP/tls.crt" --addr "$PUB" --timeout 30 --data '{"by":42,"tags":["x","ü"]}' vg/b >>"$TMP/pub.out" 2>&1 ||
    fail "nudge pub #2 failed: $(cat "$TMP/pub.out")"
"$NUDGE" pub --key-file "$TMP/key" --cafile "$TMP/tls.crt" --addr "$PUB" --timeout 30 --data '[1,2.5,null,true]' vg/a >>"$TMP/pub.out" 2>&1 ||
    fail "nudge pub #3 failed: $(cat "$TMP/pub.out")"

# Two publishes to a windowed topic: the first goes out, the second is still held at SIGTERM.
"$NUDGE" pub --key-file "$TMP/key" --cafile "$TMP/tls.crt" --addr "$PUB" --timeout 30 vgw:1 >>"$TMP/pub.out" 2>&1 || fail "nudge pub vgw:1 failed"
"$NUDGE" pub --key-file "$TMP/key" --cafile "$TMP/tls.crt" --addr "$PUB" --timeout 30 vgw:1 >>"$TMP/pub.out" 2>&1 || fail "nudge pub vgw:1 failed"

# One publish over HTTPS (POST /publish with the key as a bearer token), two requests on one
# kept-alive connection: the HTTP transport's paths are checked for leaks too.
body='{"topics":["vgh:1"],"data":{"via":"http"}}'
req="POST /publish HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer vg-publisher-key-0123456789\r\nContent-Type: application/json\r\nContent-Length: ${#body}\r\n\r\n$body"
{ printf "$req$req"; sleep 10; } | timeout 60 openssl s_client -quiet -no_ign_eof -connect "$HTTP" \
    -CAfile "$TMP/tls.crt" -verify_return_error >"$TMP/http.out" 2>"$TMP/http.err"
grep -q '{"seqs":\[2\]}' "$TMP/http.out" || fail "HTTPS publish failed: $(cat "$TMP/http.out" "$TMP/http.err")"

for s in 1 2; do
    eval "pid=\$SUB${s}_PID"
    wait_exit 60 "$pid" || fail "subscriber $s did not exit after 3 hints within 60 s"
    wait "$pid"
    rc=$?
    [ "$rc" -eq 0 ] || fail "subscriber $s exited $rc"
    n=$(grep -c . "$TMP/sub$s.out")
    [ "$n" -eq 3 ] || fail "subscriber $s printed $n hint lines, expected 3"
done
wait_exit 60 "$SUB3_PID" || fail "wildcard subscriber did not exit after its hint within 60 s"
wait "$SUB3_PID" || fail "wildcard subscriber failed: $(cat "$TMP/sub3.err")"
grep -q '"topic":"vgw:1"' "$TMP/sub3.out" || fail "wildcard subscriber got no vgw:1 hint"
SUB1_PID=
SUB2_PID=
SUB3_PID=

"$NUDGE" stats --token-file "$TMP/admin" --json --addr "$ADMIN" --timeout 30 >"$TMP/stats.out" 2>&1 || fail "nudge stats failed: $(cat "$TMP/stats.out")"
grep -q '"publishes": *7' "$TMP/stats.out" || fail "stats do not show 7 publishes: $(cat "$TMP/stats.out")"

# ---- SIGHUP: a reload that loads (new limits, patterns, keys, certificate), one that does not ----
printf 'max-subs 50\npublic vgq:*\n' >"$TMP/n.conf"
kill -HUP "$VG_PID"
reloaded() { grep -q "SIGHUP: reloaded" "$TMP/nudged.err"; }
wait_until 60 reloaded || fail "no reload within 60 s of SIGHUP"
printf 'max-subs lots\n' >"$TMP/n.conf"
kill -HUP "$VG_PID"
refused() { grep -q "reload refused" "$TMP/nudged.err"; }
wait_until 60 refused || fail "a bad configuration was not refused within 60 s of SIGHUP"

# ---- SIGTERM, exit status, valgrind's verdict -------------------------------------------------
kill -TERM "$VG_PID"
if ! wait_exit 60 "$VG_PID"; then
    kill -KILL "$VG_PID" 2>/dev/null
    wait "$VG_PID" 2>/dev/null
    VG_PID=
    fail "nudged did not exit within 60 s of SIGTERM"
fi
wait "$VG_PID"
rc=$?
VG_PID=
errors=$(grep -o 'ERROR SUMMARY: [0-9]*' "$TMP/vg.log" | tail -n 1 | grep -o '[0-9]*$')
[ -n "$errors" ] || fail "no ERROR SUMMARY in the valgrind log (exit status $rc)"
[ "$rc" -eq 0 ] && [ "$errors" -eq 0 ] ||
    fail "nudged exit status $rc, valgrind errors $errors (99 = valgrind found errors)"
echo "valgrind: PASS — nudged under valgrind, every client authenticated (token, API key, admin token) over TLS (wss, TLS publishers): 2 subscribers x 3 hints + a wildcard subscriber on a coalescing window, 5 publishes (history kept, one hint held at exit), 2 more over HTTPS on one connection, stats, a reload and a refused one (SIGHUP), SIGTERM; exit 0, 0 errors, no leaks"
exit 0
