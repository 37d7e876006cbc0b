#!/usr/bin/env bash
# The tests that need the real local model (SmolLM2 on llama.cpp): installs it the first time (a few
# minutes), starts it on loopback, and runs them. The normal test suite skips them when the model is
# not installed.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
scripts/model.sh setup
scripts/model.sh start >/dev/null
swift build --build-tests
swift test --skip-build --filter RealModelTests
