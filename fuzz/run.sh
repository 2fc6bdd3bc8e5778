#!/usr/bin/env bash
# Run every fuzz target for SECONDS seconds each, one after another, then
# merge what was found into the committed (minimised) corpus, and print one
# line per target: executions, coverage (libFuzzer's `cov` and `ft`),
# corpus size and crashes. Crash inputs land in fuzz/artifacts/TARGET/;
# copy each into fuzz/regressions/TARGET/ once fixed, so that `cargo test`
# replays it.
#
#   fuzz/run.sh 600            # ten minutes per target
#   TARGETS="elf args" fuzz/run.sh 60
#   JOBS=2 fuzz/run.sh 300     # two targets at a time
#   NO_MERGE=1 fuzz/run.sh 5   # CI: the committed corpus stays untouched
#   RUNS=10000000 fuzz/run.sh 7200  # stop each target at 10 M executions
#
# Needs nightly and cargo-fuzz (`cargo install cargo-fuzz`).
set -uo pipefail
cd "$(dirname "$0")"
seconds=${1:?usage: fuzz/run.sh SECONDS}
targets=${TARGETS:-$(cargo +nightly fuzz list)}
logs=${LOGS:-$(mktemp -d)}
# Release code with debug assertions (integer overflow is a crash, as in a
# debug build) and no sanitizer: the parsers are safe Rust apart from a few
# audited copies, and ASan would cost most of the executions. Override with
# FLAGS="-O" for ASan.
read -r -a flags <<<"${FLAGS:--O -a -s none}"
mkdir -p "$logs"
mkdir -p artifacts

cargo +nightly fuzz build "${flags[@]}" >/dev/null 2>"$logs/build.log" || {
  cat "$logs/build.log"
  exit 1
}

run_one() {
  local target=$1
  local corpus=corpus/$target fresh
  fresh=$(mktemp -d)
  mkdir -p "$corpus" "artifacts/$target"
  # New inputs go to a scratch directory first (the first corpus directory
  # is where libFuzzer writes); the committed one is only read. -rss_limit
  # and -timeout turn leaks and hangs into reported failures;
  # -max_len covers the seed ELF slices. Each conversion or note costs
  # little, so 64 KiB is plenty for the text targets too.
  cargo +nightly fuzz run "${flags[@]}" "$target" "$fresh" "$corpus" -- \
    -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="artifacts/$target/" ${RUNS:+-runs="$RUNS"} \
    >"$logs/$target.log" 2>&1
  local status=$?
  # Keep the corpus minimal: merge the new inputs into it, keeping only
  # those that add coverage. NO_MERGE=1 (CI) leaves the corpus as it is.
  if [ -z "${NO_MERGE:-}" ]; then
    cargo +nightly fuzz run "${flags[@]}" "$target" "$corpus" "$fresh" -- -merge=1 \
      -max_len=65536 >"$logs/$target.merge.log" 2>&1 || true
  fi
  rm -rf "$fresh"
  local execs cov ft crashes files
  execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$logs/$target.log" | grep -oE '[0-9]+$')
  cov=$(grep -oE 'cov: [0-9]+' "$logs/$target.log" | tail -1 | grep -oE '[0-9]+')
  ft=$(grep -oE 'ft: [0-9]+' "$logs/$target.log" | tail -1 | grep -oE '[0-9]+')
  crashes=$(find "artifacts/$target" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
  files=$(find "$corpus" -type f | wc -l)
  printf '%-11s execs %10s  cov %5s  ft %6s  corpus %5s files  crashes %s  exit %s\n' \
    "$target" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$files" "$crashes" "$status"
  if [ "$status" -ne 0 ]; then
    grep -E 'panicked at|ERROR: libFuzzer|SUMMARY' "$logs/$target.log" | head -5 | sed 's/^/    /'
  fi
}

echo "fuzz: ${seconds}s per target; logs in $logs"
failed=0
jobs=${JOBS:-1}
for target in $targets; do
  run_one "$target" &
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
done
wait
# Any crash file fails the run (the per-target lines say which).
if find artifacts -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | grep -q .; then
  failed=1
fi
exit "$failed"
