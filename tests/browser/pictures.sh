#!/usr/bin/env bash
# The timeline JSON and the SVG flame graph in a real browser (issue 13).
#
#   tests/browser/pictures.sh [OUT_DIR]      (default target/pictures)
#
# Not part of `cargo test` and not run by CI: it needs headless Chromium
# (Debian `chromium`) and the `speedscope` npm package, which it installs
# from the npm registry into OUT_DIR/npm the first time (or takes from
# $SPEEDSCOPE_DIR, a directory holding speedscope's dist/release/index.html).
# Without Chromium it prints SKIPPED and exits 0; without npm or speedscope
# the timeline half is skipped.
#
# What it does, with `stap-sdt debug-pictures demo` (a Python program's call
# tree: <module> → main → load_config, 3 × serve_request → parse_request,
# handle → 2 × query_db, render; shutdown):
# 1. writes t.json, t.pftrace, flame.svg, flame.folded into OUT_DIR;
# 2. opens t.json in speedscope (offline, from file://) under headless
#    Chromium: the page's DOM must name the process and thread, which
#    speedscope shows only once it has imported the file; the screenshot
#    OUT_DIR/timeline-speedscope.png shows the call tree (Time Order view);
# 3. opens flame.svg in Chromium: the rendered DOM must hold every function
#    of the fixture; screenshot OUT_DIR/flame-svg.png.
# Ends with the usual 'N passed, N failed, N skipped' line.
set -u
cd "$(dirname "$0")/../.."
out=${1:-target/pictures}
mkdir -p "$out"
out=$(cd "$out" && pwd)
passed=0 failed=0 skipped=0
pass() { echo "ok: $*"; passed=$((passed + 1)); }
fail() { echo "FAILED: $*"; failed=$((failed + 1)); }
skip() { echo "SKIPPED $*"; skipped=$((skipped + 1)); }
summary() { echo "pictures: $passed passed, $failed failed, $skipped skipped"; [ "$failed" -eq 0 ]; exit; }

chromium=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$chromium" ]; then
  skip "browser pictures: chromium is not installed (apt-get install chromium)"
  summary
fi

# STAP_SDT_BIN: the binary to draw with (the cargo test that runs this
# script passes its own); else build it.
if [ -n "${STAP_SDT_BIN:-}" ]; then
  bin=$STAP_SDT_BIN
else
  cargo build -q || { fail "cargo build"; summary; }
  bin=target/debug/stap-sdt
fi
# Real runs (root and python3.11 here): a Python program with the demo's
# call tree traced by the commands themselves; else the synthetic demo.
real=no
if [ "$(id -u)" = 0 ] && [ -x /usr/bin/python3.11 ] && [ "${PICTURES_DEMO:-}" != 1 ]; then
  real=yes
  cat >"$out/app.py" <<'PY'
import time
def read_file(): time.sleep(0.002)
def parse_toml(): time.sleep(0.001)
def load_config(): read_file(); parse_toml()
def parse_request(i): time.sleep(0.0005)
def query_db(i): time.sleep(0.002)
def handle(i): query_db(i); query_db(i + 1)
def render(i): time.sleep(0.001)
def serve_request(i): parse_request(i); handle(i); render(i)
def shutdown(): time.sleep(0.001)
def main():
    load_config()
    for i in range(3):
        serve_request(i)
    shutdown()
main()
PY
  cmd="/usr/bin/python3.11 $out/app.py"
  "$bin" flow -l python -q -c "$cmd" --timeline "$out/t.json" >/dev/null || fail "flow --timeline t.json"
  "$bin" flow -l python -q -c "$cmd" --timeline "$out/t.pftrace" >/dev/null || fail "flow --timeline t.pftrace"
  "$bin" calls -l python -L -q -c "$cmd" --flamegraph "$out/flame.svg" --folded "$out/flame.folded" >/dev/null \
    || fail "calls -L --flamegraph"
else
  for f in t.json t.pftrace flame.svg flame.folded; do
    "$bin" debug-pictures demo "$out/$f" >/dev/null || fail "debug-pictures demo $f"
  done
fi

# Headless Chromium with a fresh profile each time: chrome URL ARGS...
chrome() {
  local url=$1 profile
  shift
  profile=$(mktemp -d)
  timeout 120 "$chromium" --headless --no-sandbox --disable-gpu \
    --disable-background-networking --no-first-run --user-data-dir="$profile" \
    --use-angle=swiftshader --enable-unsafe-swiftshader \
    --allow-file-access-from-files "$@" "$url" 2>/dev/null
  local status=$?
  rm -rf "$profile"
  return $status
}

# speedscope: from $SPEEDSCOPE_DIR, or installed from npm into OUT_DIR/npm.
speedscope=${SPEEDSCOPE_DIR:-$out/npm/node_modules/speedscope}
if [ ! -f "$speedscope/dist/release/index.html" ] && [ -z "${SPEEDSCOPE_DIR:-}" ] && command -v npm >/dev/null; then
  npm install --silent --no-audit --no-fund --prefix "$out/npm" speedscope@1.25.0 >/dev/null 2>&1
fi
if [ ! -f "$speedscope/dist/release/index.html" ]; then
  skip "timeline in speedscope: no speedscope (npm install speedscope, or set SPEEDSCOPE_DIR)"
else
  # speedscope's own way to open a local file (what its CLI does): a script
  # that hands the file to the page, named in the URL's fragment.
  printf 'speedscope.loadFileFromBase64("t.json", "%s")\n' "$(base64 -w0 "$out/t.json")" >"$out/t.json.js"
  url="file://$speedscope/dist/release/index.html#localProfilePath=$out/t.json.js"
  dom=$(chrome "$url" --virtual-time-budget=10000 --dump-dom)
  if [ $real = yes ] && grep -q 'python3.11 (tid [0-9]*)' <<<"$dom"; then
    pass "speedscope imported t.json of a real run (thread named in the page)"
  elif [ $real = no ] && grep -q 'python3 app.py (pid 31337), python3 (tid 31337)' <<<"$dom"; then
    pass "speedscope imported t.json (process and thread named in the page)"
  else
    fail "speedscope did not show the imported profile"
  fi
  chrome "$url" --virtual-time-budget=10000 --window-size=1200,330 \
    --screenshot="$out/timeline-speedscope.png" >/dev/null
  if [ -s "$out/timeline-speedscope.png" ]; then
    pass "screenshot $out/timeline-speedscope.png"
  else
    fail "no speedscope screenshot"
  fi
fi

dom=$(chrome "file://$out/flame.svg" --dump-dom)
missing=""
for name in '&lt;module&gt;' main load_config read_file parse_toml serve_request \
  parse_request handle query_db render shutdown; do
  if [ $real = yes ]; then
    grep -q "app.py:$name (" <<<"$dom" || missing="$missing $name"
  else
    grep -q "<title>$name (" <<<"$dom" || missing="$missing $name"
  fi
done
if [ -z "$missing" ]; then
  pass "flame.svg rendered with every function of the fixture"
else
  fail "flame.svg lacks:$missing"
fi
height=170; [ $real = yes ] && height=520
chrome "file://$out/flame.svg" --window-size=1200,$height --screenshot="$out/flame-svg.png" >/dev/null
if [ -s "$out/flame-svg.png" ]; then
  pass "screenshot $out/flame-svg.png"
else
  fail "no flame graph screenshot"
fi
summary
