"""What an exported run records of the model that made it: its name and its weights' hashes, never
where the model lies on the machine that made the run; and exports that load back."""

from __future__ import annotations

import json
from pathlib import Path

from editor import runs
from editor.cells import cells_from_text
from engine.diffusion.checkpoint import BUNDLED_MODEL
from engine.pipeline import Pipeline
from engine.provenance import model_name
from engine.request import Request

TEMPLATE = "The Eagle is a _ near _ _ ."


def test_the_provenance_names_the_model_and_hashes_its_weights(tiny_model):
    pipe = Pipeline.from_pretrained(tiny_model, precision="fp32")
    model = pipe.provenance(Request.one(TEMPLATE))["model"]
    assert model["name"] == Path(tiny_model).name and model["device"] == "cpu"
    assert set(model) == {"name", "weights_sha256", "device", "precision"} and model["precision"] == "fp32"
    assert len(model["weights_sha256"]["denoiser.safetensors"]) == 64
    assert str(Path(tiny_model).parent) not in json.dumps(model)
    assert model_name(BUNDLED_MODEL, BUNDLED_MODEL) == "assets/model (bundled)"
    assert model_name(Path("runs") / "model", BUNDLED_MODEL) == "model"


def test_an_export_holds_no_local_path_and_loads_back(editor, tiny_model):
    page = editor.page
    *_, final = editor.generate(TEMPLATE, {"cells": cells_from_text(TEMPLATE)}, length=0, steps=4, samples=1, seed=3)
    text = Path(final[page.json_file]).read_text()
    assert str(Path(tiny_model).resolve().parent) not in text and str(Path.home()) + "/" not in text
    assert json.loads(text)["provenance"]["model"]["name"] == Path(tiny_model).name
    loaded = editor.load_run(final[page.json_file], [])
    assert loaded[page.state]["provenance"] == json.loads(json.dumps(final[page.state]["provenance"]))
    assert loaded[page.results] == final[page.results]


def test_an_older_export_keeps_only_its_models_folder_name():
    """Exports made before runs named their model recorded its folder's path: loading one keeps the
    folder's name and the hashes, and drops the path (so that exporting it again does not repeat it)."""
    sample = {"row": 0, "locked": [True], "frames": [{"words": ["START"], "confidence": [1.0]}], "projection": [],
              "control_scores": {}}
    model = {"directory": "/home/someone/experiments/e2e-v2", "weights_sha256": {"denoiser.safetensors": "ab" * 32},
             "device": "cpu"}
    old = {"format": runs.FORMAT, "version": runs.VERSION, "text": "", "cells": [],
           "record": {"steps": 1, "t": [0], "alpha_bar": [1.0], "samples": [sample]},
           "candidates": [{"text": "", "words": [], "judge_ppl": None, "checks": {}}],
           "provenance": {"model": model, "request": {"seed": 4}, "versions": {"torch": "2.13.0"}}}
    checked = runs.RunFile.model_validate(old)
    assert checked.provenance == {"model": {"name": "e2e-v2", "weights_sha256": model["weights_sha256"],
                                            "device": "cpu"},
                                  "request": {"seed": 4}, "versions": {"torch": "2.13.0"}}
    windows = runs.RunFile.model_validate({**old, "provenance": {"model": {"directory": "C:\\Users\\x\\m1\\"}}})
    assert windows.provenance == {"model": {"name": "m1"}}
    assert "/home/someone" not in checked.model_dump_json()
