#!/usr/bin/env bash
# Writes a fixture database with the agentd built in .build/debug: the jobs every fixture since
# format 2 holds, then those that show what the current format added. Run once, by the release that
# introduces a format (fixtures are never regenerated; see README.md). Usage: record.sh OUT.db
set -euo pipefail
out=$(realpath -m "$1")
repo=$(cd "$(dirname "$0")/../../.." && pwd)
agentd="$repo/.build/debug/agentd"
work=/tmp/fx   # the jobs' directory, as recorded in every fixture
rm -rf "$work" && mkdir -p "$work/ws" && cd "$work"
sock="$work/d.sock"
"$agentd" serve --db "$out" --socket "$sock" >"$work/serve.log" 2>&1 &
daemon=$!
trap 'kill $daemon 2>/dev/null; wait $daemon 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
run() { local command=$1; shift; "$agentd" "$command" --socket "$sock" "$@"; }

run submit "$repo/plans/w1.yaml" --goal "fixture w1" --wait >/dev/null
run submit "$repo/plans/demo.yaml" --goal "release notes for the fixture" --wait >/dev/null

cat >tools.yaml <<'PLAN'
name: fixture-tools
workspace: /tmp/fx/ws
models:
  script:
    backend: scripted
    script:
      actor:
        - turn: 0
          reply: {tool_calls: [{name: write_file, arguments: {path: notes.txt, content: "hello\n"}}, {name: run_command, arguments: {argv: [cat, notes.txt]}}]}
        - {turn: 1, reply: {output: "wrote and read notes.txt"}}
      critic: [{reply: {verdict: pass, score: 0.9, feedback: fine}}]
      verifier: [{reply: {verified: true, reason: "the file is there"}}]
roles:
  actor: {model: script, prompt: "Use the tools.", tools: [write_file, run_command]}
  critic: {model: script, prompt: "Judge."}
  verifier: {model: script, prompt: "Verify."}
steps: ["write notes"]
PLAN
run submit tools.yaml --goal notes --wait >/dev/null

cat >fails.yaml <<'PLAN'
name: fixture-fails
models:
  script:
    backend: scripted
    script:
      actor: [{reply: {output: "a draft"}}]
      critic: [{reply: {verdict: pass, score: 1, feedback: ok}}]
roles:
  actor: {model: script, prompt: "Draft."}
  critic: {model: script, prompt: "Judge."}
  verifier: {command: [sh, -c, "echo 'the check failed' >&2; exit 3"]}
steps: ["draft"]
PLAN
run submit fails.yaml --goal "a draft that fails its check" --wait >/dev/null || true

cat >cancelled.yaml <<'PLAN'
name: fixture-cancelled
models:
  script:
    backend: scripted
    script:
      critic: [{reply: {verdict: pass, score: 1, feedback: ok}}]
      verifier: [{reply: {verified: true, reason: ok}}]
  slow: {backend: command, command: [sh, -c, "sleep 60"]}
roles:
  actor: {model: slow, prompt: "Take long."}
  critic: {model: script, prompt: "Judge."}
  verifier: {model: script, prompt: "Verify."}
steps: ["wait"]
PLAN
id=$(run submit cancelled.yaml --goal "cancel me" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
sleep 1
run cancel "$id" >/dev/null

# Format 3: contradictory verdicts asked again, an early re-plan, a command critic.
run submit "$repo/Tests/Fixtures/plans/contradictory-verdicts.yaml" --goal "name a fruit" --wait >/dev/null
sed 's/@REPLAN_BELOW@/0.2/' "$repo/Tests/Fixtures/plans/infeasible-step.yaml" >infeasible.yaml
run submit infeasible.yaml --goal "how many stars are there" --wait >/dev/null
cat >critic.yaml <<'PLAN'
name: fixture-command-critic
models:
  script:
    backend: scripted
    script:
      actor:
        - {attempt: 0, reply: {output: "an apple"}}
        - reply: {output: "a banana"}
roles:
  actor: {model: script, prompt: "Name a fruit."}
  critic: {command: [sh, -c, 'grep -q banana "$AGENTD_STEP_OUTPUT" || { echo "no banana in: $(cat "$AGENTD_STEP_OUTPUT")"; exit 1; }']}
  verifier: {command: [sh, -c, 'cat "$AGENTD_STEP_OUTPUTS"']}
steps: ["name a yellow fruit"]
PLAN
run submit critic.yaml --goal "a yellow fruit" --wait >/dev/null

# Format 4: every candidate recorded. Best-of-3 with tools, each candidate in its own copy of the
# workspace (the second, best scored, goes on); then three candidates per attempt over two attempts,
# a duplicate and an unusable one among them, none passing, so policy.on_exhausted: best goes on with
# the best of the step.
mkdir -p "$work/ws4"
cat >samples.yaml <<'PLAN'
name: fixture-samples
workspace: /tmp/fx/ws4
models:
  script:
    backend: scripted
    script:
      actor:
        - turn: 0
          reply: {tool_calls: [{name: write_file, arguments: {path: answer.txt, content: "from candidate {sample}\n"}}, {name: run_command, arguments: {argv: [cat, answer.txt]}}]}
        - {turn: 1, reply: {output: "answer {sample}"}}
      critic:
        - {sample: 0, reply: {verdict: pass, score: 0.6, feedback: good}}
        - {sample: 1, reply: {verdict: pass, score: 0.9, feedback: best}}
        - {sample: 2, reply: {verdict: fail, score: 0.2, feedback: wrong}}
roles:
  actor: {model: script, prompt: "Use the tools.", tools: [write_file, run_command]}
  critic: {model: script, prompt: "Judge."}
  verifier: {command: [cat, answer.txt], cwd: /tmp/fx/ws4}
steps: ["write the answer"]
policy: {samples: 3, max_attempts: 1}
PLAN
run submit samples.yaml --goal "the best of three" --wait >/dev/null
cat >tree.yaml <<'PLAN'
name: fixture-samples-tree
models:
  script:
    backend: scripted
    script:
      actor:
        - {attempt: 0, sample: 2, reply: {output: "draft a0 k0"}}
        - {attempt: 1, sample: 2, reply: {note: "no output"}}
        - reply: {output: "draft a{attempt} k{sample}"}
      critic:
        - {attempt: 0, sample: 0, reply: {verdict: fail, score: 0.3, feedback: "too vague"}}
        - {attempt: 0, sample: 1, reply: {verdict: fail, score: 0.5, feedback: closer}}
        - reply: {verdict: fail, score: 0.4, feedback: "worse again"}
roles:
  actor: {model: script, prompt: "Draft."}
  critic: {model: script, prompt: "Judge."}
  verifier: {command: [sh, -c, 'cat "$AGENTD_STEP_OUTPUTS"']}
steps: ["draft the note"]
policy: {samples: 3, max_attempts: 2, on_exhausted: best}
PLAN
run submit tree.yaml --goal "a tree of drafts" --wait >/dev/null

# One self-contained file: the daemon stopped, its WAL folded in.
kill $daemon && wait $daemon || true
trap - EXIT
sqlite3 "$out" 'PRAGMA journal_mode=DELETE' >/dev/null
rm -f "$out.lock"
