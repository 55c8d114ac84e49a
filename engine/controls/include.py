"""Include these words: phrases that must appear, in order, anywhere in the sample. Needs no trained
classifier, so it serves any words of the vocabulary (a restaurant the semantic classifier never saw).

The diffusion itself says how likely each word is at each position: the forward process's word
posterior (engine.diffusion.posterior), log p(w | x_i) from the word vectors and the noise schedule.
Read through x0_hat (`--reads x0_hat`, t ~ 0) this is the denoiser's own word distribution. A
placement of the target's phrases in order (each phrase on consecutive positions) scores the
product of its words' probabilities; log p(target) is the best placement's log-score (Viterbi, by
dynamic programming, differentiable in x through the probabilities it picks). Summing over
placements instead rewards a word written twice ("a high high rating"; docs/controls.md); the best
placement stops pushing once one placement is sure.

Written as comma-separated phrases, "Italian, city centre" (editor, --include). Target file line:
a JSON list of phrases ["Italian", "city centre"], or a semantic target line ["food", ":", "Italian"]
(its value), so the semantic target files measure this control too. Oracle: the largest share of
the phrases found in order, each on consecutive words, ignoring case.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import torch

from engine.controls.base import ControlKind, json_value
from engine.diffusion.posterior import WordPosterior
from engine.errors import TargetError, TemplateError
from engine.text.tokenizer import MAX_WORDS, bounded_words

NEVER = -1e9  # log-score of a placement that cannot be (finite, so no NaN reaches a gradient)


@dataclass(frozen=True)
class IncludeTarget:
    phrases: tuple[tuple[str, ...], ...]  # in order; each phrase's words consecutive
    kind: ClassVar[str] = "include"

    @property
    def words(self) -> list[str]:
        return [w for phrase in self.phrases for w in phrase]

    @property
    def oracle_words(self) -> list[str]:
        """The words the oracle looks for (a template that tests this target must not lock them)."""
        return self.words


def include_target(phrases: Sequence[str]) -> IncludeTarget:
    words = [tuple(bounded_words(p, "a phrase to include", error=TargetError)) for p in phrases]
    words = tuple(p for p in words if p)
    if not words:
        raise TargetError("nothing to include: give at least one word")
    if sum(map(len, words)) > MAX_WORDS:
        raise TargetError(f"at most {MAX_WORDS} words can be included")
    return IncludeTarget(words)


def parse_field(text: str) -> IncludeTarget:
    """Comma-separated phrases: "Italian, city centre"."""
    return include_target(text.split(","))


def from_json(raw: object) -> IncludeTarget:
    if not isinstance(raw, list) or not raw or not all(isinstance(x, str) for x in raw):
        raise TargetError(f'an include target is a list of phrases like ["Italian", "city centre"], got {raw!r}')
    return include_target([" ".join(raw[raw.index(":") + 1:])] if ":" in raw else raw)


def read_line(text: str) -> tuple[IncludeTarget, list]:
    raw = json_value(text)
    return from_json(raw), raw


def found_in_order(words: Sequence[str], phrases: Sequence[Sequence[str]]) -> int:
    """The most phrases that appear in `words` in their order, each on consecutive words and none
    overlapping, ignoring case (a phrase may be skipped to find more of those after it)."""
    have = [w.lower() for w in words]
    # most[i]: the most phrases (of those seen so far) placed, in order, within the first i words
    most = [0] * (len(have) + 1)
    for phrase in phrases:
        wanted, n = [w.lower() for w in phrase], len(phrase)
        after = most[:]
        for end in range(n, len(have) + 1):
            if have[end - n:end] == wanted:
                after[end] = max(after[end], most[end - n] + 1)
            after[end] = max(after[end], after[end - 1])
        most = after
    return most[-1]


@dataclass
class IncludeControl:
    posterior: WordPosterior
    targets: list[IncludeTarget | None]
    weight: float = 1.0
    word_ids: torch.Tensor = field(init=False)  # [B, K] the target words, padded with 0
    continues: torch.Tensor = field(init=False)  # [B, K] the word continues the previous one's phrase
    counts: torch.Tensor = field(init=False)  # [B] words per row (0: no target)
    name = "include"
    steers = True

    def __post_init__(self) -> None:
        most = max((len(t.words) for t in self.targets if t), default=0)
        word_ids, continues, counts = [[0] * most for _ in self.targets], [[False] * most for _ in self.targets], []
        for row, target in enumerate(self.targets):
            try:
                ids = self.posterior.ids(target.words) if target else []
            except TemplateError as exc:
                raise TargetError(f"include: {exc}") from exc
            if len(ids) + 2 > self.posterior.seq_len:
                raise TargetError(f"include: {len(ids)} words cannot fit: the model writes at most "
                                  f"{self.posterior.seq_len - 2}")
            word_ids[row][:len(ids)] = ids
            continues[row][:len(ids)] = [i > 0 for p in target.phrases for i in range(len(p))] if target else []
            counts.append(len(ids))
        device = self.posterior.embeddings.device
        self.word_ids = torch.tensor(word_ids, dtype=torch.long, device=device).reshape(len(self.targets), most)
        self.continues = torch.tensor(continues, dtype=torch.bool, device=device).reshape(len(self.targets), most)
        self.counts = torch.tensor(counts, dtype=torch.long, device=device)

    def log_prob(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """[B] the log-probability of the best in-order placement of each row's target words."""
        log_p = self.posterior.log_probs(x_t, t)  # [B, L, V]
        B, L, _ = log_p.shape
        picked = log_p.gather(-1, self.word_ids[:, None, :].expand(B, L, -1))  # [B, L, K]
        never = torch.full((B, 1), NEVER, device=x_t.device, dtype=log_p.dtype)
        result = torch.zeros(B, device=x_t.device, dtype=log_p.dtype)
        continues, counts = self.continues, self.counts
        placed = None  # [B, L] the best placement of words 1..k with word k at position i
        for k in range(picked.shape[-1]):
            if placed is None:
                placed = picked[:, :, 0]
            else:
                right_after = torch.cat([never, placed[:, :-1]], dim=1)
                anywhere_before = torch.cat([never, placed.cummax(dim=1).values[:, :-1]], dim=1)
                placed = picked[:, :, k] + torch.where(continues[:, k, None], right_after, anywhere_before)
            done = counts == k + 1
            result = torch.where(done, placed.max(dim=1).values, result)
        return result

    def claims(self) -> torch.Tensor:
        return self.counts.float()

    def lengths(self) -> list[int | None]:
        return [None] * len(self.targets)

    def evaluate(self, words: Sequence[Sequence[str]]) -> list[float | None]:
        return [found_in_order(row, t.phrases) / len(t.phrases) if t else None
                for t, row in zip(self.targets, words, strict=True)]


KIND = ControlKind(
    name="include", label="include these words, in order (comma between phrases)", placeholder="Italian, city centre",
    parse_field=parse_field, read_line=read_line, compose_key="include",
    from_compose=lambda raw: from_json(raw["include"]),
    write_target=lambda example: json.dumps([example.meaning.value], ensure_ascii=False),
    compose_entry=lambda example: {"include": [example.meaning.value]}, file_name="include.jsonl",
    control=IncludeControl,
    guidance={"strength": 3.0}, candidates=4,  # measured: docs/controls.md, "Defaults per kind"
)
