#!/usr/bin/env python3
"""Writes plugins/gsm8k/tests/fixtures/paper_rule_cases.jsonl: random strings
of answer-like characters and what the LEK paper's GSM8K extraction rule
(Python's `re`, as stated in plugins/gsm8k/src/paper.rs) extracts from each,
so the plugin's hand-written matcher is tested against Python's engine.

    python3 scripts/gsm8k_rule_cases.py
"""
import json
import pathlib
import random
import re

MARKER = re.compile(r"####\s*([0-9,.\-]+)")
NUMBER = re.compile(r"(?:^|[\s=])(-?[\d,]+(?:\.\d+)?)")
PIECES = list("0123456789,.-=# $\n\t*x/()") + ["\u00a0", "\u3000", "\x1f", "é", "ERROR", "####", "#####"]


def extract(response):
    if not response or response.startswith("ERROR"):
        return None
    m = MARKER.search(response)
    if m:
        return [m.group(1).replace(",", ""), "####"]
    found = NUMBER.findall(response)
    if found:
        return [found[-1].replace(",", ""), "last-number"]
    return None


def main():
    rng = random.Random(20261202)
    out = pathlib.Path(__file__).resolve().parent.parent / "plugins/gsm8k/tests/fixtures/paper_rule_cases.jsonl"
    with out.open("w") as f:
        for _ in range(3000):
            s = "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 24)))
            f.write(json.dumps({"response": s, "extracted": extract(s)}, ensure_ascii=False) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
