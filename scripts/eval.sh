#!/usr/bin/env bash
# Runs `agentd eval` (docs/eval.md) on the shipped suites against a real model, and writes the reports
# to agentd-eval/ (git-ignored): SUITE.md (the tables), SUITE.json, SUITE.html.
#
# By default the model is the small local one that scripts/model.sh sets up (SmolLM2-135M-Instruct on
# 127.0.0.1; a few minutes the first time). Set OPENAI_BASE_URL (and OPENAI_MODEL, OPENAI_API_KEY) to
# run the same against any OpenAI-compatible endpoint instead.
#
# The defaults fit about 30 minutes on a 2-core machine with the local model: 40 of the 74 instruction
# tasks (spread evenly over the suite) and 4 of the 20 code tasks, one repetition, every arm.
#
# Usage: scripts/eval.sh [options]
#   --suite instructions|code|all   which suites (all)
#   --tasks N                       tasks per suite, spread evenly over it; 0 for all (40 and 4)
#   --reps N                        repetitions of every task under every arm (1)
#   --arms LIST                     arm names from evals/arms, comma-separated (single,resample,feedback,model-critic)
#   --concurrency N                 jobs in flight at once (2)
#   --run NAME                      the eval's name: the same name resumes, a new one starts afresh (local)
#
# Resumable: run the same command again after an interruption (Ctrl-C, a kill, a reboot) and it carries
# on where it stopped; the daemon's database is agentd-eval/daemon/agentd.db. The daemon is built in
# release mode unless AGENTD_BIN names an agentd binary.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

suites=all
tasks=""
reps=1
arms=single,resample,feedback,model-critic
concurrency=2
run=local
while [ $# -gt 0 ]; do
  case "$1" in
    --suite) suites=$2; shift 2 ;;
    --tasks) tasks=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --arms) arms=$2; shift 2 ;;
    --concurrency) concurrency=$2; shift 2 ;;
    --run) run=$2; shift 2 ;;
    -h | --help) sed -n 's/^#   //p' "$0"; exit 0 ;;
    *) echo "eval.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$suites" in
  all) suites="instructions code" ;;
  instructions | code) ;;
  *) echo "eval.sh: --suite takes instructions, code or all" >&2; exit 2 ;;
esac

if [ -n "${AGENTD_BIN:-}" ]; then
  agentd=$AGENTD_BIN
else
  source scripts/deps.sh
  swift build -c release 2>&1 | tail -n 1
  agentd=$root/.build/release/agentd
fi

if [ -z "${OPENAI_BASE_URL:-}" ]; then
  echo "== the local model (scripts/model.sh; set OPENAI_BASE_URL to use another endpoint)"
  [ -n "$(scripts/model.sh path 2>/dev/null)" ] || scripts/model.sh setup
  OPENAI_BASE_URL=$(scripts/model.sh start)
  export OPENAI_BASE_URL
  export OPENAI_MODEL="${OPENAI_MODEL:-smollm2}"
fi
if [ -z "${OPENAI_MODEL:-}" ]; then
  echo "OPENAI_BASE_URL is set: also set OPENAI_MODEL (the model name to ask for)" >&2
  exit 2
fi
echo "model: $OPENAI_MODEL at $OPENAI_BASE_URL"

# The daemon: its database persists (so a later run resumes its jobs); a daemon a killed run left
# behind is used again rather than started twice.
out=$root/agentd-eval
mkdir -p "$out/daemon"
export AGENTD_DB=$out/daemon/agentd.db
started=""
if [ -f "$out/daemon/pid" ] && kill -0 "$(cat "$out/daemon/pid")" 2>/dev/null && [ -S "$(cat "$out/daemon/socket")" ]; then
  export AGENTD_SOCKET
  AGENTD_SOCKET=$(cat "$out/daemon/socket")
  echo "== using the running daemon (pid $(cat "$out/daemon/pid"))"
else
  export AGENTD_SOCKET=/tmp/agentd-eval-$(id -u)-$$.sock
  echo "== agentd serve (log: $out/daemon/daemon.log)"
  "$agentd" serve >>"$out/daemon/daemon.log" 2>&1 &
  started=$!
  echo "$started" >"$out/daemon/pid"
  echo "$AGENTD_SOCKET" >"$out/daemon/socket"
  trap 'kill -TERM $started 2>/dev/null || true' EXIT
  for _ in $(seq 100); do "$agentd" status >/dev/null 2>&1 && break; sleep 0.1; done
fi

for suite in $suites; do
  want=$tasks
  [ -n "$want" ] || { [ "$suite" = instructions ] && want=40 || want=4; }
  # N task ids spread evenly over the suite (the suites are grouped by kind of task).
  ids=$(python3 - "evals/$suite/tasks.jsonl" "$want" <<'PY'
import json, sys
ids = [json.loads(l)["id"] for l in open(sys.argv[1]) if l.strip() and not l.startswith("#")]
n = int(sys.argv[2])
if 0 < n < len(ids):
    ids = [ids[i * len(ids) // n] for i in range(n)]
print(",".join(ids))
PY
  )
  dir=evals/arms
  [ "$suite" = code ] && dir=evals/arms/code
  plans=$(echo "$arms" | tr , '\n' | sed "s|.*|$dir/&.yaml|" | paste -sd, -)
  echo
  echo "== agentd eval evals/$suite: $(echo "$ids" | tr , '\n' | wc -l) tasks × $reps, arms $arms"
  start=$(date +%s)
  "$agentd" eval "evals/$suite" --plans "$plans" --tasks "$ids" --reps "$reps" --concurrency "$concurrency" \
    --run "$run-$OPENAI_MODEL" --dir "$out/$suite-$run" -o "$out/$suite.html" >"$out/$suite.md"
  "$agentd" eval "evals/$suite" --plans "$plans" --tasks "$ids" --reps "$reps" --run "$run-$OPENAI_MODEL" \
    --dir "$out/$suite-$run" --json --quiet >"$out/$suite.json"
  cat "$out/$suite.md"
  echo "($(($(date +%s) - start)) s; reports: $out/$suite.md, .json, .html)"
done
