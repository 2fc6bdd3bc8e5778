#!/usr/bin/env bash
# Per-hit cost of in-kernel aggregation, stap-sdt beside bpftrace in the
# same run: `--count --by pid` vs `@[pid] = count()`, and `latency` vs the
# bpftrace START/END script (`@s[tid] = nsecs` … `hist(nsecs - @s[tid])`).
#
# usage (as root): benches/aggregate_bench.sh [HITS] [REPEATS]
#
# The target times its own loop (CLOCK_MONOTONIC), so attaching is not
# counted: per hit = (traced loop - untraced loop) / HITS. Each mode runs
# REPEATS times, the fastest run is kept (the machine is shared).
set -euo pipefail

HITS=${1:-1000000}
REPEATS=${2:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
cargo build --release -q --manifest-path "$root/Cargo.toml" --bin stap-sdt
SDT=$CARGO_TARGET_DIR/release/stap-sdt
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cat >"$work/agg_target.c" <<'C'
#include <sys/sdt.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    /* "pairs": a START and an END per iteration (n/2 iterations, n hits). */
    int pairs = argc > 2;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    if (pairs)
        for (long i = 0; i < n / 2; i++) {
            DTRACE_PROBE1(agg, start, i);
            DTRACE_PROBE1(agg, done, i);
        }
    else
        for (long i = 0; i < n; i++)
            DTRACE_PROBE2(agg, hit, i, i & 3);
    clock_gettime(CLOCK_MONOTONIC, &b);
    fprintf(stderr, "loop_ns %lld\n",
            (long long)((b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec)));
    return 0;
}
C
gcc -O2 -o "$work/agg_target" "$work/agg_target.c"
T=$work/agg_target

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
            cp "$work/out" "$work/out.$name"
        fi
    done
    BEST[$name]=$best
}
per_hit() { python3 -c "print(f'{max(0, ($1 - $2) / $HITS):.1f}')"; }
ratio() { python3 -c "print(f'{$1 / $2:.2f}x' if $2 > 0 else 'n/a')"; }

echo "# $HITS hits, best of $REPEATS; kernel $(uname -r); $(nproc) CPUs"
run untraced "$T" "$HITS"
run untraced_pairs "$T" "$HITS" pairs
run ours_by_pid "$SDT" trace --count --by pid -c "$T $HITS" "$T:agg:hit"
run bpftrace_by_pid bpftrace -e "usdt:$T:agg:hit { @[pid] = count(); }" -c "$T $HITS"
run ours_by_arg "$SDT" trace --count --by arg1 -c "$T $HITS" "$T:agg:hit"
run bpftrace_by_arg bpftrace -e "usdt:$T:agg:hit { @[arg1] = count(); }" -c "$T $HITS"
run ours_latency "$SDT" latency -c "$T $HITS pairs" "$T:agg:start" "$T:agg:done"
run bpftrace_latency bpftrace -e "usdt:$T:agg:start { @s[tid] = nsecs; }
    usdt:$T:agg:done /@s[tid]/ { @lat = hist(nsecs - @s[tid]); delete(@s[tid]); }" -c "$T $HITS pairs"

# Both saw every hit (a cheaper tracer that drops hits proves nothing).
grep -q ": $HITS\$" "$work/out.ours_by_pid" || { echo "ours_by_pid miscounted:"; cat "$work/out.ours_by_pid"; exit 1; }
grep -q "^count $((HITS / 2))," "$work/out.ours_latency" || { echo "ours_latency miscounted:"; cat "$work/out.ours_latency"; exit 1; }

printf '\n%-28s %10s %10s %14s\n' "mode" "ours ns" "bpftrace" "bpftrace/ours"
for m in by_pid by_arg; do
    o=$(per_hit "${BEST[ours_$m]}" "${BEST[untraced]}")
    b=$(per_hit "${BEST[bpftrace_$m]}" "${BEST[untraced]}")
    printf '%-28s %10s %10s %14s\n' "--count --by ${m#by_}" "$o" "$b" "$(ratio "$b" "$o")"
done
o=$(per_hit "${BEST[ours_latency]}" "${BEST[untraced_pairs]}")
b=$(per_hit "${BEST[bpftrace_latency]}" "${BEST[untraced_pairs]}")
printf '%-28s %10s %10s %14s\n' "latency (per START or END)" "$o" "$b" "$(ratio "$b" "$o")"
