"""Varying a sentence (SDEdit: start from its words noised to t = strength x T) and the forward
process the teaching view shows (the same noise, so "denoise from here" starts where it shows)."""

from __future__ import annotations

import json
import math

import pytest
import torch

from engine import generate
from engine.diffusion.sampler import SampleOptions
from engine.diffusion.schedule import q_sample
from engine.errors import ConfigError, TemplateError
from engine.pipeline import Pipeline
from engine.request import Request
from engine.text.template import vary_template

SENTENCE = "The Eagle is a pub near the river ."


@pytest.fixture(scope="module")
def pipe(tiny_model):
    return Pipeline.from_pretrained(tiny_model, precision="fp32")


@pytest.fixture(scope="module")
def bundled():
    return Pipeline.from_pretrained()


def vary(pipe, strength, template=None, *, samples=2, seed=0, steps=20, sentence=SENTENCE):
    options = SampleOptions(steps=steps, vary_strength=strength)
    return pipe.run(Request.one(template, vary=sentence, samples=samples, seed=seed, sampling=options))


def test_vary_template_starts_free_positions_at_the_sentence_and_locks_the_template(pipe):
    tok = pipe.tokenizer
    template = vary_template(SENTENCE, "The Eagle is a _ near _ _ .", tok, pipe.seq_len)
    words = SENTENCE.split()
    assert [tok.words[i] for i in template.ids[1:len(words) + 1]] == words
    assert template.locked[1:len(words) + 2] == (True, True, True, True, False, True, False, False, True, True)
    everything_free = vary_template(SENTENCE, None, tok, pipe.seq_len)
    assert not any(everything_free.locked[1:len(words) + 1]) and everything_free.locked[len(words) + 1]


@pytest.mark.parametrize(("sentence", "template", "match"), [
    ("The Eagle is a _ .", None, "has a blank"),
    (SENTENCE, "The Eagle is _ .", "9 words"),
    (SENTENCE, SENTENCE, "every word of the sentence to vary is locked"),
    ("The Zyzzyva is a pub near the river .", None, "Zyzzyva"),
    ("The Eagle is a ... .", None, "expand"),
])
def test_a_sentence_that_cannot_be_varied_says_why(pipe, sentence, template, match):
    with pytest.raises(TemplateError, match=match):
        vary(pipe, 0.5, template, sentence=sentence)


@pytest.mark.parametrize(("options", "match"), [
    (dict(vary="a pub .", length=3), "keeps its own length"),
    (dict(template="The Eagle is a _ .", sampling=SampleOptions(vary_strength=0.5)), "needs a sentence to vary"),
    (dict(vary=SENTENCE, method="fudge"), "only diffusion"),
])
def test_conflicting_variation_requests_are_refused(pipe, options, match):
    with pytest.raises((ConfigError, TemplateError), match=match):
        pipe.run(Request.one(**options))


@pytest.mark.parametrize("strength", [0.0, -0.1, 1.5, math.nan])
def test_vary_strength_is_above_zero_and_at_most_one(strength):
    with pytest.raises(ConfigError, match="vary strength"):
        SampleOptions(vary_strength=strength)


def test_a_variation_starts_at_strength_times_T_from_the_noised_sentence_and_keeps_locks(pipe):
    T = pipe.model.config.T
    result = vary(pipe, 0.4, "The Eagle is a _ near _ _ .", samples=3, seed=5)
    frames = result.trajectory.frames
    assert frames[0].t == round(0.4 * T) and len(frames) == round(20 * 0.4)
    assert result.cost.denoiser_passes == len(frames)
    for candidate in result.best:
        assert candidate.words[:4] == ["The", "Eagle", "is", "a"] and candidate.words[5] == "near"
        assert candidate.checks["locked words kept"]
    # the first latent of a free position is the sentence's word vector noised with the seed's first draw
    template = result.trajectory.templates[0]
    E = pipe.model.embeddings()
    L = template.window or len(template.ids)
    noise = torch.randn((3, L, E.shape[1]), generator=torch.Generator().manual_seed(5))
    expected = q_sample(E[torch.tensor(template.ids[:L])].expand(3, -1, -1), torch.full((3,), frames[0].t), noise, T)
    assert torch.allclose(frames[0].latents[:, 5], expected[:, 5], atol=1e-5)


def test_denoise_from_here_starts_from_exactly_the_latent_the_forward_view_shows(pipe):
    T = pipe.model.config.T
    noising = pipe.forward(SENTENCE, seed=3, points=8)
    assert noising.times[0] == 0 and noising.times[-1] == T and noising.times == sorted(noising.times)
    index = 4
    result = vary(pipe, noising.times[index] / T, samples=1, seed=3)
    free = [i for i, locked in enumerate(noising.template.locked[:noising.latents.shape[1]]) if not locked]
    shown = noising.latents[index][free]
    started = result.trajectory.frames[0].latents[0][free]
    assert result.trajectory.frames[0].t == noising.times[index]
    assert torch.equal(shown, started)


def test_the_forward_process_dissolves_the_sentence_as_t_grows(pipe):
    noising = pipe.forward(SENTENCE, seed=1, points=10)
    words = SENTENCE.split()
    free = [i for i, locked in enumerate(noising.template.locked[:noising.latents.shape[1]]) if not locked]
    assert len(free) == len(words)
    assert pipe.tokenizer.decode_words(noising.tokens[0].tolist()) == words  # t = 0: the sentence itself
    assert float(noising.distance[0, free].max()) == 0.0
    distance = noising.distance[:, free].mean(-1)
    recognised = noising.true_probability[:, free].mean(-1)
    assert distance[-1] > distance[len(distance) // 2] > distance[1] > 0
    assert recognised[0] > 0.99 and recognised[-1] < recognised[len(recognised) // 2] < recognised[1]
    assert noising.alpha_bar[0] == 1.0 and noising.alpha_bar[-1] < 0.01
    with pytest.raises(ConfigError, match="points"):
        pipe.forward(SENTENCE, points=0)


def test_noise_is_read_as_the_nearest_real_word_never_a_special_token(bundled):
    """At pure noise a latent can lie nearest START, UNK, END or PAD: the forward view reads each
    free position as the nearest word of the vocabulary, and the locked START and END stay as they are."""
    tok = bundled.tokenizer
    noising = bundled.forward("The Eagle is a cheap coffee shop near the river .", seed=0, points=50)
    locked = noising.template.locked[:noising.tokens.shape[1]]
    free = [i for i, is_locked in enumerate(locked) if not is_locked]
    specials = {tok.pad_id, tok.unk_id, tok.start_id, tok.end_id}
    for tokens, confidence in zip(noising.tokens.tolist(), noising.confidence.tolist(), strict=True):
        assert not specials & {tokens[i] for i in free}, [tok.words[tokens[i]] for i in free]
        assert all(0.0 < confidence[i] <= 1.0 for i in free)
        assert tokens[0] == tok.start_id and tokens[len(free) + 1] == tok.end_id


def changed_share(sentence: str, results) -> float:
    words = sentence.split()
    changed = [sum(a != b for a, b in zip(c.words, words, strict=False)) / len(words) for c in results]
    return sum(changed) / len(changed)


@pytest.mark.slow
def test_stronger_variations_change_more_words_of_the_bundled_model(bundled):
    sentence = "The Eagle is a cheap coffee shop near the river ."
    light = changed_share(sentence, vary(bundled, 0.1, samples=6, steps=50, sentence=sentence).best)
    strong = changed_share(sentence, vary(bundled, 1.0, samples=6, steps=50, sentence=sentence).best)
    assert light <= 0.1 and strong >= 0.4 and strong > light


def test_vary_from_the_command_line(tiny_model, capsys):
    code = generate.main(["--model", str(tiny_model), "--vary", SENTENCE, "--template", "The Eagle is a _ near _ _ .",
                          "--vary-strength", "0.5", "--steps", "20", "--samples", "2", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["vary_strength"] == 0.5 and len(out["samples"]) == 2
    assert all(s["tokens"][:4] == ["The", "Eagle", "is", "a"] for s in out["samples"])
