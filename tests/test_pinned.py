"""The texts a given seed produces with the bundled model (float32 network), pinned so that
refactoring the sampling path cannot change them silently."""

import json
from pathlib import Path

import pytest

from engine.controls.guidance import Guidance, GuidanceOptions
from engine.controls.targets import targets_from_fields
from engine.diffusion.sampler import SampleOptions
from engine.pipeline import Pipeline

PINNED = json.loads((Path(__file__).parent / "pinned_texts.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def pipe():
    return Pipeline.load(bf16=False)


def test_unguided_texts_are_pinned(pipe):
    options = SampleOptions(steps=20, record_latents=False)
    assert pipe.generate(samples=3, options=options, seed=5).texts == PINNED["free"]
    assert pipe.generate("The Eagle is a _ _ coffee shop near _ _ .", samples=3, options=options,
                         seed=7).texts == PINNED["template"]
    templates = pipe.templates("Blue Spice serves ... food .", samples=2)
    result = pipe.sample(templates, SampleOptions(steps=10, record_latents=False), 1)
    assert result.texts == PINNED["ellipsis_all"]
    assert [c.text for c in pipe.rank(result, templates, keep=2)] == PINNED["ellipsis_ranked"]


@pytest.mark.parametrize("name, fields, reads, template, steps, seed", [
    ("pos", {"pos": "PROPN PROPN AUX DET ADJ NOUN ADP DET NOUN PUNCT"}, "x_t", None, 20, 3),
    ("semantic_x0", {"semantic": ["food=Italian"]}, "x0_hat", "_ _ _ is a _ _ near _ _ .", 10, 2),
])
def test_guided_texts_and_costs_are_pinned(pipe, name, fields, reads, template, steps, seed):
    templates, controls = pipe.guided_templates(pipe.templates(template, None, 2), targets_from_fields(**fields))
    guide = Guidance(controls, GuidanceOptions(reads=reads))
    result = pipe.sample(templates, SampleOptions(steps=steps, record_latents=False), seed, guide)
    ranked = pipe.rank(result, templates, keep=2, controls=controls)
    pinned = PINNED[name]
    assert result.texts == pinned["all"] and [c.text for c in ranked] == pinned["ranked"]
    assert [c.control_scores for c in ranked] == pinned["scores"]
    assert result.network_passes + guide.denoiser_passes == pinned["denoiser_passes"]
    assert guide.classifier_passes == pinned["classifier_passes"]
