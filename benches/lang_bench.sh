#!/usr/bin/env bash
# Overhead of `stap-sdt calls -l python` on a Python workload, side by side
# in one run with bcc's `ucalls -l python` (where bcc works), a bpftrace
# script counting the same calls, and the untraced workload.
#
#   benches/lang_bench.sh [ITERATIONS] [RUNS]   (default 3000 iterations, 3 runs; median)
#
# The workload (/usr/bin/python3.11) calls mid() ITERATIONS times, each
# calling leaf() 100 times, and prints the time its loop took; it waits on a
# fifo until the tracer is attached to its pid, so attach time is not
# counted. Every tracer counts calls per function and must find
# ITERATIONS*100 calls of leaf (the "leaf" column). CPython 3.11 fires
# function__entry for ordinary functions only while the `line` probe's
# semaphore is raised, so the bpftrace script attaches `line` too (as
# stap-sdt does), and bcc's ucalls, which does not, counts nothing here.
set -u
cd "$(dirname "$0")/.."
iters=${1:-3000}
runs=${2:-3}
cargo build --release -q || exit 1
bin=${CARGO_TARGET_DIR:-target}/release/stap-sdt
py=/usr/bin/python3.11
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cat > "$tmp/work.py" <<'PY'
import sys, time
def leaf(x):
    return x + 1
def mid(n):
    t = 0
    for i in range(n):
        t += leaf(i)
    return t
print("ready", flush=True)
sys.stdin.readline()
start = time.perf_counter()
for _ in range(int(sys.argv[1])):
    mid(100)
print("elapsed %.6f" % (time.perf_counter() - start), flush=True)
PY
cat > "$tmp/calls.bt" <<BT
usdt:$py:python:line { @lines = count(); }
usdt:$py:python:function__entry { @calls[str(arg0), str(arg1)] = count(); }
BT

wait_for() { # file pattern seconds
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    grep -qs "$2" $1 && return 0
    sleep 0.1
  done
  return 1
}

# One run: prints "ELAPSED LEAFCALLS" (LEAFCALLS "-" when untraced, "fail" when
# the tracer did not start; its error is kept in $tmp/fail.<label>).
one() { # label ready-pattern command-with-@PID@ (empty: untraced)
  local label=$1 ready=$2 cmd=$3
  rm -f "$tmp/go" "$tmp/out" "$tmp/t.out" "$tmp/t.err"
  mkfifo "$tmp/go"
  "$py" "$tmp/work.py" "$iters" <"$tmp/go" >"$tmp/out" &
  local pid=$!
  exec 3>"$tmp/go"
  wait_for "$tmp/out" ready 10
  local tpid=""
  if [ -n "$cmd" ]; then
    bash -c "exec ${cmd//@PID@/$pid}" >"$tmp/t.out" 2>"$tmp/t.err" &
    tpid=$!
    if ! wait_for "$tmp/t.out $tmp/t.err" "$ready" 30 || ! kill -0 "$tpid" 2>/dev/null; then
      cat "$tmp/t.out" "$tmp/t.err" >"$tmp/fail.$label"
      kill -INT "$tpid" 2>/dev/null
      echo >&3; exec 3>&-; wait "$pid"; wait "$tpid" 2>/dev/null
      echo "fail fail"
      return
    fi
    sleep 0.5
  fi
  echo >&3
  exec 3>&-
  wait "$pid"
  local leaf="-"
  if [ -n "$tpid" ]; then
    # stap-sdt ends with its process; the others get Ctrl-C.
    for ((i = 0; i < 50; i++)); do kill -0 "$tpid" 2>/dev/null || break; sleep 0.1; done
    kill -INT "$tpid" 2>/dev/null
    wait "$tpid" 2>/dev/null
    # stap-sdt: "…/work.py:leaf CALLS …"; bpftrace: "@calls[…, leaf]: N"; ucalls: "… leaf N".
    leaf=$(awk '/work\.py:leaf / {print $2; exit} /leaf\]:/ {print $NF; exit} / leaf +[0-9]+$/ {print $NF; exit}' "$tmp/t.out")
    leaf=${leaf:-0}
  fi
  echo "$(awk '/elapsed/ {print $2}' "$tmp/out") $leaf"
}

median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

printf 'workload: %s, %d x mid() -> %d leaf() calls; median of %d runs\n' \
  "$py" "$iters" $((iters * 100)) "$runs"
printf '%-34s %10s %8s %12s %10s\n' tool 'loop (s)' ratio 'us per call' leaf
base=""
row() { # label ready command
  local label=$1 samples=() leaf=""
  for ((r = 0; r < runs; r++)); do
    read -r e l < <(one "$@")
    samples+=("$e")
    leaf=$l
  done
  if [ "$leaf" = fail ]; then
    printf '%-34s %10s %8s %12s %10s   (%s)\n' "$label" - - - - \
      "$(grep -m1 -iE 'error|unable|fail|exception' "$tmp/fail.$label" || head -1 "$tmp/fail.$label")"
    return
  fi
  local m
  m=$(printf '%s\n' "${samples[@]}" | median)
  [ -z "$base" ] && base=$m
  # Added time per Python call (leaf and mid calls; every line also hits the line probe).
  local per
  per=$(echo "($m - $base) * 1000000 / ($iters * 101)" | bc -l)
  printf '%-34s %10.4f %8.2f %12.2f %10s\n' "$label" "$m" "$(echo "$m / $base" | bc -l)" "$per" "$leaf"
}

row untraced "" ""
row "stap-sdt calls -l python" "Tracing" "$bin calls -l python -p @PID@"
row "stap-sdt calls -l python -L" "Tracing" "$bin calls -l python -L -p @PID@"
if command -v bpftrace >/dev/null; then
  row "bpftrace (line + function__entry)" "Attaching" "bpftrace -p @PID@ $tmp/calls.bt"
fi
ucalls=$(command -v ucalls-bpfcc || command -v ucalls || ls /usr/sbin/ucalls 2>/dev/null)
if [ -n "$ucalls" ]; then
  row "bcc ucalls -l python" "Tracing calls" "$ucalls -l python @PID@"
fi
