#!/usr/bin/env bash
# Disabled- and attached-probe cost of sdt-macros next to the `probe` and
# `usdt` crates and <sys/sdt.h>, in one run. From the repository root:
#   benches/macros_bench.sh [ITERATIONS] [ROUNDS]
# Disabled: benches/macros-bench (its own cargo workspace). Attached (root
# only): a uprobe from tracefs `uprobe_events` on each variant's site,
# the loop timed while it fires; the events are removed on exit.
set -euo pipefail
cd "$(dirname "$0")"
iterations=${1:-50000000}
rounds=${2:-7}
attached_iterations=500000
target=${CARGO_TARGET_DIR:-$PWD/../target}/macros-bench
manifest=macros-bench/Cargo.toml
list() { "$target/stap-sdt/debug/stap-sdt" list --json "$@"; }

cargo build -q --release --manifest-path "$manifest" --target-dir "$target/plain"
cargo build -q --release --manifest-path "$manifest" --target-dir "$target/cheap" --features cheap-sites
cargo build -q --manifest-path ../Cargo.toml --bin stap-sdt --target-dir "$target/stap-sdt"
plain=$target/plain/release/macros-bench
cheap=$target/cheap/release/macros-bench

echo "== disabled probes: plain sites (nop)"
"$plain" "$iterations" "$rounds"
echo
echo "== disabled probes: sdt-macros with cheap-sites (nop; lea; nop5; lea)"
"$cheap" "$iterations" "$rounds" | grep -E 'iterations|variant|no probe|sdt-macros'

[ "$(id -u)" = 0 ] || { echo "attached figures need root: skipped"; exit 0; }
tracefs=/sys/kernel/tracing
[ -e $tracefs/uprobe_events ] || mount -t tracefs nodev $tracefs

scratch=$(mktemp -d)
group=sdtmacrosbench
cleanup() {
    for e in $tracefs/events/$group/*/enable; do [ -e "$e" ] && echo 0 > "$e"; done
    grep "^p:$group/" $tracefs/uprobe_events | cut -d' ' -f1 | sed 's/^p:/-:/' |
        while read -r remove; do echo "$remove" >> $tracefs/uprobe_events; done
    rm -rf "$scratch"
}
trap cleanup EXIT
gcc -O2 macros_bench_sdt.c -o "$scratch/sdt-c"
cp "$plain" "$scratch/plain"
# One copy per cheap-site variant: uprobes are keyed by inode, and the
# nop and nop5 events on one file would both fire in each run.
cp "$cheap" "$scratch/cheap-nop"
cp "$cheap" "$scratch/cheap-nop5"

# The uprobe_events location of PROBE's first site in BINARY, DELTA bytes
# on: 0xOFFSET, and (0xSEMAPHORE) when it has one, so that the kernel
# raises the semaphore while the event is on (usdt's sites are behind it).
offset() {
    list "$1" "$2" | python3 -c "
import json, sys
location = json.load(sys.stdin)['objects'][0]['probes'][0]['locations'][0]
semaphore = location['semaphore']
print(hex(location['file_offset'] + $3) + (f\"({hex(semaphore['file_offset'])})\" if semaphore else ''))"
}

# Each variant: LABEL|BINARY|PROBE|DELTA|ARGS. All events are on for the
# whole measurement (each run executes only its own site), and the rounds
# interleave the variants, so a busy neighbour slows all of them alike.
variants=(
    "sys/sdt.h (nop)|$scratch/sdt-c|bench:hit|0|$attached_iterations"
    "sdt-macros probe! (nop)|$scratch/plain|bench:hit|0|--attached sdt $attached_iterations"
    "probe 0.5 probe! (nop)|$scratch/plain|bench:probe_hit|0|--attached probe $attached_iterations"
    "usdt 0.6 (nop)|$scratch/plain|usdt_bench:hit|0|--attached usdt $attached_iterations"
    "sdt-macros cheap site, at the nop|$scratch/cheap-nop|bench:hit|0|--attached sdt $attached_iterations"
    "sdt-macros cheap site, at the nop5|$scratch/cheap-nop5|bench:hit|6|--attached sdt $attached_iterations"
)
declare -a offsets best
for i in "${!variants[@]}"; do
    IFS='|' read -r label bin probe delta args <<< "${variants[$i]}"
    offsets[$i]=$(offset "$bin" "$probe" "$delta")
    echo "p:$group/v$i $bin:${offsets[$i]}" >> $tracefs/uprobe_events
    echo 1 > $tracefs/events/$group/v$i/enable
    best[$i]=inf
done
for round in 1 2 3; do
    for i in "${!variants[@]}"; do
        IFS='|' read -r label bin probe delta args <<< "${variants[$i]}"
        # shellcheck disable=SC2086 # ARGS are words
        ns=$("$bin" $args | sed 's/.*: \([0-9.]*\) ns.*/\1/')
        best[$i]=$(python3 -c "print(min(float('${best[$i]}'), $ns))")
    done
done

echo
echo "== attached: a tracefs uprobe on the site, $attached_iterations iterations, best of 3"
printf '%-36s %-20s %s\n' variant "offset(semaphore)" "ns/iteration"
for i in "${!variants[@]}"; do
    IFS='|' read -r label _ <<< "${variants[$i]}"
    printf '%-36s %-20s %s\n' "$label" "${offsets[$i]}" "${best[$i]}"
done
