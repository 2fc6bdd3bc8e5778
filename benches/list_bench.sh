#!/usr/bin/env bash
# Listing speed of `stap-sdt list` against the peers, side by side in one run.
#
#   benches/list_bench.sh [RUNS]        (default 15 runs per command; mean wall time by perf stat -r)
#
# Every command's output goes to /dev/null; each is run once before timing so
# that all of them see a warm page cache. Ratios are peer CPU time / stap-sdt's.
set -u
cd "$(dirname "$0")/.."
runs=${1:-15}
cargo build --release -q || exit 1
bin=target/release/stap-sdt
jvm=${JVM:-/usr/lib/jvm/java-17-openjdk-amd64/lib/server/libjvm.so}

# "WALL_US CPU_US": mean wall time and CPU time (task-clock, user + system) of
# a command over N runs, from `perf stat -r`, which forks and execs the command
# itself. CPU time is the steadier figure on a machine shared with other work.
measure() {
  local n=$1; shift
  "$@" >/dev/null 2>&1
  perf stat -r "$n" -- "$@" 2>&1 >/dev/null | awk '
    /task-clock/ {cpu = $1 * 1000}
    /seconds time elapsed/ {wall = $1 * 1000000}
    END {printf "%d %d\n", wall, cpu}'
}

header() {
  printf '%-44s %9s %9s %9s\n' "command" "wall ms" "cpu ms" "cpu ratio"
}

row() { # label base_cpu_us command...
  local label=$1 base=$2; shift 2
  if ! command -v "$1" >/dev/null 2>&1 && [ ! -x "$1" ]; then
    printf '%-44s %9s\n' "$label" "absent"; return
  fi
  local wall cpu
  read -r wall cpu < <(measure "$runs" "$@")
  awk -v l="$label" -v w="$wall" -v c="$cpu" -v b="$base" \
    'BEGIN {printf "%-44s %9.2f %9.2f %8.1fx\n", l, w/1000, c/1000, c/b}'
}

# The first row of a table: measured once, and its CPU time is the base of the ratios.
base_row() {
  local label=$1; shift
  local wall
  read -r wall base < <(measure "$runs" "$@")
  awk -v l="$label" -v w="$wall" -v c="$base" \
    'BEGIN {printf "%-44s %9.2f %9.2f %8.1fx\n", l, w/1000, c/1000, 1}'
}

command -v perf >/dev/null 2>&1 || { echo "needs perf (Debian: linux-perf)"; exit 1; }

echo "== one object: $jvm ($(stat -c %s "$jvm") bytes), $runs runs each"
header
base_row "stap-sdt list --json (all args decoded)" "$bin" list --json "$jvm"
row "stap-sdt list -v (text, args decoded)" "$base" "$bin" list -v "$jvm"
row "readelf -n" "$base" readelf -n "$jvm"
row "bpftrace -l 'usdt:...:*'" "$base" bpftrace -l "usdt:$jvm:*"
row "tplist-bpfcc -l" "$base" tplist-bpfcc -l "$jvm"
row "gdb -batch -ex 'info probes'" "$base" gdb -nx -batch -ex 'info probes' "$jvm"

scan_runs=$(( runs < 5 ? runs : 5 ))
echo
echo "== whole system: /usr ($(find /usr -type f | wc -l) files), $scan_runs runs each"
header
runs=$scan_runs
base_row "stap-sdt list --json /usr" "$bin" list --json /usr
readelf_all() { find /usr -type f -print0 | xargs -0 readelf -n; }
export -f readelf_all
row "find /usr -type f | xargs readelf -n" "$base" bash -c readelf_all
echo "(bpftrace, tplist and gdb take one object at a time and cannot scan a tree.)"
