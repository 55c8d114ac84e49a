"""The token row's state: a list of cells, each {"word": str, "locked": bool}.

A locked cell must come out exactly as written; an unlocked cell is a blank the model fills
(its word, if any, is only remembered so that locking it again restores it). A cell whose word
is "..." is a blank of unknown length. All edits are pure functions here, so they are testable
without a browser.
"""

from __future__ import annotations

from engine.errors import CellActionError
from engine.text.template import BLANK, ELLIPSIS
from engine.text.tokenizer import split_words

Cell = dict  # {"word": str, "locked": bool}


def blank_cell(word: str) -> Cell:
    return {"word": ELLIPSIS if word == ELLIPSIS else "", "locked": False}


def cells_from_text(text: str) -> list[Cell]:
    """`_` and `...` are blanks wherever they stand (also split off a word, as in "food..."),
    since the engine reads them so; every other word is locked."""
    cells: list[Cell] = []
    for chunk in text.split():
        words = [chunk] if chunk in (BLANK, ELLIPSIS) else split_words(chunk)
        cells.extend(blank_cell(w) if w in (BLANK, ELLIPSIS) else {"word": w, "locked": True} for w in words)
    return cells


def parse_cells(value: object) -> list[Cell]:
    """The cells of a token-row value sent by the page or the API, checked."""
    cells = value.get("cells") if isinstance(value, dict) else None
    if cells is None:
        return []
    if not isinstance(cells, list) or not all(
            isinstance(c, dict) and isinstance(c.get("word"), str) and isinstance(c.get("locked"), bool)
            for c in cells):
        raise CellActionError('the row must be a list of cells like {"word": "pub", "locked": true}')
    return [{"word": c["word"], "locked": c["locked"]} for c in cells]


def cells_for(text: object, value: object) -> tuple[list[Cell], bool]:
    """The cells for the text box's text, and whether they are the row's current ones: those stay
    (with the words remembered in their unlocked cells) when they already say that text; otherwise
    the text is read afresh. A malformed row counts as empty."""
    text = text if isinstance(text, str) else ""
    try:
        cells = parse_cells(value)
    except CellActionError:
        cells = []
    if text_from_cells(cells) == " ".join(text.split()):
        return cells, True
    return cells_from_text(text), False


def text_from_cells(cells: list[Cell]) -> str:
    """The template the engine reads: locked words as written, `_` for blanks, `...` kept."""
    return " ".join(c["word"] if c["locked"] else (ELLIPSIS if c["word"] == ELLIPSIS else BLANK) for c in cells)


def cells_from_words(words: list[str]) -> list[Cell]:
    """A finished result as a row of locked words (unlock the ones to rewrite)."""
    return [{"word": w, "locked": True} for w in words]


def toggle(cells: list[Cell], index: int, action: dict) -> None:
    cell = cells[index]
    if cell["locked"]:
        cell["locked"] = False
    elif cell["word"] and cell["word"] != ELLIPSIS:
        cell["locked"] = True
    else:
        raise CellActionError("this blank has no word to lock: double-click it to type one")


def edit(cells: list[Cell], index: int, action: dict) -> None:
    words = split_words(str(action.get("word", "")))
    if not words:
        raise CellActionError("type a word to put in the cell")
    if BLANK in words or ELLIPSIS in words:
        raise CellActionError(f"'{BLANK}' and '{ELLIPSIS}' are blanks, not words: use + to add a blank")
    cells[index:index + 1] = [{"word": w, "locked": True} for w in words]


def insert(cells: list[Cell], index: int, action: dict) -> None:
    cells.insert(index + 1, {"word": "", "locked": False})


def delete(cells: list[Cell], index: int, action: dict) -> None:
    del cells[index]


ACTIONS = {"toggle": toggle, "edit": edit, "insert": insert, "delete": delete}  # each changes the cells in place


def apply_action(cells: list[Cell], action: dict) -> list[Cell]:
    """A new list of cells after one user action from the row:
    toggle (lock/unlock), edit (set a word, which locks it), insert (a blank after index), delete,
    edit_mode (no change: show the cells for editing again after a run)."""
    if not isinstance(action, dict):
        raise CellActionError("an action must be an object such as {\"kind\": \"toggle\", \"index\": 2}")
    kind, index = action.get("kind"), action.get("index", -1)
    cells = [dict(c) for c in cells]
    if kind == "edit_mode":  # back from showing a run to editing the template
        return cells
    if kind == "insert" and index == -1:
        return [*cells, {"word": "", "locked": False}]
    if not isinstance(index, int) or not 0 <= index < len(cells):
        raise CellActionError(f"there is no cell {index}: the row has {len(cells)} cells")
    if not isinstance(kind, str) or kind not in ACTIONS:
        raise CellActionError(f"unknown action {kind!r}")
    ACTIONS[kind](cells, index, action)
    return cells
