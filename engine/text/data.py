"""Reading training text: a CSV with a `ref` column (E2E) or a text file with one sentence a line."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import torch

from engine.errors import EngineError
from engine.text.tokenizer import Tokenizer, split_words


def read_sentences(path: Path) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise EngineError(f"data file not found: {path}")
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames or "ref" not in reader.fieldnames:
                raise EngineError(f"{path}: a CSV needs a 'ref' column, found {reader.fieldnames}")
            sentences = [row["ref"].strip() for row in reader]
    else:
        sentences = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    sentences = [s for s in sentences if s]
    if not sentences:
        raise EngineError(f"{path} holds no sentences")
    return sentences


def encode_corpus(sentences: list[str], tokenizer: Tokenizer, seq_len: int,
                  split: Callable[[str], list[str]] = split_words) -> tuple[torch.Tensor, int]:
    """Fixed-length id rows [N, seq_len] of the sentences that fit, and how many were too long."""
    rows = [tokenizer.encode(s, seq_len, split) for s in sentences]
    kept = [r for r in rows if r is not None]
    if not kept:
        raise EngineError(f"no sentence fits in {seq_len} tokens")
    return torch.tensor(kept, dtype=torch.long), len(rows) - len(kept)


def read_pairs(path: Path, need_mr: bool = False) -> list[tuple[str, str]]:
    """(meaning representation, sentence) rows of an E2E CSV; a text file gives empty MRs."""
    path = Path(path)
    if not path.is_file():
        raise EngineError(f"data file not found: {path}")
    if path.suffix.lower() != ".csv":
        if need_mr:
            raise EngineError(f"{path}: labels from meaning representations need a CSV with 'mr' and 'ref' columns")
        return [("", s) for s in read_sentences(path)]
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or "ref" not in reader.fieldnames or (need_mr and "mr" not in reader.fieldnames):
            raise EngineError(f"{path}: needs columns {'mr and ref' if need_mr else 'ref'}, found {reader.fieldnames}")
        pairs = [(row.get("mr") or "", row["ref"].strip()) for row in reader if row["ref"].strip()]
    if not pairs:
        raise EngineError(f"{path} holds no sentences")
    return pairs
