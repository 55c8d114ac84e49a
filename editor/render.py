"""HTML for the token row and the status line (strings only; no model, no tensors)."""

from __future__ import annotations

from html import escape

from editor.cells import Cell
from engine.text.template import ELLIPSIS

SPECIAL = {"START", "END", "PAD", "UNK"}
LOCK_SVG = ('<svg class="lock" viewBox="0 0 16 16" width="11" height="11" aria-hidden="true">'
            '<rect x="3" y="7" width="10" height="8" rx="1.5" fill="currentColor"/>'
            '<path d="M5 7V5a3 3 0 0 1 6 0v2" stroke="currentColor" stroke-width="1.8" fill="none"/></svg>')


def confidence_colour(confidence: float) -> str:
    """Pale grey-blue when unsure, saturated teal when certain."""
    c = max(0.0, min(1.0, confidence))
    return f"hsl({200 - 30 * c:.0f}, {25 + 55 * c:.0f}%, {93 - 45 * c:.0f}%)"


def edit_row(cells: list[Cell]) -> str:
    """The row as the user edits it: click = lock/unlock, double-click = type a word, + and x."""
    parts = []
    for i, cell in enumerate(cells):
        word = cell["word"]
        label = "…" if word == ELLIPSIS else (escape(word) if word else "_")
        kind = "locked" if cell["locked"] else ("ellipsis" if word == ELLIPSIS else "free")
        parts.append(
            f'<div class="cell {kind}" data-index="{i}" data-word="{escape(word)}" title="click: lock/unlock, '
            f'double-click: type a word">{LOCK_SVG if cell["locked"] else ""}<span class="w">{label}</span>'
            f'<span class="tools"><button data-action="insert" title="insert a blank after">+</button>'
            f'<button data-action="delete" title="delete this cell">×</button></span></div>')
    parts.append('<div class="cell add" data-index="-1"><button data-action="insert" '
                 'title="add a blank at the end">+ blank</button></div>')
    return f'<div class="row editing" data-mode="edit">{"".join(parts)}</div>'


def frame_row(view: dict, locked: list[bool]) -> str:
    """One denoising step: each position's nearest word, coloured by the model's confidence."""
    parts = []
    for i, (word, conf) in enumerate(zip(view["words"], view["confidence"], strict=True)):
        if i == 0 or (word in SPECIAL and word != "END"):
            continue  # START, and PAD/UNK the model is still placing, would only clutter the row
        if word == "END":  # the text ends here (locked END or the model's own)
            if not locked[i]:
                parts.append(_frame_cell("free end", conf, "⏎", f"end of text, confidence {conf:.2f}"))
            break
        kind = "locked" if locked[i] else "free"
        parts.append(_frame_cell(kind, conf, (LOCK_SVG if locked[i] else "") + escape(word),
                                 f"confidence {conf:.2f}"))
    return (f'<div class="row animating" data-mode="frame" data-step="{view["step"]}">{"".join(parts)}</div>'
            f'<div class="status">{status_text(view)} · <i>click the row to edit the template</i></div>')


def _frame_cell(kind: str, confidence: float, label_html: str, title: str) -> str:
    return (f'<div class="cell {kind}" style="background:{confidence_colour(confidence)}" title="{title}">'
            f'<span class="w">{label_html}</span></div>')


def status_text(view: dict) -> str:
    noise = 1.0 - view["alpha_bar"]
    return (f'step <b class="step">{view["step"] + 1}</b> / {view["steps"]} · t = {view["t"]} · '
            f'noise level 1−ᾱ = {noise:.3f}')


def message(text: str, kind: str = "error") -> str:
    return f'<div class="msg {kind}">{escape(text)}</div>' if text else ""


def written_row(view: dict, method: str) -> str:
    """A left-to-right row as it is written: the prompt's words before the first blank (locked),
    then each word as it comes, then a caret (or the end of the text)."""
    parts = []
    for i, word in enumerate(view["words"]):
        if i < view["prefix"]:
            parts.append(_frame_cell("locked", 1.0, LOCK_SVG + escape(word), "from the prompt, before its first blank"))
        else:
            parts.append(_frame_cell("free", 1.0, escape(word), f"word {i - view['prefix'] + 1} written left to right"))
    parts.append(_frame_cell("free end", 1.0, "⏎", "end of text") if view["finished"]
                 else '<div class="cell caret" title="writing">▍</div>')
    beliefs = " · ".join(f"{name} {p:.0%}" for name, p in view["beliefs"].items())
    status = f'word <b class="step">{len(view["words"]) - view["prefix"]}</b> · {escape(method)}'
    if beliefs:
        status += f" · discriminators' belief: {escape(beliefs)}"
    return (f'<div class="row animating" data-mode="written">{"".join(parts)}</div>'
            f'<div class="status">{status}<br><i>it reads only the words before the first blank: a word locked '
            f'after a blank is not guaranteed</i></div>')
