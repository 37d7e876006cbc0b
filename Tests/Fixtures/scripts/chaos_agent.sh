#!/bin/sh
# A `command` model for the chaos test: marks this execution's start in the ledger named by $1, works a
# little, marks its end, then answers for the role named in the request on stdin: the planner plans
# three steps, the critic fails the first attempt of step 1 and passes everything else.
#
# Ledger lines (each appended atomically): `call start RUN KEY` and `call end RUN KEY`, where RUN is
# this execution (its pid and its start in nanoseconds) and KEY the call's idempotency key
# ($AGENTD_CALL_ID). The work between them is what a kill lands in: an execution the daemon's death
# interrupts never writes its end, unless it outlived the daemon, and then its end follows the next
# execution's start, which the test counts as an overlap. Most executions work a tenth of a second;
# one in eight works three seconds, longer than a restart takes, so that an execution outliving the
# daemon would still be running when its call runs again.
ledger=$1
request=$(cat)
now=$(date +%s%N)
run="$$-$now"
printf 'call start %s %s\n' "$run" "$AGENTD_CALL_ID" >> "$ledger"
case $(( 1${now#??????????} % 8 )) in
  0) sleep 3 ;;
  *) sleep 0.1 ;;
esac
printf 'call end %s %s\n' "$run" "$AGENTD_CALL_ID" >> "$ledger"
case "$request" in
  *'"role":"planner"'*) printf '{"steps": ["step 0: gather", "step 1: build", "step 2: check"]}\n' ;;
  *'"step":1,"attempt":0'*) printf '{"verdict": "fail", "score": 0.2, "feedback": "step 1 needs more detail"}\n' ;;
  *) printf '{"verdict": "pass", "score": 0.9, "feedback": "ok"}\n' ;;
esac
