"""The token row's state: a list of cells, each {"word": str, "locked": bool}.

A locked cell must come out exactly as written; an unlocked cell is a blank the model fills
(its word, if any, is only remembered so that locking it again restores it). A cell whose word
is "..." is a blank of unknown length. All edits are pure functions here, so they are testable
without a browser. A row never holds more cells or characters than the model's window allows
(see editor.limits): a longer text, row or edit is refused and the row stays as it was.
"""

from __future__ import annotations

from editor.limits import DEFAULT_LIMITS, Limits, shown
from engine.errors import CellActionError, TemplateError
from engine.text.template import BLANK, ELLIPSIS
from engine.text.tokenizer import split_words

Cell = dict  # {"word": str, "locked": bool}


def blank_cell(word: str) -> Cell:
    return {"word": ELLIPSIS if word == ELLIPSIS else "", "locked": False}


def check_row(cells: list[Cell], limits: Limits, error: type[CellActionError | TemplateError] = CellActionError,
              name: str = "the row") -> None:
    """At most `limits.words` cells, and at most `limits.chars` characters counting one per cell."""
    limits.check_words(len(cells), name, error)
    limits.check_size(sum(len(c["word"]) + 1 for c in cells), name, error)


def cells_from_text(text: str, limits: Limits = DEFAULT_LIMITS) -> list[Cell]:
    """`_` and `...` are blanks wherever they stand (also split off a word, as in "food..."),
    since the engine reads them so; every other word is locked. A text too long for the model is
    a TemplateError, refused by its size before it is split."""
    limits.check_text(text, "the text", TemplateError)
    cells: list[Cell] = []
    for chunk in text.split():
        words = [chunk] if chunk in (BLANK, ELLIPSIS) else split_words(chunk)
        cells.extend(blank_cell(w) if w in (BLANK, ELLIPSIS) else {"word": w, "locked": True} for w in words)
    check_row(cells, limits, TemplateError, "the text")
    return cells


def parse_cells(value: object, limits: Limits = DEFAULT_LIMITS) -> list[Cell]:
    """The cells of a token-row value sent by the page or the API, checked (their number first)."""
    cells = value.get("cells") if isinstance(value, dict) else None
    if cells is None:
        return []
    if isinstance(cells, list):
        limits.check_words(len(cells), "the row", CellActionError)
    if not isinstance(cells, list) or not all(
            isinstance(c, dict) and isinstance(c.get("word"), str) and isinstance(c.get("locked"), bool)
            for c in cells):
        raise CellActionError('the row must be a list of cells like {"word": "pub", "locked": true}')
    cells = [{"word": c["word"], "locked": c["locked"]} for c in cells]
    check_row(cells, limits)
    return cells


def cells_for(text: object, value: object, limits: Limits = DEFAULT_LIMITS) -> tuple[list[Cell], bool]:
    """The cells for the text box's text, and whether they are the row's current ones: those stay
    (with the words remembered in their unlocked cells) when they already say that text; otherwise
    the text is read afresh (a TemplateError if it is too long). A malformed row counts as empty."""
    text = text if isinstance(text, str) else ""
    limits.check_text(text, "the text", TemplateError)
    try:
        cells = parse_cells(value, limits)
    except CellActionError:
        cells = []
    if text_from_cells(cells) == " ".join(text.split()):
        return cells, True
    return cells_from_text(text, limits), False


def text_from_cells(cells: list[Cell]) -> str:
    """The template the engine reads: locked words as written, `_` for blanks, `...` kept."""
    return " ".join(c["word"] if c["locked"] else (ELLIPSIS if c["word"] == ELLIPSIS else BLANK) for c in cells)


def cells_from_words(words: list[str]) -> list[Cell]:
    """A finished result as a row of locked words (unlock the ones to rewrite)."""
    return [{"word": w, "locked": True} for w in words]


def toggle(cells: list[Cell], index: int, action: dict, limits: Limits) -> None:
    cell = cells[index]
    if cell["locked"]:
        cell["locked"] = False
    elif cell["word"] and cell["word"] != ELLIPSIS:
        cell["locked"] = True
    else:
        raise CellActionError("this blank has no word to lock: type one into it (or double-click it)")


def edit(cells: list[Cell], index: int, action: dict, limits: Limits) -> None:
    """The cell becomes what was typed: words (locked), `_` a blank, `...` a blank of any length;
    several words make several cells."""
    word = action.get("word")
    if not isinstance(word, str):
        raise CellActionError("type a word to put in the cell" if word is None else
                              f"a cell's word must be text, got {shown(word)}")
    try:
        typed = cells_from_text(word, limits)
    except TemplateError as exc:
        raise CellActionError(str(exc).replace("the text", "the word", 1)) from None
    if not typed:
        raise CellActionError("type a word to put in the cell")
    cells[index:index + 1] = typed


def insert(cells: list[Cell], index: int, action: dict, limits: Limits) -> None:
    cells.insert(index + 1, {"word": "", "locked": False})


def delete(cells: list[Cell], index: int, action: dict, limits: Limits) -> None:
    del cells[index]


ACTIONS = {"toggle": toggle, "edit": edit, "insert": insert, "delete": delete}  # each changes the cells in place


def apply_action(cells: list[Cell], action: dict, limits: Limits = DEFAULT_LIMITS) -> list[Cell]:
    """A new list of cells after one user action from the row:
    toggle (lock/unlock), edit (set a word, which locks it), insert (a blank after index), delete,
    edit_mode (no change: show the cells for editing again after a run). An action that would
    make the row longer than the model's window is refused."""
    if not isinstance(action, dict):
        raise CellActionError("an action must be an object such as {\"kind\": \"toggle\", \"index\": 2}")
    kind, index = action.get("kind"), action.get("index", -1)
    cells = [dict(c) for c in cells]
    if isinstance(kind, str) and kind == "edit_mode":  # back from showing a run to editing the template
        return cells
    if not isinstance(index, int) or isinstance(index, bool) or not -1 <= index < len(cells) or (
            index == -1 and kind != "insert"):
        raise CellActionError(f"there is no cell {shown(index)}: the row has {len(cells)} cells")
    if not isinstance(kind, str) or kind not in ACTIONS:
        raise CellActionError(f"unknown action {shown(kind)}")
    if index == -1:  # insert at the end
        cells.append({"word": "", "locked": False})
    else:
        ACTIONS[kind](cells, index, action, limits)
    check_row(cells, limits)
    return cells


def shown_result(value: object, limits: Limits = DEFAULT_LIMITS) -> list[Cell]:
    """The finished sentence a row shows after a run: its value's `result` (the best result's words,
    locked where the run held them, see editor.replay.recorded_row), checked as any row is; [] for a
    row being edited (it has none) or a malformed one."""
    result = value.get("result") if isinstance(value, dict) else None
    try:
        return parse_cells({"cells": result}, limits)
    except CellActionError:
        return []


def variation(cells: list[Cell]) -> tuple[str, str]:
    """The sentence the row says (every cell's word, unlocked ones included) and the template
    that locks its locked words: what Vary rewords. Only the unlocked words may change, so a row
    with every word locked has nothing to vary; a blank with no word cannot be varied."""
    if not cells:
        raise CellActionError("type a sentence to vary")
    empty = [i + 1 for i, c in enumerate(cells) if not c["word"] or c["word"] == ELLIPSIS]
    if empty:
        raise CellActionError(f"Vary rewords a whole sentence: cell {empty[0]} has no word (type one, or use "
                              f"Generate to fill blanks)")
    if all(c["locked"] for c in cells):
        raise CellActionError("every word is locked, so there is nothing left to vary: unlock (click) the words "
                              "Vary may change")
    return " ".join(c["word"] for c in cells), text_from_cells(cells)
