#!/usr/bin/env bash
# The jigasi-rs demo: installs what it needs, builds the gateway, starts a Jitsi-shaped Prosody and
# a Kamailio registrar on loopback, runs jigasi-rs with Jigasi's flags and a Jigasi-style
# sip-communicator.properties, and shows it registering and joining the brewery, checked from the
# outside, then stops it cleanly. Exits non-zero if any check fails.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cargo build --locked -p jigasi-rs -p jigasi-demo
exec ./target/debug/jigasi-demo
