"""Ranking a run's rows: independent checks first, then the controls' oracles, then the judge.

Every method (diffusion and left to right) ranks its finished rows the same way, per prompt:
those passing more independent checks (locked words kept, no repeated 3-gram, the length asked
for: string comparison, not the model's beliefs) first, then those meeting the controls better by
their oracles, then by the judge's perplexity (lower is better); a text repeated from a row
ranked above it goes to the end, so a request for four samples shows four different sentences
when it drew them.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.controls.base import Control
from engine.request import Candidate
from engine.scoring.judge import Judge
from engine.scoring.metrics import has_repeated_trigram, locked_kept
from engine.text.template import Template, fixed_length
from engine.text.tokenizer import Tokenizer


@dataclass
class Plan:
    """The rows a request samples: a template each, the prompt it belongs to, and the controls."""

    templates: list[Template]
    prompt_rows: list[int]
    controls: list[Control]


def distinct_first(ranked: list[Candidate]) -> list[Candidate]:
    """`ranked` with every repeat of a text ranked above it moved to the end (in their order)."""
    seen: set[str] = set()
    first, repeats = [], []
    for candidate in ranked:
        (repeats if candidate.text in seen else first).append(candidate)
        seen.add(candidate.text)
    return first + repeats


def checks(template: Template, words: list[str], tokenizer: Tokenizer) -> dict[str, bool]:
    """Independent checks on finished words (string comparison, not the model's beliefs)."""
    result = {"locked words kept": locked_kept([template], [words], tokenizer) in (1.0, None),
              "no repeated 3-gram": not has_repeated_trigram(words)}
    length = fixed_length(template)
    if length is not None:
        result[f"exactly {length} words"] = len(words) == length
    return result


def rank(words: list[list[str]], plan: Plan, keep: int, tokenizer: Tokenizer,
         judge: Judge | None) -> list[list[Candidate]]:
    """Each prompt's rows (their finished `words`, checked against the plan's templates), best first
    (see the module docstring); the first `keep` of each."""
    ppl = judge.sentence_perplexities(words) if judge else [None] * len(words)
    oracle = {c.name: c.evaluate(words) for c in plan.controls}
    candidates = [Candidate(w, row, ppl[row], checks(template, w, tokenizer),
                            {name: round(s[row], 3) for name, s in oracle.items() if s[row] is not None})
                  for row, (w, template) in enumerate(zip(words, plan.templates, strict=True))]

    def order(c: Candidate) -> tuple:
        met = sum(c.control_scores.values()) / len(c.control_scores) if c.control_scores else 0.0
        return -sum(c.checks.values()), -met, c.judge_ppl or 0.0

    groups: list[list[Candidate]] = [[] for _ in range(max(plan.prompt_rows) + 1)]
    for candidate in candidates:
        groups[plan.prompt_rows[candidate.row]].append(candidate)
    return [distinct_first(sorted(group, key=order))[:keep] for group in groups]
