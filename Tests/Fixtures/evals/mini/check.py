"""The mini suite's check: the output must be exactly argv[1].

Reads one attempt's output from AGENTD_STEP_OUTPUT when set (as a command critic does), else the
last step's output from AGENTD_STEP_OUTPUTS (as a command verifier does). When EVAL_CHECK_LEDGER is
set, appends a line per run to it, so a test can count the checks that ran.
"""
import json
import os
import sys

want = sys.argv[1]
if os.environ.get("AGENTD_STEP_OUTPUT"):
    with open(os.environ["AGENTD_STEP_OUTPUT"], encoding="utf-8") as f:
        text = f.read()
    what = "attempt %s" % os.environ.get("AGENTD_ATTEMPT", "?")
else:
    with open(os.environ["AGENTD_STEP_OUTPUTS"], encoding="utf-8") as f:
        text = json.load(f)[-1]["output"]
    what = "final"
ledger = os.environ.get("EVAL_CHECK_LEDGER")
if ledger:
    with open(ledger, "a", encoding="utf-8") as f:
        f.write("%s %s\n" % (want, what))
if text.strip() == want:
    sys.exit(0)
print("expected %r, got %r" % (want, text.strip()))
sys.exit(1)
