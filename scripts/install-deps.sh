#!/usr/bin/env bash
# Installs everything jigasi-rs needs to build, test and run its demo on a Debian machine with Rust.
# Idempotent: packages already installed are not fetched again. Needs root (or sudo).
set -euo pipefail

PACKAGES=(
  cmake pkg-config                       # libopus is built from source by the opus crate
  prosody lua-unbound                    # XMPP server (Jitsi-shaped layout in tests)
  kamailio kamailio-tls-modules          # SIP registrar / proxy with digest auth
  baresip-core                           # real SIP phone, headless
  sip-tester                             # SIPp
  sox libsox-fmt-all espeak-ng           # test audio
  tshark tcpdump                         # captures
  openssl ca-certificates iproute2 procps
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "install-deps: installing ${missing[*]}"
  $SUDO apt-get update -qq
  # policy-rc.d may forbid starting services; we never use the system services anyway.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "install-deps: all system packages present"
fi

# Python tools for audio scoring live in a private venv (never the system Python).
VENV="${JIGASI_RS_VENV:-$(cd "$(dirname "$0")/.." && pwd)/target/venv}"
if [ "${JIGASI_RS_SKIP_VENV:-0}" != "1" ]; then
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  # PESQ scoring for the demo and the benchmark (pesq builds from source with numpy present).
  if ! "$VENV/bin/python" -c "import pesq, numpy, scipy, soundfile" 2>/dev/null; then
    echo "install-deps: installing Python scoring packages into $VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check numpy scipy soundfile
    "$VENV/bin/pip" install -q --disable-pip-version-check pesq
  fi
fi
