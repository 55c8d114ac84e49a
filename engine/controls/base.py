"""Controls: what a sample must satisfy, steered by classifier gradients and judged by oracles.

Every control follows one small protocol (`Control`): a differentiable log-probability of its
target given a noisy latent (used by `Guidance`), an oracle that scores finished words
independently of any classifier (spaCy parse or string match), and the number of words the
target implies, if any. A control holds one target per batch row (None where that row asks
nothing of it), so a batch can mix targets. New kinds plug in by implementing the protocol; the
sampler only sees a `Guidance`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import torch

from engine.controls.classifier import IGNORE, ControlClassifier, Labels, head_positions, position_targets
from engine.controls.targets import LengthTarget, PosTarget, SemanticTarget, SpanTarget, Target, TargetError, TreeTarget
from engine.errors import TemplateError
from engine.text.syntax import attachment_f1, constituent_spans, parse
from engine.text.template import Template, fixed_length, length_template


class Control(Protocol):
    name: str
    weight: float
    steers: bool  # False for a control met by the template alone (its log_prob is never asked)

    def log_prob(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """[B] log p(target | x_t) under the control's classifier, differentiable in x_t."""
        ...

    def claims(self) -> torch.Tensor:
        """[B] how many claims log_prob sums over (a per-claim probability is exp(log_prob / claims))."""
        ...

    def evaluate(self, words: Sequence[Sequence[str]]) -> list[float | None]:
        """Per row, how well finished words meet the target (1 = fully), by an independent oracle."""
        ...

    def lengths(self) -> list[int | None]:
        """Per row, the number of words the target requires (None: any)."""
        ...


@dataclass
class ClassifierControl:
    """A control steered by a trained classifier; subclasses turn targets into `Labels`."""

    classifier: ControlClassifier
    targets: list  # one target (or None) per row
    weight: float = 1.0
    labels: Labels = field(init=False)
    name = "control"
    steers = True

    def __post_init__(self) -> None:
        self.labels = self.build_labels()

    @property
    def seq_len(self) -> int:
        return self.classifier.config.seq_len

    def label_index(self, name: str) -> int:
        names = self.classifier.config.labels
        if name not in names:
            raise TargetError(f"the {self.name} classifier does not know {name!r}")
        return names.index(name)

    def build_labels(self) -> Labels:
        raise NotImplementedError

    def log_prob(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.classifier.log_prob(x_t, t, self.labels)

    def claims(self) -> torch.Tensor:
        return self.labels.claims()

    def lengths(self) -> list[int | None]:
        return [None] * len(self.targets)

    def position_labels(self, per_row: list[list[str] | None]) -> torch.Tensor:
        """[B, L] START ignored, one label per word, END, then PAD (all IGNORE for rows without a target)."""
        rows = []
        for names in per_row:
            if names is None:
                rows.append([IGNORE] * self.seq_len)
                continue
            if len(names) + 2 > self.seq_len:
                raise TemplateError(f"a {self.name} target of {len(names)} words is impossible: the model "
                                    f"writes at most {self.seq_len - 2}")
            rows.append(position_targets(self.label_index, names, self.seq_len))
        return torch.tensor(rows)


class PosControl(ClassifierControl):
    """A Universal POS tag for every word. Oracle: spaCy's tags, truncated or padded to the
    target's length, per-position accuracy (Diffusion-LM's definition)."""

    name = "pos"

    def build_labels(self) -> Labels:
        return Labels(tags=self.position_labels([list(t.tags) if t else None for t in self.targets]))

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


class TreeControl(ClassifierControl):
    """The dependency tree of an exemplar: every word's head and label. Oracle: labelled
    attachment F1 against spaCy's parse of the output."""

    name = "tree"

    def build_labels(self) -> Labels:
        tags = self.position_labels([list(t.tree.deps) if t else None for t in self.targets])
        heads = torch.full_like(tags, IGNORE)
        for row, target in enumerate(self.targets):
            if target:
                heads[row, 1:len(target.tree) + 1] = torch.tensor(head_positions(target.tree.heads))
        return Labels(tags=tags, heads=heads)

    def lengths(self) -> list[int | None]:
        return [len(t.tree) if t else None for t in self.targets]

    def evaluate(self, words: Sequence[Sequence[str]]) -> list[float | None]:
        trees = parse(words)
        return [attachment_f1(t.tree, tree) if t else None for t, tree in zip(self.targets, trees, strict=True)]


class SpanControl(ClassifierControl):
    """Constituents (i, j, label). Oracle: the span is among those `syntax.constituent_spans`
    derives from spaCy's parse of the output (the fraction of target spans found)."""

    name = "spans"

    def build_labels(self) -> Labels:
        width = max((len(t.spans) for t in self.targets if t), default=1)
        spans = torch.zeros((len(self.targets), width, 2), dtype=torch.long)
        labels = torch.full((len(self.targets), width), IGNORE)
        for row, target in enumerate(self.targets):
            for k, (i, j, label) in enumerate(target.spans if target else ()):
                if j + 2 >= self.seq_len:
                    raise TargetError(f"span [{i}, {j}] is out of range: the model writes at most "
                                      f"{self.seq_len - 2} words")
                spans[row, k] = torch.tensor([i + 1, j + 1])
                labels[row, k] = self.label_index(label)
        return Labels(spans=spans, span_labels=labels)

    def evaluate(self, words: Sequence[Sequence[str]]) -> list[float | None]:
        trees = parse(words)
        return [sum(span in constituent_spans(tree) for span in t.spans) / len(t.spans) if t else None
                for t, tree in zip(self.targets, trees, strict=True)]


class SemanticControl(ClassifierControl):
    """Field = value pairs of the E2E meaning representations (one or more per row). Oracle: the
    value's words appear, consecutively, in the output (case-insensitive), as in Diffusion-LM; with
    several, the fraction that do."""

    name = "semantic"

    def build_labels(self) -> Labels:
        values = torch.full((len(self.targets), len(self.classifier.config.labels)), IGNORE)
        for row, targets in enumerate(self.targets):
            for target in targets or ():
                if target.label not in self.classifier.config.labels:
                    known = sorted(v.split("=", 1)[1] for v in self.classifier.config.labels
                                   if v.startswith(target.field + "="))
                    raise TargetError(f"unknown value {target.value!r} for {target.field}: the classifier "
                                      f"knows {', '.join(known) or 'no value of that field'}")
                values[row, self.label_index(target.label)] = 1
        return Labels(values=values)

    def evaluate(self, words: Sequence[Sequence[str]]) -> list[float | None]:
        return [sum(mentions(row, t.value) for t in targets) / len(targets) if targets else None
                for targets, row in zip(self.targets, words, strict=True)]


def mentions(words: Sequence[str], value: str) -> bool:
    """Whether the value's words appear consecutively in `words`, ignoring case."""
    wanted, have = value.lower().split(), [w.lower() for w in words]
    return any(have[i:i + len(wanted)] == wanted for i in range(len(have) - len(wanted) + 1))


@dataclass
class LengthControl:
    """Exactly N words. Needs no classifier: the length is a hard constraint of the template (END
    locked after N free words, PAD after it), so it always holds; the oracle counts the words."""

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


CONTROL_TYPES = {PosTarget: PosControl, TreeTarget: TreeControl, SpanTarget: SpanControl,
                 SemanticTarget: SemanticControl}
KIND_OF = {PosTarget: "pos", TreeTarget: "tree", SpanTarget: "spans", SemanticTarget: "semantic",
           LengthTarget: "length"}


def build_controls(rows: Sequence[Sequence[Target]], classifier_for, weights: dict[str, float] | None = None
                   ) -> list[Control]:
    """One control per kind named in any row, holding each row's target of that kind (or None;
    semantic rows hold a tuple of field=value targets). `classifier_for(kind)` supplies the trained
    classifier; `weights` maps kind -> weight."""
    weights = weights or {}
    kinds: dict[type, list] = {}
    for r, targets in enumerate(rows):
        for target in targets:
            per_row = kinds.setdefault(type(target), [None] * len(rows))
            if isinstance(target, SemanticTarget):
                per_row[r] = (*(per_row[r] or ()), target)
            elif per_row[r] is not None:
                raise TargetError(f"two {KIND_OF[type(target)]} targets for one sample")
            else:
                per_row[r] = target
    controls: list[Control] = []
    for kind, per_row in kinds.items():
        weight = weights.get(KIND_OF[kind], 1.0)
        if kind is LengthTarget:
            controls.append(LengthControl(per_row, weight))
        else:
            controls.append(CONTROL_TYPES[kind](classifier_for(KIND_OF[kind]), per_row, weight))
    return controls


def constrain(templates: list[Template], controls: Sequence[Control], seq_len: int,
              drop_conflicts: bool = False) -> list[Template]:
    """Templates with the word counts the controls imply: a free row gets exactly that many free
    words; a row whose template already fixes a different count is a conflict. With
    `drop_conflicts` (rows that try several lengths for a `...` blank) such rows are left out
    instead, and only a batch with no row left is an error."""
    result: list[Template | None] = list(templates)
    conflict = None
    for control in controls:
        for row, n in enumerate(control.lengths()):
            if n is None or result[row] is None:
                continue
            if n < 1 or n + 2 > seq_len:
                raise TemplateError(f"{control.name} asks for {n} words: impossible, the model writes "
                                    f"1 to {seq_len - 2}")
            current = fixed_length(result[row])
            if current is None:
                result[row] = length_template(n, seq_len)
            elif current != n:
                conflict = (f"conflicting controls: {control.name} asks for {n} words but the template (or "
                            f"another control) fixes {current}")
                if not drop_conflicts:
                    raise TemplateError(conflict)
                result[row] = None
    kept = [t for t in result if t is not None]
    if not kept:
        raise TemplateError(conflict or "no template to sample")
    return kept
