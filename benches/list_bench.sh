#!/usr/bin/env bash
# Listing speed of `stap-sdt list` against the peers, side by side in one run.
#
#   benches/list_bench.sh [RUNS]        (default 15 runs per command; median wall time)
#
# Every command's output goes to /dev/null; each is run once before timing so
# that all of them see a warm page cache. Ratios are peer time / stap-sdt time.
set -u
cd "$(dirname "$0")/.."
runs=${1:-15}
cargo build --release -q || exit 1
bin=target/release/stap-sdt
jvm=${JVM:-/usr/lib/jvm/java-17-openjdk-amd64/lib/server/libjvm.so}

# Median wall time of a command in microseconds.
median_us() {
  local n=$1; shift
  "$@" >/dev/null 2>&1
  local samples=()
  for ((i = 0; i < n; i++)); do
    local s e
    s=$(date +%s%N); "$@" >/dev/null 2>&1; e=$(date +%s%N)
    samples+=($(((e - s) / 1000)))
  done
  printf '%s\n' "${samples[@]}" | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'
}

row() { # label base_us command...
  local label=$1 base=$2; shift 2
  if ! command -v "$1" >/dev/null 2>&1 && [ ! -x "$1" ]; then
    printf '%-44s %10s %8s\n' "$label" "absent" "-"; return
  fi
  local us; us=$(median_us "$runs" "$@")
  awk -v l="$label" -v u="$us" -v b="$base" 'BEGIN {printf "%-44s %10.2f %7.1fx\n", l, u/1000, u/b}'
}

echo "== one object: $jvm ($(stat -c %s "$jvm") bytes), $runs runs each, median"
printf '%-44s %10s %8s\n' "command" "ms" "vs ours"
base=$(median_us "$runs" "$bin" list --json "$jvm")
row "stap-sdt list --json (all args decoded)" "$base" "$bin" list --json "$jvm"
row "stap-sdt list -v (text, args decoded)" "$base" "$bin" list -v "$jvm"
row "readelf -n" "$base" readelf -n "$jvm"
row "bpftrace -l 'usdt:...:*'" "$base" bpftrace -l "usdt:$jvm:*"
row "tplist-bpfcc -l" "$base" tplist-bpfcc -l "$jvm"
row "gdb -batch -ex 'info probes'" "$base" gdb -nx -batch -ex 'info probes' "$jvm"

scan_runs=$(( runs < 5 ? runs : 5 ))
echo
echo "== whole system: /usr ($(find /usr -type f | wc -l) files), $scan_runs runs each, median"
printf '%-44s %10s %8s\n' "command" "ms" "vs ours"
base=$(median_us "$scan_runs" "$bin" list --json /usr)
row "stap-sdt list --json /usr" "$base" "$bin" list --json /usr
readelf_all() { find /usr -type f -print0 | xargs -0 readelf -n; }
export -f readelf_all
row "find /usr -type f | xargs readelf -n" "$base" bash -c readelf_all
echo "(bpftrace, tplist and gdb take one object at a time and cannot scan a tree.)"
