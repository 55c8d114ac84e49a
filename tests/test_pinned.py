"""The texts a given seed produces with the bundled model (float32 network), pinned so that
refactoring the sampling path cannot change them silently. Re-pinned when the bundled model
changes (last: the denoiser trained on given words and length windows)."""

import json
from pathlib import Path

import pytest

from engine.controls.guidance import GuidanceOptions
from engine.controls.targets import targets_from_fields
from engine.diffusion.sampler import SampleOptions
from engine.pipeline import Pipeline
from engine.request import Request

pytestmark = pytest.mark.slow  # every pinned text is a full run of the bundled model

PINNED = json.loads((Path(__file__).parent / "pinned_texts.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def pipe():
    return Pipeline.from_pretrained(precision="fp32")


def texts(result) -> list[str]:
    return result.trajectory.texts


def test_unguided_texts_are_pinned(pipe):
    options = SampleOptions(steps=20, record_latents=False)
    assert texts(pipe.run(Request.one(samples=3, seed=5, sampling=options))) == PINNED["free"]
    infill = Request.one("The Eagle is a _ _ coffee shop near _ _ .", samples=3, seed=7, sampling=options)
    assert texts(pipe.run(infill)) == PINNED["template"]
    result = pipe.run(Request.one("Blue Spice serves ... food .", samples=2, seed=1,
                                  sampling=SampleOptions(steps=10, record_latents=False)))
    assert texts(result) == PINNED["ellipsis_all"]
    assert [c.text for c in result.best] == PINNED["ellipsis_ranked"]


CASES = {"pos": ({"pos": "PROPN PROPN AUX DET ADJ NOUN ADP DET NOUN PUNCT"}, "x_t", None, 20, 3),
         "semantic_x0": ({"semantic": ["food=Italian"]}, "x0_hat", "_ _ _ is a _ _ near _ _ .", 10, 2)}


@pytest.mark.parametrize("name", list(CASES))
def test_guided_texts_and_costs_are_pinned(pipe, name):
    fields, reads, template, steps, seed = CASES[name]
    request = Request.one(template, targets=targets_from_fields(fields), samples=2, seed=seed, candidates=1,
                          sampling=SampleOptions(steps=steps, record_latents=False),
                          guidance=GuidanceOptions(strength=0.3, fluency=0.01, gradient_steps=3, reads=reads,
                                                    t_min=0.0, t_max=1.0))
    result = pipe.run(request)
    pinned = PINNED[name]
    assert texts(result) == pinned["all"] and [c.text for c in result.best] == pinned["ranked"]
    assert [c.control_scores for c in result.best] == pinned["scores"]
    assert result.cost.denoiser_passes == pinned["denoiser_passes"]
    assert result.cost.classifier_passes == pinned["classifier_passes"]
