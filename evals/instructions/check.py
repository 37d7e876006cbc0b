"""The instruction suite's check: does a text meet every constraint given on the command line?

Reads one attempt's output from the file AGENTD_STEP_OUTPUT when it is set (as a command critic
does), else the last step's output from the JSON file AGENTD_STEP_OUTPUTS (as a command verifier
does). Exit status 0 when every constraint holds; otherwise 1, printing one line per constraint
that does not, saying what was wanted and what was found (a command critic's feedback).

Constraints (any number, all must hold):
  --words N / --min-words N / --max-words N   words: runs of letters, digits and apostrophes
  --sentences N / --max-sentences N           sentences: text ending in . ! or ?
  --include WORD / --exclude WORD             whole words, case-insensitive; repeatable
  --upper / --lower                           every letter in that case
  --json-keys K1,K2                           a JSON object with exactly these keys, string values
  --json-list N                               a JSON array of N non-empty strings
  --bullets N                                 exactly N non-empty lines, each starting "- "
  --lines N                                   exactly N non-empty lines
  --number X                                  only the number X (a final period allowed)
  --starts-with S / --ends-with S             the trimmed text starts or ends with S (case-sensitive)
  --no-comma                                  no comma anywhere
"""
import argparse
import json
import os
import re
import sys


def read_output():
    if os.environ.get("AGENTD_STEP_OUTPUT"):
        with open(os.environ["AGENTD_STEP_OUTPUT"], encoding="utf-8") as f:
            return f.read()
    with open(os.environ["AGENTD_STEP_OUTPUTS"], encoding="utf-8") as f:
        outputs = json.load(f)
    return outputs[-1]["output"] if outputs else ""


def words(text):
    return re.findall(r"[A-Za-z0-9']+", text)


def sentences(text):
    return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if re.search(r"[A-Za-z0-9]", s)]


def lines(text):
    return [line for line in text.strip().splitlines() if line.strip()]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--words", type=int)
    p.add_argument("--min-words", type=int)
    p.add_argument("--max-words", type=int)
    p.add_argument("--sentences", type=int)
    p.add_argument("--max-sentences", type=int)
    p.add_argument("--include", action="append", default=[])
    p.add_argument("--exclude", action="append", default=[])
    p.add_argument("--upper", action="store_true")
    p.add_argument("--lower", action="store_true")
    p.add_argument("--json-keys")
    p.add_argument("--json-list", type=int)
    p.add_argument("--bullets", type=int)
    p.add_argument("--lines", type=int)
    p.add_argument("--number")
    p.add_argument("--starts-with")
    p.add_argument("--ends-with")
    p.add_argument("--no-comma", action="store_true")
    a = p.parse_args()

    text = read_output()
    trimmed = text.strip()
    w = words(text)
    lowered = {x.lower() for x in w}
    problems = []
    if a.words is not None and len(w) != a.words:
        problems.append("wanted exactly %d words, found %d" % (a.words, len(w)))
    if a.min_words is not None and len(w) < a.min_words:
        problems.append("wanted at least %d words, found %d" % (a.min_words, len(w)))
    if a.max_words is not None and len(w) > a.max_words:
        problems.append("wanted at most %d words, found %d" % (a.max_words, len(w)))
    s = sentences(text)
    if a.sentences is not None and len(s) != a.sentences:
        problems.append("wanted exactly %d sentences, found %d" % (a.sentences, len(s)))
    if a.max_sentences is not None and len(s) > a.max_sentences:
        problems.append("wanted at most %d sentences, found %d" % (a.max_sentences, len(s)))
    for word in a.include:
        if word.lower() not in lowered:
            problems.append("the word '%s' is missing" % word)
    for word in a.exclude:
        if word.lower() in lowered:
            problems.append("the word '%s' must not appear" % word)
    if a.upper and (trimmed != trimmed.upper() or not re.search(r"[A-Z]", trimmed)):
        problems.append("every letter must be upper case")
    if a.lower and (trimmed != trimmed.lower() or not re.search(r"[a-z]", trimmed)):
        problems.append("every letter must be lower case")
    if a.json_keys is not None:
        keys = a.json_keys.split(",")
        try:
            value = json.loads(trimmed)
        except ValueError as e:
            problems.append("the reply must be only a JSON object; it is not JSON (%s)" % e)
        else:
            if not isinstance(value, dict):
                problems.append("the reply must be a JSON object, found %s" % type(value).__name__)
            elif sorted(value) != sorted(keys):
                problems.append("the object's keys must be exactly %s, found %s" % (keys, list(value)))
            elif not all(isinstance(v, str) and v.strip() for v in value.values()):
                problems.append("every value must be a non-empty string")
    if a.json_list is not None:
        try:
            value = json.loads(trimmed)
        except ValueError as e:
            problems.append("the reply must be only a JSON array; it is not JSON (%s)" % e)
        else:
            if not isinstance(value, list):
                problems.append("the reply must be a JSON array, found %s" % type(value).__name__)
            elif len(value) != a.json_list:
                problems.append("the array must have %d items, found %d" % (a.json_list, len(value)))
            elif not all(isinstance(v, str) and v.strip() for v in value):
                problems.append("every item must be a non-empty string")
    if a.bullets is not None:
        found = lines(text)
        if len(found) != a.bullets or not all(line.lstrip().startswith("- ") for line in found):
            bullets = sum(1 for line in found if line.lstrip().startswith("- "))
            problems.append(
                "wanted exactly %d lines, each a bullet starting '- '; found %d lines, %d bullets" % (a.bullets, len(found), bullets)
            )
    if a.lines is not None and len(lines(text)) != a.lines:
        problems.append("wanted exactly %d non-empty lines, found %d" % (a.lines, len(lines(text))))
    if a.number is not None:
        answer = trimmed[:-1] if trimmed.endswith(".") else trimmed
        if answer.replace(",", "") != a.number:
            problems.append("the reply must be only the number, and the number is wrong or not alone: found %r" % trimmed[:80])
    if a.starts_with is not None and not trimmed.startswith(a.starts_with):
        problems.append("the reply must start with %r" % a.starts_with)
    if a.ends_with is not None and not trimmed.endswith(a.ends_with):
        problems.append("the reply must end with %r" % a.ends_with)
    if a.no_comma and "," in text:
        problems.append("the reply must not contain a comma")
    if problems:
        print("\n".join(problems))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
