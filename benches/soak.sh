#!/usr/bin/env bash
# Soak under churn: one tracer stays attached system-wide while processes
# of a fixture start, exec, dlopen/dlclose a probed library and exit at a
# high rate, and other tracers (ours and bpftrace) attach, detach and are
# SIGKILLed at random points, some while still attaching.
#
# usage (as root):  benches/soak.sh [MINUTES]     (default 2; 0.5 is fine)
#   SDT=path/to/stap-sdt   the binary to soak (default: cargo build --release)
#   WORKERS=N              churning loops in parallel (default 2)
#   FIRES=N                hits per probe per process (default 200)
#
# Prints, and fails (exit 1) unless all hold:
#   - hits fired (each fixture process appends what it fired to a file)
#     = hits counted + lost by the tracer that stayed attached;
#   - the semaphores of a long-lived fixture process: 1 each while only the
#     steady tracer is attached, 0 once every tracer is gone;
#   - the steady tracer's RSS and descriptor count over time (flat: the last
#     sample within 25% / 4 descriptors of the one after warm-up);
#   - kernel objects left: BPF programs and links created during the run
#     that nobody owns afterwards, uprobe events naming the fixture: none.
set -uo pipefail

MINUTES=${1:-2}
WORKERS=${WORKERS:-2}
FIRES=${FIRES:-200}
[[ $(id -u) == 0 ]] || { echo "run as root" >&2; exit 1; }
root=$(cd "$(dirname "$0")/.." && pwd)
if [[ -z ${SDT:-} ]]; then
    cargo build --release -q --manifest-path "$root/Cargo.toml" --bin stap-sdt || exit 1
    SDT=${CARGO_TARGET_DIR:-$root/target}/release/stap-sdt
fi
TRACEFS=/sys/kernel/tracing
[[ -d $TRACEFS/events ]] || TRACEFS=/sys/kernel/debug/tracing

work=$(mktemp -d /tmp/soak.XXXXXX)
APP=$work/soak_app
LIB=$work/libsoakprobe.so
COUNTS=$work/counts
gcc -O2 -I"$root/sdt-header/include" -fPIC -shared -o "$LIB" "$root/benches/soak/soak_lib.c" || exit 1
gcc -O2 -I"$root/sdt-header/include" -o "$APP" "$root/benches/soak/soak_app.c" -ldl || exit 1
: >"$COUNTS"
PROBES=("$APP:soak:hit" "$LIB:soaklib:hit")
have_bpftrace=$(command -v bpftrace || true)
have_bpftool=$(command -v bpftool || true)

bg=() # long-lived helpers to end on exit
cleanup() {
    for p in "${bg[@]}"; do kill -KILL "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

# BPF objects that exist before the run are not ours.
ids() { [[ -n $have_bpftool ]] && bpftool -j "$1" show 2>/dev/null | python3 -c '
import json, sys
for o in json.load(sys.stdin) or []:
    print(o["id"], ",".join(str(p["pid"]) for p in o.get("pids", [])) or "-", o.get("name", "?"))'; }
ids prog >"$work/progs.before"
ids link >"$work/links.before"

"$APP" sentinel "$LIB" "$work/semaphores" &
sentinel=$!
bg+=("$sentinel")
semaphores() {
    rm -f "$work/semaphores"
    kill -USR1 "$sentinel"
    for _ in $(seq 50); do [[ -s $work/semaphores ]] && break; sleep 0.1; done
    cat "$work/semaphores" 2>/dev/null || echo "sentinel did not answer"
}

# The steady tracer: attached before the churn starts, ended after it.
"$SDT" trace --count "${PROBES[@]}" >"$work/steady.out" 2>"$work/steady.err" &
steady=$!
bg+=("$steady")
for _ in $(seq 100); do grep -q '^Tracing' "$work/steady.err" && break; sleep 0.1; done
grep -q '^Tracing' "$work/steady.err" || { echo "the steady tracer did not attach:"; cat "$work/steady.err"; exit 1; }
sleep 0.5
while_attached=$(semaphores)

deadline=$(($(date +%s) + $(awk "BEGIN {print int($MINUTES * 60)}")))
churn() {
    local n=0
    while (($(date +%s) < deadline)); do
        "$APP" run "$LIB" "$FIRES" "$COUNTS" || echo "fixture failed: $?" >&2
        n=$((n + 1))
    done
    echo "$n" >"$work/churn.$1"
}
for w in $(seq "$WORKERS"); do churn "$w" & done

# Tracers that come and go: ours (counts, records) and bpftrace. Half are
# SIGKILLed, the others get SIGTERM; a quarter of each within 30 ms
# (while attaching). Each one's pid is kept for the ownership check.
flapper() {
    local kind=$1 p pause
    while (($(date +%s) < deadline)); do
        case $kind in
        count) "$SDT" trace -q --count "${PROBES[@]}" >/dev/null 2>>"$work/flap.err" & ;;
        records) "$SDT" trace -q --json "${PROBES[@]}" >/dev/null 2>>"$work/flap.err" & ;;
        bpftrace) bpftrace -q -e "usdt:$APP:soak:hit { @a = count(); } usdt:$LIB:soaklib:hit { @b = count(); }" >/dev/null 2>&1 & ;;
        esac
        p=$!
        echo "$p" >>"$work/flap.pids"
        if ((RANDOM % 4 == 0)); then
            pause=0.0$((RANDOM % 3))
        else
            pause=$((RANDOM % 3)).$((RANDOM % 10))
        fi
        sleep "$pause"
        if ((RANDOM % 2)); then
            kill -KILL "$p" 2>/dev/null && echo kill >>"$work/flap.$kind"
        else
            # SIGTERM, not SIGINT: a non-interactive shell starts `&` jobs
            # with SIGINT ignored, so a SIGINT that arrives before a tracer
            # installs its handler is lost (seen for ours and bpftrace).
            kill -TERM "$p" 2>/dev/null && echo term >>"$work/flap.$kind"
            # A tracer must end on SIGTERM; one still there after 10 s is
            # counted (`stuck`) and killed.
            for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
            if kill -0 "$p" 2>/dev/null; then
                # Where it waits, for the report: each thread's kernel wait
                # channel and, when gdb is there, its user stack.
                {
                    echo "== $kind tracer $p did not end on SIGTERM"
                    for t in /proc/$p/task/*; do echo "thread ${t##*/}: $(cat "$t/comm") $(cat "$t/wchan")"; done
                    command -v gdb >/dev/null && timeout 30 gdb -q -batch -p "$p" -ex 'thread apply all bt 12' 2>/dev/null | grep -E '^(Thread|#)'
                } >>"$work/stuck.log" 2>&1
                kill -KILL "$p" 2>/dev/null && echo stuck >>"$work/flap.$kind"
            fi
        fi
        wait "$p" 2>/dev/null
    done
}
flapper count &
flapper records &
[[ -n $have_bpftrace ]] && flapper bpftrace &

# Samples of the steady tracer: RSS (kB) and open descriptors.
echo "soak: $MINUTES min, $WORKERS churning loops, $FIRES hits per probe per process; work in $work"
printf '%8s %10s %5s %9s\n' seconds rss_kb fds processes
start=$(date +%s)
samples=()
while (($(date +%s) < deadline)); do
    rss=$(awk '/^VmRSS/ {print $2}' "/proc/$steady/status")
    fds=$(ls "/proc/$steady/fd" | wc -l)
    procs=$(wc -l <"$COUNTS")
    printf '%8d %10s %5s %9s\n' $(($(date +%s) - start)) "$rss" "$fds" "$procs"
    samples+=("$rss $fds")
    sleep 10
done
wait_for() { for p in $(jobs -rp); do [[ " ${bg[*]} " == *" $p "* ]] || wait "$p" 2>/dev/null; done; }
wait_for
sleep 1
with_steady_only=$(semaphores)
kill -INT "$steady"
wait "$steady"
steady_status=$?
sleep 0.5
after=$(semaphores)

# Figures.
read -r fired_app fired_lib < <(awk '{a += $1; l += $2} END {print a + 0, l + 0}' "$COUNTS")
processes=$(wc -l <"$COUNTS")
counted_app=$(grep -oE '^@count\[soak:hit\]: [0-9]+' "$work/steady.out" | grep -oE '[0-9]+$')
counted_lib=$(grep -oE '^@count\[soaklib:hit\]: [0-9]+' "$work/steady.out" | grep -oE '[0-9]+$')
lost=$(cat "$work/steady.out" "$work/steady.err" | grep -oiE '[0-9]+ (hits|events|keys)? ?lost' | grep -oE '^[0-9]+' | awk '{s += $1} END {print s + 0}')
flaps() {
    [[ -f $work/flap.$1 ]] || { echo "none"; return; }
    echo "$(grep -c kill "$work/flap.$1") killed, $(grep -c term "$work/flap.$1") terminated ($(grep -c stuck "$work/flap.$1") did not end within 10 s)"
}
echo
echo "processes run:          $processes (each: exec, dlopen, dlclose)"
echo "flapping tracers:       ours --count: $(flaps count); ours --json: $(flaps records); bpftrace: $(flaps bpftrace)"
echo "soak:hit    fired $fired_app, counted ${counted_app:-?}"
echo "soaklib:hit fired $fired_lib, counted ${counted_lib:-?}"
echo "lost (reported):        $lost"
echo "steady tracer exit:     $steady_status"
echo "semaphores (app, lib):  with all tracers: $while_attached; steady only: $with_steady_only; after: $after"
first=${samples[1]:-${samples[0]:-}}
last=${samples[-1]:-}
echo "steady RSS kB, fds:     after warm-up $first; at the end $last"

ok=1
fail() { echo "FAIL: $*"; ok=0; }
for kind in count records; do
    [[ -f $work/flap.$kind ]] && grep -q stuck "$work/flap.$kind" && fail "our tracer ($kind) did not end on SIGTERM"
done
[[ $steady_status == 0 ]] || fail "the steady tracer exited with $steady_status"
((fired_app + fired_lib > 0)) || fail "nothing fired"
[[ $((${counted_app:-0} + ${counted_lib:-0} + lost)) == $((fired_app + fired_lib)) ]] ||
    fail "fired $((fired_app + fired_lib)) != counted $((${counted_app:-0} + ${counted_lib:-0})) + lost $lost"
[[ $with_steady_only == "app 1 lib 1" ]] || fail "semaphores with only the steady tracer: $with_steady_only"
[[ $after == "app 0 lib 0" ]] || fail "semaphores after every tracer: $after"
if [[ -n $first && -n $last ]]; then
    read -r rss0 fd0 <<<"$first"
    read -r rss1 fd1 <<<"$last"
    ((rss1 * 4 <= rss0 * 5)) || fail "RSS grew from $rss0 to $rss1 kB"
    ((fd1 <= fd0 + 4)) || fail "descriptors grew from $fd0 to $fd1"
fi
# Kernel objects: new since the start and owned by nobody (our tracers are
# all dead; another user's live tool shows its pid and is not counted).
# The kernel frees a program or link after its last descriptor closes, but
# later (after an RCU grace period, in a work item): one of a process that
# just ended can still be listed, owned by nobody, for a moment. A leak is
# what is still there after 10 s.
unowned() {
    ids "$1" >"$work/$1.after"
    awk 'NR == FNR {seen[$1] = 1; next} !($1 in seen) && $2 == "-"' "$work/${1}s.before" "$work/$1.after"
}
for kind in prog link; do
    for _ in $(seq 50); do
        [[ -z $(unowned "$kind") ]] && break
        sleep 0.2
    done
    leaked=$(unowned "$kind" | wc -l)
    echo "BPF ${kind}s left unowned: $leaked"
    ((leaked == 0)) || { unowned "$kind"; fail "$leaked BPF ${kind}s left"; }
done
events=$(grep -c -e "$work" -e stapsdt_ "$TRACEFS/uprobe_events" 2>/dev/null)
echo "uprobe events left:     ${events:-0}"
((${events:-0} == 0)) || fail "uprobe events left in $TRACEFS/uprobe_events"
[[ -s $work/flap.err ]] && { echo "flapping tracers said (first lines):"; sort "$work/flap.err" | uniq -c | sort -rn | head -5; }
[[ -s $work/stuck.log ]] && { echo "tracers that did not end on SIGTERM:"; cat "$work/stuck.log"; }
((ok)) && echo "soak: OK" || exit 1
