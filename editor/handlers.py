"""The page's handlers: plain data between the page's components and the engine's public API.

Each handler returns (or yields) a dict keyed by the components it updates; a component it leaves
out keeps its value. Every generation builds one `Request` (see editor.form) and goes through
`Pipeline.stream` (the page) or `Pipeline.run` (the /write API); the cost it reports is the
Result's.
"""

from __future__ import annotations

import atexit
import itertools
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr
from gradio.utils import get_upload_folder

from editor import plots, runs
from editor.cells import (
    apply_action,
    cells_for,
    cells_from_words,
    check_row,
    parse_cells,
    shown_result,
    text_from_cells,
    variation,
)
from editor.compare import IDLE, LeftToRight, comparison_rows
from editor.form import READ, Form, read, whole_number
from editor.limits import Limits, error_message, shown
from editor.outputs import updates
from editor.render import edit_row, frame_row, html_value, message
from editor.replay import AB, MAX_FPS, Replay, recorded_row, stored_run
from editor.serving import CACHE_AGE_S, KEEP_EXPORTS
from editor.teach import Teach
from engine.errors import CellActionError, ConfigError, EngineError
from engine.options import check_value
from engine.pipeline import Pipeline
from engine.request import Request, Result
from engine.views import frame_view, run_view

if TYPE_CHECKING:
    from editor.layout import Page


Updates = dict[Any, Any]  # component -> its new value
# the parts a shown run updates (Editor.show), and those beside it (Editor.runs_view)
SHOWN_RUN = ("row", "msg", "results", "state", "step_slider", "heat", "proj", "score", "json_file", "html_file",
             "choice")
AROUND = ("history_list", "alternatives", *AB)
STREAMED = ("row", "msg", "state", "history", "ar_row", "fresh")  # the page's run while it streams
FINISHED = (*SHOWN_RUN, "ar_row", "compare", "history")  # the API's run, every output at its end
RESTORED = (*SHOWN_RUN, *AROUND, "text", "settings")  # a kept run back on the page


def row_value(cells: list[dict]) -> dict:
    """The token row's value while the user edits it."""
    return {"html": edit_row(cells), "cells": cells, "action": None}


def checks_text(candidate: dict) -> str:
    checks = [("✓ " if ok else "✗ ") + name for name, ok in candidate["checks"].items()]
    return " · ".join(checks + [f"{name} {score:.0%}" for name, score in candidate["control_scores"].items()])


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


class Editor:
    """The page's handlers, bound to one loaded pipeline and the page's components."""

    def __init__(self, pipe: Pipeline, page: Page, keep_exports_s: float = CACHE_AGE_S):
        self.pipe = pipe
        self.page = page
        self.keep_exports_s = keep_exports_s
        self.limits = Limits.for_window(pipe.seq_len)  # the most text the handlers read (see editor.limits)
        self.teach = Teach(pipe, page.teach, self.limits)
        self.replay = Replay(page)
        # Inside Gradio's cache folder, Gradio serves the exports as they are. Elsewhere it would copy
        # every run's files into its cache, and (Gradio 6.31) through the session's copy of the download
        # buttons, whose files its cache expiry (delete_cache) never sweeps. Removed on exit.
        cache = Path(get_upload_folder())
        cache.mkdir(parents=True, exist_ok=True)
        self.export_dir = Path(tempfile.mkdtemp(prefix="dlm-studio-", dir=cache))
        self.exports_lock = threading.Lock()
        atexit.register(shutil.rmtree, str(self.export_dir), ignore_errors=True)  # whatever else close() missed

    @property
    def view(self) -> Page:
        """What the handlers' declared updates name (editor.outputs)."""
        return self.page

    def close(self) -> None:
        """Remove the exports folder (the app calls this on exit, SIGTERM included)."""
        shutil.rmtree(self.export_dir, ignore_errors=True)

    # --- editing -------------------------------------------------------------------------
    @updates("row", "msg")
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

    @updates("row", "text", "msg")
    def cell_action(self, value: dict) -> Updates:
        """Apply the row's action. The row's answer echoes the action's `id` (the page's row sends
        its next action once it has drawn the answer to this one, see editor.token_row)."""
        page = self.page
        action = (value.get("action") if isinstance(value, dict) else None) or {}
        answer = {"answered": action["id"]} if isinstance(action, dict) and isinstance(action.get("id"), int) else {}
        try:
            cells = parse_cells(value, self.limits)
        except CellActionError as exc:  # the row stays as drawn, and answers, so the page's next action goes
            return {page.row: value | answer, page.msg: message(error_message(exc))} if answer else \
                {page.msg: message(error_message(exc))}
        try:
            cells = apply_action(cells, action, self.limits)
        except CellActionError as exc:
            return {page.row: row_value(cells) | answer, page.text: text_from_cells(cells),
                    page.msg: message(error_message(exc))}
        return {page.row: row_value(cells) | answer, page.text: text_from_cells(cells), page.msg: ""}

    @updates("row", "text", "msg")
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
        try:
            check_row(cells, self.limits)
        except EngineError as exc:  # a loaded file's words the row cannot hold
            return {page.msg: message(error_message(exc))}
        return {page.row: row_value(cells), page.text: text_from_cells(cells),
                page.msg: message("copied into the row: unlock words to rewrite them", "info")}

    # --- generating ----------------------------------------------------------------------
    @updates(*FINISHED)
    def generate(self, text: str, row: dict | None, compare: object = False, history: list | None = None,
                 **values: object) -> Iterator[Updates]:
        """Stream the row after every denoising step, then the ranked results, plots and exports
        (the /generate API: see `generation`)."""
        yield from self.generation(text, row, compare, history, **values)

    def generation(self, text: str, row: dict | None, compare: object = False, history: list | None = None, *,
                   quick: bool = False, **values: object) -> Iterator[Updates]:
        """Stream the row after every denoising step, then the ranked results, plots and exports.
        `values` are the settings and the guidance panel's inputs by name (see Form.from_values).
        With `compare`, the same request is written left to right beside it, a word per step. The
        run joins the session's `history` (`runs_view` then shows the list and A/B). `quick`: the
        page's way, see `generate_on_page`."""
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
        except EngineError as exc:
            yield {page.row: row_value(cells), page.msg: message(error_message(exc))}
            return
        settings = {**values, "compare": compare}
        yield from self.run(request, cells, settings, history=history, compare=compare, quick=quick)

    @updates(*STREAMED)
    def generate_on_page(self, text: str, row: dict | None, compare: object = False, history: list | None = None,
                         **values: object) -> Iterator[Updates]:
        """The page's Generate: the same run, streamed into the row alone and ending on the stored
        run; `show_fresh` then fills in the results, plots and exports. Gradio redraws every output
        a frame leaves out, so a streaming event with few outputs streams several times faster."""
        yield from self.generation(text, row, compare, history, quick=True, **values)

    @updates(*STREAMED)
    def vary_on_page(self, text: str, row: dict | None, vary_strength: object = None, history: list | None = None,
                     **values: object) -> Iterator[Updates]:
        """The page's Vary, streamed as `generate_on_page` streams."""
        yield from self.variation(text, row, vary_strength, history, quick=True, **values)

    @updates(*FINISHED)
    def vary(self, text: str, row: dict | None, vary_strength: object = None, history: list | None = None,
             **values: object) -> Iterator[Updates]:
        """Reword the row's sentence (the /vary API: see `variation`)."""
        yield from self.variation(text, row, vary_strength, history, **values)

    def variation(self, text: str, row: dict | None, vary_strength: object = None, history: list | None = None, *,
                  quick: bool = False, **values: object) -> Iterator[Updates]:
        """Reword the row's sentence (SDEdit): start from its words noised to vary_strength x T and
        denoise; locked words stay, and only the unlocked ones may change (a row with every word
        locked has nothing to vary). A row that shows a finished run (and still says the text box's
        text) rewords that run's sentence, with the words its template locked. Streams as Generate
        does."""
        page = self.page
        try:
            cells, kept = cells_for(text, row, self.limits)
        except EngineError as exc:
            yield {page.msg: message(error_message(exc))}
            return
        try:
            sentence, template = variation((shown_result(row, self.limits) if kept else []) or cells)
            form = Form.from_values(template, {**values, "vary": sentence, "vary_strength": vary_strength},
                                    limits=self.limits)
            request = form.request()
        except EngineError as exc:
            yield {page.row: row_value(cells), page.msg: message(error_message(exc))}
            return
        settings = {**values, "vary_strength": request.sampling.vary_strength, "varied": True}
        yield from self.run(request, cells, settings, history=history, quick=quick)

    def run(self, request: Request, cells: list[dict], settings: dict, *, history: list | None,
            compare: bool = False, quick: bool = False) -> Iterator[Updates]:
        """The one streaming loop of Generate and Vary: a frame per step (and a left-to-right word
        beside it when comparing), then everything a finished run shows."""
        page = self.page
        try:
            stream = self.pipe.stream(request)
            first = next(stream)  # plans the request: a bad one fails here, before any frame
        except EngineError as exc:
            yield {page.row: row_value(cells), page.msg: message(error_message(exc))}
            return
        left = LeftToRight(self.pipe, request) if compare else None
        paced, planned = Pacer(), self.planned_steps(request)
        for item in itertools.chain([first], stream):
            if isinstance(item, Result):
                while left is not None and not left.done:  # diffusion finished first: the other side writes on
                    paced()
                    yield {page.ar_row: html_value(left.advance())}
                yield self.finished(item, request, cells, settings, left=left, history=history, quick=quick)
                return
            paced()
            view = frame_view(item, self.pipe.tokenizer, 0, planned)
            updates = {page.row: {"html": frame_row(view, view["locked"]), "cells": cells, "action": None},
                       page.msg: ""}
            if left is not None:
                updates[page.ar_row] = html_value(left.advance())
            yield updates

    def finished(self, result: Result, request: Request, cells: list[dict], settings: dict, *,
                 left: LeftToRight | None = None, history: list | None = None, quick: bool = False) -> Updates:
        """Every output after a run: the stored run shown (see `show`), added to the history, and
        the comparison with left-to-right writing when it ran. `quick` (the page): only the row,
        the summary and the stored run, marked fresh for `show_fresh`. The history list and A/B
        follow in `runs_view`."""
        page = self.page
        planned = self.planned_steps(request)
        record = run_view(result, self.pipe.tokenizer, planned)
        run = runs.stored(record, [c.to_dict() for c in result.best], number=runs.next_number(history), cells=cells,
                          text=text_from_cells(cells), settings=settings, summary=self.summary(result, planned),
                          provenance=self.provenance(request))
        run["comparison"] = comparison_rows(result, left) if left else []
        history = runs.remembered(history, run)
        ending = {page.history: history, page.ar_row: html_value(left.html if left else IDLE)}
        if quick:
            return {page.row: recorded_row(run, record["steps"] - 1, cells), page.msg: message(run["summary"], "info"),
                    page.state: run, page.fresh: True, **ending}
        return {**self.show(run, cells), page.compare: run["comparison"], **ending}

    @updates(*SHOWN_RUN[2:], "compare", "fresh")  # the row and the message are the run's already
    def show_fresh(self, state: dict | None, fresh: bool = False) -> Updates:
        """After the page's run: what else a finished run shows, once (a run that failed or was
        stopped left nothing fresh, and the page stays as it is). The row and the message are the
        run's already, and the user may have moved on from them (back to editing, say)."""
        page = self.page
        run = stored_run(state)
        if not fresh or run is None:
            return {page.fresh: False}
        shown = {k: v for k, v in self.show(run).items() if k not in (page.row, page.msg)}
        return {**shown, page.compare: run.get("comparison", []), page.fresh: False}

    def provenance(self, request: Request) -> dict:
        """What an exported run records of how it was made: the engine's provenance and the page's packages."""
        provenance = self.pipe.provenance(request)
        provenance["versions"] |= {name: version(name) for name in ("gradio", "plotly")}
        return provenance

    def show(self, run: dict, cells: list[dict] | None = None) -> Updates:
        """A stored run on the page: its best sample's last step, the summary, the ranked table, the
        step slider, the plots, fresh export files, the result picker."""
        page = self.page
        record = run["record"]
        last = record["steps"] - 1
        heat, proj, score = plots.all_figures(record, 0)
        json_path, html_path = self.exports(run)
        candidates = run["candidates"]
        return {
            page.row: recorded_row(run, last, cells if cells is not None else run["cells"]),
            page.msg: message(run["summary"], "info"),
            page.results: [[i + 1, c["text"], round(c["judge_ppl"], 2) if c["judge_ppl"] else None, checks_text(c)]
                           for i, c in enumerate(candidates)],
            page.state: run,
            page.step_slider: gr.update(maximum=last + 1, value=last + 1, interactive=True),
            page.heat: heat, page.proj: proj, page.score: score,
            page.json_file: json_path, page.html_file: html_path,
            page.choice: gr.update(choices=[(f"{i + 1}: {c['text']}", i) for i, c in enumerate(candidates)], value=0),
        }

    @updates(*AROUND)
    def runs_view(self, state: dict | None, history: list | None, pinned: dict | None = None) -> Updates:
        """The session's history list (the run on the page selected) and, with a pinned run, A
        beside it; the word inspector closes (it showed the run before)."""
        page = self.page
        run = stored_run(state)
        return {page.history_list: gr.update(choices=runs.history_choices(history),
                                             value=run["id"] if run else None),
                page.alternatives: gr.update(visible=False), **self.replay.ab_view(pinned, run, 1.0)}

    def planned_steps(self, request: Request) -> int:
        """The steps a request's run is asked for (one that settles stops before them)."""
        return len(request.sampling.times(self.pipe.model.config.T))

    def summary(self, result: Result, planned: int) -> str:
        cost = result.cost
        steps = f"{planned} steps" if result.trajectory.stopped_at is None else \
            f"settled after {len(result.trajectory.frames)} of {planned} steps"
        ranking = "ranked by the fluency judge" if self.pipe.judge else "no fluency judge in this model folder"
        passes = f"{cost.denoiser_passes} denoiser passes"
        if cost.classifier_passes:
            passes += f" + {cost.classifier_passes} guide passes"
        return (f"best {len(result.best)} of {cost.rows} samples, {steps}, {passes}, "
                f"{cost.seconds:.2f} s of model time; {ranking}")

    def exports(self, run: dict) -> tuple[str, str]:
        """Files for the two download buttons, in a folder of their own (users never share a file);
        older folders go, so that at most KEEP_EXPORTS runs, none older than `keep_exports_s`, stay."""
        with self.exports_lock:  # two runs finishing at once must not prune each other's folder
            existing = sorted((p.stat().st_mtime, p) for p in self.export_dir.iterdir())
            expired = time.time() - self.keep_exports_s
            for i, (mtime, old) in enumerate(existing):
                if i <= len(existing) - KEEP_EXPORTS or mtime < expired:
                    shutil.rmtree(old, ignore_errors=True)  # a user may still be downloading it: not an error
            folder = Path(tempfile.mkdtemp(prefix=time.strftime("run-%Y%m%d-%H%M%S-"), dir=self.export_dir))
        json_path, html_path = folder / "trajectory.json", folder / "plots.html"
        json_path.write_text(runs.export_text(run))
        html_path.write_text(plots.figures_html(run["record"]))
        return str(json_path), str(html_path)

    # --- runs kept: history, loading, A/B ------------------------------------------------
    @updates(*RESTORED)
    def restore(self, run_id: object, history: list | None, pinned: dict | None = None) -> Updates:
        """A run of the session's history back on the page: its row, settings, results and plots."""
        run = next((r for r in history or [] if r["id"] == run_id), None)
        if run is None:
            return {self.page.msg: message("that run is no longer in this session's history")}
        return self.restored(run, history, pinned)

    @updates(*RESTORED, "history")
    def load_run(self, path: object, history: list | None = None, pinned: dict | None = None) -> Updates:
        """An exported run file replayed on the page (and added to the history); a file that is not
        one says what is wrong, and the page stays as it was."""
        page = self.page
        try:
            if not isinstance(path, str | Path) or not Path(path).is_file():
                raise ConfigError("choose a trajectory JSON exported by DLM Studio to load")
            run = runs.read_run(Path(path).read_bytes(), runs.next_number(history))
        except EngineError as exc:
            return {page.msg: message(error_message(exc))}
        history = runs.remembered(history, run)
        return {**self.restored(run, history, pinned), page.history: history}

    def restored(self, run: dict, history: list | None, pinned: dict | None) -> Updates:
        """A kept run shown, with the text, the row and the settings that made it; settings that
        this model would refuse (a file from another model) or that the page's sliders cannot
        show stay as they are, and the message says so."""
        page = self.page
        updates = {**self.show(run, run["cells"]), **self.runs_view(run, history, pinned)}
        settings = {k: v for k, v in runs.settings_of(run).items() if k in page.settings}
        try:
            for name, value in settings.items():  # each option read and in the engine's range
                if name in READ and (typed := read(READ[name], value, self.limits)) is not None:
                    check_value(READ[name], typed)
            self.pipe.check(Form.from_values(None, {k: v for k, v in settings.items()  # the model's own checks
                                                    if k not in ("compare", "vary_strength")},
                                             limits=self.limits).request())
            if not isinstance(settings.get("compare", False), bool):
                raise ConfigError(f"compare must be true or false, got {shown(settings['compare'])}")
            for name, value in settings.items():
                component = page.settings[name]
                low, high = getattr(component, "minimum", None), getattr(component, "maximum", None)
                if low is not None and isinstance(value, int | float) and not low <= value <= high:
                    raise ConfigError(f"{name} {value:g} is outside the page's range {low:g} to {high:g}")
        except EngineError as exc:
            updates[page.msg] = message(f"{run['summary']} · its settings were not restored: {error_message(exc)}",
                                        "info")
            settings = {}
        return {**updates, page.text: run["text"], **{page.settings[k]: v for k, v in settings.items()}}

    def write(self, text: str | None, length: object = None, steps: object = None, samples: object = None,
              seed: object = None, **guidance: object) -> dict:
        """Ranked results for a template as JSON, with the run's cost (no animation). Guidance by
        name: one value per steered control kind (e.g. pos: tags separated by spaces; semantic:
        ["food=Italian", ...]), strength, fluency, weights ({"pos": 1.0, ...} when combining
        controls) and reads ("x_t" or "x0_hat"); `vary` (a sentence to reword, the text then
        locking words of it), `vary_strength` and `every_step` (run every step, not stopping once the
        words settle). Bad input gives {"error": "<one line>"}, text too long for the model before
        anything reads it."""
        try:
            form = Form.from_values(text, {"length": length, "steps": steps, "samples": samples, "seed": seed,
                                           **guidance}, record_latents=False, limits=self.limits)
            result = self.pipe.run(form.request())
        except EngineError as exc:
            return {"error": error_message(exc)}
        return result.to_dict()
