"""Control targets: what a user (or a target file) asks of a sample, and reading the files.

File formats (the Diffusion-LM release's, see DESIGN.md), one target per line:
  pos       {"pos": [...], "words_": [...]}   Universal POS tags; START / END / newline entries dropped
  tree      an exemplar sentence; its spaCy dependency tree is the target
  spans     {"words_": [...], "spans": [[i, j, "PP"]]}   0-based inclusive word positions
  semantic  ["food", ":", "Italian"]   field before the colon, value after
  length    an integer: exactly that many words
  compose   {"pos": [...], "words_": [...], "attr": ["food", ":", "English"]} and/or "spans",
            "length", "tree" (an exemplar sentence): every control named at once
Every problem is reported as a TargetError naming the file and line.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import EngineError
from engine.text.syntax import SPAN_LABELS, UPOS, Parse, parse
from engine.text.tokenizer import split_words

TARGET_KINDS = ("pos", "tree", "spans", "semantic", "length", "compose")
E2E_FIELDS = ("name", "eatType", "food", "priceRange", "customer rating", "area", "familyFriendly", "near")
NOT_WORDS = ("START", "END", "\n", "PAD")  # entries of a target's word list that are not words


class TargetError(EngineError):
    """A control target that cannot be used: malformed, unknown label, out of range."""


@dataclass(frozen=True)
class PosTarget:
    tags: tuple[str, ...]
    words: tuple[str, ...] = ()  # the sentence the tags came from, if given


@dataclass(frozen=True)
class TreeTarget:
    tree: Parse


@dataclass(frozen=True)
class SpanTarget:
    spans: tuple[tuple[int, int, str], ...]
    words: tuple[str, ...] = ()


@dataclass(frozen=True)
class SemanticTarget:
    field: str  # one of E2E_FIELDS
    value: str  # words separated by single spaces, e.g. "city centre"

    @property
    def label(self) -> str:
        return f"{self.field}={self.value}"


@dataclass(frozen=True)
class LengthTarget:
    words: int


Target = PosTarget | TreeTarget | SpanTarget | SemanticTarget | LengthTarget


@dataclass(frozen=True)
class TargetLine:
    """One line of a target file: what it asks for (one target per control) and the raw entry."""

    targets: tuple[Target, ...]
    raw: Any = field(compare=False)
    line: int = field(default=0, compare=False)


def canonical_value(text: str) -> str:
    return " ".join(split_words(text))


def canonical_field(name: str) -> str:
    """An E2E field from any spelling ("customer rating", "customerRating", "eattype")."""
    key = re.sub(r"[\s_]", "", name).lower()
    for known in E2E_FIELDS:
        if known.replace(" ", "").lower() == key:
            return known
    raise TargetError(f"unknown field {name!r}: the fields are {', '.join(E2E_FIELDS)}")


def parse_mr(mr: str) -> list[SemanticTarget]:
    """The field=value pairs of an E2E meaning representation: "name[The Eagle], food[Italian]"."""
    return [SemanticTarget(canonical_field(m.group(1).strip()), canonical_value(m.group(2)))
            for m in re.finditer(r"([^,\[\]]+)\[([^\]]*)\]", mr)]


def _words(words: Any) -> list[str]:
    if words is None:
        return []
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        raise TargetError('"words_" must be a list of words')
    return words


def pos_target(tags: list, words: list | None) -> PosTarget:
    if not isinstance(tags, list) or not all(isinstance(x, str) for x in tags):
        raise TargetError('"pos" must be a list of tags')
    words = _words(words)
    if words and len(words) != len(tags):
        raise TargetError(f'"pos" has {len(tags)} tags but "words_" has {len(words)} entries')
    keep = [i for i in range(len(tags)) if tags[i] not in NOT_WORDS and (not words or words[i] not in NOT_WORDS)]
    kept = tuple(tags[i] for i in keep)
    unknown = sorted(set(kept) - set(UPOS))
    if unknown:
        raise TargetError(f"unknown POS tag {', '.join(map(repr, unknown))}: the tags are {' '.join(UPOS)}")
    if not kept:
        raise TargetError("the POS target has no tags")
    return PosTarget(kept, tuple(words[i] for i in keep) if words else ())


def span_target(spans: list, words: list | None) -> SpanTarget:
    words = [w for w in _words(words) if w not in NOT_WORDS]
    if not isinstance(spans, list) or not spans:
        raise TargetError('"spans" must be a non-empty list of [i, j, label]')
    result = []
    for span in spans:
        if (not isinstance(span, list) or len(span) != 3
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in span[:2])
                or not isinstance(span[2], str)):
            raise TargetError(f"a span must be [i, j, label] with integer positions, got {span!r}")
        i, j, label = span
        if label not in SPAN_LABELS:
            raise TargetError(f"unknown span label {label!r}: the labels are {' '.join(SPAN_LABELS)}")
        if not 0 <= i <= j or (words and j >= len(words)):
            limit = f" (the sentence has {len(words)} words, positions 0..{len(words) - 1})" if words else ""
            raise TargetError(f"span [{i}, {j}] is out of range{limit}")
        result.append((i, j, label))
    return SpanTarget(tuple(result), tuple(words))


def semantic_target(tokens: list) -> SemanticTarget:
    if not isinstance(tokens, list) or not all(isinstance(x, str) for x in tokens) or ":" not in tokens:
        raise TargetError(f'a semantic target is a list like ["food", ":", "Italian"], got {tokens!r}')
    colon = tokens.index(":")
    value = canonical_value(" ".join(tokens[colon + 1:]))
    if not tokens[:colon] or not value:
        raise TargetError(f"a semantic target needs a field before ':' and a value after it, got {tokens!r}")
    return SemanticTarget(canonical_field(" ".join(tokens[:colon])), value)


def length_target(value: Any) -> LengthTarget:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise TargetError(f"a length must be a positive whole number of words, got {value!r}")
    return LengthTarget(value)


def tree_target(sentence: Any) -> TreeTarget:
    if not isinstance(sentence, str) or not split_words(sentence):
        raise TargetError(f"a tree target is an exemplar sentence, got {sentence!r}")
    return TreeTarget(parse([split_words(sentence)])[0])


def targets_from_fields(pos: str = "", tree: str = "", spans: str = "",
                        semantic: list[str] | tuple[str, ...] = ()) -> tuple[Target, ...]:
    """Targets from plain text fields (a UI's or an API's): POS tags separated by spaces, an
    exemplar sentence, spans as "i j LABEL" separated by ";", and "field=value" labels. Empty
    fields ask for nothing. Errors name the field."""
    targets: list[Target] = []
    fields = (("parts of speech", pos, lambda v: pos_target(v.split(), None)),
              ("syntax exemplar", tree, tree_target),
              ("spans", spans, lambda v: span_target([_span_fields(s) for s in v.split(";") if s.strip()], None)))
    for name, value, make in fields:
        if isinstance(value, str) and value.strip():
            try:
                targets.append(make(value.strip()))
            except TargetError as exc:
                raise TargetError(f"{name}: {exc}") from exc
    for label in semantic or ():
        field_name, _, value = str(label).partition("=")
        targets.append(semantic_target([field_name, ":", value]))
    return tuple(targets)


def _span_fields(text: str) -> list:
    parts = text.split()
    if len(parts) != 3 or not all(p.lstrip("-").isdigit() for p in parts[:2]):
        raise TargetError(f'write a span as "i j LABEL", e.g. "3 5 PP", got {text.strip()!r}')
    return [int(parts[0]), int(parts[1]), parts[2]]


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise TargetError(f"not valid JSON ({exc.msg} at column {exc.colno})") from exc


def _object(text: str, keys: tuple[str, ...]) -> dict:
    value = _json(text)
    if not isinstance(value, dict) or not any(k in value for k in keys):
        raise TargetError(f"expected a JSON object with {' or '.join(map(repr, keys))}")
    return value


def parse_target_line(kind: str, text: str) -> TargetLine:
    """One line of a `kind` target file (see the module docstring)."""
    if kind == "length":
        try:
            return TargetLine((length_target(int(text)),), int(text))
        except ValueError as exc:
            raise TargetError(f"a length must be a whole number, got {text!r}") from exc
    if kind == "tree":
        return TargetLine((tree_target(text),), text)
    if kind == "semantic":
        raw = _json(text)
        return TargetLine((semantic_target(raw),), raw)
    if kind == "pos":
        raw = _object(text, ("pos",))
        return TargetLine((pos_target(raw.get("pos"), raw.get("words_")),), raw)
    if kind == "spans":
        raw = _object(text, ("spans",))
        return TargetLine((span_target(raw["spans"], raw.get("words_")),), raw)
    if kind == "compose":
        raw = _object(text, ("pos", "attr", "spans", "length", "tree"))
        targets: list[Target] = []
        if "pos" in raw:
            targets.append(pos_target(raw["pos"], raw.get("words_")))
        if "tree" in raw:
            targets.append(tree_target(raw["tree"]))
        if "spans" in raw:
            targets.append(span_target(raw["spans"], raw.get("words_")))
        if "attr" in raw:
            targets.append(semantic_target(raw["attr"]))
        if "length" in raw:
            targets.append(length_target(raw["length"]))
        return TargetLine(tuple(targets), raw)
    raise TargetError(f"unknown control kind {kind!r}: the kinds are {', '.join(TARGET_KINDS)}")


def read_targets(kind: str, path: Path | str, limit: int | None = None) -> list[TargetLine]:
    """The first `limit` targets of a file (blank lines skipped); errors name the file and line."""
    path = Path(path)
    if kind not in TARGET_KINDS:
        raise TargetError(f"unknown control kind {kind!r}: the kinds are {', '.join(TARGET_KINDS)}")
    if not path.is_file():
        raise TargetError(f"target file not found: {path}")
    lines = []
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not text.strip():
            continue
        try:
            lines.append(_with_line(parse_target_line(kind, text.strip()), number))
        except TargetError as exc:
            raise TargetError(f"{path}, line {number}: {exc}") from exc
        if limit and len(lines) >= limit:
            break
    if not lines:
        raise TargetError(f"{path} holds no targets")
    return lines


def _with_line(line: TargetLine, number: int) -> TargetLine:
    return TargetLine(line.targets, line.raw, number)
