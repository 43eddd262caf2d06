#!/usr/bin/env bash
# Runs every check and test of jigasi-rs: formatting, lints, the purity guard, unit tests and the
# real-peer tests (Prosody, Kamailio, baresip, SIPp on loopback). Installs what it needs first.
# Under CI=true a missing peer program fails the run instead of skipping tests.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "installing system packages (idempotent)"
bash scripts/install-deps.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, -D warnings)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "purity guard: pure crates must not depend on tokio"
for crate in jigasi-types jigasi-config jigasi-xmpp jigasi-sip-core jigasi-jingle jigasi-media jigasi-bridge jigasi-call; do
  if cargo tree -p "$crate" -e normal -i tokio --locked >/dev/null 2>&1; then
    echo "error: pure crate $crate depends on tokio:" >&2
    cargo tree -p "$crate" -e normal -i tokio --locked >&2
    exit 1
  fi
done
echo "ok: no pure crate depends on tokio"

step "fuzz targets build (cargo check; discovery runs are manual: cargo fuzz run <target>)"
(cd crates/jigasi-media/fuzz && cargo check --locked --quiet --target-dir ../../../target/fuzz)

step "docs (-D warnings)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet

step "tests (unit, simulation and real peers)"
if cargo nextest --version >/dev/null 2>&1; then
  # nextest does not run doc tests; run them first so the run closes with nextest's summary
  cargo test --workspace --doc --locked --quiet
  cargo nextest run --workspace --locked --no-fail-fast --failure-output final
else
  cargo test --workspace --locked --no-fail-fast
fi
