"""Command-line plumbing shared by every command: flags generated from option dataclasses, and
the one wrapper that turns an EngineError into a one-line message and exit status 2.

A dataclass field becomes a flag (`max_steps` -> `--max-steps`; a bool -> `--x/--no-x`); a field
that is itself a dataclass contributes its own fields, flattened; fields marked
`metadata={"derived": True}` are filled in by the program, not by flags. `metadata` may also
carry "help" and "choices".
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import types
import typing
from collections.abc import Callable, Iterator
from typing import Any

from engine.errors import ConfigError, EngineError

SCALARS = {int: int, float: float, str: str}


def option(default: Any, help: str, **metadata: Any) -> Any:
    """A dataclass field with a default and the help line of its flag."""
    if isinstance(default, list | dict) or dataclasses.is_dataclass(default):
        return dataclasses.field(default_factory=lambda: default, metadata={"help": help, **metadata})
    return dataclasses.field(default=default, metadata={"help": help, **metadata})


def _fields(cls: type) -> Iterator[tuple[dataclasses.Field, Any]]:
    """(field, its type) for each field set by flags; an optional `float | None` reads as float
    (its flag's default None: the program decides)."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if not f.metadata.get("derived"):
            hint = hints[f.name]
            optional = isinstance(hint, types.UnionType) and type(None) in typing.get_args(hint)
            kinds = [k for k in typing.get_args(hint) if k is not type(None)] if optional else [hint]
            yield f, kinds[0] if len(kinds) == 1 else hint


def add_options(parser: argparse.ArgumentParser, cls: type, required: tuple[str, ...] = ()) -> None:
    """One flag per field of `cls` (and of its dataclass fields), defaults from the dataclass."""
    for f, kind in _fields(cls):
        if dataclasses.is_dataclass(kind):
            add_options(parser, kind, required)
            continue
        flag = "--" + f.name.replace("_", "-")
        extra = {"help": f.metadata.get("help"), "choices": f.metadata.get("choices")}
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default, help=extra["help"])
        elif f.name in required:
            parser.add_argument(flag, required=True, type=SCALARS[kind], **extra)
        else:
            default = f.default if f.default is not dataclasses.MISSING else None
            parser.add_argument(flag, type=SCALARS[kind], default=default, **extra)


def options_from(cls: type, args: argparse.Namespace) -> Any:
    """An instance of `cls` from parsed flags (nested dataclasses built the same way)."""
    values = {}
    for f, kind in _fields(cls):
        values[f.name] = options_from(kind, args) if dataclasses.is_dataclass(kind) else getattr(args, f.name)
        if kind is float and values[f.name] is not None and not math.isfinite(values[f.name]):
            raise ConfigError(f"--{f.name.replace('_', '-')} must be a finite number, got {values[f.name]}")
    return cls(**values)


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (and exit status 2), like every other error."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


DEVICE_HELP = "run the networks on cpu (the default) or cuda (cuda:N for the N-th GPU), where PyTorch sees one"


def add_device_options(parser: argparse.ArgumentParser) -> None:
    """--device, and --bf16/--fp32 to force the denoiser's precision (default: the faster one for this
    machine: bf16 where the device runs it natively, else fp32; see engine.precision)."""
    parser.add_argument("--device", default="cpu", help=DEVICE_HELP)
    precision = parser.add_mutually_exclusive_group()
    precision.add_argument("--bf16", dest="precision", action="store_const", const="bf16",
                           help="run the denoiser in bfloat16 (fast only where the CPU has AVX-512 BF16 or AMX)")
    precision.add_argument("--fp32", dest="precision", action="store_const", const="fp32",
                           help="run the denoiser in float32")
    parser.set_defaults(precision="auto")


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
