"""Parts of speech: a Universal POS tag for every word.

Target file line: {"pos": [...], "words_": [...]} (START / END / newline entries dropped, whatever
their tag: the release tags its newline entry INTJ or SPACE).
Oracle: spaCy's tags, truncated or padded to the target's length, per-position accuracy
(Diffusion-LM's definition). The tags fix the number of words.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from engine.controls.base import (
    END_LABEL,
    NOT_WORDS,
    PAD_LABEL,
    ClassifierControl,
    ControlKind,
    Example,
    Labels,
    categorical,
    json_object,
    position_targets,
    word_list,
)
from engine.controls.classifier import ControlClassifier, LabelledCorpus
from engine.errors import TargetError
from engine.text.syntax import UPOS, parse

NEWLINE_TAG = "SPACE"  # spaCy's tag of the newline entry in the release's files (dropped with it)


@dataclass(frozen=True)
class PosTarget:
    tags: tuple[str, ...]
    words: tuple[str, ...] = ()  # the sentence the tags came from, if given
    kind: ClassVar[str] = "pos"


def pos_target(tags: list, words: list | None) -> PosTarget:
    if not isinstance(tags, list) or not all(isinstance(x, str) for x in tags):
        raise TargetError('"pos" must be a list of tags')
    words = word_list(words)
    if words and len(words) != len(tags):
        raise TargetError(f'"pos" has {len(tags)} tags but "words_" has {len(words)} entries')
    keep = [i for i in range(len(tags))
            if tags[i] not in (*NOT_WORDS, NEWLINE_TAG) and (not words or words[i] not in NOT_WORDS)]
    kept = tuple(tags[i] for i in keep)
    unknown = sorted(set(kept) - set(UPOS))
    if unknown:
        raise TargetError(f"unknown POS tag {', '.join(map(repr, unknown))}: the tags are {' '.join(UPOS)}")
    if not kept:
        raise TargetError("the POS target has no tags")
    return PosTarget(kept, tuple(words[i] for i in keep) if words else ())


def from_compose(raw: dict) -> PosTarget:
    return pos_target(raw["pos"], raw.get("words_"))


def read_line(text: str) -> tuple[PosTarget, dict]:
    raw = json_object(text, ("pos",))
    return from_compose(raw), raw


def write_target(example: Example) -> str:
    return json.dumps({"pos": list(example.tree.pos), "words_": example.words}, ensure_ascii=False)


class PosControl(ClassifierControl):
    name = "pos"

    def build_labels(self) -> Labels:
        return Labels({"tags": self.position_labels([list(t.tags) if t else None for t in self.targets])},
                      claimed=("tags",))

    def lengths(self) -> list[int | None]:
        return [len(t.tags) if t else None for t in self.targets]

    def evaluate(self, words: Sequence[Sequence[str]]) -> list[float | None]:
        trees = parse(words)
        scores: list[float | None] = []
        for target, tree in zip(self.targets, trees, strict=True):
            if target is None:
                scores.append(None)
                continue
            tags = list(tree.pos[: len(target.tags)]) + ["PAD"] * (len(target.tags) - len(tree))
            scores.append(sum(a == b for a, b in zip(tags, target.tags, strict=True)) / len(target.tags))
        return scores


class PositionClassifier(ControlClassifier):
    """A label for every position (a tag or a dependency label, then END and PAD)."""

    def build_output(self, hidden: int, n_labels: int) -> None:
        self.label_head = nn.Linear(hidden, n_labels)

    def output_log_prob(self, h: torch.Tensor, labels: Labels) -> torch.Tensor:
        return categorical(self.label_head(h), labels["tags"])

    @classmethod
    def batch_labels(cls, data: dict[str, torch.Tensor], index: torch.Tensor, lengths: torch.Tensor,
                     seq_len: int, generator: torch.Generator) -> Labels:
        return Labels({name: tensor[index] for name, tensor in data.items()}, claimed=tuple(data))


class PosClassifier(PositionClassifier):
    @classmethod
    def label_names(cls, corpus: LabelledCorpus) -> list[str]:
        return [PAD_LABEL, END_LABEL, *UPOS]

    @classmethod
    def encode_labels(cls, corpus: LabelledCorpus, labels: list[str], seq_len: int) -> dict[str, torch.Tensor]:
        index = {name: i for i, name in enumerate(labels)}.__getitem__
        return {"tags": torch.tensor([position_targets(index, tree.pos, seq_len) for tree in corpus.trees])}


KIND = ControlKind(
    name="pos", label="parts of speech (one Universal POS tag per word)",
    placeholder="PROPN AUX DET ADJ NOUN ADP DET NOUN PUNCT",
    parse_field=lambda text: pos_target(text.split(), None), read_line=read_line,
    compose_key="pos", from_compose=from_compose, write_target=write_target,
    compose_entry=lambda example: json.loads(write_target(example)), file_name="pos.jsonl",
    control=PosControl, classifier=PosClassifier, composed=True,
    guidance={"strength": 0.8, "t_min": 0.7}, candidates=8,  # measured: docs/controls.md, "Defaults per kind"
)
