"""Write control target files (the formats `engine.controls.targets` reads) from an E2E CSV.

    python -m engine.make_targets --data ../shared/data/e2e/valid.csv --out docs/targets --n 100

From each of the first N sentences (in a seeded random order) every kind of control writes one
target into its file (see each kind's `write_target`: the sentence's tags, the sentence as a tree
exemplar, one of its constituents, one field = value of its meaning representation that a
reader can judge, its word count), and compose.jsonl holds the composition task's kinds together.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

from engine.cli import parser_for, run_command
from engine.controls import COMPOSED, KINDS, MEANING
from engine.controls.base import Example
from engine.text.data import read_pairs
from engine.text.syntax import parse
from engine.text.tokenizer import split_words


def make_targets(data: Path, out: Path, n: int, seed: int = 0) -> dict[str, int]:
    """Write one file per kind and compose.jsonl into `out`; returns how many targets each holds."""
    rng = random.Random(seed)
    pairs = read_pairs(data, need_mr=True)
    rng.shuffle(pairs)
    chosen = []
    for mr, ref in pairs:
        words, meaning = split_words(ref), KINDS[MEANING].from_mr(mr)
        if words and meaning and len(words) <= 40:
            chosen.append((words, meaning))
        if len(chosen) == n:
            break
    files: dict[str, list[str]] = {kind.file_name: [] for kind in KINDS.values()} | {"compose.jsonl": []}
    for (words, meaning), tree in zip(chosen, parse([w for w, _ in chosen]), strict=True):
        example = Example(words=words, tree=tree, meaning=rng.choice(meaning), rng=rng)
        for kind in KINDS.values():
            line = kind.write_target(example)
            if line is not None:
                files[kind.file_name].append(line)
        composed = {key: value for name in COMPOSED for key, value in KINDS[name].compose_entry(example).items()}
        files["compose.jsonl"].append(json.dumps(composed, ensure_ascii=False))
    out.mkdir(parents=True, exist_ok=True)
    for name, lines in files.items():
        (out / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {name: len(lines) for name, lines in files.items()}


def command(args) -> None:
    print(json.dumps(make_targets(Path(args.data), Path(args.out), args.n, args.seed)))


def main(argv: list[str] | None = None) -> int:
    parser = parser_for("engine.make_targets", __doc__)
    parser.add_argument("--data", required=True, help="E2E CSV with mr and ref columns")
    parser.add_argument("--out", required=True, help="directory for the target files")
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    return run_command(command, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
