#!/usr/bin/env python3
"""Checks a text against the rules written in brackets at the end of its step.

A command critic for plans whose steps have checkable properties (plans/demo-model.yaml). The step
says what it wants in words a model reads and this script checks:

    [at most 25 words] [at least 5 words] [one sentence] [mentions "daemon"] [avoids "TODO"]
    [3 lines starting with "- "] [JSON object with keys "version", "date"]

As a critic (no arguments) it reads the step from $AGENTD_STEP and the output from the file named
by $AGENTD_STEP_OUTPUT; with --all, as a verifier, it checks every step's output in the file named by
$AGENTD_STEP_OUTPUTS. It prints a "FAIL" line per broken rule saying what to change (or one "ok"
line when all hold), and exits 0 when every rule holds, 1 otherwise: agentd takes the exit status as the verdict and the lines as
the feedback a rerun reads. Standard library only.
"""

import json
import os
import re
import sys

RULE = re.compile(r"\[([^\[\]]+)\]")


def words(text):
    return re.findall(r"[A-Za-z0-9][A-Za-z0-9'’.-]*", text)


def sentences(text):
    return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s.strip()]


def quoted(rule):
    return re.findall(r'"([^"]*)"', rule)


def check(rule, text):
    """(ok, message) for one rule; None for a rule this script does not know."""
    rule = rule.strip()
    lower = rule.lower()
    if m := re.fullmatch(r"at most (\d+) words", lower):
        limit, n = int(m[1]), len(words(text))
        return n <= limit, f"{n} words (at most {limit})" + ("" if n <= limit else f": cut {n - limit} or more words")
    if m := re.fullmatch(r"at least (\d+) words", lower):
        limit, n = int(m[1]), len(words(text))
        return n >= limit, f"{n} words (at least {limit})" + ("" if n >= limit else f": add {limit - n} or more words")
    if lower == "one sentence":
        n = len(sentences(text))
        return n == 1, f"{n} sentence{'' if n == 1 else 's'} (exactly one)" + ("" if n == 1 else ": write a single sentence ending in one full stop")
    if lower.startswith("mentions "):
        missing = [t for t in quoted(rule) if t.lower() not in text.lower()]
        if missing:
            return False, "does not mention " + ", ".join(f'"{t}"' for t in missing) + ": use " + (
                "that word" if len(missing) == 1 else "those words")
        return True, "mentions " + ", ".join(f'"{t}"' for t in quoted(rule))
    if lower.startswith("avoids "):
        present = [t for t in quoted(rule) if t.lower() in text.lower()]
        if present:
            return False, "contains " + ", ".join(f'"{t}"' for t in present) + ": remove it"
        return True, "avoids " + ", ".join(f'"{t}"' for t in quoted(rule))
    if m := re.fullmatch(r'(\d+) lines starting with "(.*)"', rule):
        want, prefix = int(m[1]), m[2]
        lines = [line for line in text.splitlines() if line.strip()]
        starting = [line for line in lines if line.startswith(prefix)]
        ok = len(starting) == want and len(lines) == want
        detail = f'{len(starting)} of {len(lines)} non-empty lines start with "{prefix}" (exactly {want}, and no other lines)'
        return ok, detail + ("" if ok else f': write exactly {want} lines, each starting with "{prefix}"')
    if lower.startswith("json object with keys"):
        keys = quoted(rule)
        try:
            value = json.loads(text)
        except ValueError as error:
            return False, f"not valid JSON ({error.msg} at line {error.lineno} column {error.colno}): reply with the JSON object only"
        if not isinstance(value, dict):
            return False, f"JSON {type(value).__name__}, not an object: reply with one JSON object"
        missing = [k for k in keys if k not in value]
        if missing:
            return False, "JSON object lacks " + ", ".join(f'"{k}"' for k in missing) + ": add those keys"
        return True, "a JSON object with " + ", ".join(f'"{k}"' for k in keys)
    return None


def judge(step, text, label=""):
    """Prints what `text` breaks of `step`'s rules (or that it keeps them all) and returns whether all hold.

    Only the broken rules are printed on a failure: the rerun of a small model does best with only
    what to change."""
    rules = RULE.findall(step)
    if not rules:
        print(f"{label}FAIL: the step states no [rule] this check knows")
        return False
    results = [(rule, check(rule, text)) for rule in rules]
    broken = [(rule, result) for rule, result in results if result is None or not result[0]]
    for rule, result in broken:
        print(f"{label}FAIL: " + (f"unknown rule [{rule}]" if result is None else result[1]))
    if not broken:
        print(f"{label}ok: " + "; ".join(result[1] for _, result in results))
    return not broken


def main():
    if sys.argv[1:] == ["--all"]:
        with open(os.environ["AGENTD_STEP_OUTPUTS"], encoding="utf-8") as f:
            results = json.load(f)
        passed = all([judge(r["step"], r["output"], f"step {i + 1}: ") for i, r in enumerate(results)])
    elif sys.argv[1:]:
        sys.exit("usage: text_rules.py [--all]")
    else:
        with open(os.environ["AGENTD_STEP_OUTPUT"], encoding="utf-8") as f:
            text = f.read()
        passed = judge(os.environ["AGENTD_STEP"], text)
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
