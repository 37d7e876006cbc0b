# Verifies one job's hash chain in an agentd database with nothing but the sqlite3 CLI:
#   python3 scripts/verify_chain.py DB JOB     (exit 0 and "OK" when it verifies)
import hashlib, subprocess, sys

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
print(f"{job} OK: {n} events, chain head {prev.hex()}")
