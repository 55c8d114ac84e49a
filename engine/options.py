"""Options a user can set: one dataclass field each, whose metadata says everything about it.

Every setting of a run (`Request`, `SampleOptions`, `GuidanceOptions`, `WriteOptions`, the one
prompt's `Prompt` fields) and of a command (`TrainConfig`, the evaluations' options) is a field
declared with `option(default, help, ...)`. Its `Spec` gives the help line, the accepted range
(checked by `check`, called from each dataclass's `__post_init__`), the choices, the page's widget
(`Widget`: slider, number, checkbox or radio, with its own range and step) and where it shows:
the command line (`cli`, on by default), the page (`page`) and the /write API (`api`). From these
the command line's flags (engine.cli), the page's settings widgets (editor.layout), the value
reader of the page and the API (editor.form) and the /write signature are generated, so adding an
option is adding one field.

Pure Python (no torch): the light command-line entry points import it.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import types
import typing
from dataclasses import dataclass
from typing import Any

from engine.errors import ConfigError

NOT_SET = object()  # a Widget's default or a Spec's unset value that is not given


@dataclass(frozen=True)
class Widget:
    """How the page shows an option. `high` may name a bound the loaded model sets (`"words"`: the
    most words a row holds); `group`: the side panel's settings tab, or the guidance panel's own
    setting (shown when the measured setting is off); `default`: the page's start, where it differs
    from the engine's default."""

    kind: str  # "slider", "number", "checkbox" or "radio"
    label: str
    low: float | None = None
    high: float | str | None = None
    step: float | None = None
    group: str = "settings"  # or "guidance"
    default: Any = NOT_SET


@dataclass(frozen=True)
class Spec:
    """What one option is, for every surface that shows it."""

    help: str
    label: str = ""  # its name in messages (default: the field's name in words)
    low: float | None = None  # the accepted range (None: unbounded); `above`: low itself is refused
    high: float | None = None
    above: bool = False
    choices: tuple | None = None
    cli: bool = True  # a flag of the commands that take the dataclass
    page: Widget | None = None  # a widget of the page's settings
    api: bool = False  # an argument of the /write API (and a setting of /generate and /vary)
    unset: Any = NOT_SET  # the page's and the API's value for "left to the engine" (length: 0)
    derived: bool = False  # filled in by the program, never set by a user


def option(default: Any, help: str, **spec: Any) -> Any:
    """A dataclass field with a default and its Spec (see Spec for the keywords)."""
    metadata = {"spec": Spec(help, **spec)}
    if isinstance(default, list | dict | tuple) or dataclasses.is_dataclass(default):  # each instance its own copy
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


PRECISIONS = ("auto", "bf16", "fp32")  # see engine.precision


def device_option() -> Any:
    """The device a command runs on (checked by engine.precision.check_device)."""
    return option("cpu", "run the networks on cpu (the default) or cuda (cuda:N for the N-th GPU), where PyTorch "
                         "sees one")


def precision_option() -> Any:
    """The floating-point precision of the networks (engine.precision.choose_precision)."""
    return option("auto", "bf16 or fp32; auto: bf16 where the device runs it natively (AVX-512 BF16 or AMX, a CUDA "
                          "GPU of compute capability 8.0 or later), else fp32", choices=PRECISIONS)


def derived(default: Any) -> Any:
    """A dataclass field the program fills in: no surface shows it."""
    return dataclasses.field(default=default, metadata={"spec": Spec("", derived=True, cli=False)})


def spec_of(f: dataclasses.Field) -> Spec:
    """A field's Spec (a plain field is a flag with the "help" and "choices" of its metadata)."""
    made = bool(f.metadata.get("derived"))
    return f.metadata.get("spec") or Spec(f.metadata.get("help", ""), choices=f.metadata.get("choices"),
                                          derived=made, cli=not made)


@dataclass(frozen=True)
class Setting:
    """One option of a dataclass tree: its field, its scalar type, and where it lives (`path`: the
    attributes from the root, e.g. ("sampling", "steps"))."""

    path: tuple[str, ...]
    field: dataclasses.Field
    kind: type  # int, float, bool, str, dict or a dataclass (a nested group)
    optional: bool  # None is a value (the program decides)

    @property
    def name(self) -> str:
        return self.path[-1]

    @property
    def spec(self) -> Spec:
        return spec_of(self.field)

    @property
    def label(self) -> str:
        return self.spec.label or self.name.replace("_", " ")

    @property
    def default(self) -> Any:
        f = self.field
        return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


@functools.cache
def type_hints(cls: type) -> dict[str, Any]:
    """`cls`'s field types, read once (every option dataclass checks itself on every construction)."""
    return typing.get_type_hints(cls)


@functools.cache
def settings(cls: type, prefix: tuple[str, ...] = ()) -> tuple[Setting, ...]:
    """Every option of `cls`, nested dataclass fields flattened, in declaration order (derived ones
    left out); worked out once per class."""
    found: list[Setting] = []
    for f in dataclasses.fields(cls):
        hint = type_hints(cls)[f.name]
        optional = isinstance(hint, types.UnionType) and type(None) in typing.get_args(hint)
        kinds = [k for k in typing.get_args(hint) if k is not type(None)] if optional else [hint]
        kind = typing.get_origin(kinds[0]) or kinds[0]
        if dataclasses.is_dataclass(kind):
            found += settings(kind, (*prefix, f.name))
        elif not spec_of(f).derived:
            found.append(Setting((*prefix, f.name), f, kind, optional))
    return tuple(found)


def shown_bound(bound: float | None) -> str:
    """A bound as a person writes it: 10, 0.5, 9223372036854775807."""
    if bound is None:
        return ""
    return str(bound) if isinstance(bound, int) else f"{bound:g}"


def range_text(setting: Setting) -> str:
    """'a whole number from 1 to 32', 'a number above 0 and at most 1', 'one of a, b', ..."""
    spec = setting.spec
    if spec.choices is not None:
        return f"one of {', '.join(map(str, spec.choices))}"
    what = "a whole number" if setting.kind is int else "a number"
    low, high = map(shown_bound, (spec.low, spec.high))
    if spec.low is not None and spec.high is not None:
        return f"{what} {'above' if spec.above else 'from'} {low} {'and at most' if spec.above else 'to'} {high}"
    if spec.low is not None:
        return f"{what} {'above' if spec.above else 'of at least'} {low}"
    if spec.high is not None:
        return f"{what} of at most {high}"
    return "true or false" if setting.kind is bool else what


def check_value(setting: Setting, value: Any) -> None:
    """Raise a ConfigError naming the option when `value` is not of its type or outside its range."""
    spec = setting.spec
    if value is None and setting.optional:
        return
    kind = setting.kind
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    elif kind is str:
        ok = isinstance(value, str)
    else:
        return  # a dict (the weights): its owner checks it
    if ok and spec.choices is not None:
        ok = value in spec.choices
    if ok and spec.low is not None:
        ok = value > spec.low if spec.above else value >= spec.low
    if ok and spec.high is not None:
        ok = value <= spec.high
    if not ok:
        raise ConfigError(f"{setting.label} must be {range_text(setting)}, got {value!r}")


def check(obj: Any) -> None:
    """Check every option of the dataclass `obj` against its Spec (its own fields only: a nested
    dataclass checks itself when built)."""
    for setting in settings(type(obj)):
        if len(setting.path) == 1:
            check_value(setting, getattr(obj, setting.name))


def build(cls: type, values: dict[tuple[str, ...], Any]) -> Any:
    """An instance of `cls` from option values by path (Setting.path); nested dataclasses are built
    from their own paths' values, options left out take their defaults."""
    own = {path[0]: value for path, value in values.items() if len(path) == 1}
    for f in dataclasses.fields(cls):
        nested = {path[1:]: value for path, value in values.items() if len(path) > 1 and path[0] == f.name}
        if nested:
            own[f.name] = build(type_hints(cls)[f.name], nested)
    return cls(**own)
