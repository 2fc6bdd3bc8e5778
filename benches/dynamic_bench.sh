#!/usr/bin/env bash
# What a probe defined at run time costs from Python: `if req.enabled:`
# untraced against an untaken `if False:`, and (as root) the traced call.
# From the repository root:
#   benches/dynamic_bench.sh [ITERATIONS] [ROUNDS]
# Installs sdt-dynamic/python with pip into a venv under target/ (PyPI for
# setuptools-rust), builds stap-sdt, and runs benches/dynamic_bench.py.
set -euo pipefail
cd "$(dirname "$0")/.."
iterations=${1:-5000000}
rounds=${2:-7}
target=${CARGO_TARGET_DIR:-$PWD/target}/dynamic-bench
python=${PYTHON:-python3.11}

[ -x "$target/venv/bin/python" ] || "$python" -m venv "$target/venv"
CARGO_TARGET_DIR=$target/cargo "$target/venv/bin/pip" install -q --disable-pip-version-check \
    --force-reinstall sdt-dynamic/python
# The tracer's own speed does not enter the figures (the kernel runs the
# probe's BPF program): a debug build will do.
cargo build -q --bin stap-sdt
"$target/venv/bin/python" benches/dynamic_bench.py "$iterations" "$rounds" \
    "${CARGO_TARGET_DIR:-$PWD/target}/debug/stap-sdt"
