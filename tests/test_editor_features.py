"""The editor's handlers for Vary, the history, A/B, what the model weighed, exported runs and the
forward-process tab, on the tiny test model (no browser, no server)."""

from __future__ import annotations

import itertools
import json
import math

import gradio as gr
import pytest

from editor import runs, teach
from editor.cells import apply_action, cells_from_text, text_from_cells, variation
from engine.errors import CellActionError, ConfigError

SENTENCE = "The Eagle is a pub near the river ."
TEMPLATE = "The Eagle is a _ near _ _ ."


def finish(outputs) -> dict:
    *_, final = outputs
    return final


def generated(editor, text=TEMPLATE, history=None, **values) -> dict:
    values = {"length": 0, "steps": 10, "samples": 2, "seed": 1} | values
    return finish(editor.generate(text, {"cells": cells_from_text(text)}, history=history, **values))


def unlocked(text: str, indices: list[int]) -> list[dict]:
    cells = cells_from_text(text)
    for i in indices:
        cells = apply_action(cells, {"kind": "toggle", "index": i})
    return cells


# --- Vary ----------------------------------------------------------------------------------
def test_variation_reads_the_row_as_a_sentence_and_its_locks():
    cells = unlocked(SENTENCE, [4, 6, 7])
    assert variation(cells) == (SENTENCE, "The Eagle is a _ near _ _ .")
    for text, match in [("The Eagle is a _ .", "cell 5 has no word"), ("a ... pub", "cell 2 has no word"),
                        (SENTENCE, "every word is locked, so there is nothing left to vary")]:
        with pytest.raises(CellActionError, match=match):
            variation(cells_from_text(text))
    with pytest.raises(CellActionError, match="type a sentence"):
        variation([])


def test_vary_rewords_the_unlocked_words_and_records_how(editor):
    page = editor.page
    cells = unlocked(SENTENCE, [4, 6, 7])
    outputs = list(editor.vary(text_from_cells(cells), {"cells": cells}, 0.5, length=0, steps=10, samples=2, seed=3))
    assert len(outputs) == 1 + 5, "a frame for each of the 5 steps from t = T/2, then the results"
    final = outputs[-1]
    run = final[page.state]
    assert run["settings"]["vary_strength"] == 0.5 and run["settings"]["varied"] is True
    assert run["record"]["t"][0] == editor.pipe.model.config.T // 2
    for candidate in run["candidates"]:
        words, want = candidate["words"], SENTENCE.split()
        assert len(words) == len(want) and all(words[i] == want[i] for i in (0, 1, 2, 3, 5, 8))
    assert final[page.row]["cells"] == cells and "vary 0.5" in final[page.history][-1]["label"]


def test_vary_right_after_generate_rewords_the_run_the_row_shows(editor):
    page = editor.page
    final = generated(editor)
    row, best = final[page.row], final[page.state]["candidates"][0]["words"]
    assert row["result"] == [{"word": w, "locked": t != "_"} for w, t in zip(best, TEMPLATE.split(), strict=True)]
    varied = finish(editor.vary(TEMPLATE, row, 0.5, length=0, steps=10, samples=2, seed=3))
    assert page.state in varied, varied.get(page.msg)
    assert varied[page.row]["cells"] == row["cells"]  # the row still says the text box's template
    for candidate in varied[page.state]["candidates"]:
        assert all(w == t for w, t in zip(candidate["words"], TEMPLATE.split(), strict=True) if t != "_")
    stale = list(editor.vary("The Eagle is a _ .", row, 0.5, steps=10, samples=1))  # the text box moved on
    assert len(stale) == 1 and "cell 5 has no word" in stale[0][page.msg]


@pytest.mark.parametrize(("text", "strength", "match"), [
    ("The Eagle is a _ .", 0.5, "has no word"),
    (SENTENCE, 0, "vary strength must be a number above 0"),
    (SENTENCE, "lots", "vary strength must be a number"),
    ("The Eagel is a pub .", 0.5, "Eagel"),
])
def test_vary_refusals_keep_the_row(editor, text, strength, match):
    cells = unlocked(text, [] if "_" in text else [4])  # a word left to vary
    outputs = list(editor.vary(text_from_cells(cells), {"cells": cells}, strength, steps=10, samples=1))
    assert len(outputs) == 1 and match in outputs[0][editor.page.msg]
    assert outputs[0].get(editor.page.row, {"cells": cells})["cells"] == cells


def test_write_api_varies_a_sentence(editor):
    out = editor.write("The Eagle is a _ near _ _ .", steps=10, samples=2, vary=SENTENCE, vary_strength=0.4)
    assert "error" not in out and all(len(r["words"]) == len(SENTENCE.split()) for r in out["results"])
    assert "error" in editor.write(None, vary=SENTENCE, vary_strength=1.5)


# --- history, A/B ---------------------------------------------------------------------------
def test_each_sessions_history_numbers_its_runs_from_one(editor):
    page = editor.page
    generated(editor, history=[generated(editor)[page.state]])  # another session's runs
    first = generated(editor, history=[])
    second = generated(editor, history=first[page.history])
    assert [run["number"] for run in second[page.history]] == [1, 2]
    assert [label.split()[0] for label, _ in runs.history_choices(second[page.history])] == ["#2", "#1"]


def test_history_keeps_each_run_and_restores_its_row_text_and_settings(editor):
    page = editor.page
    first = generated(editor, seed=11, steps=10)
    second = generated(editor, "Wildwood is a _ .", history=first[page.history], seed=12, steps=20)
    history = second[page.history]
    assert [run["settings"]["seed"] for run in history] == [11, 12]
    shown = editor.runs_view(second[page.state], history)
    choices = shown[page.history_list]["choices"]
    assert shown[page.history_list]["value"] == history[1]["id"] and shown[page.ab_table]["visible"] is False
    assert [value for _, value in choices] == [history[1]["id"], history[0]["id"]]  # newest first
    restored = editor.restore(history[0]["id"], history)
    assert restored[page.text] == TEMPLATE and restored[page.settings["seed"]] == 11
    assert restored[page.settings["steps"]] == 10 and restored[page.state] is history[0]
    assert restored[page.results] == first[page.results]
    assert "no longer" in editor.restore(-5, history)[page.msg]
    assert len(runs.remembered([{"id": i} for i in range(runs.HISTORY)], {"id": "new"})) == runs.HISTORY


def test_pinned_run_is_shown_beside_the_next_with_its_differences(editor):
    page = editor.page
    assert "generate first" in editor.replay.pin(None)[page.msg]
    a = generated(editor, steps=8)[page.state]
    pinned = editor.replay.pin(a)
    assert pinned[page.pinned] is a and pinned[page.pinned_row]["visible"] is True
    assert pinned[page.ab_table]["visible"] is False  # no B yet
    final = generated(editor, steps=4)
    b = final[page.state]
    shown = editor.runs_view(b, final[page.history], a)
    table = shown[page.ab_table]["value"]
    assert [row[0] for row in table] == ["A (pinned)", "B (this run)"] and "steps 8 → 4" in table[1][7]
    assert table[0][1] == a["candidates"][0]["text"] and shown[page.ab_plot]["visible"] is True
    scrubbed = editor.replay.scrub(2, b, None, a)  # B's step 2 of 4 is a third of the way: A's step 3 of 8
    assert 'data-step="1"' in scrubbed[page.row]["html"]
    assert 'data-step="2"' in scrubbed[page.pinned_row]["value"]["html"]
    assert set(editor.replay.unpin()) == {page.pinned, page.pinned_row, page.ab_table, page.ab_plot}


def test_clicking_a_word_shows_the_models_top_words_at_that_step(editor):
    page = editor.page
    run = generated(editor)[page.state]
    click = {"action": {"kind": "inspect", "run": run["id"], "step": 3, "position": 5}}
    figure = editor.replay.inspect(click, run)[page.alternatives]["value"]
    bars = figure.data[0]
    assert len(bars.y) == 5 and math.isclose(sum(bars.x), sum(p for _, p in run["record"]["samples"][0]["frames"][3]
                                                                ["top"][5]))
    assert "position 5, step 4 / 10" in figure.layout.title.text
    locked = editor.replay.inspect({"action": {**click["action"], "position": 1}}, run)[page.alternatives]["value"]
    assert list(locked.data[0].y) == ["The"] and "(locked)" in locked.layout.title.text
    inspect = editor.replay.inspect
    assert "let the run finish" in inspect({"action": {**click["action"], "run": -1}}, run)[page.msg]
    assert "no word at position 99" in inspect({"action": {**click["action"], "position": 99}}, run)[page.msg]
    assert editor.replay.inspect(None, run) == {page.alternatives: gr.skip()}


def test_play_takes_a_speed_and_refuses_a_bad_one(editor):
    page = editor.page
    run = generated(editor, steps=4)[page.state]
    assert [f[page.step_slider] for f in editor.replay.play(run, None, 60)] == [1, 2, 3, 4]
    assert "playback speed must be from 1 to 60" in next(editor.replay.play(run, None, 0))[page.msg]


# --- exported runs --------------------------------------------------------------------------
def test_an_exported_run_loads_back_with_its_provenance(editor, tmp_path):
    page = editor.page
    final = generated(editor, seed=21)
    exported = json.loads(open(final[page.json_file]).read())
    assert exported["provenance"]["request"]["seed"] == 21
    loaded = editor.load_run(final[page.json_file], [])
    assert loaded[page.results] == final[page.results] and loaded[page.text] == TEMPLATE
    assert loaded[page.settings["seed"]] == 21 and loaded[page.history][0]["label"].startswith("loaded")
    assert loaded[page.state]["record"] == final[page.state]["record"]


def damaged(exported: dict, change) -> str:
    data = json.loads(json.dumps(exported))
    change(data)
    return json.dumps(data)


@pytest.mark.parametrize(("change", "match"), [
    (lambda d: d.update(format="other"), "not a DLM Studio run"),
    (lambda d: d["record"].update(steps=9), "one per step"),
    (lambda d: d["record"]["samples"][0]["frames"][2]["words"].pop(), "frames\\[2\\] needs"),
    (lambda d: d["record"]["samples"][0]["frames"][0].update(confidence="high"), "confidence"),
    (lambda d: d["record"]["samples"][0].update(locked=[]), "locked"),
    (lambda d: d["record"].update(alpha_bar=[math.nan] * 8), "alpha_bar"),
    (lambda d: d.update(candidates=[]), "candidates"),
    (lambda d: d.update(version=7), "version"),
])
def test_damaged_run_files_are_refused_with_where(editor, change, match):
    exported = json.loads(open(generated(editor)[editor.page.json_file]).read())
    with pytest.raises(ConfigError, match=match):
        runs.read_run(damaged(exported, change), 1)


def test_load_run_refuses_what_is_not_a_run_and_changes_nothing(editor, tmp_path):
    page = editor.page
    for name, body in [("empty.json", b""), ("list.json", b"[1, 2]"), ("deep.json", b"[" * 100_000),
                       ("text.json", "ünïcode".encode())]:
        path = tmp_path / name
        path.write_bytes(body)
        out = editor.load_run(str(path), [])
        assert set(out) == {page.msg} and "error" in out[page.msg], name
    assert "choose a trajectory JSON" in editor.load_run(None)[page.msg]
    assert "choose a trajectory JSON" in editor.load_run(str(tmp_path / "missing.json"))[page.msg]


@pytest.mark.parametrize(("change", "why"), [
    ({"steps": 10**6}, "steps must be from 1 to"),  # the model refuses it
    ({"steps": 8}, "steps 8 is outside the page&#x27;s range 10 to 200"),  # an API run's: no slider shows it
    ({"vary_strength": 3}, "vary strength must be a number above 0 and at most 1"),
    ({"compare": "yes"}, "compare must be true or false"),
    ({"measured": 1}, "measured must be true or false"),
])
def test_settings_the_page_cannot_take_are_left_as_they_are(editor, change, why):
    page = editor.page
    run = generated(editor, steps=10)[page.state]
    foreign = {**run, "settings": {**run["settings"], **change}}
    restored = editor.restored(foreign, [foreign], None)
    assert "settings were not restored" in restored[page.msg] and why in restored[page.msg]
    assert page.settings["steps"] not in restored and restored[page.text] == TEMPLATE
    varied = {**run, "settings": {**run["settings"], "vary_strength": 0.4, "varied": True}}
    assert editor.restored(varied, [varied], None)[page.settings["vary_strength"]] == 0.4


def test_a_run_restores_how_it_was_steered(editor):
    page = editor.page
    measured, own = page.settings["measured"], page.settings["strength"]
    run = generated(editor, measured=True, strength=0.3)[page.state]
    restored = editor.restored(run, [run], None)
    assert restored[measured] is True and restored[own] == 0.3 and "not restored" not in restored[page.msg]
    mine = generated(editor, measured=False, strength=1.2)[page.state]
    assert editor.restored(mine, [mine], None)[measured] is False
    # a run made before the switch steered with its sliders: it comes back with the switch off
    older = {**run, "settings": {k: v for k, v in run["settings"].items() if k != "measured"} | {"strength": 0.7}}
    restored = editor.restored(older, [older], None)
    assert restored[measured] is False and restored[own] == 0.7
    table = runs.ab_rows(older, mine)
    assert "strength 0.7 → 1.2" in table[1][7] and "measured" not in table[1][7]


# --- the forward process --------------------------------------------------------------------
def test_the_forward_tab_noises_plays_and_denoises_from_t(editor):
    panel = editor.teach.panel
    T = editor.pipe.model.config.T
    shown = editor.teach.noise(SENTENCE, 2)
    state = shown[panel.state]
    assert 'data-step="0"' in shown[panel.row]["html"] and "clean sentence" in shown[panel.row]["html"]
    assert shown[panel.t]["value"] == 0 and state["record"]["t"][-1] == T  # the slider speaks of t, 0..T
    middle = editor.teach.at(T // 2, state)
    assert 'data-mode="noising"' in middle[panel.row]["html"] and "d = " in middle[panel.row]["html"]
    assert middle[panel.t] == T // 2 and f'<b class="t">{T // 2}</b> / {T}' in middle[panel.row]["html"]
    assert editor.teach.at(T // 2 + 7, state)[panel.t] == T // 2  # between two shown times: the nearer
    played = list(editor.teach.play(state, T * 45 // 50, 60))  # from the slider's time, the next step on
    assert [p[panel.t] for p in played] == [T * i // 50 for i in range(46, 51)]
    assert "Pure noise" in played[-1][panel.row]["html"] and all(panel.plot not in p for p in played)
    assert "t = " + str(T) in editor.teach.plot(state)[panel.plot].layout.title.text  # the plot follows Play
    made = editor.teach.denoise(state, T // 2, 10, 60)  # the run, with its first step shown
    assert f"denoising from t = {T // 2}" in made[panel.msg] and 'data-step="0"' in made[panel.row]["html"]
    drawn = list(editor.teach.show_denoising(made[panel.denoised]))  # then the rest, paced, and what it wrote
    assert len(drawn) == 4 + 1 and f"denoised from t = {T // 2} in 5 steps" in drawn[-1][panel.msg]
    assert ['data-step="4"' in d[panel.row]["html"] for d in drawn[:-1]] == [False] * 3 + [True]
    refused = editor.teach.denoise(state, 0, 10, 60)
    assert "at t = 0 there is no noise" in refused[panel.msg] and refused[panel.denoised] is None
    assert list(editor.teach.show_denoising(None)) == []


def test_a_late_frame_moves_the_pace_on_instead_of_rushing_the_next_ones_out(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(teach.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(teach.time, "sleep", lambda s: clock.__setitem__(0, clock[0] + s))
    paced, due = teach.Paced(0.1), []
    for n in range(1, 8):
        if n == 3:
            clock[0] += 0.55  # the third frame took half a second to make
        paced.wait(n)
        due.append(round(clock[0] - 100, 3))
    assert due[:2] == [0.1, 0.2]
    assert due[2] == 0.75 and [round(b - a, 3) for a, b in itertools.pairwise(due[2:])] == [0.1] * 4, due
    late_by_less = teach.Paced(0.1)
    start = clock[0]
    clock[0] += 0.15  # frame 1 under one pause late: the clock keeps its times, frame 2 comes at 0.2
    late_by_less.wait(1)
    late_by_less.wait(2)
    assert round(clock[0] - start, 3) == 0.2


@pytest.mark.parametrize("t", [-1, 2001, 10**9, "a lot", float("nan"), [3], True])
def test_a_time_outside_the_schedule_is_refused_and_the_tab_stays(editor, t):
    panel = editor.teach.panel
    state = editor.teach.noise(SENTENCE, 2)[panel.state]
    shown_t = editor.teach.at(800, state)[panel.t]
    for out in (editor.teach.at(t, state), next(editor.teach.play(state, t, 60)), editor.teach.denoise(state, t)):
        assert "t must be a number from 0 to 2000" in out[panel.msg], out
        assert out[panel.t] == shown_t and panel.row not in out  # the slider goes back; the row stays
    assert state["shown"] == state["record"]["t"].index(shown_t)


@pytest.mark.parametrize(("sentence", "match"), [
    ("", "type a sentence"), ("The Eagle is _ .", "has a blank"), ("The Eagel .", "Eagel"),
    ("pub " * 300, "too long"), (7, "type a sentence"),
])
def test_the_forward_tab_refuses_what_it_cannot_noise(editor, sentence, match):
    panel = editor.teach.panel
    out = editor.teach.noise(sentence, 0)
    assert set(out) == {panel.msg} and match in out[panel.msg]
    assert "Noise it first" in next(editor.teach.play(None))[panel.msg]
    assert "Noise it first" in editor.teach.denoise(None)[panel.msg]


def test_the_pages_run_streams_into_the_row_then_shows_the_rest_once(editor):
    page = editor.page
    streamed = {page.row, page.msg, page.state, page.history, page.ar_row, page.fresh}
    outputs = list(editor.generate_on_page(TEMPLATE, {"cells": cells_from_text(TEMPLATE)}, length=0, steps=6,
                                           samples=2, seed=4))
    assert all(set(o) <= streamed for o in outputs) and outputs[-1][page.fresh] is True
    run = outputs[-1][page.state]
    assert 'data-step="5"' in outputs[-1][page.row]["html"] and "best 2 of 2" in outputs[-1][page.msg]
    shown = editor.show_fresh(run, True)
    assert len(shown[page.results]) == 2 and shown[page.fresh] is False
    assert page.row not in shown and page.msg not in shown, "the user may already be editing again"
    assert editor.show_fresh(run, False) == {page.fresh: False}  # a stopped or failed run shows nothing
    cells = unlocked(SENTENCE, [4])
    varied = list(editor.vary_on_page(text_from_cells(cells), {"cells": cells}, 0.3, steps=10, samples=1))
    assert all(set(o) <= streamed for o in varied) and varied[-1][page.fresh] is True
