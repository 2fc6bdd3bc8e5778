#!/bin/sh
# Probe-site costs of stap-sdt's sdt.h next to SystemTap's <sys/sdt.h>, on
# this machine, in one run:
#   1. disabled probes (no tracer): a loop without probe, with a probe, with
#      a semaphore-guarded probe, and with the opt-in cheap site;
#   2. attached probes: a real uprobe (tracefs uprobe_events, in a private
#      tracing instance) on <sys/sdt.h>'s site, on ours, and on our cheap
#      site's 5-byte nop (which the kernel can optimise into a CALL).
# Each figure is the best of $REPEAT interleaved rounds (the machine is
# shared). The
# uprobe hit counts are checked against uprobe_profile.
#
# Usage: benches/header_bench.sh   (part 2 needs root, tracefs, jq, objdump)
#   DISABLED_N=200000000 ATTACHED_N=300000 REPEAT=9 benches/header_bench.sh
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
ours="$root/sdt-header/include"
DISABLED_N=${DISABLED_N:-200000000}
ATTACHED_N=${ATTACHED_N:-300000}
REPEAT=${REPEAT:-9}
CC=${CC:-gcc}
work=$(mktemp -d /tmp/header-bench.XXXXXX)
tracefs=/sys/kernel/tracing
group="sdtbench_$$"
instance="$tracefs/instances/$group"
events=""

cleanup() {
    for e in $events; do
        [ -e "$instance/events/$group/$e/enable" ] && echo 0 >"$instance/events/$group/$e/enable" || true
        echo "-:$group/$e" >>"$tracefs/uprobe_events" 2>/dev/null || true
    done
    [ -d "$instance" ] && rmdir "$instance" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

build() { # name, extra flags...
    name=$1; shift
    $CC -O2 "$@" "$here/header/bench.c" -o "$work/$name"
}

# rounds N PROGRAM... -> "PROGRAM ns" lines, the best of $REPEAT rounds;
# each round runs every program once, so drift on the shared machine hits
# all of them alike.
rounds() {
    n=$1; shift
    for _ in $(seq "$REPEAT"); do
        for p in "$@"; do
            echo "$p $("$p" "$n" 2>/dev/null)"
        done
    done | sort -k1,1 -k2,2g | awk '$1 != last { print; last = $1 }' >"$work/results"
}
result() { awk -v p="$1" '$1 == p { print $2 }' "$work/results"; }

label() { # program name -> table label
    case $1 in
        sys_plain) echo "<sys/sdt.h> probe (nop)" ;;
        ours_plain) echo "sdt.h probe (nop)" ;;
        sys_sem) echo "<sys/sdt.h> probe + semaphore test" ;;
        ours_sem) echo "sdt.h probe + STAP_PROBE_ENABLED" ;;
        ours_cheap) echo "sdt.h cheap site (nop; lea; nop5; lea)" ;;
        ours_cheap_on_nop) echo "sdt.h cheap site, on its nop" ;;
        ours_cheap_nop5) echo "sdt.h cheap site, on its nop5" ;;
    esac
}

ratio() { echo "$1 $2" | awk '{ printf "%.2f", $1 / $2 }'; }

build none -DPROBE=0
build sys_plain
build sys_sem -DSEMAPHORE_SYSTEMTAP
build ours_plain -I"$ours"
build ours_sem -I"$ours" -DSEMAPHORE_OURS
build ours_cheap -I"$ours" -DSTAP_SDT_CHEAP_SITE=1

echo "== disabled probes: ns per loop iteration (N=$DISABLED_N, best of $REPEAT rounds, $CC -O2)"
rounds "$DISABLED_N" "$work/none" "$work/sys_plain" "$work/ours_plain" "$work/sys_sem" "$work/ours_sem" "$work/ours_cheap"
base=$(result "$work/none")
printf '%-46s %8s %8s\n' "build" "ns/iter" "vs none"
printf '%-46s %8s %8s\n' "no probe" "$base" "1.00"
for b in sys_plain ours_plain sys_sem ours_sem ours_cheap; do
    t=$(result "$work/$b")
    printf '%-46s %8s %8s\n' "$(label "$b")" "$t" "$(ratio "$t" "$base")"
done

# What a disabled site costs, instruction by instruction: step() of each build.
if command -v objdump >/dev/null; then
    echo "== disabled probe sites: the instructions of step() (objdump -d)"
    for b in none sys_plain ours_plain sys_sem ours_sem ours_cheap; do
        printf '%-12s' "$b"
        objdump -d --no-show-raw-insn "$work/$b" |
            awk '/<step>:/ { on = 1; next } on && /^$/ { exit } on { sub(/^ *[0-9a-f]+:\t/, ""); gsub(/ +/, " "); printf "%s; ", $0 }'
        echo
    done
fi

if [ "$(id -u)" != 0 ] || [ ! -w "$tracefs/uprobe_events" ]; then
    echo "== attached probes: skipped (needs root and $tracefs)"
    exit 0
fi
mkdir "$instance"

# attach EVENT PROGRAM OFFSET: a uprobe enabled in our private instance
attach() {
    echo "p:$group/$1 $2:$3" >>"$tracefs/uprobe_events"
    events="$events $1"
    echo 1 >"$instance/events/$group/$1/enable"
}

# hits EVENT BINARY: uprobe_profile names events without their group, so
# the binary tells ours from another job's event of the same name.
hits() { awk -v e="$1" -v b="$2" '$1 == b && ($2 == e || $2 == "'"$group"'/"e) { print $3 }' "$tracefs/uprobe_profile"; }

stap_sdt=${STAP_SDT:-}
if [ -z "$stap_sdt" ]; then
    stap_sdt=$(command -v stap-sdt || true)
    [ -z "$stap_sdt" ] && stap_sdt="${CARGO_TARGET_DIR:-$root/target}/release/stap-sdt"
fi
[ -x "$stap_sdt" ] || { echo "build stap-sdt first: cargo build --release (or set STAP_SDT)" >&2; exit 1; }
command -v jq >/dev/null || { echo "the uprobe half needs jq" >&2; exit 1; }
off() { "$stap_sdt" list --json "$1" | jq -r '.objects[0].probes[] | select(.name == "hit") | .locations[0].file_offset'; }

sys_off=$(off "$work/sys_plain")
ours_off=$(off "$work/ours_plain")
cheap_off=$(off "$work/ours_cheap")
# The cheap site: nop (the note's pc), lea -128(%rsp),%rsp (5 bytes), nop5.
nop5_off=$((cheap_off + 6))
bytes=$(od -An -tx1 -j "$nop5_off" -N5 "$work/ours_cheap" | tr -d ' \n')
[ "$bytes" = 0f1f440000 ] || { echo "error: no nop5 at the cheap site ($bytes)" >&2; exit 1; }

# The two uprobes on the cheap site need two inodes: two copies.
cp "$work/ours_cheap" "$work/ours_cheap_on_nop"
cp "$work/ours_cheap" "$work/ours_cheap_nop5"
attach sys "$work/sys_plain" "$sys_off"
attach ours "$work/ours_plain" "$ours_off"
attach cheapnop "$work/ours_cheap_on_nop" "$cheap_off"
attach cheapnop5 "$work/ours_cheap_nop5" "$nop5_off"
rounds "$ATTACHED_N" "$work/sys_plain" "$work/ours_plain" "$work/ours_cheap_on_nop" "$work/ours_cheap_nop5"
for pair in sys:sys_plain ours:ours_plain cheapnop:ours_cheap_on_nop cheapnop5:ours_cheap_nop5; do
    e=${pair%%:*}
    h=$(hits "$e" "$work/${pair#*:}")
    if [ "$h" != $((ATTACHED_N * REPEAT)) ]; then
        echo "error: uprobe $e: $h hits, expected $((ATTACHED_N * REPEAT))" >&2
        exit 1
    fi
done
t_sys=$(result "$work/sys_plain")
echo "== attached probes: ns per hit with a tracefs uprobe (N=$ATTACHED_N hits, best of $REPEAT rounds, kernel $(uname -r); hit counts checked)"
printf '%-46s %8s %8s\n' "site" "ns/hit" "vs sys"
printf '%-46s %8s %8s\n' "$(label sys_plain), uprobe" "$t_sys" "1.00"
for b in ours_plain ours_cheap_on_nop ours_cheap_nop5; do
    t=$(result "$work/$b")
    printf '%-46s %8s %8s\n' "$(label "$b"), uprobe" "$t" "$(ratio "$t" "$t_sys")"
done
