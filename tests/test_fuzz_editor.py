"""Property-based fuzzing (Hypothesis) of what the page and the API send: the token row's cell actions
and the /write inputs, with random text and random JSON values for every argument (numbers with NaN,
±inf, huge ints and bools, lists, nested objects, huge strings).

The property: a call returns a result or a refusal whose message is one line, non-empty and short;
only an EngineError is ever raised where raising is the contract; and every call ends within the
deadline, so a huge or absurd input is refused quickly. Reproducible: derandomized, no example database.
"""

from __future__ import annotations

from datetime import timedelta
from html import unescape

import gradio as gr
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from editor.cells import apply_action, cells_from_text, text_from_cells
from editor.form import whole_number
from editor.layout import build
from editor.limits import MESSAGE_CHARS, Limits
from engine.controls import KINDS, STEERED
from engine.controls.guidance import READS
from engine.errors import CellActionError, EngineError
from engine.pipeline import Pipeline

FUZZ = dict(database=None, derandomize=True, deadline=timedelta(seconds=10),  # room for a busy CI machine
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
LIMITS = Limits.for_window(16)  # the tiny test model's window: 14 words, 512 characters

HUGE_TEXT = st.sampled_from([("x", 10**6), ("_ ", 100_000), ("The pub is cheap . ", 52_600), ("\n", 10**5),
                             ("pub", 200), ("é", 600)]).map(lambda repeat: repeat[0] * repeat[1])
HUGE_INT = st.sampled_from([(2, 53, 0), (2, 53, 1), (2, 63, -1), (2, 63, 0), (2, 64, 0), (10, 30, 0), (10, 100, 0),
                            (-10, 101, 0), (10, 4000, 0)]).map(lambda p: p[0] ** p[1] + p[2])  # 10**4000: 4001 digits
FLOAT = st.floats(allow_nan=True, allow_infinity=True)
VOCAB = ["The", "Eagle", "Mill", "is", "a", "pub", "near", "the", "river", ".", "serves", "Italian", "food", "_",
         "...", "coffe", "PROPN", "NOUN", "0", "2", "NP", "food=Italian", "eatType=pub"]
WORDS = st.lists(st.sampled_from(VOCAB), max_size=20).map(" ".join)
TEXT = st.one_of(WORDS, st.text(max_size=40), HUGE_TEXT)
SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-5, 40), HUGE_INT, FLOAT, TEXT)
JSON = st.recursive(SCALAR, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                                     max_size=4), max_leaves=12)
NUMBERISH = st.one_of(st.none(), st.booleans(), st.integers(-2, 6), HUGE_INT, FLOAT, st.floats(0, 5),
                      st.sampled_from(["3", " 2 ", "2.0", "1e3", "nan", "inf", "-1", "9" * 80, "", "seven"]), JSON)


def assert_message(text: object) -> None:
    assert isinstance(text, str) and text.strip(), repr(text)
    assert "\n" not in text and "\r" not in text and len(text) <= MESSAGE_CHARS, repr(text)


def message_text(box: str) -> str:
    """The text of the page's message box."""
    return unescape(box.split(">", 1)[1].rsplit("<", 1)[0]) if box else ""


# --- cell actions ------------------------------------------------------------------------------
CELL = st.fixed_dictionaries({"word": st.one_of(st.sampled_from(VOCAB + ["", "..."]), st.text(max_size=12)),
                              "locked": st.booleans()})
CELLS = st.lists(CELL, max_size=LIMITS.words)
KIND = st.one_of(st.sampled_from(["toggle", "edit", "insert", "delete", "edit_mode"]), JSON)
ACTION = st.one_of(
    st.fixed_dictionaries({"kind": KIND, "index": st.one_of(st.integers(-3, 20), HUGE_INT, JSON)},
                          optional={"word": st.one_of(TEXT, JSON)}),
    JSON)


@pytest.mark.slow
@settings(max_examples=100, **FUZZ)
@given(cells=CELLS, action=ACTION)
def test_cell_actions_return_a_row_or_refuse_in_one_line(cells, action):
    before = [dict(c) for c in cells]
    try:
        after = apply_action(cells, action, LIMITS)
    except CellActionError as exc:
        assert_message(str(exc))  # the message as raised, before the page shortens anything
    else:
        assert len(after) <= LIMITS.words
        assert all(set(c) == {"word", "locked"} and isinstance(c["word"], str) and isinstance(c["locked"], bool)
                   for c in after)
        assert isinstance(text_from_cells(after), str)
    assert cells == before, "actions never change their input"


@settings(max_examples=60, **FUZZ)
@given(text=TEXT)
def test_text_becomes_cells_or_is_refused_in_one_line(text):
    try:
        cells = cells_from_text(text, LIMITS)
    except EngineError as exc:
        assert_message(str(exc))
    else:
        assert len(cells) <= LIMITS.words


@pytest.fixture(scope="module")
def guided_editor(control_model):
    """The editor on the tiny model with a tiny classifier of every kind (guidance inputs parse through)."""
    ed = build(Pipeline.from_pretrained(control_model, precision="fp32"))[1]
    assert ed.limits == LIMITS
    ed.write("The Mill is a _ .", steps=2, samples=1, pos="PROPN", tree="The pub .")  # load spaCy and warm up
    yield ed
    ed.close()


ROW = st.one_of(st.fixed_dictionaries({"cells": CELLS}, optional={"action": ACTION, "html": st.text(max_size=5)}),
                st.fixed_dictionaries({"cells": JSON}), JSON)


@settings(max_examples=60, **FUZZ)
@given(text=st.one_of(TEXT, JSON), row=ROW)
def test_editing_handlers_never_raise(guided_editor, text, row):
    page = guided_editor.page
    for out in (guided_editor.set_text(text, row), guided_editor.cell_action(row)):
        assert set(out) <= {page.row, page.text, page.msg}
        if out.get(page.msg):
            assert_message(message_text(out[page.msg]))
        if page.row in out and out[page.row] != gr.skip():  # skip: the row already shows these cells
            assert len(out[page.row]["cells"]) <= LIMITS.words


# --- /write --------------------------------------------------------------------------------------
TEMPLATES = ["The Mill is a _ .", "_ _ _", "The Eagle is a _ near _ _ .", "Blue Spice serves ... food .",
             "The Eagle is a _ coffe shop .", "_", ""]


def kind_values(name: str) -> st.SearchStrategy:
    """A kind's input that parses: nothing, or its placeholder (which may conflict with the rest)."""
    kind = KINDS[name]
    values = st.sampled_from(["", "", kind.placeholder])
    return st.one_of(st.none(), st.lists(values, max_size=2)) if kind.many else values


# A request that may well run (small: a few steps and samples), some of whose arguments are then
# replaced by anything at all: most examples run or are refused by the engine, the rest by the form.
GOOD = st.fixed_dictionaries({
    "text": st.one_of(st.none(), st.sampled_from(TEMPLATES)), "length": st.sampled_from([None, 0, 3, "2"]),
    "steps": st.integers(1, 4), "samples": st.integers(1, 3), "seed": st.integers(0, 2**63 - 1),
    **{name: kind_values(name) for name in STEERED},
    "strength": st.floats(0, 1), "fluency": st.sampled_from([None, 0.01, "0.1"]),
    "weights": st.one_of(st.none(), st.dictionaries(st.sampled_from(STEERED), st.floats(0, 5), max_size=2)),
    "reads": st.sampled_from(READS)})
ARGUMENTS = ("text", "length", "steps", "samples", "seed", *STEERED, "strength", "fluency", "weights", "reads")
ANYTHING = st.one_of(NUMBERISH, TEXT, st.lists(TEXT, max_size=3), JSON)


def small_run(values: dict) -> bool:
    """Whether a request that passes the checks samples cheaply (at most 10 steps, 4 samples): the
    default of 50 steps is left to tests/test_editor.py."""
    def read(name: str, default: int) -> int:
        try:
            return whole_number(values.get(name), name, default)
        except EngineError:
            return 0  # refused before sampling
    return read("steps", 50) <= 10 and read("samples", 4) <= 4


@settings(max_examples=60, **FUZZ)
@given(good=GOOD, bad=st.dictionaries(st.sampled_from(ARGUMENTS), ANYTHING, max_size=2))
def test_write_returns_results_or_a_one_line_error(guided_editor, good, bad):
    values = good | bad
    assume(small_run(values))
    out = guided_editor.write(**values)
    assert isinstance(out, dict)
    if "error" in out:
        event("refused")
        assert set(out) == {"error"}
        assert_message(out["error"])
    else:
        event("ran")
        assert set(out) == {"results", "seconds", "denoiser_passes", "classifier_passes", "rows"}
        assert 1 <= len(out["results"]) <= 4 and all(isinstance(r["text"], str) for r in out["results"])


@pytest.mark.slow
@settings(max_examples=20, **FUZZ)
@given(good=GOOD, bad=st.dictionaries(st.sampled_from(ARGUMENTS), ANYTHING, max_size=2), row=ROW)
def test_generate_streams_or_shows_a_one_line_error(guided_editor, good, bad, row):
    values = good | bad
    assume(small_run(values))
    page, text = guided_editor.page, values.pop("text")
    outputs = list(guided_editor.generate(text, row, **values))
    assert outputs and all(isinstance(o, dict) for o in outputs)
    last = outputs[-1]
    if page.state in last:
        event("ran")
        assert 1 <= len(last[page.state]["candidates"]) <= 4
    else:
        event("refused")
        assert len(outputs) == 1 and set(last) <= {page.row, page.msg}
        assert_message(message_text(last[page.msg]))
