"""Raw values from the page or the API, turned into one engine `Request`.

The page and the API send plain values: numbers that may arrive as floats or strings, text per
control kind, a weight per kind. This module only reads them: a value of the wrong type (a bool
or a list for a number, a number or a list for a kind that takes text, NaN or ±inf) is a
ConfigError naming its field, and a missing value (None) means the engine's default. Whole
numbers are read exactly: ints and strings of digits as they are, floats only where they are
exact (at most 2^53). Texts too long for the model are refused by their size before anything
parses them (see editor.limits). Every range (steps against the schedule, samples, lengths, the
seed, guidance strength, weights) is checked by the engine when the Request and its options are
built.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from editor.limits import DEFAULT_LIMITS, Limits, shown
from engine.controls import KINDS, STEERED
from engine.controls.guidance import READS, GuidanceOptions
from engine.controls.targets import targets_from_fields
from engine.diffusion.sampler import SampleOptions
from engine.errors import ConfigError, TargetError, TemplateError
from engine.request import Request

DEFAULT_STEPS = SampleOptions().steps
DEFAULT_SAMPLES = Request().samples
DEFAULT_SEED = Request().seed
DEFAULT_LENGTH = 0  # 0: the template (or the model) decides the length
DEFAULT_VARY_STRENGTH = 0.6  # changes about a fifth of the words (docs/vary.md)
SETTINGS = ("length", "steps", "samples", "seed")  # a generation's settings, in the API's order
WEIGHT_PREFIX = "weight_"  # the page sends each kind's weight as weight_<kind>
MEASURED = "measured"  # the page's switch: each control's measured guidance setting, not the sliders'
MAX_DIGITS = 30  # the longest whole number read (a seed takes at most 19 digits; the engine checks each range)
MAX_NUMBER_CHARS = 64  # the longest string read as a number
EXACT_FLOAT = 2**53  # above this a float cannot hold every whole number: 2^53 + 1 would read as 2^53
DIGITS = re.compile(r"[+-]?[0-9]+")


def whole_number(value: object, name: str, default: int) -> int:
    """`value` as an int, read exactly: an int or a string of digits as it is; a float, or a
    string holding one, only when it is a whole number of at most 2^53 (above that a float has
    lost digits). None: `default`. A bool is not a number."""
    if value is None:
        return default
    if isinstance(value, str) and len(value) <= MAX_NUMBER_CHARS:
        text = value.strip()
        if DIGITS.fullmatch(text):
            value = int(text)
        else:
            try:
                value = float(text)
            except ValueError:
                raise ConfigError(f"{name} must be a whole number, got {shown(value)}") from None
    if isinstance(value, int) and not isinstance(value, bool):
        if abs(value) >= 10**MAX_DIGITS:
            raise ConfigError(f"{name} must be a whole number of at most {MAX_DIGITS} digits, got {shown(value)}")
        return value
    if not isinstance(value, float) or not math.isfinite(value) or not value.is_integer():
        raise ConfigError(f"{name} must be a whole number, got {shown(value)}")
    if abs(value) > EXACT_FLOAT:
        raise ConfigError(f"{name} must be a whole number written with digits: {value:g} is a float, which "
                          f"holds whole numbers exactly only up to 2^53")
    return int(value)


def number(value: object, name: str, default: float | None) -> float | None:
    """`value` as a finite float (an int, a float or a string holding one); None: `default`.
    A bool, NaN and ±inf are not numbers here."""
    if value is None:
        return default
    if isinstance(value, str) and len(value) <= MAX_NUMBER_CHARS:
        try:
            value = float(value)
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {shown(value)}") from None
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            value = float(value)
        except OverflowError:
            raise ConfigError(f"{name} must be a finite number, got {shown(value)}") from None
    if not isinstance(value, float):
        raise ConfigError(f"{name} must be a number, got {shown(value)}")
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {shown(value)}")
    return value


def kind_value(name: str, value: object, limits: Limits = DEFAULT_LIMITS) -> str | list[str] | None:
    """One steered kind's input, checked before anything parses it: text (a list of texts for a
    kind that takes several, where one text is a list of one), no longer than the model can use."""
    kind = KINDS[name]
    if value is None:
        return None
    if kind.many and isinstance(value, list | tuple):
        if not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{name} must be a list of texts like {kind.placeholder!r}, got {shown(value)}")
        limits.check_texts(value, name, TargetError)
        return list(value)
    if not isinstance(value, str):
        example = f"a list of texts like [{kind.placeholder!r}]" if kind.many else f"text like {kind.placeholder!r}"
        raise ConfigError(f"{name} must be {example}, got {shown(value)}")
    limits.check_text(value, name, TargetError, words=False)  # the engine counts the words it implies
    return value


def template_text(value: object, limits: Limits = DEFAULT_LIMITS) -> str | None:
    """The template as the engine reads it: None for no text (free writing), else text no longer
    than the model writes (refused by size before it is split)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(f"the text must be a template (text with _ blanks), got {shown(value)}")
    limits.check_text(value, "the text", TemplateError)
    return value if value.strip() else None


@dataclass(frozen=True)
class GuidanceForm:
    """What the guidance panel (or the API) asks of the samples, as sent: a value per steered
    kind (text, or a list for a kind that takes several; empty asks nothing), how hard to
    steer, a weight per kind, and what the classifiers read. `measured` (the page's "measured
    setting per control", on by default) leaves strength, fluency and reads to each control's
    measured default, whatever the sliders say; off (or not sent, as by /write), the values sent
    are used (None still takes the default)."""

    fields: Mapping[str, Any] = field(default_factory=dict)
    strength: Any = None
    fluency: Any = None
    weights: Mapping[str, Any] = field(default_factory=dict)
    reads: Any = None
    limits: Limits = DEFAULT_LIMITS
    measured: Any = False

    @classmethod
    def from_values(cls, values: Mapping[str, Any], limits: Limits = DEFAULT_LIMITS) -> GuidanceForm:
        """From keyword values as the page or the API names them: one per steered kind, `measured`,
        `strength`, `fluency`, `reads`, and the weights either as `weight_<kind>` (the page's
        sliders) or as one `weights` object ({"pos": 1.0, ...}, the API's)."""
        values = dict(values)
        weights = values.pop("weights", None)
        if weights is None:
            weights = {}
        elif not isinstance(weights, Mapping):
            raise ConfigError(f'weights must be an object like {{"{STEERED[0]}": 1.0}}, got {shown(weights)}')
        weights = {**weights, **{key.removeprefix(WEIGHT_PREFIX): values.pop(key)
                                 for key in list(values) if key.startswith(WEIGHT_PREFIX)}}
        options = {name: values.pop(name, None) for name in ("strength", "fluency", "reads")}
        measured = values.pop(MEASURED, None)
        fields = {name: values.pop(name) for name in STEERED if name in values}
        if values:
            raise ConfigError(f"unknown input {', '.join(map(shown, list(values)[:3]))}: the guidance inputs are "
                              f"{', '.join(STEERED)}, {MEASURED}, strength, fluency, weights and reads")
        unknown = [kind for kind in weights if kind not in STEERED]
        if unknown:
            raise ConfigError(f"unknown control {', '.join(map(shown, unknown[:3]))} in the weights: the steered "
                              f"controls are {', '.join(STEERED)}")
        return cls(fields, weights=weights, **options, limits=limits,
                   measured=False if measured is None else measured)

    def targets(self) -> tuple:
        """The targets asked for: each kind's value checked for its type and size here, then read
        and checked by engine.controls.targets."""
        return targets_from_fields({name: kind_value(name, value, self.limits) for name, value in self.fields.items()})

    def options(self) -> GuidanceOptions:
        """The options asked for; a value left out (None) takes the controls' measured default, and
        so does every one of them with `measured` on (the values sent are still checked: they are
        the sliders the page would restore)."""
        if not isinstance(self.measured, bool):
            raise ConfigError(f"{MEASURED} must be true or false, got {shown(self.measured)}")
        reads = self.reads
        if reads is not None and (not isinstance(reads, str) or len(reads) > max(map(len, READS))):
            raise ConfigError(f"guidance reads one of {', '.join(READS)}, got {shown(reads)}")
        sent = GuidanceOptions(reads=reads, strength=number(self.strength, "guidance strength", None),
                               fluency=number(self.fluency, "fluency", None))
        return GuidanceOptions() if self.measured else sent

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
    limits: Limits = DEFAULT_LIMITS
    vary: Any = None  # a sentence to reword (the template, if any, locks words of it)
    vary_strength: Any = None  # how far it is noised before the run: 0 to 1 (1: a new wording)
    every_step: Any = None  # True: run every step; else stop once the words settle (SampleOptions.settle_steps)

    @classmethod
    def from_values(cls, template: str | None, values: Mapping[str, Any], record_latents: bool = True,
                    limits: Limits = DEFAULT_LIMITS) -> Form:
        """From keyword values as the page or the API names them: `length`, `steps`, `samples`,
        `seed`, `vary`, `vary_strength` and `every_step`, and the guidance inputs (see
        GuidanceForm.from_values); a missing one is None."""
        values = dict(values)
        settings = {name: values.pop(name, None) for name in (*SETTINGS, "vary", "vary_strength", "every_step")}
        return cls(template, **settings, guidance=GuidanceForm.from_values(values, limits),
                   record_latents=record_latents, limits=limits)

    def request(self) -> Request:
        """The Request for this form; a ConfigError (or the engine's error) names the bad value."""
        template = template_text(self.template, self.limits)
        length = whole_number(self.length, "length", DEFAULT_LENGTH) or None
        vary = None if self.vary is None else template_text(self.vary, self.limits)
        if self.vary is not None and vary is None:
            raise ConfigError("write the sentence to vary")
        strength = number(self.vary_strength, "vary strength", DEFAULT_VARY_STRENGTH if vary else 1.0)
        if self.every_step is not None and not isinstance(self.every_step, bool):
            raise ConfigError(f"every step must be true or false, got {shown(self.every_step)}")
        sampling = SampleOptions(steps=whole_number(self.steps, "steps", DEFAULT_STEPS),
                                 record_latents=self.record_latents, vary_strength=strength,
                                 **({"settle_steps": 0} if self.every_step else {}))
        return Request.one(template, length, self.guidance.targets(), vary=vary,
                           samples=whole_number(self.samples, "samples", DEFAULT_SAMPLES),
                           seed=whole_number(self.seed, "seed", DEFAULT_SEED), sampling=sampling,
                           guidance=self.guidance.options(), weights=self.guidance.weight_values(),
                           candidates=1 if self.record_latents else None)
        # the page streams and plots every row it draws, so it draws one per sample (a guided run as
        # quick as before); the API takes each control's default number of candidates


def parameter(name: str, annotation: Any, default: Any = inspect.Parameter.empty) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default, annotation=annotation)


def kind_parameter(name: str) -> inspect.Parameter:
    """The API argument of one steered kind: text, or a list of values for a kind that takes several."""
    return parameter(name, list[str] | None, None) if KINDS[name].many else parameter(name, str, "")


def write_parameters() -> list[inspect.Parameter]:
    """The /write API's arguments, in order, with their defaults: the template, the sampling
    settings, one argument per steered kind (from the registry), how hard to steer (None: the
    controls' measured defaults), then a sentence to vary and how strongly (None: no variation;
    the template then locks words of it)."""
    return [parameter("text", str), parameter("length", int, DEFAULT_LENGTH), parameter("steps", int, DEFAULT_STEPS),
            parameter("samples", int, DEFAULT_SAMPLES), parameter("seed", int, DEFAULT_SEED),
            *map(kind_parameter, STEERED),
            parameter("strength", float | None, None), parameter("fluency", float | None, None),
            parameter("weights", dict[str, float] | None, None), parameter("reads", str | None, None),
            parameter("vary", str | None, None), parameter("vary_strength", float | None, None),
            parameter("every_step", bool, False)]
