"""Syntax tree: the dependency tree of an exemplar sentence, every word's head and label.

Target file line: the exemplar sentence as plain text. Oracle: labelled attachment F1 against
spaCy's parse of the output. The exemplar fixes the number of words.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from engine.controls.base import (
    END_LABEL,
    IGNORE,
    PAD_LABEL,
    ClassifierControl,
    ControlKind,
    Labels,
    categorical,
    position_targets,
)
from engine.controls.classifier import LabelledCorpus
from engine.controls.pos import PositionClassifier
from engine.errors import TargetError
from engine.text.syntax import Parse, attachment_f1, dependency_labels, parse
from engine.text.tokenizer import bounded_words


@dataclass(frozen=True)
class TreeTarget:
    tree: Parse
    kind: ClassVar[str] = "tree"


def tree_target(sentence: Any) -> TreeTarget:
    if not isinstance(sentence, str):
        raise TargetError(f"a tree target is an exemplar sentence, got {type(sentence).__name__}")
    words = bounded_words(sentence, "the exemplar", error=TargetError)
    if not words:
        raise TargetError("a tree target is an exemplar sentence, got nothing")
    return TreeTarget(parse([words])[0])


def head_positions(heads: Sequence[int]) -> list[int]:
    """Each word's dependency head as a sequence position (word i sits at i + 1; the root points at START, 0)."""
    return [0 if h == i else h + 1 for i, h in enumerate(heads)]


def head_labels(trees: Sequence[Parse | None], seq_len: int) -> torch.Tensor:
    """[B, L] each word's head position (IGNORE elsewhere and in rows without a tree)."""
    heads = torch.full((len(trees), seq_len), IGNORE)
    for row, tree in enumerate(trees):
        if tree is not None:
            heads[row, 1:len(tree) + 1] = torch.tensor(head_positions(tree.heads))
    return heads


class TreeControl(ClassifierControl):
    name = "tree"

    def build_labels(self) -> Labels:
        tags = self.position_labels([list(t.tree.deps) if t else None for t in self.targets])
        heads = head_labels([t.tree if t else None for t in self.targets], tags.shape[1])
        return Labels({"tags": tags, "heads": heads}, claimed=("tags", "heads"))

    def lengths(self) -> list[int | None]:
        return [len(t.tree) if t else None for t in self.targets]

    def evaluate(self, words: Sequence[Sequence[str]]) -> list[float | None]:
        trees = parse(words)
        return [attachment_f1(t.tree, tree) if t else None for t, tree in zip(self.targets, trees, strict=True)]


class TreeClassifier(PositionClassifier):
    """A dependency label for every position, and for every word a distribution over which
    position is its head (a biaffine-style pointer; the root points at START)."""

    def build_output(self, hidden: int, n_labels: int) -> None:
        super().build_output(hidden, n_labels)
        self.head_query = nn.Linear(hidden, hidden)
        self.head_key = nn.Linear(hidden, hidden)

    def output_log_prob(self, h: torch.Tensor, labels: Labels) -> torch.Tensor:
        pointer = self.head_query(h) @ self.head_key(h).transpose(1, 2) / math.sqrt(self.config.hidden)
        return super().output_log_prob(h, labels) + categorical(pointer, labels["heads"])

    @classmethod
    def label_names(cls, corpus: LabelledCorpus) -> list[str]:
        return [PAD_LABEL, END_LABEL, *dependency_labels()]

    @classmethod
    def encode_labels(cls, corpus: LabelledCorpus, labels: list[str], seq_len: int) -> dict[str, torch.Tensor]:
        index = {name: i for i, name in enumerate(labels)}.__getitem__
        tags = torch.tensor([position_targets(index, tree.deps, seq_len) for tree in corpus.trees])
        return {"tags": tags, "heads": head_labels(corpus.trees, seq_len)}


KIND = ControlKind(
    name="tree", label="syntax: a sentence whose parse tree to follow",
    placeholder="The Mill is a pub near the river .",
    parse_field=tree_target, read_line=lambda text: (tree_target(text), text),
    compose_key="tree", from_compose=lambda raw: tree_target(raw["tree"]),
    write_target=lambda example: " ".join(example.words),
    compose_entry=lambda example: {"tree": " ".join(example.words)}, file_name="tree.txt",
    control=TreeControl, classifier=TreeClassifier,
    guidance={"t_min": 0.7}, candidates=8,  # measured: docs/controls.md, "Defaults per kind"
)
