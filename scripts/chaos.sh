#!/usr/bin/env bash
# The long chaos run: the chaos test (Tests/agentdTests/ChaosTests.swift) against a release build of
# agentd, with KILLS random SIGKILLs of the daemon under load (default 1000; the suite runs 100).
#   scripts/chaos.sh [KILLS] [SEED]
# The harness kills only the daemon: the processes it had started are the next daemon's to end.
# Prints the figures: kills survived, jobs, calls, duplicate and overlapping executions, lost
# submissions, broken transcripts.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
swift build -c release --product agentd
swift build -c release --product agentd-sandbox  # the sandbox launcher, found beside agentd
swift build --build-tests
export AGENTD_E2E_BINARY="$PWD/.build/release/agentd"
export AGENTD_CHAOS_KILLS="${1:-1000}"
if [ -n "${2:-}" ]; then export AGENTD_CHAOS_SEED="$2"; fi
log=.build/chaos-$(date +%Y%m%d-%H%M%S).log
echo "the whole output: $log"
status=0
swift test --skip-build --filter ChaosTests >"$log" 2>&1 || status=$?
grep -E -A12 "^chaos|error:" "$log" | grep -v "^== " | head -60
grep -E "Executed .* test" "$log" | tail -1
exit $status
