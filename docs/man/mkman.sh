#!/bin/sh
# mkman.sh TEMPLATE BINDIR VERSION > PAGE — fill a man page template (nudged.8.in, nudge.1.in)
# from the programs' own --help, so the options a page lists are the ones the binary takes.
#   @VERSION@          -> VERSION
#   .\" help: CMD ARGS  -> the options of `BINDIR/CMD ARGS` (its --help), as .SS/.TP entries
# A help text's option lines ("  -x, --flag ARG   text") become .TP entries, their indented
# continuation lines join the text; an unindented line ending in ':' that heads options becomes
# a .SS subsection ("Options:" itself does not). Anything else (usage, examples) is left out:
# the template says it in prose.
set -eu
tpl=$1 bindir=$2 version=$3

conv() {
    awk '
    function esc(s) { gsub(/\\/, "\\e", s); return s }
    function flags(s,   n, w, i, out, t) {
        n = split(s, w, " "); out = ""
        for (i = 1; i <= n; i++) {
            t = esc(w[i]); sub(/,$/, "", t)
            if (t ~ /^-/) { gsub(/-/, "\\-", t); t = "\\fB" t "\\fR" }
            else t = "\\fI" t "\\fR"
            out = out (i > 1 ? " " : "") t (w[i] ~ /,$/ ? "," : "")
        }
        return out
    }
    function text(s) {
        gsub(/[ \t]+/, " ", s); sub(/^ /, "", s); sub(/ $/, "", s)
        s = esc(s)
        # options named in the text are options: a minus sign, not a hyphen
        while (match(s, /(^|[ (\x27])--?[a-z]/)) {
            pre = substr(s, 1, RSTART - 1); m = substr(s, RSTART, RLENGTH); post = substr(s, RSTART + RLENGTH)
            sub(/--/, "\\-\\-", m); if (m !~ /\\-\\-/) sub(/-/, "\\-", m)
            done = done pre m; s = post
        }
        s = done s; done = ""
        if (s ~ /^[.\x27]/) s = "\\&" s
        return s
    }
    function flush() { if (body != "") print text(body); body = "" }
    /^  -/ {
        flush(); line = substr($0, 3)
        if (match(line, /  +/)) { spec = substr(line, 1, RSTART - 1); body = substr(line, RSTART + RLENGTH) }
        else {
            # one space before the text: the spec is the options and their UPPER-CASE arguments
            n = split(line, w, " "); spec = w[1]; body = ""
            for (i = 2; i <= n && (w[i] ~ /^-/ || w[i] ~ /^[A-Z][A-Z0-9:=_.]*,?$/); i++) spec = spec " " w[i]
            for (; i <= n; i++) body = body " " w[i]
        }
        if (head != "") { print ".SS " text(head); head = "" }
        print ".TP"; print flags(spec); inopt = 1; next
    }
    /^    / && inopt { body = body " " $0; next }
    /^[^ ].*:$/ {
        flush(); inopt = 0; h = $0; sub(/:$/, "", h)
        head = (h ~ /^[Oo]ptions$/) ? "" : toupper(substr(h, 1, 1)) substr(h, 2); next
    }
    { flush(); inopt = 0 }
    END { flush() }
    '
}

while IFS= read -r l; do
    case $l in
    '.\" help: '*)
        cmd=${l#'.\" help: '}
        # shellcheck disable=SC2086 # the command line is words on purpose
        set -- $cmd
        p=$1
        shift
        "$bindir/$p" "$@" | conv
        ;;
    *) printf '%s\n' "$l" | sed "s/@VERSION@/$version/g" ;;
    esac
done <"$tpl"
