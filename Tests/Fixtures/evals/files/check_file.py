"""The files suite's check: AGENTD_WORKSPACE/answer.txt must hold exactly "right" (and the fixture's
README.txt must still be there, so the workspace is the task's copy)."""
import os
import sys

workspace = os.environ["AGENTD_WORKSPACE"]
if not os.path.exists(os.path.join(workspace, "README.txt")):
    print("the workspace is not a copy of the fixture")
    sys.exit(1)
try:
    with open(os.path.join(workspace, "answer.txt"), encoding="utf-8") as f:
        text = f.read()
except FileNotFoundError:
    print("answer.txt is missing")
    sys.exit(1)
if text != "right":
    print("answer.txt says %r" % text)
    sys.exit(1)
