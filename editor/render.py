"""HTML for the token row and the status line (strings only; no model, no tensors)."""

from __future__ import annotations

from html import escape

from editor.cells import Cell
from engine.text.template import ELLIPSIS

SPECIAL = {"START", "END", "PAD", "UNK"}
LOCK_SVG = ('<svg class="lock" viewBox="0 0 16 16" width="11" height="11" aria-hidden="true">'
            '<rect x="3" y="7" width="10" height="8" rx="1.5" fill="currentColor"/>'
            '<path d="M5 7V5a3 3 0 0 1 6 0v2" stroke="currentColor" stroke-width="1.8" fill="none"/></svg>')


def html_value(html: str) -> dict:
    """A row component's value that only shows HTML."""
    return {"html": html, "cells": [], "action": None}


def confidence_colour(confidence: float) -> str:
    """Pale grey-blue when unsure, saturated teal when certain."""
    c = max(0.0, min(1.0, confidence))
    return f"hsl({200 - 30 * c:.0f}, {25 + 55 * c:.0f}%, {93 - 45 * c:.0f}%)"


ROW_LABEL = ("token row: type to replace a word, _ for a blank; Tab moves between cells; Enter locks or "
             "unlocks; Backspace on an empty cell deletes it; Ctrl+Z undoes")


def cell_label(cell: Cell) -> str:
    """What a screen reader says for a cell: "locked: Eagle", "blank", "unlocked: cheap"."""
    word = cell["word"]
    if cell["locked"]:
        return f"locked: {word}"
    if word == ELLIPSIS:
        return "blank of any length"
    return f"unlocked: {word}" if word else "blank"


def edit_row(cells: list[Cell]) -> str:
    """The row as the user edits it: click = lock/unlock, type or double-click = a new word,
    Tab between cells, + and x (see editor.token_row for the keys)."""
    parts = []
    for i, cell in enumerate(cells):
        word = cell["word"]
        label = "…" if word == ELLIPSIS else (escape(word) if word else "_")
        kind = "locked" if cell["locked"] else ("ellipsis" if word == ELLIPSIS else "free")
        parts.append(
            f'<div class="cell {kind}" data-index="{i}" data-word="{escape(word)}" tabindex="0" role="button" '
            f'aria-pressed="{str(cell["locked"]).lower()}" aria-label="{escape(cell_label(cell))}" '
            f'title="click or Enter: lock/unlock; type or double-click: a new word">'
            f'{LOCK_SVG if cell["locked"] else ""}<span class="w">{label}</span>'
            f'<span class="tools"><button data-action="insert" tabindex="-1" title="insert a blank after">+</button>'
            f'<button data-action="delete" tabindex="-1" title="delete this cell">×</button></span></div>')
    parts.append('<div class="cell add" data-index="-1"><button data-action="insert" '
                 'title="add a blank at the end">+ blank</button></div>')
    return f'<div class="row editing" data-mode="edit" role="group" aria-label="{ROW_LABEL}">{"".join(parts)}</div>'


def frame_row(view: dict, locked: list[bool], run_id: int | None = None, editable: bool = True) -> str:
    """One denoising step: each position's nearest word, coloured by the model's confidence. A row
    of a stored run (`run_id`) lets a click on a word show what the model weighed there; an
    `editable` one links back to editing the template."""
    parts = []
    for i, (word, conf) in enumerate(zip(view["words"], view["confidence"], strict=True)):
        if i == 0 or (word in SPECIAL and word != "END"):
            continue  # START, and PAD/UNK the model is still placing, would only clutter the row
        if word == "END":  # the text ends here (locked END or the model's own)
            if not locked[i]:
                parts.append(_frame_cell("free end", conf, "⏎", f"end of text, confidence {conf:.2f}", i))
            break
        kind = "locked" if locked[i] else "free"
        parts.append(_frame_cell(kind, conf, (LOCK_SVG if locked[i] else "") + escape(word),
                                 f"{'locked: ' if locked[i] else ''}{word}, confidence {conf:.2f}", i))
    stored = f' data-run="{run_id}"' if run_id is not None else ""
    hints = (["<i>click a word: what the model weighed</i>"] if run_id is not None else []) + (
        ['<a class="to-edit" href="#" role="button">edit the template</a>'] if editable else [])
    return (f'<div class="row animating" data-mode="frame" data-step="{view["step"]}"{stored}>{"".join(parts)}</div>'
            f'<div class="status">{" · ".join([status_text(view), *hints])}</div>'
            f'<div class="caption">{escape(caption(view))}</div>')


def _frame_cell(kind: str, confidence: float, label_html: str, title: str, position: int | None = None) -> str:
    at = f' data-position="{position}"' if position is not None else ""
    return (f'<div class="cell {kind}"{at} style="background:{confidence_colour(confidence)}" title="{escape(title)}" '
            f'aria-label="{escape(title)}"><span class="w">{label_html}</span></div>')


def status_text(view: dict) -> str:
    """The step, its t and noise level; a finished run's last step says it is done instead: its
    words are read off the clean estimate, and no noise is left in the text (the last step's t is
    where the final estimate was made, not noise that remains). A run that stopped once its words
    settled says at which step."""
    if view.get("stopped"):
        return (f'done · settled at step <b class="step">{view["step"] + 1}</b> / {view["steps"]} · '
                f'clean text')
    if view["step"] + 1 >= view["steps"]:
        return f'done · <b class="step">{view["steps"]}</b> / {view["steps"]} steps · clean text'
    noise = 1.0 - view["alpha_bar"]
    return (f'step <b class="step">{view["step"] + 1}</b> / {view["steps"]} · t = {view["t"]} · '
            f'noise level 1−ᾱ = {noise:.3f}')


# (noise level above which the line applies, the line), from noisiest to cleanest
DENOISING_CAPTIONS = [
    (0.9, "Almost pure noise: the nearest words are guesses, not yet a sentence."),
    (0.6, "Coarse: a rough draft appears; many words will still change."),
    (0.35, "Refining: more and more words stop changing."),
    (0.0, "Fine detail: small changes now; most words have found their place."),
]
NOISING_CAPTIONS = [
    (0.9, "Pure noise: nothing of the sentence is left. Generation starts from here."),
    (0.6, "Mostly noise: only a few latents are still nearest to their own word."),
    (0.35, "Fading: some latents now sit nearer other words than their own."),
    (0.0, "A little noise: every latent has moved, but most are still nearest to their own word."),
]


def caption(view: dict, forward: bool = False) -> str:
    """One plain-language line for the phase a step is in (by its noise level 1 - alpha_bar)."""
    noise = 1.0 - view["alpha_bar"]
    if forward and noise <= 0:
        return "The clean sentence: every word sits exactly on its own word vector. Drag t to add noise."
    if not forward and (view.get("stopped") or view["step"] + 1 >= view["steps"]):
        return "Done: every position is read as its nearest word."
    lines = NOISING_CAPTIONS if forward else DENOISING_CAPTIONS
    return next(line for level, line in lines if noise > level or level == 0.0)


def noised_row(record: dict, index: int) -> str:
    """The forward process at one time: each word's nearest word now, coloured by how sure that the
    true word can still be read off (its probability), with its distance from the true vector."""
    frame = record["samples"][0]["frames"][index]
    parts = []
    for p, locked in enumerate(record["samples"][0]["locked"]):
        if locked:
            continue
        word, truth = frame["words"][p], record["true_words"][p]
        kind = "free" if word == truth else "free drifted"
        title = (f"nearest word: {word} (p {frame['confidence'][p]:.2f}) · true word: {truth} "
                 f"(p {frame['true_probability'][p]:.2f}) · distance {frame['distance'][p]:.2f}")
        parts.append(f'<div class="cell {kind}" data-position="{p}" style="background:'
                     f'{confidence_colour(frame["true_probability"][p])}" title="{escape(title)}" '
                     f'aria-label="{escape(title)}"><span class="w">{escape(word)}</span>'
                     f'<span class="d">d = {frame["distance"][p]:.2f}</span></div>')
    view = {"step": index, "steps": record["steps"], "t": record["t"][index], "alpha_bar": record["alpha_bar"][index]}
    noise = 1.0 - view["alpha_bar"]
    return (f'<div class="row animating" data-mode="noising" data-step="{index}">{"".join(parts)}</div>'
            f'<div class="status">t = <b class="t">{view["t"]}</b> / {record["t"][-1]} · noise level 1−ᾱ = '
            f'{noise:.3f} · colour: how surely the true word can still be read</div>'
            f'<div class="caption">{escape(caption(view, forward=True))}</div>')


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
