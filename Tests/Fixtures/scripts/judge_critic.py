"""A `command` model for the critic role: prints the verdict object itself (no "content" wrapper).

Passes every output that was produced by echo_actor.py, fails anything else.
"""
import json
import sys

request = json.load(sys.stdin)
user = request["messages"][-1]["content"]
ok = "echoed by script" in user
print(json.dumps({
    "verdict": "pass" if ok else "fail",
    "score": 0.8 if ok else 0.1,
    "feedback": "judged by script: step %s attempt %s" % (request.get("step"), request.get("attempt")),
}))
