"""Syntactic spans: constituents (i, j, label), 0-based inclusive word positions.

Target file line: {"words_": [...], "spans": [[i, j, "PP"]]}, positions counted from the first
word; as in the Diffusion-LM release, j may be the position of the newline entry (the span runs to
the last word), and a label is any Penn Treebank label or a unary chain "S::ADJP". Oracle: the
span is among those `text.syntax.constituent_spans` derives from spaCy's parse of the output,
with either label of a chain, ignoring punctuation at its edges (the fraction found).

A span must end within the text: past the end of a template of a fixed length (`fitting`) or of
the longest text the model writes (`SpanControl.build_labels`) it is refused, since no output
could ever contain it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from engine.controls.base import (
    IGNORE,
    NOT_WORDS,
    ClassifierControl,
    ControlKind,
    Example,
    Labels,
    categorical,
    json_object,
    word_list,
)
from engine.controls.classifier import ControlClassifier, LabelledCorpus
from engine.errors import TargetError
from engine.text.syntax import CHAIN, PTB_LABELS, SPAN_LABELS, constituent_spans, has_constituent, parse
from engine.text.template import Template, fixed_length

NONE_LABEL = "NONE"  # a pair of positions that is no constituent
SPAN_SAMPLES = (8, 16)  # per training row and step: gold spans drawn, random (mostly NONE) pairs drawn


@dataclass(frozen=True)
class SpanTarget:
    spans: tuple[tuple[int, int, str], ...]
    words: tuple[str, ...] = ()
    kind: ClassVar[str] = "spans"


def span_target(spans: list, words: list | None) -> SpanTarget:
    entries = word_list(words)
    entries = entries[1:] if entries[:1] == ["START"] else entries  # positions count from the first word
    real = [w for w in entries if w not in NOT_WORDS]
    if not isinstance(spans, list) or not spans:
        raise TargetError('"spans" must be a non-empty list of [i, j, label]')
    result = []
    for span in spans:
        if (not isinstance(span, list) or len(span) != 3
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in span[:2])
                or not isinstance(span[2], str)):
            raise TargetError(f"a span must be [i, j, label] with integer positions, got {span!r}")
        i, j, label = span
        unknown = [name for name in label.split(CHAIN) if name not in PTB_LABELS]
        if unknown or not label:
            raise TargetError(f"unknown span label {label!r}: a label is a Penn Treebank constituent label "
                              f"({' '.join(PTB_LABELS)}) or a unary chain of two, such as S{CHAIN}ADJP")
        if entries and 0 <= j < len(entries) and entries[j] == "\n":  # runs to the end of the text
            j = sum(w not in NOT_WORDS for w in entries[:j]) - 1
        if not 0 <= i <= j or (entries and j >= len(real)):
            limit = f" (the sentence has {len(real)} words, positions 0..{len(real) - 1})" if entries else ""
            raise TargetError(f"span [{span[0]}, {span[1]}] is out of range{limit}")
        result.append((i, j, label))
    return SpanTarget(tuple(result), tuple(real))


def parse_field(text: str) -> SpanTarget:
    """Spans written as "i j LABEL" separated by ";"."""
    spans = []
    for part in filter(str.strip, text.split(";")):
        fields = part.split()
        if len(fields) != 3 or not all(p.lstrip("-").isdigit() for p in fields[:2]):
            raise TargetError(f'write a span as "i j LABEL", e.g. "3 5 PP", got {part.strip()!r}')
        spans.append([int(fields[0]), int(fields[1]), fields[2]])
    return span_target(spans, None)


def from_compose(raw: dict) -> SpanTarget:
    return span_target(raw["spans"], raw.get("words_"))


def read_line(text: str) -> tuple[SpanTarget, dict]:
    raw = json_object(text, ("spans",))
    return from_compose(raw), raw


def write_target(example: Example) -> str | None:
    """One of the sentence's constituents of two or more words, other than the whole sentence."""
    words, tree = example.words, example.tree
    whole = (0, len(words) - 1) if tree.pos[-1] != "PUNCT" else (0, len(words) - 2)
    spans = sorted(s for s in constituent_spans(tree) if s[1] > s[0] and (s[0], s[1]) != whole)
    if not spans:
        return None
    return json.dumps({"words_": words, "spans": [list(example.rng.choice(spans))]}, ensure_ascii=False)


def last_span(targets: Sequence) -> tuple[int, int] | None:
    """(i, j) of the span among a prompt's targets that ends last; None when none is a span target."""
    ends = [(i, j) for target in targets if getattr(target, "kind", None) == SpanTarget.kind
            for i, j, _ in target.spans]
    return max(ends, key=lambda span: span[1], default=None)


def check_ends(targets: Sequence, words: int, what: str) -> None:
    """A TargetError if a span of `targets` ends past a text of `words` words (`what` it is)."""
    span = last_span(targets)
    if span is not None and span[1] >= words:
        raise TargetError(f"span [{span[0]}, {span[1]}] runs past the end of {what}: it has {words} words "
                          f"(positions 0 to {words - 1})")


def fitting(templates: list[Template], targets: Sequence, what: str) -> list[Template]:
    """The templates a prompt's span targets fit in: a template of a fixed length (`what`: the
    template, the sentence to vary, ...) needs a word at the last span's end; a free one lets the
    model write that far. The lengths tried for a `...` blank that are too short are left out;
    when none is left, a TargetError says how long the text can be."""
    span = last_span(targets)
    if span is None:
        return templates
    kept = [t for t in templates if (n := fixed_length(t)) is None or span[1] < n]
    if not kept:
        lengths = {fixed_length(t) for t in templates}
        longest = max(lengths)
        check_ends(targets, longest, what if len(lengths) == 1 else f"{what} (its ... blank at its longest)")
    return kept


def dense_gold(gold: torch.Tensor, seq_len: int) -> torch.Tensor:
    """[B, L, L] the gold label of every (i, j) position pair (0 = NONE), from gold [B, G, 3]."""
    dense = torch.zeros((len(gold), seq_len, seq_len), dtype=torch.long)
    valid = gold[..., 0] != IGNORE
    rows = torch.arange(len(gold))[:, None].expand_as(valid)
    dense[rows[valid], gold[..., 0][valid], gold[..., 1][valid]] = gold[..., 2][valid]
    return dense


class SpanControl(ClassifierControl):
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
                labels[row, k] = self.label_index(self.known_label(label))
        return Labels({"spans": spans, "span_labels": labels}, claimed=("span_labels",))

    def known_label(self, label: str) -> str:
        """The label the classifier steers towards: the first of a chain that it knows."""
        names = self.classifier.config.labels
        for name in label.split(CHAIN):
            if name in names:
                return name
        raise TargetError(f"the spans classifier cannot steer towards {label!r}: it knows "
                          f"{' '.join(n for n in names if n != NONE_LABEL)} (run unguided, or retrain it)")

    def evaluate(self, words: Sequence[Sequence[str]]) -> list[float | None]:
        scores: list[float | None] = []
        for target, tree in zip(self.targets, parse(words), strict=True):
            if target is None:
                scores.append(None)
                continue
            found = constituent_spans(tree)
            scores.append(sum(has_constituent(tree, found, i, j, label) for i, j, label in target.spans)
                          / len(target.spans))
        return scores


class SpanClassifier(ControlClassifier):
    """A constituent label (or NONE) for a pair of positions (i, j)."""

    def build_output(self, hidden: int, n_labels: int) -> None:
        self.span_head = nn.Sequential(nn.Linear(3 * hidden, hidden), nn.GELU(), nn.Linear(hidden, n_labels))

    def output_log_prob(self, h: torch.Tensor, labels: Labels) -> torch.Tensor:
        spans = labels["spans"]  # [B, S, 2] positions, inclusive
        index = spans[..., None].expand(*spans.shape, h.shape[-1])  # [B, S, 2, hidden]
        ends = h[:, None].expand(-1, spans.shape[1], -1, -1).gather(2, index)
        left, right = ends[:, :, 0], ends[:, :, 1]
        return categorical(self.span_head(torch.cat([left, right, left * right], dim=-1)), labels["span_labels"])

    @classmethod
    def label_names(cls, corpus: LabelledCorpus) -> list[str]:
        return [NONE_LABEL, *SPAN_LABELS]

    @classmethod
    def encode_labels(cls, corpus: LabelledCorpus, labels: list[str], seq_len: int) -> dict[str, torch.Tensor]:
        """gold [N, G, 3]: each sentence's constituents as (i, j, label) positions, padded with IGNORE."""
        span_sets = [sorted(constituent_spans(tree)) for tree in corpus.trees]
        gold = torch.full((len(span_sets), max(len(s) for s in span_sets), 3), IGNORE)
        for r, spans in enumerate(span_sets):
            if spans:
                gold[r, :len(spans)] = torch.tensor([(i + 1, j + 1, labels.index(label)) for i, j, label in spans])
        return {"gold": gold, "counts": torch.tensor([len(s) for s in span_sets])}

    @classmethod
    def batch_labels(cls, data: dict[str, torch.Tensor], index: torch.Tensor, lengths: torch.Tensor,
                     seq_len: int, generator: torch.Generator) -> Labels:
        """A fresh draw of gold spans and random position pairs (mostly NONE) for rows `index`."""
        n_gold, n_random = SPAN_SAMPLES
        B, L = len(index), seq_len
        pick = (torch.rand((B, n_gold), generator=generator) * data["counts"][index][:, None]).long()
        gold = data["gold"][index].gather(1, pick[..., None].expand(-1, -1, 3))
        limit = (lengths + 2).clamp(max=L - 1)  # up to END and one beyond
        ends = 1 + (torch.rand((B, n_random, 2), generator=generator) * limit[:, None, None]).long()
        ends = ends.clamp(max=L - 1).sort(-1).values
        row = torch.arange(B)[:, None].expand(-1, n_random)
        random_labels = dense_gold(data["gold"][index], L)[row, ends[..., 0], ends[..., 1]]
        return Labels({"spans": torch.cat([gold[..., :2], ends], dim=1),
                       "span_labels": torch.cat([gold[..., 2], random_labels], dim=1)}, claimed=("span_labels",))


KIND = ControlKind(
    name="spans", label="constituents: i j LABEL, separated by ; (word positions from 0)", placeholder="4 6 PP",
    parse_field=parse_field, read_line=read_line, compose_key="spans", from_compose=from_compose,
    write_target=write_target, compose_entry=lambda example: json.loads(write_target(example) or "{}"),
    file_name="spans.jsonl", control=SpanControl, classifier=SpanClassifier,
    guidance={"strength": 3.0, "t_min": 0.6}, candidates=4,  # measured: docs/controls.md, "Defaults per kind"
)
