"""Reading training text: a CSV with a `ref` column (E2E) or a text file with one sentence a line.

Every problem (a missing file or column, a row without its field, bytes that are not UTF-8) is an
EngineError naming the file and, where there is one, the line.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from engine.errors import EngineError
from engine.text.tokenizer import Tokenizer, split_words


def read_sentences(path: Path) -> list[str]:
    """The non-empty sentences of a CSV's `ref` column or of a text file's lines."""
    return [ref for _, ref in read_pairs(path)]


def read_pairs(path: Path, need_mr: bool = False) -> list[tuple[str, str]]:
    """(meaning representation, sentence) rows of an E2E CSV; a text file gives empty MRs."""
    path = Path(path)
    if not path.is_file():
        raise EngineError(f"data file not found: {path}")
    try:
        if path.suffix.lower() == ".csv":
            pairs = list(_csv_pairs(path, need_mr))
        elif need_mr:
            raise EngineError(f"{path}: labels from meaning representations need a CSV with 'mr' and 'ref' columns")
        else:
            pairs = [("", line.strip()) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except UnicodeDecodeError as exc:
        raise EngineError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}): is it a text or CSV file?"
                          ) from exc
    except csv.Error as exc:
        raise EngineError(f"{path} is not a readable CSV: {exc}") from exc
    if not pairs:
        raise EngineError(f"{path} holds no sentences")
    return pairs


def _csv_pairs(path: Path, need_mr: bool) -> Iterator[tuple[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        needed = ("mr", "ref") if need_mr else ("ref",)
        if not reader.fieldnames or any(name not in reader.fieldnames for name in needed):
            raise EngineError(f"{path}: a CSV needs the column(s) {' and '.join(map(repr, needed))}, "
                              f"found {reader.fieldnames}")
        for row in reader:
            if row.get("ref") is None or (need_mr and row.get("mr") is None):
                raise EngineError(f"{path}, line {reader.line_num}: the row has no {' or '.join(needed)} field")
            if row["ref"].strip():
                yield row.get("mr") or "", row["ref"].strip()


def encode_corpus(sentences: list[str], tokenizer: Tokenizer, seq_len: int,
                  split: Callable[[str], list[str]] = split_words) -> tuple[torch.Tensor, int]:
    """Fixed-length id rows [N, seq_len] of the sentences that fit, and how many were too long."""
    rows = [tokenizer.encode(s, seq_len, split) for s in sentences]
    kept = [r for r in rows if r is not None]
    if not kept:
        raise EngineError(f"no sentence fits in {seq_len} tokens")
    return torch.tensor(kept, dtype=torch.long), len(rows) - len(kept)
