#!/bin/sh
# A `command` model for the chaos test: records this execution's idempotency key ($AGENTD_CALL_ID) in
# the ledger named by $1 (one line per execution, appended atomically), then answers for the role named
# in the request on stdin: the planner plans three steps, the critic fails the first attempt of step 1
# and passes everything else.
ledger=$1
request=$(cat)
printf 'call %s\n' "$AGENTD_CALL_ID" >> "$ledger"
case "$request" in
  *'"role":"planner"'*) printf '{"steps": ["step 0: gather", "step 1: build", "step 2: check"]}\n' ;;
  *'"step":1,"attempt":0'*) printf '{"verdict": "fail", "score": 0.2, "feedback": "step 1 needs more detail"}\n' ;;
  *) printf '{"verdict": "pass", "score": 0.9, "feedback": "ok"}\n' ;;
esac
