"""Command-line plumbing shared by every command: flags generated from option dataclasses, and
the one wrapper that turns an EngineError into a one-line message and exit status 2.

An option (engine.options) becomes a flag (`max_steps` -> `--max-steps`; a bool -> `--x/--no-x`;
the weights -> `--weights pos=1,semantic=2`); a field that is itself a dataclass contributes its
own options, flattened; derived options and those marked `cli=False` get no flag.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.errors import ConfigError, EngineError
from engine.options import build, device_option, option, precision_option, settings

SCALARS = {int: int, float: float, str: str}


def add_options(parser: argparse.ArgumentParser, cls: type, required: tuple[str, ...] = ()) -> None:
    """One flag per option of `cls` shown on the command line (nested dataclasses flattened),
    defaults from the dataclass."""
    for setting in settings(cls):
        spec = setting.spec
        if not spec.cli:
            continue
        flag = "--" + setting.name.replace("_", "-")
        if setting.kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=setting.default, help=spec.help)
        elif setting.kind is dict:  # read by options_from (an error there is one line, like every other)
            parser.add_argument(flag, default="", help=spec.help)
        elif setting.name in required:
            parser.add_argument(flag, required=True, type=SCALARS[setting.kind], help=spec.help, choices=spec.choices)
        else:
            default = setting.default if setting.default is not dataclasses.MISSING else None
            parser.add_argument(flag, type=SCALARS[setting.kind], default=default, help=spec.help,
                                choices=spec.choices)


def options_from(cls: type, args: argparse.Namespace, **fixed: Any) -> Any:
    """An instance of `cls` from parsed flags (nested dataclasses built the same way); `fixed`:
    values the program sets, by option name (a flag's value is then ignored)."""
    values: dict[str, Any] = {}
    for setting in settings(cls):
        if not setting.spec.cli and setting.name not in fixed:
            continue
        value = fixed[setting.name] if setting.name in fixed else getattr(args, setting.name)
        if setting.kind is dict and isinstance(value, str):
            value = parse_weights(value)
        if setting.kind is float and value is not None and not math.isfinite(value):
            raise ConfigError(f"--{setting.name.replace('_', '-')} must be a finite number, got {value}")
        values[setting.path] = value
    derived = {(name,): value for name, value in fixed.items() if all(s.name != name for s in settings(cls))}
    return build(cls, {**values, **derived})


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (and exit status 2), like every other error."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


@dataclass
class RunOn:
    """Which model a command loads and where it runs it (every command that loads one)."""

    model: str | None = option(None, "model directory (default: the bundled model in assets/model)")
    device: str = device_option()
    precision: str = precision_option()


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """--model, --device and --precision (RunOn)."""
    add_options(parser, RunOn)


def parser_for(prog: str, doc: str | None) -> argparse.ArgumentParser:
    return OneLineParser(prog=f"python -m {prog}", description=doc,
                         formatter_class=argparse.RawDescriptionHelpFormatter)


def run_command(command: Callable[[argparse.Namespace], int | None], args: argparse.Namespace) -> int:
    """Run a command; an EngineError is printed as one line on stderr and gives exit status 2."""
    try:
        return command(args) or 0
    except EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def parse_weights(text: str) -> dict[str, float]:
    """`--weights pos=1,semantic=2` as a dict."""
    weights = {}
    for part in filter(None, text.split(",")):
        name, _, value = part.partition("=")
        try:
            weights[name.strip()] = float(value)
        except ValueError as exc:
            raise EngineError(f"--weights: expected kind=number, got {part!r}") from exc
    return weights
