"""The code suite's check: runs one test file of tests/ against solution.py in the workspace.

argv: TEST_FILE (relative to the suite). The workspace is AGENTD_WORKSPACE (the job's, or a snapshot of
it as one attempt left it). Exit status 0 when every test passes; otherwise the failures are printed,
which a command critic hands the actor as feedback. The tests import code the model wrote: run this
suite only where that is acceptable.
"""
import os
import subprocess
import sys

test = os.path.abspath(sys.argv[1])
workspace = os.environ.get("AGENTD_WORKSPACE", ".")
if not os.path.exists(os.path.join(workspace, "solution.py")):
    print("solution.py does not exist in the workspace: write it with the write_file tool")
    sys.exit(1)
env = dict(os.environ, PYTHONPATH=workspace, PYTHONDONTWRITEBYTECODE="1")
try:
    run = subprocess.run(
        [sys.executable, test], cwd=workspace, env=env, capture_output=True, text=True, timeout=20
    )
except subprocess.TimeoutExpired:
    print("the tests did not finish within 20 seconds")
    sys.exit(1)
if run.returncode != 0:
    print((run.stdout + run.stderr)[-3000:])
sys.exit(run.returncode)
