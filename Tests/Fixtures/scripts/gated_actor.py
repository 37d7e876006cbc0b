"""A `command` model for the actor role that waits for a gate file before answering.

argv: GATE_FILE

Lets a test hold a job in the middle of a call (to attach a watcher, say) and release it when ready.
Gives up after 30 seconds so a broken test never leaves it behind for long.
"""
import json
import os
import sys
import time

gate = sys.argv[1]
request = json.load(sys.stdin)
deadline = time.time() + 30
while not os.path.exists(gate) and time.time() < deadline:
    time.sleep(0.01)
print(json.dumps({"output": "gated output for step %s" % request.get("step")}))
