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
from engine.controls.targets import targets_from_fields
from engine.errors import ConfigError, TargetError, TemplateError
from engine.options import NOT_SET, Setting, range_text
from engine.request import SETTINGS, Request

KINDS_HERE = "<kinds>"  # in WRITE_ORDER: one argument per steered kind of the registry
# The /write API's positional order (and the page's settings'): kept as it was published, so that
# positional calls keep working; an option added to the request's schema goes after these.
WRITE_ORDER = ("length", "steps", "samples", "seed", KINDS_HERE, "strength", "fluency", "weights", "reads", "vary",
               "vary_strength", "every_step")
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


def read(setting: Setting, value: object, limits: Limits = DEFAULT_LIMITS) -> Any:
    """One option's raw value from the page or the API, read by the option's type: a whole number
    (`whole_number`), a number (`number`), true or false, a choice or a sentence. None, and the
    option's `unset` value, leave it to the engine. Its range is the engine's to check."""
    spec, label = setting.spec, setting.label
    if value is None:
        return None
    if setting.kind in (int, float):
        value = whole_number(value, label, None) if setting.kind is int else number(value, label, None)
        return None if spec.unset is not NOT_SET and value == spec.unset else value
    if setting.kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{label} must be true or false, got {shown(value)}")
        return value
    if spec.choices is not None:
        if not isinstance(value, str) or len(value) > max(len(str(c)) for c in spec.choices):
            raise ConfigError(f"{label} must be {range_text(setting)}, got {shown(value)}")
        return value
    text = template_text(value, limits)
    if text is None:
        raise ConfigError(f"write the {label}")
    return text


def shown_settings(surface: str) -> list[Setting]:
    """The request's options that the page (`page`) or the API (`api`) shows, in the API's order:
    WRITE_ORDER first, then any other, as declared."""
    shown = [s for s in SETTINGS if (s.spec.page if surface == "page" else s.spec.api)]
    return sorted(shown, key=lambda s: WRITE_ORDER.index(s.name) if s.name in WRITE_ORDER else len(WRITE_ORDER))


READ = {s.name: s for s in SETTINGS if s.spec.page or s.spec.api}  # every option the page or the API sends
DEFAULT_VARY_STRENGTH = READ["vary_strength"].spec.page.default  # the page's, and a /write vary's without one


@dataclass(frozen=True)
class GuidanceForm:
    """What the guidance panel (or the API) asks of the samples beside the request's options: a
    value per steered kind (text, or a list for a kind that takes several; empty asks nothing), a
    weight per kind, and `measured` (the page's "measured setting per control", on by default),
    which leaves the guidance options (strength, fluency, reads) to each control's measured
    default, whatever the sliders say; off (or not sent, as by /write), the values sent are used
    (None still takes the default)."""

    fields: Mapping[str, Any] = field(default_factory=dict)
    weights: Mapping[str, Any] = field(default_factory=dict)
    limits: Limits = DEFAULT_LIMITS
    measured: Any = False

    @classmethod
    def from_values(cls, values: Mapping[str, Any], limits: Limits = DEFAULT_LIMITS) -> GuidanceForm:
        """From keyword values as the page or the API names them: one per steered kind, `measured`,
        and the weights either as `weight_<kind>` (the page's sliders) or as one `weights` object
        ({"pos": 1.0, ...}, the API's)."""
        values = dict(values)
        weights = values.pop("weights", None)
        if weights is None:
            weights = {}
        elif not isinstance(weights, Mapping):
            raise ConfigError(f'weights must be an object like {{"{STEERED[0]}": 1.0}}, got {shown(weights)}')
        weights = {**weights, **{key.removeprefix(WEIGHT_PREFIX): values.pop(key)
                                 for key in list(values) if key.startswith(WEIGHT_PREFIX)}}
        measured = values.pop(MEASURED, None)
        fields = {name: values.pop(name) for name in STEERED if name in values}
        if values:
            options = [name for name in READ if name != "weights"]
            raise ConfigError(f"unknown input {', '.join(map(shown, list(values)[:3]))}: the inputs are "
                              f"{', '.join(options)}, {', '.join(STEERED)}, {MEASURED} and weights")
        unknown = [kind for kind in weights if kind not in STEERED]
        if unknown:
            raise ConfigError(f"unknown control {', '.join(map(shown, unknown[:3]))} in the weights: the steered "
                              f"controls are {', '.join(STEERED)}")
        return cls(fields, weights=weights, limits=limits, measured=False if measured is None else measured)

    def targets(self) -> tuple:
        """The targets asked for: each kind's value checked for its type and size here, then read
        and checked by engine.controls.targets."""
        return targets_from_fields({name: kind_value(name, value, self.limits) for name, value in self.fields.items()})

    def measured_setting(self) -> bool:
        """Whether each control steers at its measured setting (the guidance options sent unused)."""
        if not isinstance(self.measured, bool):
            raise ConfigError(f"{MEASURED} must be true or false, got {shown(self.measured)}")
        return self.measured

    def weight_values(self) -> dict[str, float]:
        return {kind: number(value, f"{kind} weight", KINDS[kind].weight) for kind, value in self.weights.items()}


@dataclass(frozen=True)
class Form:
    """One generation as the page or the API asks for it, before any value is read: the template,
    a raw value per option of the request that the page or the API shows (`READ`, by name), and the
    guidance panel's inputs."""

    template: str | None
    values: Mapping[str, Any] = field(default_factory=dict)
    guidance: GuidanceForm = field(default_factory=GuidanceForm)
    record_latents: bool = True  # the page plots the latents; the API does not need them
    limits: Limits = DEFAULT_LIMITS

    @classmethod
    def from_values(cls, template: str | None, values: Mapping[str, Any], record_latents: bool = True,
                    limits: Limits = DEFAULT_LIMITS) -> Form:
        """From keyword values as the page or the API names them: the request's options (`READ`)
        and the guidance inputs (see GuidanceForm.from_values); a missing one is None."""
        values = dict(values)
        options = {name: values.pop(name) for name in READ if name in values and name != "weights"}
        return cls(template, options, guidance=GuidanceForm.from_values(values, limits),
                   record_latents=record_latents, limits=limits)

    def request(self) -> Request:
        """The Request for this form; a ConfigError (or the engine's error) names the bad value."""
        unknown = [name for name in self.values if name not in READ]
        if unknown:
            raise ConfigError(f"unknown input {', '.join(map(shown, unknown[:3]))}")
        read_values = {READ[name].path: read(READ[name], value, self.limits) for name, value in self.values.items()}
        values = {path: value for path, value in read_values.items() if value is not None}
        values["prompt", "template"] = template_text(self.template, self.limits)
        measured = self.guidance.measured_setting()
        if measured:  # the guidance options were read (and so checked) but each control's own are used
            values = {path: value for path, value in values.items() if path[0] != "guidance"}
        if ("prompt", "vary") in values and ("sampling", "vary_strength") not in values:
            values["sampling", "vary_strength"] = DEFAULT_VARY_STRENGTH
        values["sampling", "record_latents"] = self.record_latents
        # the page streams and plots every row it draws, so it draws one per sample (a guided run as
        # quick as before); the API takes each control's default number of candidates
        if self.record_latents:
            values["candidates",] = 1
        values["weights",] = self.guidance.weight_values()
        return Request.from_settings(values, self.guidance.targets())


def parameter(name: str, annotation: Any, default: Any = inspect.Parameter.empty) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default, annotation=annotation)


def kind_parameter(name: str) -> inspect.Parameter:
    """The API argument of one steered kind: text, or a list of values for a kind that takes several."""
    return parameter(name, list[str] | None, None) if KINDS[name].many else parameter(name, str, "")


def option_parameter(setting: Setting) -> inspect.Parameter:
    """The API argument of one option: its type, and its default (the `unset` value, where it has one)."""
    default = setting.default if setting.spec.unset is NOT_SET else setting.spec.unset
    annotation = dict[str, float] if setting.kind is dict else setting.kind
    return parameter(setting.name, annotation | None if default is None else annotation, default)


def write_parameters() -> list[inspect.Parameter]:
    """The /write API's arguments, in order, with their defaults: the template, then the request's
    options the API shows (in WRITE_ORDER, with one argument per steered kind of the registry where
    it says), then any option added since."""
    options = {s.name: s for s in shown_settings("api")}
    names = [*WRITE_ORDER, *(name for name in options if name not in WRITE_ORDER)]
    return [parameter("text", str), *(p for name in names for p in (
        map(kind_parameter, STEERED) if name == KINDS_HERE else [option_parameter(options[name])]))]
