"""The one request schema (engine.options): an option declared once is checked, has its flag, its
page widget and its API argument; the step rule, shown on the page and the API by its declaration
alone, is the example."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from editor.form import READ, WRITE_ORDER, Form, read, shown_settings, write_parameters
from engine.cli import add_options, options_from, parser_for
from engine.diffusion.sampler import SampleOptions
from engine.diffusion.steps import STEP_RULES
from engine.errors import ConfigError
from engine.options import Widget, check, option, range_text, settings
from engine.request import SETTINGS, Request


@dataclass
class Knobs:
    depth: int = option(3, "how deep", low=1, high=9)
    rate: float | None = option(None, "how fast", low=0, above=True, high=1)
    mode: str = option("a", "which way", choices=("a", "b"), api=True, page=Widget("radio", "mode"))
    on: bool = option(False, "whether", label="switched on")

    def __post_init__(self) -> None:
        check(self)


@pytest.mark.parametrize("values, message", [
    ({"depth": 0}, "depth must be a whole number from 1 to 9, got 0"),
    ({"depth": 2.0}, "depth must be a whole number from 1 to 9, got 2.0"),
    ({"depth": True}, "depth must be a whole number"),
    ({"rate": 0}, "rate must be a number above 0 and at most 1, got 0"),
    ({"rate": float("nan")}, "rate must be a number above 0"),
    ({"mode": "c"}, "mode must be one of a, b, got 'c'"),
    ({"on": 1}, "switched on must be true or false, got 1"),
])
def test_an_option_outside_its_declared_range_is_refused_by_name(values, message):
    with pytest.raises(ConfigError, match=message):
        Knobs(**values)
    assert Knobs(rate=None) == Knobs() and Knobs(rate=1, depth=9).depth == 9


def test_flags_come_from_the_declarations_and_read_back_checked():
    parser = parser_for("knobs", None)
    add_options(parser, Knobs)
    knobs = options_from(Knobs, parser.parse_args(["--depth", "5", "--mode", "b", "--on"]))
    assert knobs == Knobs(depth=5, rate=None, mode="b", on=True)
    assert "how deep" in parser.format_help()
    with pytest.raises(ConfigError, match="depth must be a whole number from 1 to 9"):
        options_from(Knobs, parser.parse_args(["--depth", "10"]))
    assert [s.name for s in settings(Knobs)] == ["depth", "rate", "mode", "on"]
    assert range_text(next(s for s in settings(Knobs) if s.name == "rate")) == "a number above 0 and at most 1"


def test_every_option_of_a_request_is_declared_once_with_a_surface():
    names = [s.name for s in SETTINGS]
    assert len(names) == len(set(names))  # one flat name space: a flag, a page setting, an API argument each
    assert all(s.spec.help for s in SETTINGS)
    api = [s.name for s in shown_settings("api")]
    assert api[:len(WRITE_ORDER) - 1] == [n for n in WRITE_ORDER if n in api]  # the published order first


def test_the_step_rule_reaches_the_api_and_the_page_from_its_declaration():
    setting = READ["step_rule"]
    assert setting.path == ("sampling", "step_rule") and setting.spec.choices == tuple(STEP_RULES)
    assert write_parameters()[-1].name == "step_rule" and write_parameters()[-1].default == "ancestral"
    assert "step_rule" in [s.name for s in shown_settings("page")]
    request = Form.from_values("The Eagle is a _ .", {"step_rule": "dpm++2m", "steps": 10}).request()
    assert request.sampling == SampleOptions(steps=10, step_rule="dpm++2m")
    assert read(setting, "ddim") == "ddim"
    for bad, message in [("heun", "step rule must be one of ancestral, ddim, dpm\\+\\+2m, got 'heun'"),
                         (3, "step rule must be one of"), ("x" * 1000, "step rule must be one of")]:
        with pytest.raises(ConfigError, match=message):
            Form.from_values(None, {"step_rule": bad}).request()


def test_the_page_and_the_api_write_with_the_step_rule_asked_for(editor):
    out = editor.write("The Eagle is a _ _ near _ _ .", steps=10, samples=2, step_rule="dpm++2m")
    assert "error" not in out and len(out["results"]) == 2
    assert "step rule must be one of" in editor.write("_ _", step_rule="heun")["error"]
    widget = editor.page.settings["step_rule"]
    assert widget.elem_id == "step-rule" and list(c[1] for c in widget.choices) == list(STEP_RULES)
    assert widget.value == "ancestral"


def test_a_request_built_from_settings_takes_defaults_for_the_rest():
    request = Request.from_settings({("prompt", "length"): 5, ("sampling", "steps"): 7, ("seed",): 3})
    assert (request.prompts[0].length, request.sampling.steps, request.seed) == (5, 7, 3)
    assert request.samples == Request().samples and request.sampling.step_rule == "ancestral"


def test_each_instance_has_its_own_copy_of_a_mutable_default():
    first, second = Request(), Request()
    assert first.sampling is not second.sampling and first.weights is not second.weights
    first.sampling.record_latents = False  # as engine.generate sets it on the request it built
    first.weights["pos"] = 2.0
    assert second.sampling.record_latents and second.weights == {} and Request().sampling == SampleOptions()
