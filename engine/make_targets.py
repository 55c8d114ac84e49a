"""Write control target files (the formats `engine.controls.targets` reads) from an E2E CSV.

    python -m engine.make_targets --data ../shared/data/e2e/valid.csv --out docs/targets --n 100

From each of the first N sentences (in a seeded random order): its spaCy POS tags (pos.jsonl),
the sentence itself as a tree exemplar (tree.txt), one of its constituents of two or more words
other than the whole sentence (spans.jsonl), one field = value of its meaning representation
(semantic.jsonl; familyFriendly is left out: its values yes/no are not words a sentence
contains, so string match cannot judge them), its word count (length.txt), and its tags with one
field = value together (compose.jsonl).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

from engine.controls.targets import parse_mr
from engine.errors import EngineError
from engine.text.data import read_pairs
from engine.text.syntax import constituent_spans, parse
from engine.text.tokenizer import split_words

UNJUDGEABLE_FIELDS = ("familyFriendly",)


def make_targets(data: Path, out: Path, n: int, seed: int = 0) -> dict[str, int]:
    """Write the six files into `out`; returns how many targets each holds."""
    rng = random.Random(seed)
    pairs = read_pairs(data, need_mr=True)
    rng.shuffle(pairs)
    chosen = []
    for mr, ref in pairs:
        words = split_words(ref)
        attrs = [a for a in parse_mr(mr) if a.field not in UNJUDGEABLE_FIELDS]
        if words and attrs and len(words) <= 40:
            chosen.append((words, attrs))
        if len(chosen) == n:
            break
    trees = parse([w for w, _ in chosen])
    files: dict[str, list[str]] = {k: [] for k in ("pos.jsonl", "tree.txt", "spans.jsonl", "semantic.jsonl",
                                                   "length.txt", "compose.jsonl")}
    for (words, attrs), tree in zip(chosen, trees, strict=True):
        attr = rng.choice(attrs)
        attr_tokens = [*attr.field.split(), ":", *attr.value.split()]
        pos = {"pos": list(tree.pos), "words_": words}
        whole = (0, len(words) - 1) if tree.pos[-1] != "PUNCT" else (0, len(words) - 2)
        spans = sorted(s for s in constituent_spans(tree) if s[1] > s[0] and (s[0], s[1]) != whole)
        files["pos.jsonl"].append(json.dumps(pos, ensure_ascii=False))
        files["tree.txt"].append(" ".join(words))
        if spans:
            files["spans.jsonl"].append(json.dumps({"words_": words, "spans": [list(rng.choice(spans))]},
                                                   ensure_ascii=False))
        files["semantic.jsonl"].append(json.dumps(attr_tokens, ensure_ascii=False))
        files["length.txt"].append(str(len(words)))
        files["compose.jsonl"].append(json.dumps({**pos, "attr": attr_tokens}, ensure_ascii=False))
    out.mkdir(parents=True, exist_ok=True)
    for name, lines in files.items():
        (out / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {name: len(lines) for name, lines in files.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.make_targets", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="E2E CSV with mr and ref columns")
    parser.add_argument("--out", required=True, help="directory for the target files")
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        counts = make_targets(Path(args.data), Path(args.out), args.n, args.seed)
    except EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(counts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
