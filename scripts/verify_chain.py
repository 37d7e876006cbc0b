# Verifies one job's hash chain in an agentd database with nothing but the sqlite3 CLI, and that the
# job's row (plan snapshot, goal, inputs, cwd) is what its first event committed to:
#   python3 scripts/verify_chain.py DB JOB     (exit 0 and "OK" when it verifies)
import hashlib, json, subprocess, sys

db, job = sys.argv[1], sys.argv[2]

def rows(sql):  # each row's columns as the CLI prints them, joined by 0x1F; NULL prints as nothing
    argv = ["sqlite3", "-readonly", "-list", "-separator", "\x1f", "-newline", "\x1e", "-nullvalue", "", db, sql]
    return subprocess.run(argv, capture_output=True, check=True).stdout.split(b"\x1e")[:-1]

key = job.replace("'", "''")
prev, n = bytes(32), 0
for row in rows(f"SELECT job_id, seq, at, kind, role, step, attempt, call_id, payload, hash "
                f"FROM events WHERE job_id = '{key}' ORDER BY seq"):
    message, _, stored = row.rpartition(b"\x1f")  # the canonical encoding, then the stored hash
    n += 1
    digest = hashlib.sha256(prev + message).digest()
    if int(message.split(b"\x1f")[1]) != n or digest.hex().encode() != stored:
        sys.exit(f"{job}: seq {n} does not match")
    prev = digest
if rows(f"SELECT head FROM job_chains WHERE job_id = '{key}'") != ([prev.hex().encode()] if n else []):
    sys.exit(f"{job}: chain head does not match the last event")
# job.submitted (seq 1) carries plan_sha256 and job_sha256 of the row written with it (absent in jobs
# recorded before they existed): the plan text, then plan, goal, inputs, cwd each followed by 0x1E.
first = rows(f"SELECT kind, payload FROM events WHERE job_id = '{key}' AND seq = 1")
submitted = json.loads(first[0].split(b"\x1f", 1)[1]) if first and first[0].startswith(b"job.submitted\x1f") else {}
fmt = submitted.get("format", 1)  # the record format the job was written in (ARCHITECTURE.md)
if fmt > 4:
    sys.exit(f"{job}: written in record format {fmt}, newer than this script reads (up to 4)")
if fmt >= 2 and "plan_sha256" not in submitted:
    sys.exit(f"{job}: record format {fmt} requires the digests of the job's row in its first event")
if "plan_sha256" in submitted:
    row = rows(f"SELECT hex(plan), hex(goal), hex(inputs), hex(cwd) FROM jobs WHERE id = '{key}'")[0]
    plan, goal, inputs, cwd = (bytes.fromhex(h.decode()) for h in row.split(b"\x1f"))
    if hashlib.sha256(plan).hexdigest() != submitted["plan_sha256"]:
        sys.exit(f"{job}: the stored plan snapshot differs from the plan its chain committed to")
    if hashlib.sha256(b"".join(t + b"\x1e" for t in (plan, goal, inputs, cwd))).hexdigest() != submitted["job_sha256"]:
        sys.exit(f"{job}: the stored goal, inputs or cwd differ from what its chain committed to")
print(f"{job} OK: {n} events, chain head {prev.hex()}")
