#!/usr/bin/env bash
# Per-hit cost of `stap-sdt trace` beside bpftrace and perf, on one C program
# firing an SDT probe (1-byte NOP site, <sys/sdt.h>) HITS times (also one with
# base+index*scale arguments, which stap-sdt fetches with BPF), and the time
# to attach to and detach from every hotspot probe of libjvm.so.
#
# usage (as root): benches/trace_bench.sh [HITS] [REPEATS] [--no-jvm]
#
# The target times its own loop (CLOCK_MONOTONIC), so attach and detach are
# not counted: per-hit cost = (traced loop - untraced loop) / HITS. Each mode
# runs REPEATS times and the fastest run is kept (the machine is shared).
set -euo pipefail

HITS=${1:-1000000}
REPEATS=${2:-3}
JVM=yes
[[ "${3:-}" == "--no-jvm" ]] && JVM=no
root=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
cargo build --release -q --manifest-path "$root/Cargo.toml" --bin stap-sdt
SDT=$CARGO_TARGET_DIR/release/stap-sdt

work=$(mktemp -d)
cleanup() {
    perf probe -q -d 'probe_bench_target:*' >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

cat >"$work/bench_target.c" <<'C'
#include <sys/sdt.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
long table[8] = {1, -2, 3, -4, 5, -6, 7, -8};
int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    /* "indexed": a probe whose arguments are base+index*scale operands,
     * which stap-sdt fetches with a BPF program. */
    int indexed = argc > 2;
    long *volatile t = table;
    long *tab = t;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    if (indexed)
        for (long i = 0; i < n; i++)
            DTRACE_PROBE2(bench, indexed, tab[i & 7], tab[(i + 3) & 7]);
    else
        for (long i = 0; i < n; i++)
            DTRACE_PROBE2(bench, hit, i, n - i);
    clock_gettime(CLOCK_MONOTONIC, &b);
    fprintf(stderr, "loop_ns %lld\n",
            (long long)((b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec)));
    return 0;
}
C
gcc -O2 -o "$work/bench_target" "$work/bench_target.c"
T=$work/bench_target
offset=$("$SDT" list --json "$T" bench:hit | python3 -c \
    'import json,sys; print(hex(json.load(sys.stdin)["objects"][0]["probes"][0]["locations"][0]["file_offset"]))')

# run NAME CMD...: run REPEATS times, keep the smallest loop_ns; keep the
# stderr of that run for lost-event lines.
declare -A BEST
run() {
    local name=$1; shift
    local best=
    for _ in $(seq "$REPEATS"); do
        "$@" >"$work/out" 2>"$work/err" || { echo "$name failed:"; cat "$work/err"; return 1; }
        local ns
        ns=$(grep -ao 'loop_ns [0-9]*' "$work/err" "$work/out" | head -1 | awk '{print $2}')
        if [[ -z "$best" || "$ns" -lt "$best" ]]; then
            best=$ns
            cp "$work/err" "$work/err.$name"
        fi
    done
    BEST[$name]=$best
}
per_hit() { # ns per hit above the untraced loop, 3 decimals
    python3 -c "print(f'{max(0, ($1 - $2) / $HITS):.3f}')"
}
ratio() { python3 -c "print(f'{$1 / $2:.2f}x' if $2 > 0 else 'n/a')"; }

echo "# $HITS hits, best of $REPEATS; kernel $(uname -r); $(nproc) CPUs"
run untraced "$T" "$HITS"

# The floor: a bare perf counter on a uprobe without arguments, all CPUs.
perf probe -q -x "$T" -a "bare=$offset" >/dev/null
perf probe -q -x "$T" -a "args=$offset a=%ax:s64 b=%dx:s64" >/dev/null
run perf_count perf stat -a -x, -e probe_bench_target:bare -- "$T" "$HITS"
run ours_count "$SDT" trace --count -c "$T $HITS" "$T:bench:hit"
system_wide_count() {
    rm -f "$work/sys.err"
    "$SDT" trace --count "$T:bench:hit" >"$work/sys.out" 2>"$work/sys.err" &
    local tracer=$!
    until grep -q Tracing "$work/sys.err" 2>/dev/null; do sleep 0.05; done
    "$T" "$HITS"
    kill -INT $tracer
    wait $tracer
    grep -q "^@count\[bench:hit\]: $HITS\$" "$work/sys.out" || { echo "system-wide count wrong:"; cat "$work/sys.out"; return 1; }
}
run ours_count_all system_wide_count
run bpftrace_count bpftrace -e "usdt:$T:bench:hit { @c = count(); }" -c "$T $HITS"

run ours_json sh -c "'$SDT' trace --json -c '$T $HITS' '$T:bench:hit' >/dev/null"
run bpftrace_printf sh -c "bpftrace -e 'usdt:$T:bench:hit { printf(\"%d %d\\n\", arg0, arg1); }' -c '$T $HITS' >/dev/null"
run perf_record perf record -q -o "$work/perf.data" -e probe_bench_target:args -- "$T" "$HITS"

# Index-form arguments: ours through a BPF program, bpftrace's own.
"$SDT" list --json "$T" bench:indexed | python3 -c '
import json, sys
args = json.load(sys.stdin)["objects"][0]["probes"][0]["locations"][0]["args"]
if not all(a["operand"].get("index") for a in args):
    sys.exit("bench:indexed: the compiler did not emit index-form operands: %s" % [a["raw"] for a in args])'
run untraced_idx "$T" "$HITS" indexed
run ours_json_idx sh -c "'$SDT' trace --json -c '$T $HITS indexed' '$T:bench:indexed' >/dev/null"
run bpftrace_printf_idx sh -c "bpftrace -e 'usdt:$T:bench:indexed { printf(\"%d %d\\n\", arg0, arg1); }' -c '$T $HITS indexed' >/dev/null"

base=${BEST[untraced]}
floor=$(per_hit "${BEST[perf_count]}" "$base")
printf '\n%-34s %12s %10s\n' "mode" "ns/hit" "vs floor"
for mode in perf_count ours_count ours_count_all bpftrace_count; do
    h=$(per_hit "${BEST[$mode]}" "$base")
    printf '%-34s %12s %10s\n' "$mode" "$h" "$(ratio "$h" "$floor")"
done
ours_json=$(per_hit "${BEST[ours_json]}" "$base")
printf '\n%-34s %12s %14s\n' "mode (2 args to userspace)" "ns/hit" "vs ours --json"
for mode in ours_json bpftrace_printf perf_record; do
    h=$(per_hit "${BEST[$mode]}" "$base")
    printf '%-34s %12s %14s\n' "$mode" "$h" "$(ratio "$h" "$ours_json")"
done
base_idx=${BEST[untraced_idx]}
ours_idx=$(per_hit "${BEST[ours_json_idx]}" "$base_idx")
printf '\n%-34s %12s %14s\n' "mode (2 index-form args)" "ns/hit" "vs ours --json"
for mode in ours_json_idx bpftrace_printf_idx; do
    h=$(per_hit "${BEST[$mode]}" "$base_idx")
    printf '%-34s %12s %14s\n' "$mode" "$h" "$(ratio "$h" "$ours_idx")"
done
echo
echo "lost events:"
echo "  ours_json:       $(grep -h 'events lost' "$work/err.ours_json" || echo 'none reported (0)')"
echo "  ours_json_idx:   $(grep -h 'events lost' "$work/err.ours_json_idx" || echo 'none reported (0)')"
echo "  bpftrace_printf: $(grep -hi 'lost' "$work/err.bpftrace_printf" || echo 'none reported')"
echo "  perf_record:     $(perf report -i "$work/perf.data" --stats 2>/dev/null | grep -i 'LOST' | head -2 | tr -s ' ' || true)$(perf script -i "$work/perf.data" 2>/dev/null | grep -c 'probe_bench_target:args') samples of $HITS"

if [[ $JVM == yes ]]; then
    libjvm=/usr/lib/jvm/java-17-openjdk-amd64/lib/server/libjvm.so
    n=$("$SDT" list --json "$libjvm" 'hotspot*:*' | python3 -c \
        'import json,sys; print(sum(len(p["locations"]) for o in json.load(sys.stdin)["objects"] for p in o["probes"]))')
    echo
    echo "attach to and detach from all $n locations of hotspot*:* in libjvm.so (wall seconds):"
    timed() { local s e; s=$(date +%s%N); "$@" >/dev/null 2>&1; e=$(date +%s%N); python3 -c "print(f'{($e - $s) / 1e9:.1f}')"; }
    printf '  %-40s %s\n' "stap-sdt trace (records)" "$(timed "$SDT" trace --duration 0 "$libjvm:hotspot*:*")"
    printf '  %-40s %s\n' "stap-sdt trace --count" "$(timed "$SDT" trace --count --duration 0 "$libjvm:hotspot*:*")"
    printf '  %-40s %s\n' "bpftrace count() + BEGIN { exit() }" "$(BPFTRACE_MAX_BPF_PROGS=2000 BPFTRACE_MAX_PROBES=2000 timed bpftrace -e "usdt:$libjvm:hotspot*:* { @[probe] = count(); } BEGIN { exit(); }")"
fi
