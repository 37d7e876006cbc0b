"""A `command` model for the actor role.

Reads the model request (one JSON object) on stdin, appends it exactly as received (one line) to
the file named by argv[1], and replies {"content": "<an actor reply>"} whose output quotes the step
line it was given, so the transcript can be checked against what the process really received.
"""
import json
import sys

received_path = sys.argv[1]
raw = sys.stdin.read()
request = json.loads(raw)
with open(received_path, "a") as f:
    f.write(raw.strip() + "\n")

user = [m["content"] for m in request.get("messages", []) if m.get("role") == "user"][-1]
step_line = next((line for line in user.split("\n") if line.startswith("Step ")), "?")
output = "echoed by script (step %s, attempt %s): %s" % (request.get("step"), request.get("attempt"), step_line)
print(json.dumps({"content": json.dumps({"output": output}), "usage": {"input_tokens": len(raw), "output_tokens": len(output)}}))
