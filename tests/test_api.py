"""The editor's API through gradio_client, against `python app.py` started for this module."""

from __future__ import annotations

import functools
import html
import inspect
import json
import os
import re
import tempfile
import urllib.request

os.environ["HF_HUB_OFFLINE"] = "1"  # before gradio_client (and huggingface_hub) are imported

import gradio_client
import pytest
from gradio_client import Client

from editor.form import DEFAULT_VARY_STRENGTH
from engine.controls import STEERED
from engine.controls.guidance import DEFAULT_GUIDANCE, GuidanceOptions
from engine.controls.targets import targets_from_fields
from engine.diffusion.sampler import SampleOptions
from engine.pipeline import Pipeline
from engine.request import Request
from tests.server import APPS, ROOT

pytestmark = pytest.mark.slow  # gradio_client against a real app server (python app.py)

BUNDLED_T = json.loads((ROOT / "assets/model/denoiser.json").read_text())["config"]["T"]  # the app's schedule

EAGLE = "The Eagle is a _ _ coffee shop near _ _ ."
RESULT_KEYS = {"text", "words", "judge_ppl", "checks", "control_scores"}
COST_KEYS = {"seconds", "denoiser_passes", "classifier_passes", "rows"}


@pytest.fixture(scope="module")
def client(app_url) -> Client:
    kwargs = {"verbose": False, "download_files": False}  # nothing of the runs' exports lands on this machine's /tmp
    if "analytics_enabled" in inspect.signature(Client).parameters:
        kwargs["analytics_enabled"] = False
    return Client(app_url, **kwargs)


def assert_keeps(words: list[str], template: str) -> None:
    want = template.split()
    assert len(words) == len(want), (words, template)
    for i, w in enumerate(want):
        if w != "_":
            assert words[i] == w, f"position {i}: {words[i]!r} instead of the locked {w!r} in {words}"


def test_write_keeps_locked_words(client):
    out = client.predict(EAGLE, 0, 30, 3, 7, every_step=True, api_name="/write")
    assert "error" not in out, out
    assert set(out) == {"results", *COST_KEYS}
    assert len(out["results"]) == 3
    assert (out["denoiser_passes"], out["classifier_passes"], out["rows"]) == (30, 0, 3)
    assert out["seconds"] > 0
    for result in out["results"]:
        assert result["text"] == " ".join(result["words"])
        assert_keeps(result["words"], EAGLE)
        assert result["checks"]["locked words kept"] is True
        assert result["checks"]["exactly 12 words"] is True
        assert result["judge_ppl"] > 0
    texts = [r["text"] for r in out["results"]]
    distinct = list(dict.fromkeys(texts))  # a repeat of a higher-ranked text goes last
    assert texts[:len(distinct)] == distinct
    ppl = [r["judge_ppl"] for r in out["results"]][:len(distinct)]
    assert ppl == sorted(ppl), "distinct results are ranked best (lowest judge perplexity) first"


def test_a_write_stops_once_its_words_settle_unless_asked_for_every_step(client):
    settled = client.predict(EAGLE, 0, 50, 4, 7, api_name="/write")
    every = client.predict(EAGLE, 0, 50, 4, 7, every_step=True, api_name="/write")
    assert every["denoiser_passes"] == 50 and 0 < settled["denoiser_passes"] < 50
    assert all(r["checks"]["locked words kept"] for r in settled["results"])
    assert "every step must be true or false" in client.predict(EAGLE, every_step="yes", api_name="/write")["error"]


def test_write_is_reproducible_for_a_seed(client):
    a = client.predict(EAGLE, 0, 20, 2, 3, api_name="/write")
    b = client.predict(EAGLE, 0, 20, 2, 3, api_name="/write")
    assert [r["text"] for r in a["results"]] == [r["text"] for r in b["results"]]


def test_write_ellipsis_blank_keeps_both_ends(client):
    out = client.predict("Blue Spice serves ... food .", 0, 20, 3, 0, api_name="/write")
    assert len(out["results"]) == 3  # the best 3 of the lengths tried
    for result in out["results"]:
        words = result["words"]
        assert words[:3] == ["Blue", "Spice", "serves"] and words[-2:] == ["food", "."], words


def test_write_unknown_word_is_an_error_with_suggestion(client):
    out = client.predict("The Eagle is a _ coffe shop .", api_name="/write")
    assert set(out) == {"error"}
    assert "'coffe'" in out["error"] and "coffee" in out["error"], out["error"]


def test_write_conflicting_controls_is_an_error(client):
    out = client.predict("The Eagle is a _ .", 5, api_name="/write")
    assert "conflicting controls" in out.get("error", ""), out


def test_write_with_controls_scores_them(client):
    out = client.predict("The Eagle is a _ _ _ .", 0, 30, 2, 1, pos="", tree="", spans="3 5 NP",
                         semantic=["food=Italian"], strength=0.3, api_name="/write")
    assert "error" not in out, out
    setting = GuidanceOptions(strength=0.3).resolved(["spans", "semantic"])  # the rest: the kinds' own
    assert out["classifier_passes"] == 2 * setting.gradient_steps * setting.steps_guided(30, BUNDLED_T)
    assert out["denoiser_passes"] == 30  # the classifiers read x_t: no extra pass through the denoiser
    for result in out["results"]:
        assert_keeps(result["words"], "The Eagle is a _ _ _ .")
        assert set(result["control_scores"]) == {"spans", "semantic"}
    bad = client.predict("_ _ _", pos="NOUN VERB", api_name="/write")
    assert "conflicting controls: pos asks for 2 words" in bad["error"]


def test_set_text_makes_cells(client):
    row, message = client.predict("The Eagle is a _ ... .", api_name="/set_text")
    assert message == ""
    assert row["cells"] == [{"word": "The", "locked": True}, {"word": "Eagle", "locked": True},
                            {"word": "is", "locked": True}, {"word": "a", "locked": True},
                            {"word": "", "locked": False}, {"word": "...", "locked": False},
                            {"word": ".", "locked": True}]
    assert row["html"].count('class="cell locked"') == 5
    assert 'class="row editing"' in row["html"]


def test_cell_action_edits_the_row(client):
    row, _ = client.predict(EAGLE, api_name="/set_text")

    def act(value: dict, **action) -> tuple[dict, str, str]:
        return client.predict({**value, "action": action}, api_name="/cell_action")

    row, text, message = act(row, kind="toggle", index=6)
    assert (text, message) == ("The Eagle is a _ _ _ shop near _ _ .", "")
    assert row["cells"][6] == {"word": "coffee", "locked": False}
    row, text, message = act(row, kind="toggle", index=6)
    assert text == EAGLE
    row, text, message = act(row, kind="edit", index=4, word="family")
    assert text == "The Eagle is a family _ coffee shop near _ _ ." and message == ""
    row, text, _ = act(row, kind="delete", index=5)
    assert text == "The Eagle is a family coffee shop near _ _ ."
    row, text, _ = act(row, kind="insert", index=-1)
    assert text == "The Eagle is a family coffee shop near _ _ . _"
    row, text, message = act(row, kind="toggle", index=99)
    assert "there is no cell 99" in message and 'class="msg error"' in message
    assert text == "The Eagle is a family coffee shop near _ _ . _"  # unchanged
    _, _, message = act(row, kind="toggle", index=8)  # a blank: nothing to lock
    assert "no word to lock" in message


def test_generate_streams_frames_then_results(client):
    row, _ = client.predict(EAGLE, api_name="/set_text")
    job = client.submit(EAGLE, row, 0, 30, 2, 5, every_step=True, api_name="/generate")
    streamed = list(job)  # blocks until the run ends
    outputs = job.outputs()
    assert job.status().success
    assert len(outputs) == len(streamed) >= 2
    steps = [int(re.search(r'data-step="(\d+)"', out[0]["html"]).group(1)) for out in outputs]
    frames, final = outputs[:-1], outputs[-1]
    assert len(set(steps[:-1])) >= 20, f"only {len(set(steps[:-1]))} distinct intermediate steps: {steps}"
    assert steps == sorted(steps) and steps[-1] == 29
    for out in frames:
        assert 'class="row animating"' in out[0]["html"]
        assert out[2] == {"__type__": "update"}, "frames leave the results table alone"
    row_out, message, table = final[0], final[1], final[2]
    assert "2 samples, 30 steps" in message
    assert row_out["cells"] == row["cells"]
    assert len(table["data"]) == 2
    for _rank, text, _ppl, checks in table["data"]:
        assert_keeps(text.split(), EAGLE)
        assert "✓ locked words kept" in checks
    assert final[3]["maximum"] == 30 and final[3]["interactive"] is True

    # The run is kept in this client's session: scrub shows a recorded step.
    scrubbed = client.predict(10, row_out, api_name="/scrub")
    assert 'data-step="9"' in scrubbed[0]["html"]


def test_generate_unknown_word_reports_error(client):
    template = "The Eagle is a _ coffe shop ."
    row, _ = client.predict(template, api_name="/set_text")
    job = client.submit(template, row, 0, 20, 2, 0, api_name="/generate")
    job.result()
    outs = job.outputs()
    assert len(outs) == 1
    row_out, message = outs[0][0], outs[0][1]
    assert 'class="msg error"' in message
    assert "'coffe'" in html.unescape(message) and "coffee" in message
    assert row_out["cells"] == row["cells"]


def readme_client_example() -> str:
    """The README's Python block that calls the editor with gradio_client."""
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), re.DOTALL)
    calls = [block for block in blocks if "from gradio_client import Client" in block]
    assert len(calls) == 1, "the README has one gradio_client example"
    return calls[0]


def test_readme_client_example_runs_verbatim(app_url, tmp_path, monkeypatch):
    code = readme_client_example()
    assert 'Client("http://127.0.0.1:7860/"' in code
    # The client downloads the run's exports: into tmp_path rather than /tmp/gradio and /tmp/<random>/
    monkeypatch.setattr(gradio_client, "Client", functools.partial(Client, download_files=str(tmp_path)))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    names: dict = {}
    exec(compile(code.replace("http://127.0.0.1:7860/", app_url), "README.md", "exec"), names)

    result, guided, job, row = names["result"], names["guided"], names["job"], names["row"]
    job.result()  # the job's thread may still be downloading the last exports: let it finish into tmp_path
    for out in (result, guided):
        assert set(out) == {"results", *COST_KEYS}, out
        assert len(out["results"]) == 4 and all(set(r) == RESULT_KEYS for r in out["results"])
        assert all(r["text"] == " ".join(r["words"]) for r in out["results"])
    for r in result["results"]:
        assert r["words"][:4] == ["The", "Eagle", "is", "a"] and r["words"][6:9] == ["coffee", "shop", "near"]
        assert r["words"][-1] == "." and r["checks"]["locked words kept"] is True
        assert r["control_scores"] == {}
    assert result["classifier_passes"] == 0 and 0 < result["denoiser_passes"] <= 50  # it may stop once settled
    assert result["rows"] > 4  # the '...' blank tries several lengths
    assert all(set(r["control_scores"]) == {"semantic"} for r in guided["results"])
    assert all("Italian" in r["words"] and r["control_scores"]["semantic"] == 1.0 for r in guided["results"])
    setting = GuidanceOptions().resolved(["semantic"])  # no guidance argument: the kind's measured setting
    assert guided["classifier_passes"] == setting.steps_guided(50, BUNDLED_T) * setting.gradient_steps
    assert guided["denoiser_passes"] <= 50  # it reads x_t: no extra denoiser pass

    assert job.status().success
    outputs = job.outputs()
    steps = len(outputs) - 1  # a row per denoising step, then the ranked results
    assert 0 < steps <= 50
    assert set(row) >= {"html", "cells"}
    assert [(c["word"], c["locked"]) for c in row["cells"]] == [("The", True), ("Eagle", True), ("is", True),
                                                                ("a", True), ("", False), ("", False), (".", True)]
    ran = "50 steps" if steps == 50 else f"settled after {steps} of 50 steps"
    assert f'data-step="{steps - 1}"' in row["html"]
    assert f"best 4 of 4 samples, {ran}, {steps} denoiser passes" in outputs[-1][1]
    assert len(outputs[-1][2]["data"]) == 4


def test_api_arguments_keep_their_names_and_defaults(client):
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert set(endpoints) == {f"/{name}" for name in
                              ("set_text", "cell_action", "inspect", "generate", "runs", "vary", "scrub", "play", "pin",
                               "unpin", "restore_run", "load_run", "use_result", "write", "forward", "forward_at",
                               "forward_play", "denoise_from_here", "denoise_play")}

    def arguments(name: str) -> dict:
        return {p["parameter_name"]: p["parameter_default"] if p["parameter_has_default"] else "required"
                for p in endpoints[name]["parameters"]}

    # the page's switch, on: each control's measured setting; the sliders it leaves unused
    guidance = {"measured": True, "strength": DEFAULT_GUIDANCE.strength, "fluency": DEFAULT_GUIDANCE.fluency}
    write = arguments("/write")
    assert list(write) == ["text", "length", "steps", "samples", "seed", *STEERED, "strength", "fluency", "weights",
                           "reads", "vary", "vary_strength", "every_step", "step_rule"]
    assert write == {"text": "required", "length": 0, "steps": 50, "samples": 4, "seed": 0, "pos": "", "tree": "",
                     "spans": "", "semantic": None, "include": "", "strength": None, "fluency": None,
                     "weights": None, "reads": None, "vary": None, "vary_strength": None,  # None: the defaults
                     "every_step": False, "step_rule": "ancestral"}  # options added since: at the end
    generate = arguments("/generate")
    weights = [f"weight_{kind}" for kind in STEERED]
    assert list(generate) == ["text", "row", "length", "steps", "samples", "seed", *STEERED, "measured", "strength",
                              "fluency", *weights, "reads", "every_step", "compare", "step_rule"]
    assert generate == {"text": "required", "row": {"html": "", "cells": []}, "length": 0, "steps": 50, "samples": 4,
                        "seed": 0, "pos": "", "tree": "", "spans": "", "semantic": [], "include": "", **guidance,
                        **dict.fromkeys(weights, 1.0), "reads": DEFAULT_GUIDANCE.reads, "every_step": False,
                        "compare": False, "step_rule": "ancestral"}
    vary = arguments("/vary")
    assert list(vary) == ["text", "row", "vary_strength", "length", "steps", "samples", "seed", *STEERED, "measured",
                          "strength", "fluency", *weights, "reads", "every_step", "step_rule"]
    assert vary["vary_strength"] == DEFAULT_VARY_STRENGTH
    assert list(arguments("/play")) == ["value", "speed"] and list(arguments("/forward")) == ["sentence", "seed"]
    assert list(arguments("/denoise_from_here")) == ["t", "steps", "speed"] and arguments("/denoise_play") == {}
    assert arguments("/forward_at") == {"t": 0} and list(arguments("/forward_play")) == ["t", "speed"]


@pytest.fixture(scope="module")
def pipe() -> Pipeline:
    """The bundled model in this process, as the app loads it (the precision this machine runs fastest)."""
    return Pipeline.from_pretrained()


@pytest.mark.parametrize("args, kwargs, request_options", [
    ((EAGLE, 0, 20, 2, 7), {}, {"sampling": SampleOptions(steps=20)}),
    (("_ _ _ is a _ _ near _ _ .", 0, 10, 2, 7), {"semantic": ["food=Italian"], "strength": 1.0, "reads": "x0_hat"},
     {"sampling": SampleOptions(steps=10), "guidance": GuidanceOptions(strength=1.0, reads="x0_hat"),
      "targets": targets_from_fields({"semantic": ["food=Italian"]})}),
])
def test_write_is_pipeline_run_of_the_same_request(client, pipe, args, kwargs, request_options):
    """/write and Pipeline.run(Request.one(...)) in this process agree on the texts and the cost."""
    out = client.predict(*args, **kwargs, api_name="/write")
    assert "error" not in out, out
    template, _length, _steps, samples, seed = args
    result = pipe.run(Request.one(template, samples=samples, seed=seed, **request_options))
    assert [r["text"] for r in out["results"]] == [c.text for c in result.best]
    cost = result.cost
    assert (out["denoiser_passes"], out["classifier_passes"], out["rows"]) == (
        cost.denoiser_passes, cost.classifier_passes, cost.rows)
    if kwargs:
        assert cost.classifier_passes > 0 and cost.denoiser_passes == 10 + cost.classifier_passes


# --- the features for the three audiences, through the API ---------------------------------
SENTENCE = "The Eagle is a cheap coffee shop near the river ."


def final_outputs(job) -> list:
    job.result()
    assert job.status().success
    return job.outputs()[-1]


def test_vary_streams_a_rewording_that_keeps_the_locked_words(client):
    template = "The Eagle is a _ _ _ near the river ."
    row, _ = client.predict(template, api_name="/set_text")
    cells = row["cells"]
    for i, word in zip((4, 5, 6), ("cheap", "coffee", "shop"), strict=True):
        cells[i]["word"] = word  # unlocked cells remember the words to vary
    job = client.submit(template, {"cells": cells}, 0.8, every_step=True, api_name="/vary")
    outputs = list(job)
    final = job.outputs()[-1]
    assert len(job.outputs()) == 1 + 40, "a frame for each of the 40 steps from 0.8 T, then the results"
    assert "40 steps" in final[1] and len(outputs) >= 2
    for _rank, text, _ppl, checks in final[2]["data"]:
        assert_keeps(text.split(), template)
        assert "✓ locked words kept" in checks
    bad = final_outputs(client.submit("The Eagle is a _ .", api_name="/vary"))
    assert "has no word" in bad[1]


def test_pin_generate_restore_and_inspect_in_one_session(client):
    row, _ = client.predict(EAGLE, api_name="/set_text")
    first = final_outputs(client.submit(EAGLE, row, 0, 20, 2, 1, every_step=True, api_name="/generate"))
    pinned = client.predict(api_name="/pin")
    assert "pinned as A" in pinned[0]
    final_outputs(client.submit(EAGLE, row, 0, 10, 2, 1, api_name="/generate"))
    history, _alternatives, _pinned_row, ab_table, _ab_plot = client.predict(api_name="/runs")
    assert [r[0] for r in ab_table["value"]["data"]] == ["A (pinned)", "B (this run)"]
    assert "steps 20 → 10" in ab_table["value"]["data"][1][7]
    old_id = history["choices"][1][1]  # newest first: the first run is second
    restored = client.predict(old_id, api_name="/restore_run")
    assert restored[2]["data"] == first[2]["data"] and restored[15] == EAGLE
    run = int(re.search(r'data-run="(\d+)"', restored[0]["html"]).group(1))
    click = {**restored[0], "action": {"kind": "inspect", "run": run, "step": 4, "position": 5}}
    figure, message = client.predict(click, api_name="/inspect")
    plotted = json.loads(figure["value"]["plot"])
    assert figure["visible"] is True and "position 5, step 5 / 20" in plotted["layout"]["title"]["text"]
    assert len(plotted["data"][0]["y"]) == 5
    client.predict(api_name="/unpin")


def test_load_run_replays_an_exported_file(client, tmp_path):
    row, _ = client.predict(EAGLE, api_name="/set_text")
    final = final_outputs(client.submit(EAGLE, row, 0, 10, 2, 9, api_name="/generate"))
    exported = final[7]  # the trajectory JSON download
    assert exported["orig_name"] == "trajectory.json"
    with urllib.request.urlopen(exported["url"], timeout=10) as response:
        data = response.read()
    path = tmp_path / "run.json"
    path.write_bytes(data)
    loaded = client.predict(gradio_client.handle_file(str(path)), api_name="/load_run")
    assert loaded[2]["data"] == final[2]["data"] and loaded[15] == EAGLE
    assert json.loads(data)["provenance"]["request"]["seed"] == 9
    path.write_text("{}")
    refused = client.predict(gradio_client.handle_file(str(path)), api_name="/load_run")
    assert "not a DLM Studio run" in refused[1]


def test_forward_process_and_denoise_from_here(client):
    shown = client.predict(SENTENCE, 4, api_name="/forward")
    row, plot, t = shown[1], shown[2], shown[3]
    assert "clean sentence" in row["html"] and t["value"] == 0 and "Latents at t = 0" in json.dumps(plot)
    middle = client.predict(BUNDLED_T * 2 // 5, api_name="/forward_at")  # t on the schedule's 0..T, as the slider
    t_shown = int(re.search(r'<b class="t">(\d+)</b>', middle[0]["html"]).group(1))
    assert t_shown == middle[2] == BUNDLED_T * 2 // 5 and middle[3] == ""
    refused = client.predict(BUNDLED_T + 1, api_name="/forward_at")
    assert f"t must be a number from 0 to {BUNDLED_T}" in refused[3] and refused[2] == t_shown
    first, started, _ = client.predict(t_shown, 50, 60, api_name="/denoise_from_here")  # the run, in a model slot
    assert f"denoising from t = {t_shown}" in started and 'data-step="0"' in first["html"]
    job = client.submit(api_name="/denoise_play")  # its steps drawn at 60 a second, outside the model's slots
    final = final_outputs(job)
    assert f"denoised from t = {t_shown} in 20 steps" in final[1]
    assert len(job.outputs()) == 20 and 'data-step="19"' in job.outputs()[-2][0]["html"]


# --- raw HTTP calls, as any language makes them ---------------------------------------------
def raw_call(app_url: str, name: str, data: list) -> tuple[str, object]:
    """POST /gradio_api/call/<name> with a data list, then read the event stream: its last event and data."""
    call = f"{app_url}gradio_api/call/{name}"
    request = urllib.request.Request(call, data=json.dumps({"data": data}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        event_id = json.loads(response.read())["event_id"]
    with urllib.request.urlopen(f"{call}/{event_id}", timeout=120) as response:
        lines = response.read().decode().splitlines()
    events = [line.removeprefix("event: ") for line in lines if line.startswith("event: ")]
    payloads = [line.removeprefix("data: ") for line in lines if line.startswith("data: ")]
    return events[-1], json.loads(payloads[-1])


def tracebacks(app_url: str) -> int:
    return APPS[app_url].log.read_text().count("Traceback")


def test_a_raw_call_with_missing_trailing_arguments_takes_their_defaults(client, app_url):
    before = tracebacks(app_url)
    event, data = raw_call(app_url, "write", [EAGLE, 0, 20])  # samples, seed and the rest left out
    assert event == "complete", data
    out = data[0]
    assert len(out["results"]) == 4 and 0 < out["denoiser_passes"] <= 20, out  # samples: the default 4
    full = raw_call(app_url, "write", [EAGLE, 0, 20, 4, 0])[1][0]
    assert [r["text"] for r in full["results"]] == [r["text"] for r in out["results"]], "seed: the default 0"
    event, data = raw_call(app_url, "write", [])
    assert event == "error" and "text" in (data.get("error") or ""), data  # the one argument with no default
    for name in sorted(client.view_api(print_info=False, return_format="dict")["named_endpoints"]):
        if name not in ("/generate", "/vary"):  # each writes a whole run: /write above is the same path
            event, data = raw_call(app_url, name.lstrip("/"), [])
            assert event == "complete" or (data or {}).get("error"), (name, event, data)
    assert tracebacks(app_url) == before, APPS[app_url].log.read_text()[-3000:]


@pytest.mark.parametrize(("text", "spans", "match"), [
    ("The Eagle is a _ _ _ .", "4 60 PP", "span [4, 60] runs past the end of the template: it has 8 words"),
    ("The Eagle is a _ _ _ .", "1 2 NP; 4 8 PP", "span [4, 8] runs past the end of the template: it has 8 words"),
    ("Blue Spice serves ... food .", "2 30 NP", "span [2, 30] runs past the end"),
    ("", "4 62 PP", "span [4, 62] is out of range: the model writes at most 62 words"),
])
def test_a_span_past_the_end_of_the_text_is_refused(client, text, spans, match):
    for strength in (None, 0.0):  # steered or only judged: refused either way
        out = client.predict(text or None, pos="", tree="", spans=spans, strength=strength, api_name="/write")
        assert match in out.get("error", ""), out
    fits = client.predict("The Eagle is a _ _ _ .", 0, 10, 1, 0, pos="", tree="", spans="4 7 PP", api_name="/write")
    assert "error" not in fits, fits
