"""The page's handlers: plain data between the page's components and the engine's public API.

Each handler returns (or yields) a dict keyed by the components it updates; a component it leaves
out keeps its value. Every generation builds one `Request` (see editor.form) and goes through
`Pipeline.stream` (the page) or `Pipeline.run` (the /write API); the cost it reports is the
Result's.
"""

from __future__ import annotations

import atexit
import itertools
import json
import math
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr
from gradio.utils import get_upload_folder

from editor import plots
from editor.cells import apply_action, cells_for, cells_from_words, parse_cells, text_from_cells
from editor.compare import IDLE, LeftToRight, comparison_rows
from editor.form import Form, whole_number
from editor.limits import Limits, error_message, shown
from editor.render import edit_row, frame_row, message
from editor.serving import CACHE_AGE_S, KEEP_EXPORTS
from engine.errors import CellActionError, ConfigError, EngineError
from engine.pipeline import Pipeline
from engine.request import Candidate, Result
from engine.views import frame_view, run_view

if TYPE_CHECKING:
    from editor.layout import Page

MAX_FPS = 30  # updates a second at most (see Pacer)
PLOT_EVERY = 10  # replay redraws the three plots this often (they are heavier than the row)

Updates = dict[Any, Any]  # component -> its new value


def row_value(cells: list[dict]) -> dict:
    """The token row's value while the user edits it."""
    return {"html": edit_row(cells), "cells": cells, "action": None}


def checks_text(candidate: Candidate) -> str:
    checks = [("✓ " if ok else "✗ ") + name for name, ok in candidate.checks.items()]
    return " · ".join(checks + [f"{name} {score:.0%}" for name, score in candidate.control_scores.items()])


def recorded_row(state: dict, step: int, cells: list[dict] | None = None) -> dict:
    """The best sample's row at one step of a stored run."""
    record = state["record"]
    best = record["samples"][0]
    view = {"step": step, "steps": record["steps"], "t": record["t"][step],
            "alpha_bar": record["alpha_bar"][step], **best["frames"][step]}
    return {"html": frame_row(view, best["locked"]), "cells": cells or [], "action": None}


def html_value(html: str) -> dict:
    """A row component's value that only shows HTML."""
    return {"html": html, "cells": [], "action": None}


class Pacer:
    """Sleeps so that updates go out at most MAX_FPS a second: frames are paced, never dropped,
    so every step is seen and no backlog builds (the pipeline does not count this as model time)."""

    def __init__(self) -> None:
        self.last = 0.0

    def __call__(self) -> None:
        wait = 1.0 / MAX_FPS - (time.perf_counter() - self.last)
        if wait > 0:
            time.sleep(wait)
        self.last = time.perf_counter()


def stored_run(state: object) -> dict | None:
    return state if isinstance(state, dict) and isinstance(state.get("record"), dict) else None


class Editor:
    """The page's handlers, bound to one loaded pipeline and the page's components."""

    def __init__(self, pipe: Pipeline, page: Page, keep_exports_s: float = CACHE_AGE_S):
        self.pipe = pipe
        self.page = page
        self.keep_exports_s = keep_exports_s
        self.limits = Limits.for_window(pipe.seq_len)  # the most text the handlers read (see editor.limits)
        # Inside Gradio's cache folder, Gradio serves the exports as they are. Elsewhere it would copy
        # every run's files into its cache, and (Gradio 6.31) through the session's copy of the download
        # buttons, whose files its cache expiry (delete_cache) never sweeps. Removed on exit.
        cache = Path(get_upload_folder())
        cache.mkdir(parents=True, exist_ok=True)
        self.export_dir = Path(tempfile.mkdtemp(prefix="dlm-studio-", dir=cache))
        self.exports_lock = threading.Lock()
        atexit.register(shutil.rmtree, str(self.export_dir), ignore_errors=True)  # whatever else close() missed

    def close(self) -> None:
        """Remove the exports folder (the app calls this on exit, SIGTERM included)."""
        shutil.rmtree(self.export_dir, ignore_errors=True)

    # --- editing -------------------------------------------------------------------------
    def set_text(self, text: str, value: dict | None = None) -> Updates:
        """The row for the text; when the row already says that text its cells stay (with the
        words remembered in unlocked cells), and then the message stays too. A text too long for
        the model is refused by its size (before it is split) and the row stays as it was."""
        try:
            cells, kept = cells_for(text, value, self.limits)
        except EngineError as exc:
            return {self.page.msg: message(error_message(exc))}
        if kept:
            return {self.page.row: row_value(cells)}
        return {self.page.row: row_value(cells), self.page.msg: ""}

    def cell_action(self, value: dict) -> Updates:
        page = self.page
        try:
            cells = parse_cells(value, self.limits)
        except CellActionError as exc:
            return {page.msg: message(error_message(exc))}
        try:
            cells = apply_action(cells, (value.get("action") if isinstance(value, dict) else None) or {}, self.limits)
        except CellActionError as exc:
            return {page.row: row_value(cells), page.text: text_from_cells(cells),
                    page.msg: message(error_message(exc))}
        return {page.row: row_value(cells), page.text: text_from_cells(cells), page.msg: ""}

    def use_result(self, choice: int | None, state: dict | None) -> Updates:
        page = self.page
        candidates = (state.get("candidates") if isinstance(state, dict) else None) or []
        try:
            index = whole_number(choice, "result", -1)
        except EngineError:
            index = -1
        if not 0 <= index < len(candidates):
            return {page.msg: message("generate first, then pick one of the results to use")}
        cells = cells_from_words(candidates[index]["words"])
        return {page.row: row_value(cells), page.text: text_from_cells(cells),
                page.msg: message("copied into the row: unlock words to rewrite them", "info")}

    # --- generating ----------------------------------------------------------------------
    def generate(self, text: str, row: dict | None, compare: object = False, **values: object) -> Iterator[Updates]:
        """Stream the row after every denoising step, then the ranked results, plots and exports.
        `values` are the settings and the guidance panel's inputs by name (see Form.from_values).
        With `compare`, the same request is written left to right beside it, a word per step."""
        page = self.page
        try:
            cells, _ = cells_for(text, row, self.limits)
        except EngineError as exc:  # a text too long for the model: the row stays as it was
            yield {page.msg: message(error_message(exc))}
            return
        try:
            if not isinstance(compare, bool):
                raise ConfigError(f"compare must be true or false, got {shown(compare)}")
            request = Form.from_values(text_from_cells(cells) or None, values, limits=self.limits).request()
            stream = self.pipe.stream(request)
            first = next(stream)  # plans the request: a bad one fails here, before any frame
        except EngineError as exc:
            yield {page.row: row_value(cells), page.msg: message(error_message(exc))}
            return
        left = LeftToRight(self.pipe, request) if compare else None
        paced = Pacer()
        for item in itertools.chain([first], stream):
            if isinstance(item, Result):
                while left is not None and not left.done:  # diffusion finished first: the other side writes on
                    paced()
                    yield {page.ar_row: html_value(left.advance())}
                yield self.finished(item, cells, left)
                return
            paced()
            view = frame_view(item, self.pipe.tokenizer, 0, request.sampling.steps)
            updates = {page.row: {"html": frame_row(view, view["locked"]), "cells": cells, "action": None},
                       page.msg: ""}
            if left is not None:
                updates[page.ar_row] = html_value(left.advance())
            yield updates

    def finished(self, result: Result, cells: list[dict], left: LeftToRight | None = None) -> Updates:
        """Every output after a run: the best sample's last step, the summary, the ranked table,
        the stored run, the step slider, the plots, the exports, the result picker, and the
        comparison with left-to-right writing when it ran."""
        page = self.page
        record = run_view(result, self.pipe.tokenizer)
        state = {"record": record, "candidates": [c.to_dict() for c in result.best]}
        last = record["steps"] - 1
        heat, proj, score = plots.all_figures(record, 0)
        json_path, html_path = self.exports(record)
        return {
            page.row: recorded_row(state, last, cells),
            page.msg: message(self.summary(result, record["steps"]), "info"),
            page.results: [[i + 1, c.text, round(c.judge_ppl, 2) if c.judge_ppl else None, checks_text(c)]
                           for i, c in enumerate(result.best)],
            page.state: state,
            page.step_slider: gr.update(maximum=last + 1, value=last + 1, interactive=True),
            page.heat: heat, page.proj: proj, page.score: score,
            page.json_file: json_path, page.html_file: html_path,
            page.choice: gr.update(choices=[(f"{i + 1}: {c.text}", i) for i, c in enumerate(result.best)], value=0),
            page.ar_row: html_value(left.html if left else IDLE),
            page.compare: comparison_rows(result, left) if left else [],
        }

    def summary(self, result: Result, steps: int) -> str:
        cost = result.cost
        ranking = "ranked by the fluency judge" if self.pipe.judge else "no fluency judge in this model folder"
        passes = f"{cost.denoiser_passes} denoiser passes"
        if cost.classifier_passes:
            passes += f" + {cost.classifier_passes} guide passes"
        return (f"best {len(result.best)} of {cost.rows} samples, {steps} steps, {passes}, "
                f"{cost.seconds:.2f} s of model time; {ranking}")

    def exports(self, record: dict) -> tuple[str, str]:
        """Files for the two download buttons, in a folder of their own (users never share a file);
        older folders go, so that at most KEEP_EXPORTS runs, none older than `keep_exports_s`, stay."""
        with self.exports_lock:  # two runs finishing at once must not prune each other's folder
            runs = sorted((p.stat().st_mtime, p) for p in self.export_dir.iterdir())
            expired = time.time() - self.keep_exports_s
            for i, (mtime, old) in enumerate(runs):
                if i <= len(runs) - KEEP_EXPORTS or mtime < expired:
                    shutil.rmtree(old, ignore_errors=True)  # a user may still be downloading it: not an error
            folder = Path(tempfile.mkdtemp(prefix=time.strftime("run-%Y%m%d-%H%M%S-"), dir=self.export_dir))
        json_path, html_path = folder / "trajectory.json", folder / "plots.html"
        json_path.write_text(json.dumps(record))
        html_path.write_text(plots.figures_html(record))
        return str(json_path), str(html_path)

    # --- replaying -----------------------------------------------------------------------
    def scrub(self, step: int, state: dict | None, value: dict | None) -> Updates:
        page = self.page
        run = stored_run(state)
        if run is None or not isinstance(step, int | float) or isinstance(step, bool) or not math.isfinite(step):
            return {}
        index = max(0, min(int(step) - 1, run["record"]["steps"] - 1))
        cells = value.get("cells", []) if isinstance(value, dict) else []
        heat, proj, score = plots.all_figures(run["record"], 0, index)
        return {page.row: recorded_row(run, index, cells), page.heat: heat, page.proj: proj, page.score: score}

    def play(self, state: dict | None, value: dict | None) -> Iterator[Updates]:
        """Replay the stored run: the row every step, the plots every PLOT_EVERY steps and at the end."""
        page = self.page
        run = stored_run(state)
        if run is None:
            yield {}
            return
        cells = value.get("cells", []) if isinstance(value, dict) else []
        last = run["record"]["steps"] - 1
        for step in range(last + 1):
            time.sleep(1.0 / MAX_FPS)
            updates = {page.row: recorded_row(run, step, cells), page.step_slider: step + 1}
            if step % PLOT_EVERY == 0 or step == last:
                heat, proj, score = plots.all_figures(run["record"], 0, step)
                updates |= {page.heat: heat, page.proj: proj, page.score: score}
            yield updates

    # --- the JSON API --------------------------------------------------------------------
    def write(self, text: str | None, length: object = None, steps: object = None, samples: object = None,
              seed: object = None, **guidance: object) -> dict:
        """Ranked results for a template as JSON, with the run's cost (no animation). Guidance by
        name: one value per steered control kind (e.g. pos: tags separated by spaces; semantic:
        ["food=Italian", ...]), strength, fluency, weights ({"pos": 1.0, ...} when combining
        controls) and reads ("x_t" or "x0_hat"). Bad input gives {"error": "<one line>"}, text
        too long for the model before anything reads it."""
        try:
            form = Form.from_values(text, {"length": length, "steps": steps, "samples": samples, "seed": seed,
                                           **guidance}, record_latents=False, limits=self.limits)
            result = self.pipe.run(form.request())
        except EngineError as exc:
            return {"error": error_message(exc)}
        return result.to_dict()

