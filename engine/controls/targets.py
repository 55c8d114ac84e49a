"""Targets: what a user, an API call or a target file asks of a sample, and the controls for a batch.

File formats (the Diffusion-LM release's, see DESIGN.md and each kind's module), one target per
line; a `compose` file holds several kinds at once: {"pos": [...], "words_": [...], "attr": [...]}
and/or "spans", "length", "tree". Every problem is a TargetError naming the file and line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.controls import KINDS
from engine.controls.base import Control, json_object
from engine.errors import TargetError, TemplateError
from engine.text.template import Template, fixed_length, length_template

COMPOSE = "compose"
FILE_KINDS = (*KINDS, COMPOSE)
Target = Any  # an instance of a kind's target class (its `kind` attribute names the kind)


@dataclass(frozen=True)
class TargetLine:
    """One line of a target file: what it asks for (one target per control) and the raw entry."""

    targets: tuple[Target, ...]
    raw: Any = field(compare=False)
    line: int = field(default=0, compare=False)


def targets_from_fields(fields: Mapping[str, Any]) -> tuple[Target, ...]:
    """Targets from plain values keyed by kind (a form's, an API's or the CLI's): text for most
    kinds, a list of values for a kind that takes several. Empty values ask for nothing; errors
    name the kind's input."""
    targets: list[Target] = []
    for name, value in fields.items():
        if name not in KINDS:
            raise TargetError(f"unknown control {name!r}: the controls are {', '.join(KINDS)}")
        kind = KINDS[name]
        values = value if kind.many and isinstance(value, list | tuple) else [value]
        for text in values:
            if text is None or (isinstance(text, str) and not text.strip()):
                continue
            try:
                targets.append(kind.parse_field(str(text).strip()))
            except TargetError as exc:
                raise TargetError(f"{name}: {exc}") from exc
    return tuple(targets)


def parse_target_line(kind: str, text: str) -> TargetLine:
    """One line of a `kind` target file (see the module docstring)."""
    if kind == COMPOSE:
        raw = json_object(text, tuple(k.compose_key for k in KINDS.values()))
        return TargetLine(tuple(k.from_compose(raw) for k in KINDS.values() if k.compose_key in raw), raw)
    if kind not in KINDS:
        raise TargetError(f"unknown control kind {kind!r}: the kinds are {', '.join(FILE_KINDS)}")
    target, raw = KINDS[kind].read_line(text)
    return TargetLine((target,), raw)


def read_targets(kind: str, path: Path | str, limit: int | None = None) -> list[TargetLine]:
    """The first `limit` targets of a file (blank lines skipped); errors name the file and line."""
    path = Path(path)
    if kind not in FILE_KINDS:
        raise TargetError(f"unknown control kind {kind!r}: the kinds are {', '.join(FILE_KINDS)}")
    if not path.is_file():
        raise TargetError(f"target file not found: {path}")
    lines = []
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not text.strip():
            continue
        try:
            line = parse_target_line(kind, text.strip())
        except TargetError as exc:
            raise TargetError(f"{path}, line {number}: {exc}") from exc
        lines.append(TargetLine(line.targets, line.raw, number))
        if limit and len(lines) >= limit:
            break
    if not lines:
        raise TargetError(f"{path} holds no targets")
    return lines


def build_controls(rows: Sequence[Sequence[Target]], classifier_for: Callable, weights: Mapping[str, float]
                   ) -> list[Control]:
    """One control per kind named in any row, holding each row's target of that kind (or None; a
    kind that takes several holds a tuple per row). `classifier_for(kind)` supplies the trained
    classifier; `weights` maps kind -> weight (else the kind's default)."""
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
        classifier = classifier_for(name) if kind.steered else None
        controls.append(kind.control(classifier, per_row, weights.get(name, kind.weight)))
    return controls


def constrain(templates: list[Template], controls: Sequence[Control], seq_len: int,
              droppable: Sequence[bool]) -> list[int]:
    """Fit the templates to the word counts the controls imply, in place: a free row gets exactly
    that many free words; a row whose template already fixes a different count is a conflict.
    A `droppable` row (one of several lengths tried for a `...` blank) is left out instead, and
    only a batch with no row left is an error. Returns the rows kept."""
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
    return kept
