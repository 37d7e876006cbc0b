#!/usr/bin/env bash
# The demo, end to end: build, start the daemon, submit a plan and watch it live, show the transcript,
# stop the daemon. Uses a fresh socket and database under a temp directory.
#
#   scripts/demo.sh             plans/demo-model.yaml on a real model: the endpoint in OPENAI_BASE_URL
#                               (with OPENAI_API_KEY, OPENAI_MODEL) when set, else the local SmolLM2
#                               model that scripts/model.sh installs (a few minutes, the first time)
#   scripts/demo.sh --scripted  plans/demo.yaml on the scripted model: instant and the same every time
set -euo pipefail
cd "$(dirname "$0")/.."
mode=model
case "${1:-}" in
  --scripted) mode=scripted ;;
  "") ;;
  *)
    echo "usage: scripts/demo.sh [--scripted]" >&2
    exit 2
    ;;
esac
source scripts/deps.sh
swift build -c release 2>&1 | tail -n 1
agentd=.build/release/agentd

if [ "$mode" = scripted ]; then
  plan=plans/demo.yaml
else
  plan=plans/demo-model.yaml
  if [ -z "${OPENAI_BASE_URL:-}" ]; then
    echo "== the local model (scripts/model.sh; set OPENAI_BASE_URL to use another endpoint)"
    OPENAI_BASE_URL=$(scripts/model.sh start)
    export OPENAI_BASE_URL
    export OPENAI_MODEL="${OPENAI_MODEL:-smollm2}"
  fi
  if [ -z "${OPENAI_MODEL:-}" ]; then
    echo "OPENAI_BASE_URL is set: also set OPENAI_MODEL (the model name to ask for)" >&2
    exit 2
  fi
  echo "model: $OPENAI_MODEL at $OPENAI_BASE_URL"
fi

dir=$(mktemp -d /tmp/agentd-demo.XXXXXX)
export AGENTD_SOCKET="$dir/agentd.sock" AGENTD_DB="$dir/agentd.db"

echo "== agentd serve (log: $dir/daemon.log)"
"$agentd" serve >"$dir/daemon.log" 2>&1 &
daemon=$!
trap 'kill -TERM $daemon 2>/dev/null || true' EXIT
for _ in $(seq 100); do "$agentd" status >/dev/null 2>&1 && break; sleep 0.1; done
"$agentd" status

echo
echo "== agentd submit $plan, then agentd watch"
id=$("$agentd" submit "$plan" --goal "write release notes for agentd 0.1")
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
