"""Semantic content: field = value pairs of the E2E meaning representations (one or more per sample).

Target file line: a JSON list such as ["food", ":", "Italian"] (field before the colon, value
after). Oracle: the value's words appear, consecutively, in the output (case-insensitive), as in
Diffusion-LM; with several, the fraction that do.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from engine.controls.base import IGNORE, ClassifierControl, ControlKind, Labels, Steering, json_value
from engine.controls.classifier import ControlClassifier, LabelledCorpus
from engine.controls.include import IncludeControl, IncludeTarget
from engine.diffusion.posterior import WordPosterior
from engine.errors import TargetError
from engine.text.tokenizer import bounded_words

E2E_FIELDS = ("name", "eatType", "food", "priceRange", "customer rating", "area", "familyFriendly", "near")
UNJUDGEABLE_FIELDS = ("familyFriendly",)  # its values yes/no are not words a sentence contains
# the Diffusion-LM release's spellings of E2E fields, after spaces and case are ignored
RELEASE_FIELDS = {"type": "eatType", "price": "priceRange"}
# How a value is steered: "classifier" (its field=value label), "words" (the denoiser's word posterior
# towards the value's words, as the include control steers) or "both" (their log-probabilities summed).
STEER_BY = ("classifier", "words", "both")
# each field's default, measured on templates and free length (docs/controls.md, "Meaning: how each field steers")
FIELD_STEERING = {field_name: "both" for field_name in E2E_FIELDS}


@dataclass(frozen=True)
class SemanticTarget:
    field: str  # one of E2E_FIELDS
    value: str  # words separated by single spaces, e.g. "city centre"
    steer: str = field(default="", compare=False)  # one of STEER_BY; "": the field's (FIELD_STEERING)
    kind: ClassVar[str] = "semantic"

    @property
    def oracle_words(self) -> list[str]:
        """The words the oracle looks for (a template that tests this target must not lock them)."""
        return self.value.split()

    @property
    def steered_by(self) -> str:
        return self.steer or FIELD_STEERING[self.field]

    @property
    def label(self) -> str:
        return f"{self.field}={self.value}"

    def tokens(self) -> list[str]:
        """The target file's spelling: ["customer", "rating", ":", "high"]."""
        return [*self.field.split(), ":", *self.value.split()]


def canonical_value(text: str) -> str:
    return " ".join(bounded_words(text, "the value", error=TargetError))


def canonical_field(name: str) -> str:
    """An E2E field from any spelling ("customer rating", "customerRating", "eattype") and the
    Diffusion-LM release's ("Type", "price", "family friendly")."""
    key = re.sub(r"[\s_]", "", name).lower()
    if key in RELEASE_FIELDS:
        return RELEASE_FIELDS[key]
    for known in E2E_FIELDS:
        if known.replace(" ", "").lower() == key:
            return known
    raise TargetError(f"unknown field {name!r}: the fields are {', '.join(E2E_FIELDS)}")


def parse_mr(mr: str) -> list[SemanticTarget]:
    """The field=value pairs of an E2E meaning representation: "name[The Eagle], food[Italian]"."""
    return [SemanticTarget(canonical_field(m.group(1).strip()), canonical_value(m.group(2)))
            for m in re.finditer(r"([^,\[\]]+)\[([^\]]*)\]", mr)]


def judgeable_meaning(mr: str) -> list[SemanticTarget]:
    """The pairs of a meaning representation whose values a sentence spells out."""
    return [target for target in parse_mr(mr) if target.field not in UNJUDGEABLE_FIELDS]


def semantic_target(tokens: list) -> SemanticTarget:
    if not isinstance(tokens, list) or not all(isinstance(x, str) for x in tokens) or ":" not in tokens:
        raise TargetError(f'a semantic target is a list like ["food", ":", "Italian"], got {tokens!r}')
    colon = tokens.index(":")
    value = canonical_value(" ".join(tokens[colon + 1:]))
    if not tokens[:colon] or not value:
        raise TargetError(f"a semantic target needs a field before ':' and a value after it, got {tokens!r}")
    return SemanticTarget(canonical_field(" ".join(tokens[:colon])), value)


def parse_field(label: str) -> SemanticTarget:
    """A target written as field=value (a form's, an API's or a flag's spelling)."""
    field_name, equals, value = str(label).partition("=")
    if not (equals and field_name.strip() and value.strip()):
        raise TargetError(f"a meaning is written field=value, such as food=Italian or near=Burger King; "
                          f"got {label!r}")
    return semantic_target([field_name, ":", value])


def read_line(text: str) -> tuple[SemanticTarget, list]:
    raw = json_value(text)
    return semantic_target(raw), raw


def mentions(words: Sequence[str], value: str) -> bool:
    """Whether the value's words appear consecutively in `words`, ignoring case."""
    wanted, have = value.lower().split(), [w.lower() for w in words]
    return any(have[i:i + len(wanted)] == wanted for i in range(len(have) - len(wanted) + 1))


@dataclass
class SemanticControl(ClassifierControl):
    """Each row holds a tuple of targets. A value steers through the classifier's field=value label,
    the word posterior towards its words, or both (`SemanticTarget.steered_by`); without a word
    posterior (a FUDGE discriminator steers) every value goes through the classifier."""

    posterior: WordPosterior | None = None
    word_parts: list[IncludeControl] = field(init=False)  # the k-th word-steered value of every row
    name = "semantic"

    def __post_init__(self) -> None:
        super().__post_init__()
        per_row = [[t.value for t in targets or () if self.by_words(t)] for targets in self.targets]
        most = max(map(len, per_row), default=0)
        self.word_parts = [
            IncludeControl(self.posterior, [IncludeTarget((tuple(values[k].split()),)) if k < len(values) else None
                                            for values in per_row])
            for k in range(most)]

    def by_words(self, target: SemanticTarget) -> bool:
        return self.posterior is not None and target.steered_by != "classifier"

    def by_classifier(self, target: SemanticTarget) -> bool:
        return self.posterior is None or target.steered_by != "words"

    def build_labels(self) -> Labels:
        names = self.classifier.config.labels
        values = torch.full((len(self.targets), len(names)), IGNORE)
        for row, targets in enumerate(self.targets):
            for target in targets or ():
                if target.label not in names:
                    known = sorted(v.split("=", 1)[1] for v in names if v.startswith(target.field + "="))
                    raise TargetError(f"unknown value {target.value!r} for {target.field}: the classifier "
                                      f"knows {', '.join(known) or 'no value of that field'}")
                if self.by_classifier(target):
                    values[row, self.label_index(target.label)] = 1
        return Labels({"values": values}, claimed=("values",))

    def log_prob(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        total = super().log_prob(x_t, t)
        for part in self.word_parts:
            total = total + part.log_prob(x_t, t)
        return total

    def claims(self) -> torch.Tensor:
        return sum((part.claims() for part in self.word_parts), super().claims().float())

    def evaluate(self, words: Sequence[Sequence[str]]) -> list[float | None]:
        return [sum(mentions(row, t.value) for t in targets) / len(targets) if targets else None
                for targets, row in zip(self.targets, words, strict=True)]


def semantic_control(source: ControlClassifier | Steering, targets: list, weight: float) -> SemanticControl:
    """The control for `targets`, steered by a classifier alone (FUDGE) or with the word posterior too."""
    if isinstance(source, Steering):
        return SemanticControl(source.classifier, targets, weight, posterior=source.posterior)
    return SemanticControl(source, targets, weight)


class SemanticClassifier(ControlClassifier):
    """For every field=value, whether the sentence expresses it (independent sigmoids over an
    attention-pooled summary)."""

    needs_meanings = True

    def build_output(self, hidden: int, n_labels: int) -> None:
        self.pool_score = nn.Linear(hidden, 1)
        self.value_head = nn.Linear(hidden, n_labels)

    def output_log_prob(self, h: torch.Tensor, labels: Labels) -> torch.Tensor:
        weights = self.pool_score(h).softmax(dim=1)  # attention pooling over positions
        logits = self.value_head((weights * h).sum(dim=1))
        values = labels["values"]
        signed = torch.where(values == 1, logits, -logits)
        return (F.logsigmoid(signed) * (values != IGNORE)).sum(-1)

    @classmethod
    def label_names(cls, corpus: LabelledCorpus) -> list[str]:
        return sorted({target.label for mr in corpus.meanings for target in parse_mr(mr)})

    @classmethod
    def encode_labels(cls, corpus: LabelledCorpus, labels: list[str], seq_len: int) -> dict[str, torch.Tensor]:
        index = {name: i for i, name in enumerate(labels)}
        values = torch.zeros((len(corpus.meanings), len(labels)))
        for r, mr in enumerate(corpus.meanings):
            for target in parse_mr(mr):
                if target.label in index:
                    values[r, index[target.label]] = 1.0
        return {"values": values}

    @classmethod
    def batch_labels(cls, data: dict[str, torch.Tensor], index: torch.Tensor, lengths: torch.Tensor,
                     seq_len: int, generator: torch.Generator) -> Labels:
        return Labels({"values": data["values"][index].long()}, claimed=("values",))


KIND = ControlKind(
    name="semantic", label="meaning: field = value", placeholder="food=Italian",
    parse_field=parse_field, read_line=read_line, compose_key="attr",
    from_compose=lambda raw: semantic_target(raw["attr"]),
    write_target=lambda example: json.dumps(example.meaning.tokens(), ensure_ascii=False),
    compose_entry=lambda example: {"attr": example.meaning.tokens()}, file_name="semantic.jsonl",
    control=semantic_control, classifier=SemanticClassifier, many=True, choices_from_classifier=True, words_steer=True,
    composed=True, from_mr=judgeable_meaning,
    guidance={"strength": 2.0}, candidates=4,  # measured: docs/controls.md, "Defaults per kind"
)
