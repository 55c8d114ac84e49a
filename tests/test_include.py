"""The include control: target reading, its oracle, the best placement against brute force, and a
guided run that needs no classifier."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from engine.controls import KINDS, STEERED, TRAINED
from engine.controls.guidance import GuidanceOptions
from engine.controls.include import IncludeControl, IncludeTarget, found_in_order, from_json, parse_field
from engine.controls.targets import build_controls, parse_target_line
from engine.diffusion.sampler import SampleOptions
from engine.errors import TargetError
from engine.pipeline import Pipeline
from engine.request import Request


def test_targets_read_as_phrases_or_as_a_semantic_line():
    assert parse_field("Italian, city centre").phrases == (("Italian",), ("city", "centre"))
    assert parse_field(" Italian ,, ").phrases == (("Italian",),)
    assert from_json(["food", ":", "Italian"]).phrases == (("Italian",),)
    assert from_json(["customer", "rating", ":", "5", "out", "of", "5"]).phrases == (("5", "out", "of", "5"),)
    assert parse_target_line("include", '["Italian", "the river"]').targets == (parse_field("Italian, the river"),)
    assert parse_target_line("compose", '{"include": ["pub"], "length": 6}').targets[0] == parse_field("pub")
    with pytest.raises(TargetError, match="nothing to include"):
        parse_field(", ,")
    for raw in ('{"food": "Italian"}', "[]", '["a", 3]', '"Italian"'):
        with pytest.raises(TargetError, match="a list of phrases"):
            parse_target_line("include", raw)


def test_oracle_finds_phrases_in_order_on_consecutive_words():
    words = "The Eagle serves Italian food in the city centre .".split()
    assert found_in_order(words, [["italian"], ["city", "centre"]]) == 2
    assert found_in_order(words, [["city", "centre"], ["Italian"]]) == 1  # out of order: only the first
    assert found_in_order(words, [["Italian", "centre"]]) == 0  # not consecutive
    assert found_in_order(words, [["Eagle"], ["Eagle"]]) == 1  # one occurrence serves one phrase
    assert found_in_order("b c a".split(), [["a"], ["b"], ["c"]]) == 2  # skipping the first finds two
    assert found_in_order("a b".split(), [["a", "b", "c"]]) == 0 and found_in_order([], [["a"]]) == 0


class Fixed:
    """A posterior with given per-position log-probabilities (to check the alignment by hand)."""

    def __init__(self, log_p: torch.Tensor):
        self.log_p, self.seq_len = log_p, log_p.shape[1]
        self.embeddings = log_p.new_zeros(log_p.shape[-1], 1)  # where the control keeps its tensors

    def log_probs(self, x, t):
        return self.log_p

    def ids(self, words):
        return [int(w) for w in words]


def brute_force(log_p: torch.Tensor, phrases: list[list[int]]) -> float:
    """The best log-score of any in-order placement of the phrases, each on consecutive positions."""
    L, best = log_p.shape[0], -math.inf
    for starts in itertools.combinations(range(L), len(phrases)):
        spans = [range(s, s + len(p)) for s, p in zip(starts, phrases, strict=True)]
        if any(span[-1] >= L for span in spans) or any(a[-1] >= b[0] for a, b in itertools.pairwise(spans)):
            continue
        best = max(best, sum(log_p[i, w].item() for span, p in zip(spans, phrases, strict=True)
                             for i, w in zip(span, p, strict=True)))
    return best


def test_alignment_finds_the_best_placement():
    log_p = torch.randn(1, 7, 5, generator=torch.Generator().manual_seed(3)).log_softmax(-1).double()
    for phrases in ([[2]], [[1], [3]], [[1, 4], [0]], [[0], [2, 2, 1]], [[3], [3], [3]]):
        target = IncludeTarget(tuple(tuple(str(w) for w in p) for p in phrases))
        control = IncludeControl(Fixed(log_p), [target])
        got = control.log_prob(torch.zeros(1, 7, 2), torch.zeros(1)).item()
        assert got == pytest.approx(brute_force(log_p[0], phrases), abs=1e-9), phrases
    rows = IncludeControl(Fixed(log_p.expand(3, -1, -1)), [parse_field("1"), None, parse_field("2 4, 0")])
    scores = rows.log_prob(torch.zeros(3, 7, 2), torch.zeros(3))
    assert scores[1] == 0 and scores[0].item() == pytest.approx(brute_force(log_p[0], [[1]]))
    assert scores[2].item() == pytest.approx(brute_force(log_p[0], [[2, 4], [0]]))
    assert rows.claims().tolist() == [1, 0, 3]


@pytest.fixture(scope="module")
def pipe(tiny_model):
    return Pipeline.from_pretrained(tiny_model, precision="fp32")


def test_include_steers_without_a_classifier(pipe):
    assert "include" in STEERED and "include" not in TRAINED and KINDS["include"].classifier is None
    assert "include" in pipe.control_kinds()  # the tiny model has no classifier at all
    (control,) = build_controls([[parse_field("Italian")]] * 2, pipe.networks.control_source, {})
    sentence = pipe.tokenizer.encode("Alimentum serves Italian food", pipe.seq_len)
    other = pipe.tokenizer.encode("Alimentum serves French food", pipe.seq_len)
    x = pipe.model.embed(torch.tensor([sentence, other]))
    for t in (1, 200, 1999):
        scores = control.log_prob(x, torch.full((2,), t))
        assert scores[0] > scores[1] and torch.isfinite(scores).all()
    x.requires_grad_(True)
    (grad,) = torch.autograd.grad(control.log_prob(x, torch.full((2,), 1999)).sum(), [x])
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


@pytest.mark.slow
def test_guided_run_includes_the_words_more_often(pipe):
    def found(strength: float) -> float:
        request = Request.one(targets=(parse_field("pub"),), samples=12, seed=2, sampling=SampleOptions(steps=20),
                              guidance=GuidanceOptions(strength=strength), candidates=1)  # guidance alone
        return sum(c.control_scores["include"] for c in pipe.run(request).best) / 12
    assert found(1.0) > found(0.0) + 0.3


def test_unknown_words_and_words_past_the_window_are_refused(pipe):
    with pytest.raises(TargetError, match="include: not in the model's vocabulary: 'Thai'"):
        pipe.plan(Request.one(targets=(parse_field("Thai"),)))
    too_many = ", ".join(["pub"] * (pipe.seq_len - 1))
    with pytest.raises(TargetError, match=f"include: {pipe.seq_len - 1} words cannot fit: the model writes at most "
                                          f"{pipe.seq_len - 2}"):
        pipe.plan(Request.one(targets=(parse_field(too_many),)))
