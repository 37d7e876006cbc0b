#!/usr/bin/env bash
# Runs agentd's whole test suite: unit tests and end-to-end tests of the built binary.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
swift build --build-tests
swift test --skip-build "$@"
