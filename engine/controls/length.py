"""Length: exactly N words. Diffusion needs no classifier: the length is a hard constraint of the
template (END locked after N free words, PAD after it), so it always holds; the oracle counts the
words. A length target in left-to-right writing is steered as the paper's FUDGE baseline steered
it: by a discriminator (`LengthClassifier`) that predicts where the sentence ends from a prefix (a
prompt's own fixed length, a template or `length`, is held exactly there too).

Target file line: an integer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from engine.controls.base import END_LABEL, PAD_LABEL, ClassifierControl, ControlKind, Labels, position_targets
from engine.controls.classifier import LabelledCorpus
from engine.controls.pos import PositionClassifier
from engine.errors import TargetError

WORD = "WORD"  # the length discriminator's label of a position that holds a word


@dataclass(frozen=True)
class LengthTarget:
    words: int
    kind: ClassVar[str] = "length"


def length_target(value: Any) -> LengthTarget:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise TargetError(f"a length must be a positive whole number of words, got {value!r}")
    return LengthTarget(value)


def parse_field(text: str) -> LengthTarget:
    try:
        return length_target(int(text))
    except ValueError as exc:
        raise TargetError(f"a length must be a whole number, got {text!r}") from exc


@dataclass
class LengthControl:
    targets: list[LengthTarget | None]
    weight: float = 1.0
    name = "length"
    steers = False

    def log_prob(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return x_t.new_zeros(x_t.shape[0])

    def claims(self) -> torch.Tensor:
        return torch.zeros(len(self.targets))

    def lengths(self) -> list[int | None]:
        return [t.words if t else None for t in self.targets]

    def evaluate(self, words: Sequence[Sequence[str]]) -> list[float | None]:
        return [float(len(w) == t.words) if t else None for t, w in zip(self.targets, words, strict=True)]


class FutureLengthControl(ClassifierControl):
    """A length target steered by a FUDGE discriminator (left-to-right writing)."""

    name = "length"
    lengths = LengthControl.lengths
    evaluate = LengthControl.evaluate

    def build_labels(self) -> Labels:
        return Labels({"tags": self.position_labels([[WORD] * t.words if t else None for t in self.targets])},
                      claimed=("tags",))


class LengthClassifier(PositionClassifier):
    """Where the finished sentence ends: each position a word, END or PAD (FUDGE's length
    discriminator; the same per-position head as the POS classifier's, with one word label)."""

    @classmethod
    def label_names(cls, corpus: LabelledCorpus) -> list[str]:
        return [PAD_LABEL, END_LABEL, WORD]

    @classmethod
    def encode_labels(cls, corpus: LabelledCorpus, labels: list[str], seq_len: int) -> dict[str, torch.Tensor]:
        index = {name: i for i, name in enumerate(labels)}.__getitem__
        return {"tags": torch.tensor([position_targets(index, [WORD] * len(words), seq_len)
                                      for words in corpus.words])}


def length_control(source: LengthClassifier | None, targets: list, weight: float
                   ) -> LengthControl | FutureLengthControl:
    """Met by the template (diffusion), or steered by a FUDGE discriminator when one is given."""
    return LengthControl(targets, weight) if source is None else FutureLengthControl(source, targets, weight)


KIND = ControlKind(
    name="length", label="length in words", placeholder="12",
    parse_field=parse_field, read_line=lambda text: (parse_field(text), int(text)),
    compose_key="length", from_compose=lambda raw: length_target(raw["length"]),
    write_target=lambda example: str(len(example.words)),
    compose_entry=lambda example: {"length": len(example.words)},
    file_name="length.txt", control=length_control, discriminator=LengthClassifier, steers=False,
)
