#!/usr/bin/env bash
# Streaming timelines in bounded memory (issue 13): a million events written
# to the Chrome JSON and to the Perfetto protobuf, with the writer's peak RSS.
#
#   benches/timeline_bench.sh [EVENTS]      (default 1000000)
#
# Runs `stap-sdt debug-pictures bench` (release build): synthetic nested
# calls on 8 threads of one process, instants with arguments and a counter,
# through TimelineWriter; the command prints events, bytes, time and the
# process's peak RSS (getrusage ru_maxrss, the whole process: binary and
# libraries included). Fails if a peak is 64 MiB or more.
set -u
cd "$(dirname "$0")/.."
events=${1:-1000000}
limit_kib=$((64 * 1024))
cargo build --release -q || exit 1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
status=0
for file in timeline.json timeline.pftrace; do
  report=$(target/release/stap-sdt debug-pictures bench --events "$events" "$dir/$file") || exit 1
  echo "$report"
  peak=$(sed -n 's/^peak RSS: \([0-9.]*\) MiB.*/\1/p' <<<"$report")
  if awk -v p="$peak" -v l="$limit_kib" 'BEGIN {exit !(p * 1024 >= l)}'; then
    echo "FAILED: $file: peak RSS $peak MiB is not under 64 MiB"
    status=1
  fi
done
exit $status
