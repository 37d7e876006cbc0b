#!/usr/bin/env bash
# Installs the Debian packages agentd builds, runs and is tested with (bubblewrap and libseccomp: the tool sandbox; chromium: the HTML
# transcript test; openssl: the HTTPS test's certificate), when any is missing.
set -euo pipefail
packages=(libuv1-dev libsqlite3-dev libcurl4-openssl-dev libseccomp-dev sqlite3 pkg-config python3 bubblewrap chromium openssl)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
export PATH="$PATH:/opt/swift/usr/bin"
command -v swift >/dev/null || { echo "swift not found: install Swift 6 (expected at /opt/swift)" >&2; exit 1; }

# Python's opentelemetry-proto, for the tests that validate the OTLP export against the protobuf JSON
# mapping: a venv at $AGENTD_OTEL_VENV (default ~/.cache/agentd/py-otel), created once.
AGENTD_OTEL_VENV="${AGENTD_OTEL_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/agentd/py-otel}"
export AGENTD_OTEL_VENV
if ! "$AGENTD_OTEL_VENV/bin/python3" -c "import opentelemetry.proto.collector.trace.v1.trace_service_pb2" 2>/dev/null; then
  if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c "import ensurepip" 2>/dev/null; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-venv >/dev/null
  fi
  echo "installing opentelemetry-proto into $AGENTD_OTEL_VENV" >&2
  python3 -m venv "$AGENTD_OTEL_VENV"
  "$AGENTD_OTEL_VENV/bin/pip" install -q opentelemetry-proto
fi
