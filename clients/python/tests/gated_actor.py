"""A `command` model for the actor that answers only once its gate file exists (argv: GATE_FILE), so a
test holds a job running and lets it go when it is ready. Gives up after 60 seconds, so a broken test
never leaves it behind for long."""
import json
import os
import sys
import time

gate = sys.argv[1]
request = json.load(sys.stdin)
deadline = time.time() + 60
while not os.path.exists(gate) and time.time() < deadline:
    time.sleep(0.01)
print(json.dumps({"output": "gated output for step %s" % request.get("step")}))
