"""Length: exactly N words. Needs no classifier: the length is a hard constraint of the template
(END locked after N free words, PAD after it), so it always holds; the oracle counts the words.

Target file line: an integer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from engine.controls.base import ControlKind
from engine.errors import TargetError


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


KIND = ControlKind(
    name="length", label="length in words", placeholder="12",
    parse_field=parse_field, read_line=lambda text: (parse_field(text), int(text)),
    compose_key="length", from_compose=lambda raw: length_target(raw["length"]),
    write_target=lambda example: str(len(example.words)),
    compose_entry=lambda example: {"length": len(example.words)},
    file_name="length.txt", control=lambda source, targets, weight: LengthControl(targets, weight), steers=False,
)
