"""The editor's pure parts (cells, HTML, plots) and its handlers, on the tiny test model."""

import json

import pytest

from editor import plots
from editor.app import Editor
from editor.cells import CellActionError, apply_action, cells_from_text, cells_from_words, text_from_cells
from editor.render import edit_row, frame_row
from engine.diffusion.sampler import SampleOptions
from engine.pipeline import Pipeline
from engine.views import run_record


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


@pytest.fixture(scope="module")
def editor(tiny_model):
    return Editor(Pipeline.load(tiny_model, bf16=False))


def test_generate_streams_every_step_then_results(editor):
    text = "The Eagle is a _ near _ _ ."
    outputs = list(editor.generate(text, {"cells": cells_from_text(text)}, 0, 10, 3, 5))
    assert len(outputs) == 11
    steps = [o[0]["html"].split('data-step="')[1].split('"')[0] for o in outputs[:10]]
    assert steps == [str(i) for i in range(10)]
    final = outputs[-1]
    table, state = final[2], final[3]
    assert len(state["candidates"]) == 3
    assert len(table) == 3 and [r[0] for r in table] == [1, 2, 3]
    for row in table:
        words = row[1].split()
        assert words[:4] == ["The", "Eagle", "is", "a"] and words[5] == "near" and "✓ locked words kept" in row[3]
    record = json.loads(open(final[8]).read())
    assert record["steps"] == 10 and len(record["samples"]) == 3
    assert "plotly" in open(final[9]).read().lower()


def test_generate_reports_bad_input_and_keeps_the_cells(editor):
    cells = cells_from_text("The Eagel is _")
    outputs = list(editor.generate("The Eagel is _", {"cells": cells}, 0, 10, 2, 0))
    assert len(outputs) == 1
    assert outputs[0][0]["cells"] == cells and "Eagel" in outputs[0][1] and "Eagle" in outputs[0][1]
    conflict = list(editor.generate("The _", {"cells": cells_from_text("The _")}, 5, 10, 2, 0))
    assert "conflicting controls" in conflict[0][1]


def test_scrub_use_result_and_api(editor):
    text = "Alimentum serves _ food ."
    final = list(editor.generate(text, {"cells": cells_from_text(text)}, 0, 10, 2, 1))[-1]
    state = final[3]
    first = editor.scrub(1, state, {"cells": []})[0]["html"]
    last = editor.scrub(10, state, {"cells": []})[0]["html"]
    assert 'data-step="0"' in first and 'data-step="9"' in last and first != last
    row, new_text, _ = editor.use_result(0, state)
    assert new_text == " ".join(state["candidates"][0]["words"]) and all(c["locked"] for c in row["cells"])
    api = editor.write(text, steps=10, samples=2)
    assert len(api["results"]) == 2 and all(r["words"][3:] == ["food", "."] for r in api["results"])
    assert "not in the model's vocabulary" in editor.write("Alimentum servs _")["error"]


def test_plots_from_a_recorded_run(tiny_model):
    pipe = Pipeline.load(tiny_model, bf16=False)
    templates = pipe.templates("The Mill is a _ _ .", samples=2)
    trajectory = pipe.sampler.sample(templates, SampleOptions(steps=8), seed=0)
    record = run_record(trajectory, pipe.tokenizer, [1, 0])
    sample = record["samples"][0]
    assert sample["row"] == 1 and len(sample["frames"]) == 8 and len(sample["projection"]) == 8
    heat, proj, score = plots.all_figures(record, 0, step=3)
    assert len(heat.data[0].z) == 8 and len(heat.data[0].z[0]) == len(plots.visible_positions(sample))
    assert len(proj.data) == 2 * len(plots.visible_positions(sample))
    assert all(0 <= v <= 1 for trace in score.data for v in trace.y)
    html = plots.figures_html(record)
    assert html.count("Plotly.newPlot") == 3 and '<script src="http' not in html  # opens offline


@pytest.mark.parametrize("controls, expected", [
    ((0, 10, 2, None), "seed must be a whole number"),
    ((0, 10, 2, 1e30), "seed must be a whole number from 0"),
    ((0, 0, 2, 0), "steps must be a whole number from 1"),
    ((None, 10, 2, 0), "length must be a whole number"),
    ((0, 10, 500, 0), "samples must be a whole number from 1 to 32"),
])
def test_bad_controls_give_messages_not_tracebacks(editor, controls, expected):
    text = "The Mill is a _ ."
    outputs = list(editor.generate(text, {"cells": cells_from_text(text)}, *controls))
    assert len(outputs) == 1 and expected in outputs[0][1]
    assert outputs[0][0]["cells"] == cells_from_text(text)
    assert expected in editor.write(text, *controls)["error"]


@pytest.mark.parametrize("value", [None, {"cells": None}, {"cells": [{"word": "a"}]}, {"cells": "x"},
                                   {"cells": [{"word": "a", "locked": True}], "action": "toggle"}])
def test_malformed_rows_and_actions_are_refused(editor, value):
    row, _, msg = editor.cell_action(value)
    assert "error" in msg or row["cells"] == []


def test_stale_choices_and_states_are_ignored(editor):
    assert "generate first" in editor.use_result(5, {"candidates": []})[2]
    assert "generate first" in editor.use_result("1: x", None)[2]
    assert all(isinstance(o, type(editor.scrub(1, {}, None)[0])) for o in editor.scrub(1, {}, None))


def test_blank_markers_never_become_locked_words():
    assert cells_from_text("serves food...") == [{"word": "serves", "locked": True}, {"word": "food", "locked": True},
                                                 {"word": "...", "locked": False}]
    with pytest.raises(CellActionError, match="blanks, not words"):
        apply_action(cells_from_text("a _"), {"kind": "edit", "index": 1, "word": "_"})


def test_use_result_words_become_locked_cells():
    assert cells_from_words(["a", "b"]) == [{"word": "a", "locked": True}, {"word": "b", "locked": True}]


@pytest.fixture(scope="module")
def guided_editor(control_model):
    return Editor(Pipeline.load(control_model, bf16=False))


def test_guided_generate_scores_controls_and_plots_their_belief(guided_editor):
    text = "_ _ _ _ _"
    panel = ("PROPN AUX DET NOUN PUNCT", "", "", ["food=Italian"], 0.2, 0.01, 1, 1, 1, 2)
    outputs = list(guided_editor.generate(text, {"cells": cells_from_text(text)}, 0, 8, 2, 3, *panel))
    final = outputs[-1]
    assert "classifier passes" in final[1]
    for row in final[2]:
        assert len(row[1].split()) == 5 and "pos " in row[3] and "semantic " in row[3]
    candidates = final[3]["candidates"]
    assert set(candidates[0]["control_scores"]) == {"pos", "semantic"}
    sample = final[3]["record"]["samples"][0]
    assert sample["control_scores"]["pos"][0] is None and 0 < sample["control_scores"]["pos"][-1] <= 1
    names = [trace.name for trace in final[7].data]
    assert "pos: classifier belief" in names and "semantic: classifier belief" in names


@pytest.mark.parametrize("kwargs, expected", [
    ({"pos": "PROPN AUX NUON"}, "parts of speech: unknown POS tag 'NUON'"),
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
    assert out["classifier_passes"] == 5 * 3 and all(len(r["words"]) == 6 for r in out["results"])
    assert all("tree" in r["control_scores"] for r in out["results"])


def test_classifiers_can_read_the_denoisers_estimate(guided_editor):
    out = guided_editor.write(None, steps=5, samples=1, pos="PROPN AUX NOUN", reads="x0_hat")
    assert out["classifier_passes"] == 4 * 3 and len(out["results"][0]["words"]) == 3
    assert "guidance reads one of" in guided_editor.write(None, pos="PROPN", reads="x1")["error"]


def test_ellipsis_blank_keeps_the_lengths_that_fit_a_pos_target(guided_editor):
    out = guided_editor.write("Blue Spice serves ... food .", steps=5, samples=2,
                              pos="PROPN PROPN VERB ADJ CCONJ NOUN PUNCT")
    assert "error" not in out, out
    for result in out["results"]:
        words = result["words"]
        assert len(words) == 7 and words[:3] == ["Blue", "Spice", "serves"] and words[-2:] == ["food", "."]
    assert "conflicting controls: pos asks for 3 words" in guided_editor.write("Blue Spice ... .", pos="X X X")["error"]
