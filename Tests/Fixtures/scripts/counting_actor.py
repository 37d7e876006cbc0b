"""A `command` model for the actor role that counts its executions.

argv: COUNTER_FILE SLOW_STEP FLAG_FILE

Every execution first appends one line "step=S attempt=A" (taken from the request JSON on stdin) to
COUNTER_FILE. The first execution for step SLOW_STEP then creates FLAG_FILE and sleeps for a long
time, so the daemon can be killed while that call is in flight; later executions answer at once.
"""
import json
import os
import sys
import time

counter_path, slow_step, flag_path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
request = json.load(sys.stdin)
step, attempt = request.get("step"), request.get("attempt")
with open(counter_path, "a") as f:
    f.write("step=%s attempt=%s\n" % (step, attempt))
    f.flush()
    os.fsync(f.fileno())
if step == slow_step and not os.path.exists(flag_path):
    open(flag_path, "w").close()
    time.sleep(60)
print(json.dumps({"content": json.dumps({"output": "counted output for step %s attempt %s" % (step, attempt)})}))
