"""Replaying a finished run: the step slider and Play (with the pinned run A beside it, for A/B),
pinning, and what the model weighed at a clicked word. Plain data from the stored runs (see
editor.runs); no model here."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import gradio as gr

from editor import plots, runs
from editor.form import number
from editor.limits import error_message, shown
from editor.outputs import updates
from editor.render import frame_row, message
from engine.errors import ConfigError, EngineError
from engine.text.tokenizer import END, PAD, START

if TYPE_CHECKING:
    from editor.layout import Page

MAX_FPS = 30  # frames a second at most: live runs (editor.handlers.Pacer) and replay's default speed
DEFAULT_SPEED = 10  # playback, steps per second
MAX_SPEED = 60
PLOT_EVERY = 10  # replay redraws the three plots this often (they are heavier than the row)

Updates = dict[Any, Any]


def recorded_row(state: dict, step: int, cells: list[dict] | None = None, editable: bool = True) -> dict:
    """The best sample's row at one step of a stored run. Its `cells` stay the ones the run was
    asked for (what the text box says); its `result` is the run's finished sentence, which Vary
    rewords while the row shows the run."""
    record = state["record"]
    best = record["samples"][0]
    last = step == record["steps"] - 1
    view = {"step": step, "steps": record.get("planned_steps") or record["steps"], "t": record["t"][step],
            "alpha_bar": record["alpha_bar"][step], "stopped": last and record.get("stopped", False),
            **best["frames"][step]}
    return {"html": frame_row(view, best["locked"], state.get("id"), editable), "cells": cells or [],
            "action": None, "result": result_cells(state)}


def result_cells(state: dict) -> list[dict]:
    """A stored run's finished sentence as row cells: the best sample's last words up to its END,
    each locked where the run held it (the template's words locked, the words the model wrote not)."""
    best = state["record"]["samples"][0]
    cells = []
    for word, locked in zip(best["frames"][-1]["words"][1:], best["locked"][1:], strict=True):
        if word == END:
            break
        if word not in (PAD, START):
            cells.append({"word": word, "locked": locked})
    return cells


def number_input(value: object) -> int | None:
    """A slider's or an index's value as an int, or None when it is not a finite number."""
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        return None
    return int(value)


def stored_run(state: object) -> dict | None:
    return state if isinstance(state, dict) and isinstance(state.get("record"), dict) else None


def steps_per_second(speed: object) -> float:
    """A playback speed as the page sends it: 1 to MAX_SPEED steps a second."""
    value = number(speed, "playback speed", DEFAULT_SPEED)
    if not 1 <= value <= MAX_SPEED:
        raise ConfigError(f"playback speed must be from 1 to {MAX_SPEED} steps a second, got {shown(speed)}")
    return value

AB = ("pinned_row", "ab_table", "ab_plot")  # run A beside run B: the parts `ab_view` updates


class Replay:
    """The replay handlers, bound to the page's components."""

    def __init__(self, page: Page):
        self.page = page

    @property
    def view(self) -> Page:
        """What the handlers' declared updates name (editor.outputs)."""
        return self.page

    @updates("pinned", "msg", *AB)
    def pin(self, state: dict | None) -> Updates:
        """Keep the run on the page as A: the next runs show beside it (B) on one step slider."""
        page = self.page
        run = stored_run(state)
        if run is None:
            return {page.msg: message("generate first, then pin the run to compare the next ones with it")}
        return {page.pinned: run, page.msg: message("pinned as A: change any setting and run again (same seed) "
                                                    "to see B beside it", "info"),
                **self.ab_view(run, None, 1.0)}

    @updates("pinned", *AB)
    def unpin(self) -> Updates:
        return {self.page.pinned: None, **self.ab_view(None, None, 1.0)}

    def ab_view(self, pinned: dict | None, run: dict | None, fraction: float) -> Updates:
        """The pinned run A at a fraction of its way, and beside run B the table and plots of both;
        whatever has no run to show is hidden."""
        page = self.page
        hidden = {component: gr.update(visible=False) for component in (page.pinned_row, page.ab_table, page.ab_plot)}
        a = stored_run(pinned)
        if a is None:
            return hidden
        shown_a = recorded_row({**a, "id": None}, runs.step_of(a, fraction), editable=False)  # not clickable
        shown_a["html"] = '<div class="status"><b>A (pinned)</b></div>' + shown_a["html"]
        updates = {page.pinned_row: gr.update(value=shown_a, visible=True)}
        b = stored_run(run)
        if b is None or b["id"] == a["id"]:
            return hidden | updates
        figure = plots.ab_figure(a, b, runs.step_of(a, fraction), runs.step_of(b, fraction))
        return updates | {page.ab_table: gr.update(value=runs.ab_rows(a, b), visible=True),
                          page.ab_plot: gr.update(value=figure, visible=True)}

    @updates("row", "heat", "proj", "score", *AB)
    def scrub(self, step: int, state: dict | None, value: dict | None, pinned: dict | None = None) -> Updates:
        page = self.page
        run = stored_run(state)
        step = number_input(step)
        if run is None or step is None:
            return {page.row: gr.skip()}  # nothing to show: the page stays as it is
        last = run["record"]["steps"] - 1
        index = max(0, min(step - 1, last))
        cells = value.get("cells", []) if isinstance(value, dict) else []
        heat, proj, score = plots.all_figures(run["record"], 0, index)
        updates = {page.row: recorded_row(run, index, cells), page.heat: heat, page.proj: proj, page.score: score}
        return updates | (self.ab_view(pinned, run, index / last if last else 1.0) if pinned else {})

    @updates("row", "step_slider", "heat", "proj", "score", "msg", *AB)
    def play(self, state: dict | None, value: dict | None, speed: object = MAX_FPS,
             pinned: dict | None = None) -> Iterator[Updates]:
        """Replay the stored run at `speed` steps a second: the row every step, the plots every
        PLOT_EVERY steps and at the end (and the pinned run A beside it)."""
        page = self.page
        run = stored_run(state)
        try:
            pause = 1.0 / steps_per_second(speed)
        except EngineError as exc:
            yield {page.msg: message(error_message(exc))}
            return
        if run is None:
            yield {page.row: gr.skip()}
            return
        cells = value.get("cells", []) if isinstance(value, dict) else []
        last = run["record"]["steps"] - 1
        for step in range(last + 1):
            time.sleep(pause)
            updates = {page.row: recorded_row(run, step, cells), page.step_slider: step + 1}
            if step % PLOT_EVERY == 0 or step == last:
                heat, proj, score = plots.all_figures(run["record"], 0, step)
                updates |= {page.heat: heat, page.proj: proj, page.score: score}
                if pinned:
                    updates |= self.ab_view(pinned, run, step / last if last else 1.0)
            yield updates

    @updates("alternatives", "msg")
    def inspect(self, value: dict | None, state: dict | None) -> Updates:
        """What the model weighed at the clicked word of a stored run, at the step on screen: its
        five most likely words as bars (and each guide's belief, in a guided run)."""
        page = self.page
        run = stored_run(state)
        action = value.get("action") if isinstance(value, dict) else None
        if not isinstance(action, dict):
            return {page.alternatives: gr.skip()}
        step, position = number_input(action.get("step")), number_input(action.get("position"))
        if run is None or action.get("run") != run.get("id") or step is None or position is None:
            return {page.msg: message("let the run finish, then click a word to see what the model weighed")}
        sample = run["record"]["samples"][0]
        if not (0 <= step < run["record"]["steps"] and 0 <= position < len(sample["locked"])):
            return {page.msg: message(f"there is no word at position {position} of step {step + 1}")}
        return {page.alternatives: gr.update(value=plots.alternatives(run["record"], 0, step, position), visible=True)}
