"""Property-based fuzzing of the engine's input readers: whatever comes in, the answer is a
result or an EngineError with a one-line message, quickly."""

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.controls.targets import FILE_KINDS, parse_target_line, read_targets, targets_from_fields
from engine.diffusion.sampler import SampleOptions
from engine.errors import EngineError
from engine.pipeline import Pipeline
from engine.request import Prompt, Request
from engine.text.template import parse_template

FUZZ = settings(max_examples=60, deadline=5000, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
WORDS = ["The", "Eagle", "pub", "_", "...", ".", "food", "Italian", "near", "NOUN", "PROPN", ":", "\n", "START", "END"]
texts = st.one_of(st.text(max_size=300), st.lists(st.sampled_from(WORDS), max_size=80).map(" ".join),
                  st.text(alphabet="_. \n\t", max_size=200), st.just("_ " * 5000))
numbers = st.one_of(st.integers(min_value=-(2**70), max_value=2**70), st.floats(allow_nan=True, allow_infinity=True))
json_values = st.recursive(st.none() | st.booleans() | numbers | st.text(max_size=40),
                           lambda inner: st.lists(inner, max_size=6) | st.dictionaries(
                               st.sampled_from(["pos", "words_", "spans", "attr", "tree", "length", "x"]) | st.text(
                                   max_size=8), inner, max_size=5), max_leaves=25)


def one_line(exc: EngineError) -> None:
    message = str(exc)
    assert message and "\n" not in message and len(message) < 2000, message


@pytest.fixture(scope="module")
def pipe(control_model):
    return Pipeline.from_pretrained(control_model, precision="fp32")


@FUZZ
@given(text=texts)
def test_template_parser(pipe, text):
    try:
        template = parse_template(text, pipe.tokenizer, pipe.seq_len)
    except EngineError as exc:
        one_line(exc)
    else:
        assert len(template.ids) == pipe.seq_len and not all(template.locked)


@FUZZ
@given(template=st.one_of(st.none(), texts), length=st.one_of(st.none(), st.integers(-5, 100)),
       samples=st.integers(1, 32), candidates=st.integers(1, 12), steps=st.integers(-3, 3000))
def test_planning_a_request(pipe, *, template, length, samples, candidates, steps):
    try:
        request = Request(prompts=(Prompt(template, length),), samples=samples, candidates=candidates,
                          sampling=SampleOptions(steps=steps))
        plan = pipe.plan(request)
    except EngineError as exc:
        one_line(exc)
    else:
        assert 1 <= len(plan.templates) <= 256


@FUZZ
@given(kind=st.sampled_from(FILE_KINDS), value=json_values, as_text=st.booleans())
def test_target_lines(pipe, kind, value, as_text):
    line = str(value) if as_text else json.dumps(value)
    try:
        parsed = parse_target_line(kind, line)
    except EngineError as exc:
        one_line(exc)
    else:
        assert parsed.targets or kind == "compose"


@FUZZ
@given(kind=st.sampled_from(FILE_KINDS), content=st.one_of(st.binary(max_size=3000),
                                                          st.lists(json_values.map(json.dumps), max_size=5).map(
                                                              lambda lines: "\n".join(lines).encode())))
def test_target_files(kind, content):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "targets"
        path.write_bytes(content)
        try:
            lines = read_targets(kind, path)
        except EngineError as exc:
            one_line(exc)
        else:
            assert lines and all(line.line >= 1 for line in lines)


@FUZZ
@given(fields=st.dictionaries(st.sampled_from(["pos", "tree", "spans", "semantic", "length", "other"]),
                              json_values, max_size=4))
def test_target_fields(pipe, fields):
    try:
        targets = targets_from_fields(fields)
        if targets:
            pipe.plan(Request.one(targets=targets, samples=1))
    except EngineError as exc:
        one_line(exc)
