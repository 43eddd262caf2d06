#!/usr/bin/env bash
# The capacity and quality benchmark of the whole gateway (issue 7). Not part of scripts/test.sh.
#
#   scripts/bench.sh            # full run (ramp 25..250 calls, 20 s windows, quality calls), ~8 min
#   scripts/bench.sh --quick    # quick subset (ramp 25,50,100, 10 s windows), ~3 min
#   scripts/bench.sh --steps 100,150,200 --window 30 --no-quality
#
# Builds the gateway and the benchmark in release mode, pins the benchmark process (callers,
# Jicofo + JVB stand-in, and the Prosody/Kamailio it starts) to CPU 0; the benchmark pins the
# gateway to CPU 1. Results: bench/results.json, bench/results.md, bench/chart.png.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
VENV="${JIGASI_RS_VENV:-$PWD/target/venv}"
# The chart needs matplotlib in the scoring venv (install-deps.sh creates it with pesq).
if ! "$VENV/bin/python" -c "import matplotlib" 2>/dev/null; then
  "$VENV/bin/pip" install -q --disable-pip-version-check matplotlib
fi

cargo build --release -p jigasi-rs -p jigasi-bench
export JIGASI_RS_BIN="$PWD/target/release/jigasi-rs"
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
  exec taskset -c 0 target/release/jigasi-bench "$@"
else
  echo "bench: fewer than 2 CPUs (or no taskset): gateway and load share the CPU" >&2
  exec target/release/jigasi-bench "$@"
fi
