"""The editor's pure parts (cells, HTML, plots) and its handlers, on the tiny test model."""

import json

import gradio as gr
import pytest

from editor import plots
from editor.cells import apply_action, cells_for, cells_from_text, cells_from_words, text_from_cells
from editor.form import Form, GuidanceForm
from editor.layout import build
from editor.render import edit_row, frame_row
from engine.controls import KINDS, STEERED, TRAINED
from engine.controls.guidance import GuidanceOptions
from engine.diffusion.sampler import SampleOptions
from engine.diffusion.schedule import strided_timesteps
from engine.errors import CellActionError, ConfigError
from engine.pipeline import Pipeline
from engine.request import Request
from engine.views import run_view
from tests.conftest import TINY

T = TINY["model"].T  # the tiny models' schedule


def test_cells_round_trip_text_blanks_and_ellipsis():
    cells = cells_from_text("The Eagle is a _ near ... shop.")
    assert [c["word"] for c in cells] == ["The", "Eagle", "is", "a", "", "near", "...", "shop", "."]
    assert [c["locked"] for c in cells] == [True] * 4 + [False, True, False, True, True]
    assert text_from_cells(cells) == "The Eagle is a _ near ... shop ."


def test_cell_actions_toggle_edit_insert_delete():
    cells = cells_from_text("The Eagle _")
    unlocked = apply_action(cells, {"kind": "toggle", "index": 1})
    assert text_from_cells(unlocked) == "The _ _" and unlocked[1]["word"] == "Eagle"
    assert text_from_cells(apply_action(unlocked, {"kind": "toggle", "index": 1})) == "The Eagle _"
    assert text_from_cells(apply_action(cells, {"kind": "edit", "index": 2, "word": "pub"})) == "The Eagle pub"
    assert text_from_cells(apply_action(cells, {"kind": "insert", "index": 0})) == "The _ Eagle _"
    assert text_from_cells(apply_action(cells, {"kind": "insert", "index": -1})) == "The Eagle _ _"
    assert text_from_cells(apply_action(cells, {"kind": "delete", "index": 0})) == "Eagle _"
    assert apply_action(cells, {"kind": "edit_mode"}) == cells
    assert cells == cells_from_text("The Eagle _")  # actions never mutate their input


@pytest.mark.parametrize("action, message", [
    ({"kind": "toggle", "index": 2}, "no word to lock"),
    ({"kind": "toggle", "index": 7}, "no cell 7"),
    ({"kind": "edit", "index": 0, "word": "  "}, "type a word"),
    ({"kind": "explode", "index": 0}, "unknown action"),
])
def test_bad_cell_actions_are_refused_with_a_reason(action, message):
    with pytest.raises(CellActionError, match=message):
        apply_action(cells_from_text("The Eagle _"), action)


def test_edit_row_marks_locked_and_free_cells():
    html = edit_row([{"word": "The", "locked": True}, {"word": "<b>", "locked": True}, {"word": "", "locked": False}])
    assert html.count('class="cell locked"') == 2 and html.count('class="cell free"') == 1
    assert '<span class="w">&lt;b&gt;</span>' in html and '<span class="w"><b></span>' not in html


def test_frame_row_shows_words_not_padding():
    view = {"step": 3, "steps": 10, "t": 1400, "alpha_bar": 0.2,
            "words": ["START", "The", "pub", "END", "PAD", "PAD"], "confidence": [1, 1, 0.4, 1, 0.9, 0.9]}
    html = frame_row(view, [True, True, False, True, True, True])
    assert 'data-step="3"' in html and ">The<" in html and ">pub<" in html
    assert "PAD" not in html and "START" not in html and "step <b class=\"step\">4</b> / 10" in html


def test_frame_row_says_a_finished_run_is_done_and_clean():
    view = {"step": 9, "steps": 10, "t": 40, "alpha_bar": 0.858, "words": ["START", "The", "pub", "END"],
            "confidence": [1, 1, 0.9, 1]}
    html = frame_row(view, [True, True, False, True])
    assert 'done · <b class="step">10</b> / 10 steps · clean text' in html
    assert "noise level" not in html and "t = 40" not in html
    earlier = frame_row({**view, "step": 8, "t": 80, "alpha_bar": 0.8}, [True, True, False, True])
    assert 'step <b class="step">9</b> / 10 · t = 80 · noise level 1−ᾱ = 0.200' in earlier


def test_generate_streams_every_step_then_results(editor):
    page, text = editor.page, "The Eagle is a _ near _ _ ."
    outputs = list(editor.generate(text, {"cells": cells_from_text(text)}, length=0, steps=10, samples=3, seed=5))
    assert len(outputs) == 11
    assert all(set(o) == {page.row, page.msg} for o in outputs[:10]), "frames update only the row and message"
    steps = [o[page.row]["html"].split('data-step="')[1].split('"')[0] for o in outputs[:10]]
    assert steps == [str(i) for i in range(10)]
    final = outputs[-1]
    table, state = final[page.results], final[page.state]
    assert len(state["candidates"]) == 3
    assert len(table) == 3 and [r[0] for r in table] == [1, 2, 3]
    for row in table:
        words = row[1].split()
        assert words[:4] == ["The", "Eagle", "is", "a"] and words[5] == "near" and "✓ locked words kept" in row[3]
    exported = json.loads(open(final[page.json_file]).read())
    record = exported["record"]
    assert exported["format"] == "dlm-studio-run" and exported["settings"]["seed"] == 5
    provenance = exported["provenance"]
    assert len(provenance["model"]["weights_sha256"]["denoiser.safetensors"]) == 64
    assert provenance["request"]["seed"] == 5 and provenance["request"]["sampling"]["steps"] == 10
    assert {"torch", "transformers", "gradio", "python"} <= set(provenance["versions"])
    assert record["steps"] == 10 and len(record["samples"]) == 3
    assert record["denoiser_passes"] == 10 and record["classifier_passes"] == 0 and record["rows"] == 3
    assert "plotly" in open(final[page.html_file]).read().lower()
    assert "best 3 of 3 samples, 10 steps, 10 denoiser passes," in final[page.msg]


def test_generate_reports_bad_input_and_keeps_the_cells(editor):
    page, cells = editor.page, cells_from_text("The Eagel is _")
    outputs = list(editor.generate("The Eagel is _", {"cells": cells}, length=0, steps=10, samples=2, seed=0))
    assert len(outputs) == 1 and set(outputs[0]) == {page.row, page.msg}
    message = outputs[0][page.msg]
    assert outputs[0][page.row]["cells"] == cells and "Eagel" in message and "Eagle" in message
    conflict = list(editor.generate("The _", {"cells": cells_from_text("The _")}, length=5, steps=10, samples=2,
                                    seed=0))
    assert "conflicting controls" in conflict[0][page.msg]


def test_generate_reads_the_cells_not_a_rendered_row(editor):
    """Words remembered in unlocked cells stay; a stale row is read afresh from the text."""
    cells = apply_action(cells_from_text("The Mill is a pub ."), {"kind": "toggle", "index": 4})
    assert cells_for("The Mill is a _ .", {"cells": cells}) == (cells, True)
    assert cells_for("The Mill _", {"cells": cells}) == (cells_from_text("The Mill _"), False)
    assert cells_for("The _", {"cells": "x"}) == (cells_from_text("The _"), False)
    final = list(editor.generate("The Mill is a _ .", {"cells": cells}, length=0, steps=5, samples=1, seed=0))[-1]
    assert final[editor.page.row]["cells"] == cells


def test_scrub_use_result_and_api(editor):
    page, text = editor.page, "Alimentum serves _ food ."
    final = list(editor.generate(text, {"cells": cells_from_text(text)}, length=0, steps=10, samples=2, seed=1))[-1]
    state = final[page.state]
    first = editor.replay.scrub(1, state, {"cells": []})
    last = editor.replay.scrub(10, state, {"cells": []})[page.row]["html"]
    assert set(first) == {page.row, page.heat, page.proj, page.score}
    assert 'data-step="0"' in first[page.row]["html"] and 'data-step="9"' in last and first[page.row]["html"] != last
    used = editor.use_result(0, state)
    new_text, row = used[page.text], used[page.row]
    assert new_text == " ".join(state["candidates"][0]["words"]) and all(c["locked"] for c in row["cells"])
    api = editor.write(text, steps=10, samples=2)
    assert len(api["results"]) == 2 and all(r["words"][3:] == ["food", "."] for r in api["results"])
    assert set(api) == {"results", "seconds", "denoiser_passes", "classifier_passes", "rows"}
    assert (api["denoiser_passes"], api["classifier_passes"], api["rows"]) == (10, 0, 2)
    assert "not in the model's vocabulary" in editor.write("Alimentum servs _")["error"]


def test_play_replays_the_stored_run(editor):
    page, text = editor.page, "The Mill is a _ ."
    outputs = list(editor.generate(text, {"cells": cells_from_text(text)}, length=0, steps=12, samples=1, seed=0))
    state = outputs[-1][page.state]
    frames = list(editor.replay.play(state, {"cells": []}))
    assert [f[page.step_slider] for f in frames] == list(range(1, 13))
    assert [i for i, f in enumerate(frames) if page.heat in f] == [0, 10, 11]
    assert list(editor.replay.play(None, None)) == [{editor.page.row: gr.skip()}]


def test_write_runs_the_same_request_as_the_pipeline(tiny_model):
    """The API's result is Pipeline.run's for the same request: texts and cost."""
    ed = build(Pipeline.from_pretrained(tiny_model, precision="fp32"))[1]
    ed.close()  # no exports: /write writes none
    api = ed.write("The Eagle is a _ near _ _ .", 0, 8, 2, 7)
    direct = ed.pipe.run(Request.one("The Eagle is a _ near _ _ .", samples=2, seed=7,
                                     sampling=SampleOptions(steps=8)))
    assert [r["text"] for r in api["results"]] == [c.text for c in direct.best]
    assert (api["denoiser_passes"], api["classifier_passes"], api["rows"]) == (8, 0, 2)
    assert api["denoiser_passes"] == direct.cost.denoiser_passes


def test_form_reads_values_and_leaves_ranges_to_the_engine():
    request = Form("The Eagle is _ .", {"length": "0", "steps": 20.0, "samples": "3", "seed": 5}).request()
    assert request.prompts[0].template == "The Eagle is _ ." and request.prompts[0].length is None
    assert (request.sampling.steps, request.samples, request.seed) == (20, 3, 5)
    defaults = Form(None).request()
    assert (defaults.sampling.steps, defaults.samples, defaults.seed) == (SampleOptions().steps, Request().samples, 0)
    assert defaults.guidance == GuidanceOptions() and defaults.prompts[0].targets == ()  # the kinds' defaults
    assert Form(None, {"length": 7}).request().prompts[0].length == 7
    for form, expected in [(Form(None, {"steps": 2.5}), "steps must be a whole number, got 2.5"),
                           (Form(None, {"samples": float("nan")}), "samples must be a whole number"),
                           (Form(None, {"seed": "seven"}), "seed must be a whole number"),
                           (Form(None, {"seed": -1}), "seed must be a whole number from 0"),
                           (Form(None, {"strength": "x"}), "guidance strength must be a number"),
                           (Form(None, {"fluency": float("nan")}), "fluency must be a finite number"),
                           (Form(None, {"colour": 1}), "unknown input 'colour'")]:
        with pytest.raises(ConfigError, match=expected):
            form.request()


def test_guidance_form_takes_every_steered_kind_by_name():
    page_values = {name: "" for name in STEERED} | {f"weight_{name}": 2 for name in STEERED}
    form = GuidanceForm.from_values(page_values)
    assert form.weight_values() == {name: 2.0 for name in STEERED} and form.targets() == ()
    options = Form.from_values(None, page_values | {"strength": 0.5, "fluency": None, "reads": "x0_hat"}).request()
    assert (options.guidance.strength, options.guidance.fluency, options.guidance.reads) == (0.5, None, "x0_hat")
    api = GuidanceForm.from_values({"weights": {STEERED[0]: 3}})
    assert api.weight_values() == {STEERED[0]: 3.0}
    assert GuidanceForm.from_values({"weights": {STEERED[0]: None}}).weight_values() == {
        STEERED[0]: KINDS[STEERED[0]].weight}
    for values, expected in [({"colour": "red"}, "unknown input 'colour'"),
                             ({"weights": {"colour": 1}}, "unknown control 'colour' in the weights"),
                             ({"weights": [1]}, "weights must be an object")]:
        with pytest.raises(ConfigError, match=expected):
            GuidanceForm.from_values(values)


def test_guidance_panel_has_an_input_and_a_weight_per_steered_kind(editor, guided_editor):
    panel = guided_editor.page.panel
    assert list(panel.fields) == list(STEERED) == list(panel.weights)
    assert list(panel.inputs()) == [*STEERED, "measured", "strength", "fluency", *(f"weight_{k}" for k in STEERED),
                                    "reads"]
    assert panel.measured.value is True and not any(c.visible for c in panel.own_setting())  # shown when it is off
    for name, field in panel.fields.items():
        assert field.elem_id == f"ctl-{name}" and field.label == KINDS[name].label and field.visible
        if KINDS[name].choices_from_classifier:
            labels = guided_editor.pipe.classifier(name).config.labels
            assert [c[1] for c in field.choices] == labels and field.multiselect == KINDS[name].many
    # the tiny model has no classifier: only the kinds needing none are offered
    assert [name for name, f in editor.page.panel.fields.items() if f.visible] == [
        name for name in STEERED if name not in TRAINED]
    assert [name for name, w in editor.page.panel.weights.items() if w.visible] == ["include"]


def test_plots_from_a_recorded_run(tiny_model):
    pipe = Pipeline.from_pretrained(tiny_model, precision="fp32")
    result = pipe.run(Request.one("The Mill is a _ _ .", samples=2, sampling=SampleOptions(steps=8)))
    record = run_view(result, pipe.tokenizer)
    sample = record["samples"][0]
    assert sample["row"] == result.best[0].row and len(sample["frames"]) == 8 and len(sample["projection"]) == 8
    heat, proj, score = plots.all_figures(record, 0, step=3)
    assert len(heat.data[0].z) == 8 and len(heat.data[0].z[0]) == len(plots.visible_positions(sample))
    assert len(proj.data) == 2 * len(plots.visible_positions(sample))
    assert all(0 <= v <= 1 for trace in score.data for v in trace.y)
    html = plots.figures_html(record)
    assert html.count("Plotly.newPlot") == 3 and '<script src="http' not in html  # opens offline


@pytest.mark.parametrize("controls, expected", [
    ((0, 10, 2, "seven"), "seed must be a whole number"),
    ((0, 10, 2, 1e30), "seed must be a whole number written with digits: 1e+30 is a float"),
    ((0, 10, 2, 2**64), "seed must be a whole number from 0 to 9223372036854775807, got 18446744073709551616"),
    ((0, 0, 2, 0), "steps must be from 1 to"),
    ((0, 10.5, 2, 0), "steps must be a whole number"),
    (("four", 10, 2, 0), "length must be a whole number"),
    ((0, 10, 500, 0), "samples must be a whole number from 1 to 32"),
])
def test_bad_controls_give_messages_not_tracebacks(editor, controls, expected):
    page, text = editor.page, "The Mill is a _ ."
    settings = dict(zip(("length", "steps", "samples", "seed"), controls, strict=True))
    outputs = list(editor.generate(text, {"cells": cells_from_text(text)}, **settings))
    assert len(outputs) == 1 and expected in outputs[0][page.msg]
    assert outputs[0][page.row]["cells"] == cells_from_text(text)
    assert expected in editor.write(text, *controls)["error"]


def test_missing_controls_take_the_defaults(editor):
    out = editor.write("The Mill is a _ .", None, None, None, None)
    assert "error" not in out, out
    assert (out["denoiser_passes"], out["rows"]) == (SampleOptions().steps, Request().samples)


@pytest.mark.parametrize("value", [None, {"cells": None}, {"cells": [{"word": "a"}]}, {"cells": "x"},
                                   {"cells": [{"word": "a", "locked": True}], "action": "toggle"}])
def test_malformed_rows_and_actions_are_refused(editor, value):
    out = editor.cell_action(value)
    assert "error" in out[editor.page.msg] or out[editor.page.row]["cells"] == []


def test_a_refused_row_still_answers_the_page_s_action(editor):
    """The page sends its next action once the answer to this one is drawn (editor.token_row)."""
    value = {"html": "<div></div>", "cells": [{"word": "a"}], "action": {"kind": "toggle", "index": 0, "id": 7}}
    out = editor.cell_action(value)
    assert "must be a list of cells" in out[editor.page.msg]
    assert out[editor.page.row]["answered"] == 7 and out[editor.page.row]["cells"] == value["cells"]


def test_stale_choices_and_states_are_ignored(editor):
    page = editor.page
    assert "generate first" in editor.use_result(5, {"candidates": []})[page.msg]
    assert "generate first" in editor.use_result("1: x", None)[page.msg]
    assert set(editor.use_result(None, None)) == {page.msg}
    nothing = {page.row: gr.skip()}
    assert editor.replay.scrub(1, {}, None) == nothing and editor.replay.scrub("x", None, None) == nothing


def test_blank_markers_never_become_locked_words():
    assert cells_from_text("serves food...") == [{"word": "serves", "locked": True}, {"word": "food", "locked": True},
                                                 {"word": "...", "locked": False}]
    # typing `_` or `...` into a cell makes it a blank, never a locked "_"
    assert apply_action(cells_from_text("a pub"), {"kind": "edit", "index": 1, "word": "_"}) == [
        {"word": "a", "locked": True}, {"word": "", "locked": False}]
    assert apply_action(cells_from_text("a pub"), {"kind": "edit", "index": 1, "word": " ... "})[1] == {
        "word": "...", "locked": False}
    assert apply_action(cells_from_text("a pub"), {"kind": "edit", "index": 0, "word": "the cheap _"}) == [
        {"word": "the", "locked": True}, {"word": "cheap", "locked": True}, {"word": "", "locked": False},
        {"word": "pub", "locked": True}]


def test_use_result_words_become_locked_cells():
    assert cells_from_words(["a", "b"]) == [{"word": "a", "locked": True}, {"word": "b", "locked": True}]


@pytest.fixture(scope="module")
def guided_editor(control_model):
    ed = build(Pipeline.from_pretrained(control_model, precision="fp32"))[1]
    yield ed
    ed.close()


def test_guided_generate_scores_controls_and_plots_their_belief(guided_editor):
    page, text = guided_editor.page, "_ _ _ _ _"
    panel = {"pos": "PROPN AUX DET NOUN PUNCT", "tree": "", "spans": "", "semantic": ["food=Italian"],
             "strength": 0.2, "fluency": 0.01, "weight_pos": 1, "weight_tree": 1, "weight_spans": 1,
             "weight_semantic": 2, "reads": "x_t"}
    outputs = list(guided_editor.generate(text, {"cells": cells_from_text(text)}, length=0, steps=8, samples=2,
                                          seed=3, **panel))
    final = outputs[-1]
    setting = GuidanceOptions(strength=0.2, fluency=0.01, reads="x_t").resolved(["pos", "semantic"])
    updates = 2 * setting.gradient_steps * setting.steps_guided(8, T)  # two controls, each guided step
    assert updates > 0 and f"8 denoiser passes + {updates} guide passes" in final[page.msg]
    for row in final[page.results]:
        assert len(row[1].split()) == 5 and "pos " in row[3] and "semantic " in row[3]
    candidates = final[page.state]["candidates"]
    assert set(candidates[0]["control_scores"]) == {"pos", "semantic"}
    sample = final[page.state]["record"]["samples"][0]
    beliefs = sample["control_scores"]["pos"]  # None where guidance did not run: the first step, and any time
    scored = [belief for belief in beliefs if belief is not None]  # outside the setting's window
    guided = [False] + [setting.guides(t, T) for t in strided_timesteps(8, T)[1:]]
    assert [belief is not None for belief in beliefs] == guided and all(0 < belief <= 1 for belief in scored)
    assert len(scored) == setting.steps_guided(8, T)
    names = [trace.name for trace in final[page.score].data]
    assert "pos: guide belief" in names and "semantic: guide belief" in names


def page_defaults(panel) -> dict:
    """What the guidance panel sends when the user touches none of it: each input's starting value."""
    return {name: component.value for name, component in panel.inputs().items()}


@pytest.mark.slow
def test_the_pages_default_guidance_takes_each_controls_measured_setting(guided_editor):
    page, text = guided_editor.page, "_ _ _ _ _"
    values = page_defaults(page.panel) | {"semantic": ["food=Italian"]}
    assert values["measured"] is True and values["strength"] == 0.3  # the sliders, unused while it is on
    assert Form.from_values(text, values).request().guidance == GuidanceOptions()  # all None: the kinds' own

    def sent(values: dict) -> dict:
        """The guidance the stored run's request recorded (the request as the engine read it)."""
        final = list(guided_editor.generate(text, {"cells": cells_from_text(text)}, steps=4, samples=1, seed=0,
                                            **values))[-1]
        run = final[page.state]
        guidance = run["provenance"]["request"]["guidance"]
        return {"measured": run["settings"]["measured"],
                **{name: guidance[name] for name in ("strength", "fluency", "reads")}}

    assert sent(values) == {"measured": True, "strength": None, "fluency": None, "reads": None}
    own = values | {"measured": False, "strength": 1.5, "fluency": 0.05, "reads": "x0_hat"}
    assert sent(own) == {"measured": False, "strength": 1.5, "fluency": 0.05, "reads": "x0_hat"}
    assert sent(values | {"measured": False}) == {"measured": False, "strength": 0.3, "fluency": 0.01, "reads": "x_t"}
    refused = list(guided_editor.generate(text, {"cells": cells_from_text(text)}, **values | {"measured": "yes"}))
    assert len(refused) == 1 and "measured must be true or false, got &#x27;yes&#x27;" in refused[0][page.msg]
    with pytest.raises(ConfigError, match="guidance strength must be a number"):  # still checked while unused
        Form.from_values(text, values | {"strength": "hard"}).request()


@pytest.mark.parametrize("kwargs, expected", [
    ({"pos": "PROPN AUX NUON"}, "pos: unknown POS tag 'NUON'"),
    ({"pos": "PROPN AUX NOUN", "length": 4}, "conflicting controls: pos asks for 3 words"),
    ({"spans": "3 PP"}, 'spans: write a span as "i j LABEL"'),
    ({"semantic": ["food=Thai"]}, "unknown value 'Thai' for food"),
    ({"semantic": ["flavour=sweet"]}, "unknown field 'flavour'"),
    ({"pos": "PROPN", "strength": -1}, "guidance strength must be a number from 0"),
    ({"pos": "PROPN", "weights": {"pos": "x"}}, "pos weight must be a number"),
])
def test_bad_guidance_inputs_are_messages(guided_editor, kwargs, expected):
    assert expected in guided_editor.write("_ _ _ _" if "length" not in kwargs else None, **kwargs)["error"]


def test_guided_write_api_reports_classifier_passes(guided_editor):
    out = guided_editor.write(None, steps=6, samples=2, tree="The Mill is a pub .", strength=0.1)
    setting = GuidanceOptions(strength=0.1).resolved(["tree"])  # the rest: the kind's own
    updates = setting.gradient_steps * setting.steps_guided(6, T)
    assert out["classifier_passes"] == updates > 0 and all(len(r["words"]) == 6 for r in out["results"])
    assert all("tree" in r["control_scores"] for r in out["results"])


def test_classifiers_can_read_the_denoisers_estimate(guided_editor):
    out = guided_editor.write(None, steps=5, samples=1, pos="PROPN AUX NOUN", reads="x0_hat")
    setting = GuidanceOptions(reads="x0_hat").resolved(["pos"])
    updates = setting.gradient_steps * setting.steps_guided(5, T)
    assert out["classifier_passes"] == updates > 0 and len(out["results"][0]["words"]) == 3
    assert out["denoiser_passes"] == 5 + updates  # the sampling steps and guidance's passes through the denoiser
    assert "guidance reads must be one of" in guided_editor.write(None, pos="PROPN", reads="x1")["error"]


def test_ellipsis_blank_keeps_the_lengths_that_fit_a_pos_target(guided_editor):
    out = guided_editor.write("Blue Spice serves ... food .", steps=5, samples=2,
                              pos="PROPN PROPN VERB ADJ CCONJ NOUN PUNCT")
    assert "error" not in out, out
    for result in out["results"]:
        words = result["words"]
        assert len(words) == 7 and words[:3] == ["Blue", "Spice", "serves"] and words[-2:] == ["food", "."]
    assert "conflicting controls: pos asks for 3 words" in guided_editor.write("Blue Spice ... .", pos="X X X")["error"]
