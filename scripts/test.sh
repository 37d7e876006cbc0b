#!/usr/bin/env bash
# Runs agentd's whole test suite: unit tests and end-to-end tests of the built binary, then the Python
# client's tests (clients/python) against that binary, from the package as `pip install` installs it.
# Arguments go to `swift test` (e.g. --filter X); with any, the Python client's tests are left out.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
swift build --build-tests
swift test --skip-build "$@"
[ $# -eq 0 ] || exit 0
scripts/test-python-client.sh "$(swift build --show-bin-path)/agentd"
