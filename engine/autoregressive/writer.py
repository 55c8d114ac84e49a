"""Left-to-right writing with the autoregressive LM: plain sampling, or FUDGE control.

FUDGE (Yang & Klein 2021) reweights, at every step, the LM's k most likely next words by each
control's future discriminator: log p(w | prefix) + λ sum_c weight_c * log p(target_c | prefix, w)
(λ = 1: Bayes' rule), then samples one. The discriminators only ever see what is written so far, so a left-to-right
writer cannot plan a global property (a POS sequence, a tree) the way diffusion's guidance of the
whole row can: that is the comparison this module exists for. A row may be held to an exact
number of words (END barred before it, forced at it); a locked word after a blank cannot be held.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
from transformers import GPT2LMHeadModel

from engine.controls.base import Control
from engine.options import check, option
from engine.text.tokenizer import Tokenizer


@dataclass
class WriteOptions:
    top_k: int = option(20, "left-to-right writing draws each word from the LM's k most likely (FUDGE reweights "
                            "those k)", low=1, high=1000, label="top-k")
    lm_temperature: float = option(1.0, "left-to-right writing: softmax temperature of the LM's next-word scores",
                                   low=0, above=True, label="the writing temperature")
    condition_lambda: float = option(1.0, "FUDGE: multiplies the discriminators' log-probabilities (1: Bayes' rule, "
                                          "as in the paper)", low=0, high=100, label="the condition lambda")

    def __post_init__(self) -> None:
        check(self)


@dataclass
class Written:
    """The state after one word was written in every unfinished row."""

    index: int  # 0, 1, ...: the step
    tokens: list[list[int]]  # per row: START and the words so far (END appended once finished)
    finished: list[bool]
    # each control's discriminator probability of its target per claim, for the prefix chosen
    # (None for a row that was already finished, had only END to choose, or has no such target)
    beliefs: dict[str, list[float | None]] = field(default_factory=dict)


@dataclass
class Passes:
    """Network passes a left-to-right run made (each over the rows still writing)."""

    lm: int = 0
    discriminator: int = 0


def write(lm: GPT2LMHeadModel, tokenizer: Tokenizer, prefixes: list[list[int]], lengths: list[int | None],
          controls_for: Callable[[list[int]], list[Control]] | None, *, options: WriteOptions, seed: int,
          seq_len: int, passes: Passes | None = None) -> Iterator[Written]:
    """Write one row per prefix (START and its words), a word per step, until END; `lengths`: the
    number of words a row must end with (None: the LM decides, up to the row's room).
    `controls_for(rows)` builds the controls for those rows (a row listed once per candidate
    word it scores); None writes without control (plain sampling)."""
    device = lm.device
    generator = torch.Generator(device=device).manual_seed(seed)
    tok = tokenizer
    rows = [list(p) for p in prefixes]
    finished = [False] * len(rows)
    passes = passes if passes is not None else Passes()
    never = torch.tensor([tok.pad_id, tok.unk_id, tok.start_id], device=device)
    step = 0
    while not all(finished):
        active = [r for r, done in enumerate(finished) if not done]
        width = max(len(rows[r]) for r in active)
        ids = torch.tensor([rows[r] + [tok.pad_id] * (seq_len - len(rows[r])) for r in active], device=device)
        written = torch.tensor([len(rows[r]) for r in active], device=device)  # positions filled (START included)
        each = torch.arange(len(active), device=device)
        with torch.no_grad():
            filled = (torch.arange(width, device=device)[None] < written[:, None]).long()
            logits = lm(input_ids=ids[:, :width], attention_mask=filled).logits
            logits = logits[each, written - 1].float()
        passes.lm += 1
        scores = (logits / options.lm_temperature).log_softmax(-1)
        scores[:, never] = -torch.inf
        words = written - 1
        held = torch.tensor([lengths[r] or 0 for r in active], device=device)  # 0: the LM decides
        scores[(words < held) | (words == 0), tok.end_id] = -torch.inf  # END only after the words asked for
        must_end = (words >= seq_len - 2) | ((held > 0) & (words >= held))
        scores[must_end] = -torch.inf
        scores[must_end, tok.end_id] = 0.0
        k = min(options.top_k, scores.shape[1])
        top, candidates = scores.topk(k, dim=-1)  # [A, k]
        choosing = [i for i, ends in enumerate(must_end.tolist()) if not ends]
        if controls_for is not None and choosing:
            pick = torch.tensor(choosing, device=device)
            controls = controls_for([active[i] for i in choosing for _ in range(k)])
            guided, guided_beliefs = future_scores(controls, ids[pick],
                                                   written[pick], candidates[pick], tok.end_id)
            passes.discriminator += len(guided_beliefs)
            top[pick] = top[pick] + options.condition_lambda * guided
        else:
            guided_beliefs = {}
        choice = torch.multinomial(top.softmax(-1), 1, generator=generator)[:, 0]
        chosen = candidates[each, choice].tolist()
        beliefs = {name: chosen_beliefs(per_candidate, choice, choosing, active, len(rows))
                   for name, per_candidate in guided_beliefs.items()}
        for i, r in enumerate(active):
            word = chosen[i]
            rows[r].append(word)
            finished[r] = word == tok.end_id
        yield Written(step, [list(row) for row in rows], list(finished), beliefs)
        step += 1


def chosen_beliefs(per_candidate: torch.Tensor, choice: torch.Tensor, choosing: list[int], active: list[int],
                   n_rows: int) -> list[float | None]:
    """Per row, a discriminator's belief in its target after the word the row chose (None: no target
    there, or the row did not choose this step)."""
    per_row: list[float | None] = [None] * n_rows
    picked = per_candidate.gather(1, choice[choosing][:, None])[:, 0].tolist()  # one copy to the host
    for i, belief in zip(choosing, picked, strict=True):
        per_row[active[i]] = None if math.isnan(belief) else round(belief, 4)  # NaN: no target here
    return per_row


def future_scores(controls: list[Control], ids: torch.Tensor, written: torch.Tensor, candidates: torch.Tensor,
                  end_id: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """[A, k] the weighted sum of the controls' log p(target | prefix + candidate), and each
    control's per-claim probability [A, k], for A rows of `ids` with `written` positions filled."""
    A, k = candidates.shape
    extended = ids.repeat_interleave(k, 0)
    at = written.repeat_interleave(k, 0)
    flat = candidates.reshape(-1)
    extended[torch.arange(A * k, device=ids.device), at] = flat
    known = torch.where(flat == end_id, ids.shape[1], at + 1)  # a finished row is known whole (PAD after END)
    total = torch.zeros(A * k, device=ids.device)
    beliefs = {}
    with torch.no_grad():
        for control in controls:
            log_prob = control.log_prob(extended, known)
            total += control.weight * log_prob
            claims = control.claims()
            per_claim = (log_prob / claims.clamp(min=1)).exp()
            beliefs[control.name] = torch.where(claims > 0, per_claim, torch.nan).reshape(A, k)
    return total.reshape(A, k), beliefs
