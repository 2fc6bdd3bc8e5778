#!/usr/bin/env bash
# stap-sdt trace --in-process beside the kernel backend, on the same
# cheap-site fixture (STAP_SDT_CHEAP_SITE), in the same run, with ratios:
#
#  1. --count: per hit, kernel (BPF on the uprobe the kernel optimises into
#     a call at the 5-byte nop) vs in process (the agent's counting stub);
#  2. --json of two integer arguments: per hit, records delivered and lost
#     (each tool's own exact count);
#  3. --json --str 0 of one string argument: the same.
#
# The in-process --json rows get a ring that holds every record of the run
# (--buffer-pages), so that each hit writes a record that is delivered.
#
# usage: benches/inprocess_bench.sh [HITS] [REPEATS]
# HITS and REPEATS may also come from the environment (defaults 1000000, 3);
# PROFILE=debug uses target/debug's binaries (the agent is optimised in
# both profiles: see [profile.dev.package.inproc-agent]). The kernel rows
# need root; run unprivileged, only the in-process rows are measured.
#
# The target times its own loop in its thread's CPU time
# (CLOCK_THREAD_CPUTIME_ID: the kernel's uprobe work is charged to the
# thread too, and time spent waiting for a CPU is not, which on a shared
# machine is most of a wall-clock figure), so attach and detach are not
# counted: per hit = (traced loop - untraced loop) / HITS. Every mode
# runs once per round, REPEATS rounds, and the fastest run of each is kept
# (the machine is shared: ratios within one run are the figures to quote).
set -euo pipefail

HITS=${1:-${HITS:-1000000}}
REPEATS=${2:-${REPEATS:-3}}
PROFILE=${PROFILE:-release}
case ${1:-} in -h | --help) sed -n '2,26p' "$0"; exit 0 ;; esac

root=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
flag=--release
[[ $PROFILE == release ]] || flag=
cargo build $flag -q --manifest-path "$root/Cargo.toml" --bin stap-sdt
cargo build $flag -q --manifest-path "$root/Cargo.toml" -p inproc-agent
SDT=$CARGO_TARGET_DIR/$PROFILE/stap-sdt
KERNEL=yes
[[ $(id -u) == 0 ]] || { KERNEL=no; echo "# not root: kernel backend rows skipped"; }

work=$(mktemp -d /tmp/inprocess_bench.XXXXXX)
# shellcheck source=benches/rounds.sh
source "$root/benches/rounds.sh"
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

T=$work/bench_target
gcc -O2 -I"$root/sdt-header/include" -DSTAP_SDT_CHEAP_SITE=1 \
    -DBENCH_CLOCK=CLOCK_THREAD_CPUTIME_ID -o "$T" "$root/benches/bench_target.c"
# The whole output first: `grep -q` ends at the first match, and a tracer
# still writing then fails on the closed pipe (pipefail).
"$SDT" trace --in-process --json --str 0 -c "$T 2 str" "$T:bench:str" >"$work/check" 2>/dev/null
grep -q '"args":\["hello, tracing"\]' "$work/check" ||
    { echo "--in-process --str 0 does not print the string:"; cat "$work/check"; exit 1; }

lost_of() { { grep -ao '[0-9]* events lost' "$work/err" || echo 0; } | awk '{print $1}' >"$work/lost"; }
count_of() { sed -n "s/^@count\[bench:$1\]: //p" "$work/out" >"$work/delivered"; }
json() { # MODE-FLAGS... -- TARGET-ARGS...
    local flags=()
    while [[ $1 != -- ]]; do flags+=("$1"); shift; done
    shift
    "$SDT" trace "${flags[@]}" --json -c "$T $HITS $*" "$T:bench:${probe}" 2>"$work/err" |
        grep -c '^{' >"$work/delivered" || true
    lost_of
}
m_untraced() { "$T" "$HITS" 2>"$work/err"; }
m_untraced_str() { "$T" "$HITS" str 2>"$work/err"; }
m_kernel_count() { "$SDT" trace --count -c "$T $HITS" "$T:bench:hit" >"$work/out" 2>"$work/err"; count_of hit; }
m_inproc_count() { "$SDT" trace --in-process --count -c "$T $HITS" "$T:bench:hit" >"$work/out" 2>"$work/err"; count_of hit; }
m_kernel_json() { probe=hit json --; }
# The in-process ring holds every record of a run (~72 bytes each), so the
# per-hit figure is that of a record written and delivered, not dropped.
RING_PAGES=$(python3 -c "n = $HITS * 96 // 4096 + 1; print(1 << (n - 1).bit_length())")
m_inproc_json() { probe=hit json --in-process --buffer-pages "$RING_PAGES" --; }
m_kernel_json_str() { probe=str json --str 0 -- str; }
m_inproc_json_str() { probe=str json --in-process --buffer-pages "$RING_PAGES" --str-max 64 --str 0 -- str; }

modes=(untraced inproc_count inproc_json untraced_str inproc_json_str)
[[ $KERNEL == yes ]] && modes+=(kernel_count kernel_json kernel_json_str)
echo "# $HITS hits, fastest of $REPEATS rounds; kernel $(uname -r); $(nproc) CPUs; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $("$SDT" --version 2>/dev/null | head -1) ($PROFILE, git $(git -C "$root" rev-parse --short HEAD))"
run_rounds "${modes[@]}"

declare -A H
for mode in "${modes[@]}"; do
    case $mode in
    untraced*) ;;
    *_str) H[$mode]=$(per_hit "$mode" untraced_str) ;;
    *) H[$mode]=$(per_hit "$mode" untraced) ;;
    esac
done
echo
echo "untraced loop: $(python3 -c "print(f'{${BEST[untraced]} / $HITS:.2f}')") ns/iteration"
printf '%-42s %9s %14s %10s %8s\n' mode ns/hit "kernel/inproc" delivered lost
row() { # LABEL INPROC-MODE KERNEL-MODE
    local r=-
    [[ -n ${H[$3]:-} ]] && r=$(ratio "${H[$3]}" "${H[$2]}")
    printf '%-42s %9s %14s %10s %8s\n' "$1 (in process)" "${H[$2]}" "$r" "${DELIVERED[$2]:--}" "${LOST[$2]:--}"
    [[ -n ${H[$3]:-} ]] &&
        printf '%-42s %9s %14s %10s %8s\n' "$1 (kernel)" "${H[$3]}" 1.0x "${DELIVERED[$3]:--}" "${LOST[$3]:--}"
    return 0
}
row "--count" inproc_count kernel_count
row "--json, 2 integer args" inproc_json kernel_json
row "--json --str 0, 1 string arg" inproc_json_str kernel_json_str
echo "delivered + lost = $HITS for every --json row: each tool counts what it dropped"
echo "in process --count ${H[inproc_count]} ns (goal <= 50): $(verdict "${H[inproc_count]}" '<=' 50)"
echo "in process --json ${H[inproc_json]} ns (goal <= 100): $(verdict "${H[inproc_json]}" '<=' 100)"
