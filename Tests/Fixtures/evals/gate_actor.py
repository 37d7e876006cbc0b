"""A `command` model for the actor of the eval tests: answers "ANSWER", but a request whose goal says
"slow" first waits for a gate file, so a test can kill the eval or the daemon while that job runs.

argv: GATE_FILE. Gives up waiting after 120 seconds so a broken test never leaves it behind for long.
"""
import json
import os
import sys
import time

gate = sys.argv[1]
request = sys.stdin.read()
if "slow" in request:
    deadline = time.time() + 120
    while not os.path.exists(gate) and time.time() < deadline:
        time.sleep(0.01)
print(json.dumps({"output": "ANSWER"}))
