#!/usr/bin/env bash
# stap-sdt trace (engine v2: uprobe_multi links, one BPF ring buffer) beside
# its floor and its peers, all in one run, with ratios:
#
#  1. --count per hit on a 1-byte NOP SDT site (<sys/sdt.h>) against the
#     floor, a 2-instruction BPF program (r0 = 0; exit) on a uprobe_multi
#     link at the same site (uprobe-engine/examples/uprobe_floor.rs), and
#     bpftrace count(); with -c (pid-filtered links) and system-wide;
#  2. --json of two integer arguments, and of one string argument, against
#     perf record of the same SDT event and bpftrace printf, with the
#     records each tool delivered and the losses it reported; and the
#     floors of the record's transport: a program that only builds the
#     same 64-byte record and sends it through a BPF ring buffer, or
#     through per-CPU perf buffers (`uprobe_floor -r ringbuf|perfbuf`);
#  3. attach + detach of every hotspot* location of OpenJDK 17's libjvm.so
#     with a JVM running: the floor (one link, same program), stap-sdt trace
#     --count / records, `calls -l java -p` and `events -l java -p`;
#     bpftrace only with --bpftrace-jvm (it takes about a minute);
#  4. peak RSS of each of those tracers.
#
# usage (as root):
#   benches/trace_bench.sh [HITS] [REPEATS] [--no-jvm] [--bpftrace-jvm]
# HITS and REPEATS may also come from the environment (defaults 1000000, 3).
#
# The target times its own loop (CLOCK_MONOTONIC), so attach and detach are
# not counted: per hit = (traced loop - untraced loop) / HITS. Every mode
# runs once per round, REPEATS rounds, and the fastest run of each is kept
# (the machine is shared: ratios within one run are the figures to quote).
set -euo pipefail

HITS=${HITS:-1000000}
REPEATS=${REPEATS:-3}
JVM=yes
BPFTRACE_JVM=no
positional=()
for a in "$@"; do
    case $a in
    --no-jvm) JVM=no ;;
    --bpftrace-jvm) BPFTRACE_JVM=yes ;;
    -h | --help) sed -n '2,28p' "$0"; exit 0 ;;
    -*) echo "unknown option $a" >&2; exit 2 ;;
    *) positional+=("$a") ;;
    esac
done
[[ ${#positional[@]} -ge 1 ]] && HITS=${positional[0]}
[[ ${#positional[@]} -ge 2 ]] && REPEATS=${positional[1]}
[[ $(id -u) == 0 ]] || { echo "run as root" >&2; exit 1; }

root=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
cargo build --release -q --manifest-path "$root/Cargo.toml" --bin stap-sdt
cargo build --release -q --manifest-path "$root/Cargo.toml" -p uprobe-engine --example uprobe_floor
SDT=$CARGO_TARGET_DIR/release/stap-sdt
FLOOR=$CARGO_TARGET_DIR/release/examples/uprobe_floor
TRACEFS=/sys/kernel/tracing
# shellcheck source=benches/rounds.sh
source "$root/benches/rounds.sh"
[[ -d $TRACEFS/events ]] || TRACEFS=/sys/kernel/debug/tracing

work=$(mktemp -d /tmp/trace_bench.XXXXXX)
T=$work/bench_target
pids=() # background processes to end on exit
cleanup() {
    set +e
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    if [[ -f $work/probes_added ]]; then
        echo "-:sdt_bench/str_s" >>"$TRACEFS/uprobe_events" 2>/dev/null
        perf probe -q -d 'sdt_bench:*' >/dev/null 2>&1
        perf buildid-cache --remove "$T" >/dev/null 2>&1
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

gcc -O2 -o "$T" "$root/benches/bench_target.c"
site_offset() { # the file offset of probe $1 (one location, 1-byte NOP)
    "$SDT" list --json "$T" "$1" | python3 -c \
        'import json,sys; print(hex(json.load(sys.stdin)["objects"][0]["probes"][0]["locations"][0]["file_offset"]))'
}
off_hit=$(site_offset bench:hit)
[[ $(objdump -d --start-address=$((off_hit)) --stop-address=$((off_hit + 1)) "$T" | grep -c 'nop$') == 1 ]] ||
    { echo "bench:hit is not a 1-byte nop"; exit 1; }

# perf: the SDT event through perf's own cache (perf probe converts its two
# arguments); perf 6.1 ignores argument specs on SDT events, so the string
# event is perf's line for bench:str with the argument read as a string.
touch "$work/probes_added"
perf buildid-cache --add "$T"
perf probe -q -x "$T" -a sdt_bench:hit >/dev/null 2>&1
perf probe -q -x "$T" -a sdt_bench:str >/dev/null 2>&1
grep -q '^p:sdt_bench/hit .*arg1=.*arg2=' "$TRACEFS/uprobe_events" || { echo "perf probe sdt_bench:hit failed"; exit 1; }
grep '^p:sdt_bench/str ' "$TRACEFS/uprobe_events" |
    sed -E 's#^p:sdt_bench/str #p:sdt_bench/str_s #; s#arg1=([^ ]*):u64#arg1=+0(\1):string#' \
        >>"$TRACEFS/uprobe_events"

# A background tracer system-wide: start it, wait for its ready line, run
# the target, end the tracer with SIGINT.
system_wide() { # READY_PATTERN TARGET_ARGS... -- TRACER...
    local ready=$1; shift
    local targs=()
    while [[ $1 != -- ]]; do targs+=("$1"); shift; done
    shift
    "$@" >"$work/out" 2>"$work/tracer.err" &
    local tracer=$!
    pids+=("$tracer")
    local waited=0
    until grep -q "$ready" "$work/tracer.err" 2>/dev/null; do
        sleep 0.02
        waited=$((waited + 1))
        if ((waited > 1500)) || ! kill -0 $tracer 2>/dev/null; then
            cat "$work/tracer.err" >&2
            return 1
        fi
    done
    "$T" "${targs[@]}" 2>"$work/err"
    kill -INT $tracer
    wait $tracer
    pids=("${pids[@]/$tracer/}")
    cat "$work/tracer.err" >>"$work/err"
}

# Modes: each leaves the target's loop_ns line in $work/err, and what the
# tool delivered in $work/delivered (records, or the count), its reported
# losses in $work/lost.
m_untraced() { "$T" "$HITS" 2>"$work/err"; }
m_untraced_str() { "$T" "$HITS" str 2>"$work/err"; }
m_floor_c() { "$FLOOR" -c "$T $HITS" "$T" "$off_hit" 2>"$work/err"; }
m_floor_all() { system_wide 'floor: attached' "$HITS" -- "$FLOOR" "$T" "$off_hit"; }
m_ours_count_c() {
    "$SDT" trace --count -c "$T $HITS" "$T:bench:hit" >"$work/out" 2>"$work/err"
    sed -n 's/^@count\[bench:hit\]: //p' "$work/out" >"$work/delivered"
}
m_ours_count_all() {
    system_wide Tracing "$HITS" -- "$SDT" trace --count "$T:bench:hit"
    sed -n 's/^@count\[bench:hit\]: //p' "$work/out" >"$work/delivered"
}
m_bpftrace_count() {
    bpftrace -e "usdt:$T:bench:hit { @c = count(); }" -c "$T $HITS" >"$work/out" 2>"$work/err"
    sed -n 's/^@c: //p' "$work/out" >"$work/delivered"
}
ours_lost() { grep -ao '[0-9]* events lost' "$work/err" | awk '{print $1}' >"$work/lost" || echo 0 >"$work/lost"; }
bpftrace_lost() { { grep -aoi 'lost [0-9]* events' "$work/err" || true; } | awk '{s += $2} END {print s + 0}' >"$work/lost"; }
perf_stats() {
    perf report -i "$work/perf.data" --stats 2>/dev/null >"$work/stats" || true
    awk '/^ *SAMPLE events:/ {print $3; exit}' "$work/stats" >"$work/delivered"
    awk '/LOST(_SAMPLES)? events:/ {s += $3} END {print s + 0}' "$work/stats" >"$work/lost"
}
m_ours_json() {
    "$SDT" trace --json -c "$T $HITS" "$T:bench:hit" 2>"$work/err" | grep -c '^{' >"$work/delivered" || true
    ours_lost
}
m_perf_record() {
    perf record -q -o "$work/perf.data" -e sdt_bench:hit -- "$T" "$HITS" 2>"$work/err"
    perf_stats
}
floor_records() {
    sed -n 's/^floor: \([0-9]*\) records read, [0-9]* lost$/\1/p' "$work/err" >"$work/delivered"
    sed -n 's/^floor: [0-9]* records read, \([0-9]*\) lost$/\1/p' "$work/err" >"$work/lost"
}
m_ringbuf_floor() {
    "$FLOOR" -r ringbuf -c "$T $HITS" "$T" "$off_hit" 2>"$work/err"
    floor_records
}
m_perfbuf_floor() {
    "$FLOOR" -r perfbuf -c "$T $HITS" "$T" "$off_hit" 2>"$work/err"
    floor_records
}
m_bpftrace_printf() {
    bpftrace -e "usdt:$T:bench:hit { printf(\"%d %d\\n\", arg0, arg1); }" -c "$T $HITS" 2>"$work/err" |
        grep -c '^[0-9]' >"$work/delivered" || true
    bpftrace_lost
}
m_ours_json_str() {
    "$SDT" trace --json --str 0 -c "$T $HITS str" "$T:bench:str" 2>"$work/err" | grep -c '^{' >"$work/delivered" || true
    ours_lost
}
m_perf_record_str() {
    perf record -q -o "$work/perf.data" -e sdt_bench:str_s -- "$T" "$HITS" str 2>"$work/err"
    perf_stats
}
m_bpftrace_printf_str() {
    bpftrace -e "usdt:$T:bench:str { printf(\"%s\\n\", str(arg0)); }" -c "$T $HITS str" 2>"$work/err" |
        grep -c '^hello' >"$work/delivered" || true
    bpftrace_lost
}

# Check once that each mode sees what it should (a string as a string).
check_str() {
    # Whole outputs into files first: `grep -q` ends at the first match, and
    # a tool still writing then fails on the closed pipe (pipefail).
    "$SDT" trace --json --str 0 -c "$T 3 str" "$T:bench:str" >"$work/check" 2>/dev/null
    grep -q '"args":\["hello, tracing"\]' "$work/check" ||
        { echo "stap-sdt --str 0 does not print the string:"; cat "$work/check"; exit 1; }
    perf record -q -o "$work/perf.data" -e sdt_bench:str_s -- "$T" 3 str 2>/dev/null
    perf script -i "$work/perf.data" >"$work/check" 2>/dev/null
    grep -q 'arg1="hello, tracing"' "$work/check" ||
        { echo "perf's string event does not read the string:"; cat "$work/check"; exit 1; }
}
check_str

modes=(untraced floor_c ours_count_c floor_all ours_count_all bpftrace_count
    ours_json perf_record bpftrace_printf ringbuf_floor perfbuf_floor
    untraced_str ours_json_str perf_record_str bpftrace_printf_str)
echo "# $HITS hits, fastest of $REPEATS rounds; kernel $(uname -r); $(nproc) CPUs; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $("$SDT" --version 2>/dev/null || echo stap-sdt) (git $(git -C "$root" rev-parse --short HEAD)); $(bpftrace --version); perf $(perf version | awk '{print $3}')"
run_rounds "${modes[@]}"

declare -A H
for mode in floor_c ours_count_c floor_all ours_count_all bpftrace_count ours_json perf_record bpftrace_printf \
    ringbuf_floor perfbuf_floor; do
    H[$mode]=$(per_hit "$mode" untraced)
done
for mode in ours_json_str perf_record_str bpftrace_printf_str; do
    H[$mode]=$(per_hit "$mode" untraced_str)
done

echo
echo "## 1. --count, per hit on a 1-byte NOP site (untraced loop: $(python3 -c "print(f'{${BEST[untraced]} / $HITS:.2f}')") ns/iteration)"
printf '%-44s %9s %12s %12s\n' mode ns/hit "vs floor" delivered
row() { printf '%-44s %9s %12s %12s\n' "$1" "${H[$2]}" "$3" "${DELIVERED[$2]:--}"; }
row "floor -c (r0=0; exit, uprobe_multi, pid)" floor_c 1.00x
row "stap-sdt trace --count -c" ours_count_c "$(ratio "${H[ours_count_c]}" "${H[floor_c]}")"
row "floor system-wide" floor_all 1.00x
row "stap-sdt trace --count system-wide" ours_count_all "$(ratio "${H[ours_count_all]}" "${H[floor_all]}")"
row "bpftrace count() -c" bpftrace_count "$(ratio "${H[bpftrace_count]}" "${H[floor_c]}")"
r_c=$(ratio "${H[ours_count_c]}" "${H[floor_c]}")
r_all=$(ratio "${H[ours_count_all]}" "${H[floor_all]}")
r_bt=$(ratio "${H[ours_count_c]}" "${H[bpftrace_count]}")
echo "stap-sdt/floor: ${r_c} with -c, ${r_all} system-wide (goal <= 1.05x): $(verdict "${r_c%x}" '<=' 1.05), $(verdict "${r_all%x}" '<=' 1.05)"
echo "stap-sdt -c/bpftrace: ${r_bt} (goal < 1.00x): $(verdict "${r_bt%x}" '<' 1.0)"

echo
echo "## 2. records to userspace, per hit"
printf '%-44s %9s %10s %10s %7s  %s\n' mode ns/hit "peer/ours" delivered lost "lost, every round"
row2() {
    printf '%-44s %9s %10s %10s %7s  %s\n' "$1" "${H[$2]}" "$(ratio "${H[$2]}" "${H[$3]}")" \
        "${DELIVERED[$2]:--}" "${LOST[$2]:--}" "${LOST_ALL[$2]:--}"
}
row2 "stap-sdt trace --json (2 integer args)" ours_json ours_json
row2 "perf record sdt_bench:hit (2 args)" perf_record ours_json
row2 "bpftrace printf(\"%d %d\")" bpftrace_printf ours_json
row2 "floor: the same record, BPF ring buffer" ringbuf_floor ours_json
row2 "floor: the same record, perf buffers" perfbuf_floor ours_json
row2 "stap-sdt trace --json --str 0 (1 string)" ours_json_str ours_json_str
row2 "perf record, the string (+0(arg):string)" perf_record_str ours_json_str
row2 "bpftrace printf(\"%s\", str(arg0))" bpftrace_printf_str ours_json_str
p=$(ratio "${H[perf_record]}" "${H[ours_json]}")
b=$(ratio "${H[bpftrace_printf]}" "${H[ours_json]}")
ps=$(ratio "${H[perf_record_str]}" "${H[ours_json_str]}")
bs=$(ratio "${H[bpftrace_printf_str]}" "${H[ours_json_str]}")
echo "ints: perf record/stap-sdt ${p} (goal >= 1.3x): $(verdict "${p%x}" '>=' 1.3); bpftrace/stap-sdt ${b} (goal >= 3x): $(verdict "${b%x}" '>=' 3)"
echo "string: perf record/stap-sdt ${ps}, bpftrace/stap-sdt ${bs} (goal > 1x each): $(verdict "${ps%x}" '>' 1), $(verdict "${bs%x}" '>' 1)"
echo "(floors: uprobe_floor -r ringbuf|perfbuf -c: only the record, read by a thread every ms)"
echo "(delivered: records the tool wrote; perf's are its SAMPLE events: in trial runs some"
echo " hits came twice, the same arguments in two samples, so they can exceed HITS)"

[[ $JVM == yes ]] || exit 0

# 3 and 4: a JVM running a class that sleeps; tracers attach to every
# hotspot* location of its libjvm.so and detach.
jhome=$(dirname "$(dirname "$(readlink -f "$(command -v javac)")")")
libjvm=$(find "$jhome" -name libjvm.so -path '*server*' | head -1)
[[ -f $libjvm ]] || { echo "no libjvm.so under $jhome"; exit 1; }
cat >"$work/Sleep.java" <<'J'
public class Sleep {
    public static void main(String[] a) throws Exception {
        System.out.println("ready");
        Thread.sleep(Long.MAX_VALUE);
    }
}
J
"$jhome/bin/javac" -d "$work" "$work/Sleep.java"
"$jhome/bin/java" -cp "$work" Sleep >"$work/jvm.out" 2>&1 &
jpid=$!
pids+=("$jpid")
until grep -q ready "$work/jvm.out" 2>/dev/null; do
    kill -0 $jpid 2>/dev/null || { echo "the JVM did not start:"; cat "$work/jvm.out"; exit 1; }
    sleep 0.05
done
grep -q "$libjvm" "/proc/$jpid/maps" || { echo "the JVM does not map $libjvm"; exit 1; }
mapfile -t jvm_offsets < <("$SDT" list --json "$libjvm" 'hotspot*:*' | python3 -c '
import json, sys
for o in json.load(sys.stdin)["objects"]:
    for p in o["probes"]:
        for l in p["locations"]:
            print(hex(l["file_offset"]) + (":" + hex(l["semaphore_file_offset"]) if l.get("semaphore_file_offset") else ""))')
n=${#jvm_offsets[@]}
if "$SDT" list --json "$libjvm" 'hotspot*:*' | grep -c '"semaphore":[0-9]' >/dev/null; then
    echo "(note: some hotspot probes have semaphores; the floor attaches them without)"
fi

# timed NAME CMD...: wall seconds (fastest of REPEATS) and peak RSS (the
# largest seen) of CMD, its output discarded.
declare -A WALL RSS
timed() {
    local name=$1; shift
    local s e w
    for _ in $(seq "$REPEATS"); do
        s=$(date +%s%N)
        if ! /usr/bin/time -f %M -o "$work/rss" "$@" >/dev/null 2>"$work/jerr"; then
            echo "$name failed:"; cat "$work/jerr"; exit 1
        fi
        e=$(date +%s%N)
        w=$(((e - s) / 1000))
        [[ -z ${WALL[$name]:-} || $w -lt ${WALL[$name]} ]] && WALL[$name]=$w
        local kb
        kb=$(tail -1 "$work/rss")
        [[ -z ${RSS[$name]:-} || $kb -gt ${RSS[$name]} ]] && RSS[$name]=$kb
    done
    if [[ $name == floor* ]]; then
        FLOOR_DETAIL[$name]=$(grep -o 'load+attach.*' "$work/jerr")
    fi
}
declare -A FLOOR_DETAIL
sel="$libjvm:hotspot*:*"
timed floor_all "$FLOOR" -d 0 "$libjvm" "${jvm_offsets[@]}"
timed floor_pid "$FLOOR" -p "$jpid" -d 0 "$libjvm" "${jvm_offsets[@]}"
timed ours_count_all "$SDT" trace --count --duration 0.01 "$sel"
timed ours_count_pid "$SDT" trace --count --duration 0.01 -p "$jpid" "$sel"
timed ours_records_all "$SDT" trace --duration 0.01 "$sel"
timed ours_records_pid "$SDT" trace --duration 0.01 -p "$jpid" "$sel"
timed calls_java "$SDT" calls -l java -p "$jpid" -d 0.01
timed events_java "$SDT" events -l java -p "$jpid" -d 0.01
if [[ $BPFTRACE_JVM == yes ]]; then
    REPEATS=1 timed bpftrace_count env BPFTRACE_MAX_PROBES=2000 BPFTRACE_MAX_BPF_PROGS=2000 bpftrace -e "usdt:$libjvm:hotspot*:* { @[probe] = count(); } BEGIN { exit(); }"
fi

echo
echo "## 3-4. attach + detach of all $n hotspot* locations of $libjvm, a JVM running (pid $jpid)"
echo "(whole command, wall seconds, fastest of $REPEATS; peak RSS, the largest)"
printf '%-52s %9s %10s %12s\n' command seconds "vs floor" "peak RSS"
row3() {
    printf '%-52s %9s %10s %9s MB\n' "$1" "$(python3 -c "print(f'{${WALL[$2]} / 1e6:.3f}')")" \
        "$(ratio "${WALL[$2]}" "${WALL[floor_all]}")" "$(python3 -c "print(f'{${RSS[$2]} / 1024:.1f}')")"
}
row3 "floor: 1 link, r0=0; exit ($n sites)" floor_all
row3 "floor with the JVM's pid" floor_pid
row3 "stap-sdt trace --count --duration 0.01" ours_count_all
row3 "stap-sdt trace --count --duration 0.01 -p JVM" ours_count_pid
row3 "stap-sdt trace --duration 0.01 (records)" ours_records_all
row3 "stap-sdt trace --duration 0.01 -p JVM (records)" ours_records_pid
row3 "stap-sdt calls -l java -p JVM -d 0.01" calls_java
row3 "stap-sdt events -l java -p JVM -d 0.01" events_java
if [[ $BPFTRACE_JVM == yes ]]; then
    row3 "bpftrace count() + BEGIN { exit() } (1 run)" bpftrace_count
else
    echo "(bpftrace: not run; pass --bpftrace-jvm, about 60 s)"
fi
echo "floor inside the process: ${FLOOR_DETAIL[floor_all]} (system-wide), ${FLOOR_DETAIL[floor_pid]} (pid)"
for name in ours_count_all ours_count_pid ours_records_all ours_records_pid calls_java events_java; do
    s=$(python3 -c "print(${WALL[$name]} / 1e6)")
    echo "$name: $(verdict "$s" '<=' 0.2) (<= 0.2 s)"
done
