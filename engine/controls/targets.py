"""Targets: what a user, an API call or a target file asks of a sample, and the controls for a batch.

File formats (the Diffusion-LM release's, see DESIGN.md and each kind's module), one target per
line; a `compose` file holds several kinds at once: {"pos": [...], "words_": [...], "attr": [...]}
and/or "spans", "length", "tree". Every problem is a TargetError naming the file and line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from engine.controls import KINDS
from engine.controls.base import Control, json_object
from engine.controls.spans import check_ends
from engine.errors import TargetError, TemplateError
from engine.text.template import Template, fixed_length, length_template
from engine.text.tokenizer import CHARS_PER_WORD, MAX_WORDS

COMPOSE = "compose"
MAX_LINE_BYTES = 64 * MAX_WORDS  # a target line: one sentence's words and tags as JSON, with room to spare
MAX_FILE_BYTES = 64 * 2**20
FILE_KINDS = (*KINDS, COMPOSE)
Target = Any  # an instance of a kind's target class (its `kind` attribute names the kind)


@dataclass(frozen=True)
class TargetLine:
    """One line of a target file: what it asks for (one target per control) and the raw entry."""

    targets: tuple[Target, ...]
    raw: Any = field(compare=False)
    line: int = field(default=0, compare=False)


def targets_from_fields(fields: Mapping[str, Any]) -> tuple[Target, ...]:
    """Targets from plain values keyed by kind (a form's, an API's or the CLI's): a string for
    most kinds, a list of strings for a kind that takes several. Empty values ask for nothing;
    wrong types and over-long values are refused before any parsing; errors name the kind."""
    targets: list[Target] = []
    for name, value in fields.items():
        if name not in KINDS:
            raise TargetError(f"unknown control {name!r}: the controls are {', '.join(KINDS)}")
        kind = KINDS[name]
        values = field_values(name, value, kind.many)
        for text in values:
            try:
                if len(text) > MAX_WORDS * CHARS_PER_WORD:
                    raise TargetError(f"the value is {len(text)} characters long: at most {MAX_WORDS * CHARS_PER_WORD} "
                                      f"(up to {MAX_WORDS} words)")
                if text.strip():
                    targets.append(kind.parse_field(text.strip()))
            except TargetError as exc:
                raise TargetError(f"{name}: {exc}") from exc
    return tuple(targets)


def field_values(name: str, value: Any, many: bool) -> list[str]:
    """A kind's value as a list of strings: None or a string, or for a kind that takes several, a list of them."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if many and isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        if len(value) > MAX_WORDS:
            raise TargetError(f"{name}: {len(value)} values is too many: at most {MAX_WORDS}")
        return list(value)
    wanted = "a list of strings" if many else "text"
    raise TargetError(f"{name}: expected {wanted}, got {type(value).__name__}")


def parse_target_line(kind: str, text: str) -> TargetLine:
    """One line of a `kind` target file (see the module docstring)."""
    if kind == COMPOSE:
        raw = json_object(text, tuple(k.compose_key for k in KINDS.values()))
        return TargetLine(tuple(k.from_compose(raw) for k in KINDS.values() if k.compose_key in raw), raw)
    if kind not in KINDS:
        raise TargetError(f"unknown control kind {kind!r}: the kinds are {', '.join(FILE_KINDS)}")
    target, raw = KINDS[kind].read_line(text)
    return TargetLine((target,), raw)


@dataclass(frozen=True)
class Unusable:
    """A line of a target file that asks for nothing usable, and why."""

    line: int
    reason: str


def scan_targets(kind: str, path: Path | str, limit: int | None = None) -> tuple[list[TargetLine], list[Unusable]]:
    """The first `limit` non-blank lines of a target file, read line by line: those that parse,
    and those that do not (too long, not UTF-8, malformed), each with its line and reason. Only
    the file itself can fail: not found, over MAX_FILE_BYTES, or holding no line at all."""
    path = Path(path)
    if kind not in FILE_KINDS:
        raise TargetError(f"unknown control kind {kind!r}: the kinds are {', '.join(FILE_KINDS)}")
    if not path.is_file():
        raise TargetError(f"target file not found: {path}")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise TargetError(f"{path} is {path.stat().st_size:,} bytes: target files hold at most {MAX_FILE_BYTES:,}")
    lines, unusable = [], []
    with path.open("rb") as file:
        for number, text in file_lines(file):
            if isinstance(text, TargetError):
                unusable.append(Unusable(number, str(text)))
            elif text.strip():
                try:
                    line = parse_target_line(kind, text.strip())
                    lines.append(TargetLine(line.targets, line.raw, number))
                except TargetError as exc:
                    unusable.append(Unusable(number, str(exc)))
            if limit and len(lines) + len(unusable) >= limit:
                break
    if not lines and not unusable:
        raise TargetError(f"{path} holds no targets")
    return lines, unusable


def read_targets(kind: str, path: Path | str, limit: int | None = None) -> list[TargetLine]:
    """The first `limit` targets of a file (blank lines skipped); the first unusable line is a
    TargetError naming the file and the line."""
    lines, unusable = scan_targets(kind, path, limit)
    if unusable:
        raise TargetError(f"{path}, line {unusable[0].line}: {unusable[0].reason}")
    return lines


def file_lines(file: BinaryIO) -> Iterator[tuple[int, str | TargetError]]:
    """(number, text) for each line of a binary file, or (number, the error) for a line longer than
    MAX_LINE_BYTES (refused before it is read whole, then skipped) or not UTF-8."""
    number = 0
    while chunk := file.readline(MAX_LINE_BYTES + 1):
        number += 1
        if len(chunk) > MAX_LINE_BYTES:
            while chunk and not chunk.endswith(b"\n"):  # skip the rest of the line
                chunk = file.readline(MAX_LINE_BYTES + 1)
            yield number, TargetError(f"longer than {MAX_LINE_BYTES:,} bytes (a target describes one "
                                      f"sentence of at most {MAX_WORDS} words)")
            continue
        try:
            yield number, chunk.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield number, TargetError(f"not UTF-8 text ({exc.reason} at byte {exc.start})")


def build_controls(rows: Sequence[Sequence[Target]], source_for: Callable, weights: Mapping[str, float]
                   ) -> list[Control]:
    """One control per kind named in any row, holding each row's target of that kind (or None; a
    kind that takes several holds a tuple per row). `source_for(kind)` supplies what steers it
    (its trained classifier, or the denoiser's word posterior); `weights` maps kind -> weight (else
    the kind's default)."""
    per_kind: dict[str, list] = {}
    for r, targets in enumerate(rows):
        for target in targets:
            per_row = per_kind.setdefault(target.kind, [None] * len(rows))
            if KINDS[target.kind].many:
                per_row[r] = (*(per_row[r] or ()), target)
            elif per_row[r] is not None:
                raise TargetError(f"two {target.kind} targets for one sample")
            else:
                per_row[r] = target
    controls = []
    for name, per_row in per_kind.items():
        kind = KINDS[name]
        controls.append(kind.control(source_for(name), per_row, weights.get(name, kind.weight)))
    return controls


def constrain(templates: list[Template], controls: Sequence[Control], seq_len: int,
              droppable: Sequence[bool]) -> list[int]:
    """Fit the templates to the word counts the controls imply, in place: a free row gets exactly
    that many free words; a row whose template already fixes a different count is a conflict.
    A `droppable` row (one of several lengths tried for a `...` blank) is left out instead, and
    only a batch with no row left is an error; so is a span target that ends past the length a row
    is given. Returns the rows kept."""
    conflict = None
    dropped: set[int] = set()
    for control in controls:
        for row, n in enumerate(control.lengths()):
            if n is None or row in dropped:
                continue
            if n < 1 or n + 2 > seq_len:
                raise TemplateError(f"{control.name} asks for {n} words: impossible, the model writes "
                                    f"1 to {seq_len - 2}")
            current = fixed_length(templates[row])
            if current is None:
                templates[row] = length_template(n, seq_len)
            elif current != n:
                conflict = (f"conflicting controls: {control.name} asks for {n} words but the template (or "
                            f"another control) fixes {current}")
                if not droppable[row]:
                    raise TemplateError(conflict)
                dropped.add(row)
    kept = [row for row in range(len(templates)) if row not in dropped]
    if not kept:
        raise TemplateError(conflict or "no template to sample")
    for control in controls:  # a length another control fixed must still reach the end of the spans
        if control.name == "spans":
            for row in kept:
                length = fixed_length(templates[row])
                if control.targets[row] is not None and length is not None:
                    check_ends([control.targets[row]], length, "the text the other controls ask for")
    return kept
