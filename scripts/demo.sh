#!/usr/bin/env bash
# The demo, end to end: build, start the daemon, submit plans/demo.yaml and watch it live, show the
# transcript, stop the daemon. Uses a fresh socket and database under a temp directory.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
swift build -c release 2>&1 | tail -n 1
agentd=.build/release/agentd
dir=$(mktemp -d /tmp/agentd-demo.XXXXXX)
export AGENTD_SOCKET="$dir/agentd.sock" AGENTD_DB="$dir/agentd.db"

echo "== agentd serve (log: $dir/daemon.log)"
"$agentd" serve >"$dir/daemon.log" 2>&1 &
daemon=$!
trap 'kill -TERM $daemon 2>/dev/null || true' EXIT
for _ in $(seq 100); do "$agentd" status >/dev/null 2>&1 && break; sleep 0.1; done
"$agentd" status

echo
echo "== agentd submit plans/demo.yaml, then agentd watch"
id=$("$agentd" submit plans/demo.yaml --goal "write release notes for agentd 0.1")
echo "submitted job $id"
status=0
"$agentd" watch "$id" || status=$?

echo
echo "== agentd transcript $id"
"$agentd" transcript "$id"

echo
echo "== agentd show $id"
"$agentd" show "$id"

echo
echo "== stopping the daemon (SIGTERM)"
kill -TERM $daemon
wait $daemon && echo "daemon exited 0"
trap - EXIT
exit $status
