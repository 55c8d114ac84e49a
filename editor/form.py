"""Raw values from the page or the API, turned into one engine `Request`.

The page and the API send plain values: numbers that may arrive as floats or strings, text per
control kind, a weight per kind. This module only reads them: a value of the wrong type (or NaN)
is a ConfigError naming its field, and a missing value (None) means the engine's default. Every
range (steps against the schedule, samples, lengths, guidance strength, weights) is checked by
the engine when the Request and its options are built.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.controls import KINDS, STEERED
from engine.controls.guidance import DEFAULT_GUIDANCE, GuidanceOptions
from engine.controls.targets import targets_from_fields
from engine.diffusion.sampler import SampleOptions
from engine.errors import ConfigError
from engine.request import Request

DEFAULT_STEPS = SampleOptions().steps
DEFAULT_SAMPLES = Request().samples
DEFAULT_SEED = Request().seed
DEFAULT_LENGTH = 0  # 0: the template (or the model) decides the length
SETTINGS = ("length", "steps", "samples", "seed")  # a generation's settings, in the API's order
WEIGHT_PREFIX = "weight_"  # the page sends each kind's weight as weight_<kind>


def whole_number(value: object, name: str, default: int) -> int:
    """`value` as an int (a float or a string that holds a whole number is fine); None: `default`."""
    if value is None:
        return default
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"{name} must be a whole number, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(number) or number != int(number):
        raise ConfigError(f"{name} must be a whole number, got {value!r}")
    return int(number)


def number(value: object, name: str, default: float) -> float:
    """`value` as a finite float; None: `default`."""
    if value is None:
        return default
    try:
        result = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if isinstance(value, bool) or math.isnan(result):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    return result


@dataclass(frozen=True)
class GuidanceForm:
    """What the guidance panel (or the API) asks of the samples, as sent: a value per steered
    kind (text, or a list for a kind that takes several; empty asks nothing), how hard to
    steer, a weight per kind, and what the classifiers read."""

    fields: Mapping[str, Any] = field(default_factory=dict)
    strength: Any = None
    fluency: Any = None
    weights: Mapping[str, Any] = field(default_factory=dict)
    reads: Any = None

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> GuidanceForm:
        """From keyword values as the page or the API names them: one per steered kind, `strength`,
        `fluency`, `reads`, and the weights either as `weight_<kind>` (the page's sliders) or as
        one `weights` object ({"pos": 1.0, ...}, the API's)."""
        values = dict(values)
        weights = values.pop("weights", None)
        if weights is None:
            weights = {}
        elif not isinstance(weights, Mapping):
            raise ConfigError(f'weights must be an object like {{"{STEERED[0]}": 1.0}}, got {weights!r}')
        weights = {**weights, **{key.removeprefix(WEIGHT_PREFIX): values.pop(key)
                                 for key in list(values) if key.startswith(WEIGHT_PREFIX)}}
        options = {name: values.pop(name, None) for name in ("strength", "fluency", "reads")}
        fields = {name: values.pop(name) for name in STEERED if name in values}
        if values:
            raise ConfigError(f"unknown input {', '.join(map(repr, values))}: the guidance inputs are "
                              f"{', '.join(STEERED)}, strength, fluency, weights and reads")
        unknown = [kind for kind in weights if kind not in STEERED]
        if unknown:
            raise ConfigError(f"unknown control {', '.join(map(repr, unknown))} in the weights: the steered "
                              f"controls are {', '.join(STEERED)}")
        return cls(fields, weights=weights, **options)

    def targets(self) -> tuple:
        """The targets asked for (engine.controls.targets reads and checks each kind's value)."""
        return targets_from_fields(self.fields)

    def options(self) -> GuidanceOptions:
        reads = DEFAULT_GUIDANCE.reads if self.reads is None else self.reads
        return dataclasses.replace(
            DEFAULT_GUIDANCE, reads=reads,
            strength=number(self.strength, "guidance strength", DEFAULT_GUIDANCE.strength),
            fluency=number(self.fluency, "fluency", DEFAULT_GUIDANCE.fluency))

    def weight_values(self) -> dict[str, float]:
        return {kind: number(value, f"{kind} weight", KINDS[kind].weight) for kind, value in self.weights.items()}


@dataclass(frozen=True)
class Form:
    """One generation as the page or the API asks for it, before any value is read."""

    template: str | None
    length: Any = None
    steps: Any = None
    samples: Any = None
    seed: Any = None
    guidance: GuidanceForm = field(default_factory=GuidanceForm)
    record_latents: bool = True  # the page plots the latents; the API does not need them

    @classmethod
    def from_values(cls, template: str | None, values: Mapping[str, Any], record_latents: bool = True) -> Form:
        """From keyword values as the page or the API names them: `length`, `steps`, `samples`,
        `seed`, and the guidance inputs (see GuidanceForm.from_values); a missing one is None."""
        values = dict(values)
        settings = {name: values.pop(name, None) for name in SETTINGS}
        return cls(template, **settings, guidance=GuidanceForm.from_values(values), record_latents=record_latents)

    def request(self) -> Request:
        """The Request for this form; a ConfigError (or the engine's error) names the bad value."""
        template = self.template if isinstance(self.template, str) and self.template.strip() else None
        length = whole_number(self.length, "length", DEFAULT_LENGTH) or None
        sampling = SampleOptions(steps=whole_number(self.steps, "steps", DEFAULT_STEPS),
                                 record_latents=self.record_latents)
        return Request.one(template, length, self.guidance.targets(),
                           samples=whole_number(self.samples, "samples", DEFAULT_SAMPLES),
                           seed=whole_number(self.seed, "seed", DEFAULT_SEED), sampling=sampling,
                           guidance=self.guidance.options(), weights=self.guidance.weight_values())


def parameter(name: str, annotation: Any, default: Any = inspect.Parameter.empty) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default, annotation=annotation)


def kind_parameter(name: str) -> inspect.Parameter:
    """The API argument of one steered kind: text, or a list of values for a kind that takes several."""
    return parameter(name, list[str] | None, None) if KINDS[name].many else parameter(name, str, "")


def write_parameters() -> list[inspect.Parameter]:
    """The /write API's arguments, in order, with their defaults: the template, the sampling
    settings, one argument per steered kind (from the registry), then how hard to steer."""
    return [parameter("text", str), parameter("length", int, DEFAULT_LENGTH), parameter("steps", int, DEFAULT_STEPS),
            parameter("samples", int, DEFAULT_SAMPLES), parameter("seed", int, DEFAULT_SEED),
            *map(kind_parameter, STEERED),
            parameter("strength", float, DEFAULT_GUIDANCE.strength),
            parameter("fluency", float, DEFAULT_GUIDANCE.fluency),
            parameter("weights", dict[str, float] | None, None), parameter("reads", str, DEFAULT_GUIDANCE.reads)]
