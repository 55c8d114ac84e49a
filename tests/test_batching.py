"""Requests that share denoiser passes (engine.diffusion.batching) and runs that stop once their words
settle (SampleOptions.settle_steps)."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from engine.diffusion.batching import BatchedNetwork
from engine.diffusion.checkpoint import load_denoiser
from engine.diffusion.sampler import SampleOptions, Sampler
from engine.errors import ConfigError
from engine.pipeline import Pipeline
from engine.request import Request
from engine.text.template import free_template, length_template, parse_template

# (template maker, steps, seed, options): free text on whole rows, fixed lengths on windows of their own
RUNS = [
    (lambda tok: free_template(16), 20, 1, {}),
    (lambda tok: length_template(5, 16).with_window(9), 12, 2, {}),
    (lambda tok: parse_template("The Eagle is a _ _ near _ _ .", tok, 16).with_window(14), 30, 3, {}),
    (lambda tok: length_template(3, 16).with_window(7), 8, 4, {"step_rule": "ddim"}),
]


@pytest.fixture(scope="module")
def denoiser(tiny_model):
    model, tokenizer, _ = load_denoiser(tiny_model)
    return model, tokenizer


def run(sampler: Sampler, tokenizer, index: int, start: threading.Event | None = None, rows: int = 2) -> list:
    make, steps, seed, extra = RUNS[index]
    if start is not None:
        start.wait()
    template = make(tokenizer)
    return list(sampler.frames([template] * rows, SampleOptions(steps=steps, **extra), seed=seed))


def slowed(sampler: Sampler, seconds: float) -> None:
    """Make every shared pass take a while, so that runs started together meet in it; a loaded machine
    may be slow between a run's passes, so the gathering waits long for a member's call."""
    network = sampler.network.network
    sampler.network.gather_s = 2.0

    def slow(*args):
        time.sleep(seconds)
        return network(*args)

    sampler.network.network = slow


@pytest.mark.slow
@pytest.mark.parametrize("bf16", [False, True])
def test_runs_sharing_passes_write_what_each_writes_alone(denoiser, bf16):
    model, tokenizer = denoiser
    alone = Sampler(model, tokenizer, bf16=bf16)
    expected = [run(alone, tokenizer, i) for i in range(len(RUNS))]
    shared = Sampler(model, tokenizer, bf16=bf16, shared=True)
    slowed(shared, 0.01)
    got: list = [None] * len(RUNS)
    start = threading.Event()

    def worker(i: int) -> None:
        got[i] = run(shared, tokenizer, i, start)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(RUNS))]
    for thread in threads:
        thread.start()
    start.set()
    for thread in threads:
        thread.join()
    stats = shared.network.stats
    assert stats.calls == sum(steps for _, steps, _, _ in RUNS) and stats.largest == len(RUNS)
    assert stats.passes <= max(steps for _, steps, _, _ in RUNS) + 2  # they go in step
    for i, (frames, solo) in enumerate(zip(got, expected, strict=True)):
        assert len(frames) == len(solo) == RUNS[i][1]
        assert [f.tokens.tolist() for f in frames] == [f.tokens.tolist() for f in solo], i  # the words at every step
        close = 1e-2 if bf16 else 1e-4  # a larger bf16 product rounds otherwise: the words stay, the numbers move
        for frame, solo_frame in zip(frames, solo, strict=True):
            torch.testing.assert_close(frame.confidence, solo_frame.confidence, atol=close, rtol=close)
            torch.testing.assert_close(frame.latents, solo_frame.latents, atol=close, rtol=close)


def test_a_run_joins_others_at_a_step_boundary(denoiser):
    model, tokenizer = denoiser
    alone = Sampler(model, tokenizer, bf16=False)
    expected = run(alone, tokenizer, 1, rows=3)
    shared = Sampler(model, tokenizer, bf16=False, shared=True)
    slowed(shared, 0.01)
    halfway, late = threading.Event(), {}

    def long_run() -> None:
        for frame in shared.frames([free_template(16)] * 2, SampleOptions(steps=40), seed=9):
            if frame.index == 10:
                halfway.set()

    first = threading.Thread(target=long_run)
    first.start()
    late["frames"] = run(shared, tokenizer, 1, halfway, rows=3)  # starts at the other's 11th step
    first.join()
    stats = shared.network.stats
    assert stats.largest == 2 and stats.passes <= 40 + 1  # its 12 passes were the other's
    assert [f.tokens.tolist() for f in late["frames"]] == [f.tokens.tolist() for f in expected]


def test_a_failed_shared_pass_fails_every_run_in_it(denoiser):
    model, tokenizer = denoiser
    calls = []

    def broken(x, *rest):
        calls.append(x.shape[0])
        time.sleep(0.05)
        raise RuntimeError("out of memory")

    network = BatchedNetwork(broken)
    errors = []
    start = threading.Barrier(3)

    def worker() -> None:
        start.wait()
        try:
            network(torch.zeros(2, 4, 8), torch.ones(2))
        except RuntimeError as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == ["out of memory"] * 3 and sum(calls) == 6 and len(calls) < 3


@pytest.mark.slow
def test_a_settled_run_stops_with_the_words_the_full_run_had_there(denoiser):
    model, tokenizer = denoiser
    sampler = Sampler(model, tokenizer, bf16=False)
    templates = [length_template(4, 16)] * 3
    full = list(sampler.frames(templates, SampleOptions(steps=60), seed=5))
    early = list(sampler.frames(templates, SampleOptions(steps=60, settle_steps=3, settle_confidence=0.0), seed=5))
    last = early[-1]
    assert last.stopped and last.final and len(early) < len(full) and not any(f.stopped for f in early[:-1])
    assert torch.equal(last.tokens, full[last.index].tokens)
    assert all(torch.equal(early[last.index - k].tokens, last.tokens) for k in range(4))
    assert sampler.trajectory(early, templates).stopped_at == last.index
    assert sampler.trajectory(full, templates).stopped_at is None and not full[-1].stopped and full[-1].final
    sure = list(sampler.frames(templates, SampleOptions(steps=60, settle_steps=3, settle_confidence=1.0), seed=5))
    assert len(sure) == 60  # no word of the tiny model is ever certain


class HalfGuided:
    """A guide that steers the noisier half of the schedule and leaves the latent as it is."""

    def __call__(self, step):
        return step.x, {}

    def guides(self, t: int, T: int) -> bool:
        return t >= T // 2


def test_a_guided_run_stops_only_past_its_guidance_window(denoiser):
    model, tokenizer = denoiser
    sampler = Sampler(model, tokenizer, bf16=False)
    options = SampleOptions(steps=40, settle_steps=1, settle_confidence=0.0)
    unguided = list(sampler.frames([length_template(4, 16)], options, seed=2))
    guided = list(sampler.frames([length_template(4, 16)], options, seed=2, guide=HalfGuided()))
    T = model.config.T
    assert guided[-1].stopped and len(unguided) < len(guided) < 40
    assert guided[-1].t < T // 2 + T // 40  # the step after it goes below the window
    assert all(f.t >= T // 2 for f in guided[:-1]) or guided[-2].t >= T // 2


@pytest.mark.parametrize("settings, message", [({"settle_steps": -1}, "settle steps must be a whole number"),
                                               ({"settle_steps": 1.5}, "settle steps must be a whole number"),
                                               ({"settle_confidence": 2}, "settle confidence must be a number from 0")])
def test_bad_settle_settings_are_refused(settings, message):
    with pytest.raises(ConfigError, match=message):
        SampleOptions(**settings)


def test_the_pipeline_reports_a_stopped_run_and_its_passes(tiny_model):
    pipe = Pipeline.from_pretrained(tiny_model, precision="fp32")
    options = SampleOptions(steps=50, settle_steps=2, settle_confidence=0.0)
    result = pipe.run(Request.one("The Eagle is a _ _ .", samples=2, seed=1, sampling=options))
    stopped = result.trajectory.stopped_at
    assert stopped is not None and result.cost.denoiser_passes == stopped + 1 < 50
