"""The editor page: type or click a template, lock words, pick controls, watch the text condense.

Handlers here only move plain data between the page and engine's public API (Pipeline, records).
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import gradio as gr

from editor import plots
from editor.cells import (
    CellActionError,
    apply_action,
    cells_from_text,
    cells_from_words,
    parse_cells,
    text_from_cells,
)
from editor.controls_panel import ControlValues, build_panel
from editor.render import edit_row, frame_row, message
from editor.token_row import TokenRow
from engine.controls.base import Control
from engine.controls.guidance import Guidance, GuidanceOptions
from engine.controls.targets import targets_from_fields
from engine.diffusion.sampler import SampleOptions
from engine.errors import EngineError
from engine.pipeline import MAX_BATCH, Candidate, Pipeline
from engine.text.template import Template
from engine.views import frame_view, run_record

EXAMPLES = [
    "The Eagle is a _ _ coffee shop near _ _ .",
    "_ _ _ is a pub in the city centre .",
    "Blue Spice serves ... food .",
    "There is a cheap _ called _ _ near the river .",
    "_ _ _ _ _ _ _ _ _ _",
]
DEFAULT_GUIDANCE = GuidanceOptions()
NO_CONTROLS = ControlValues()
MAX_FPS = 30  # frames are paced, never dropped, so every step is seen and no backlog builds
PLOT_EVERY = 10  # replay redraws the three plots this often (they are heavier than the row)
MODEL_CONCURRENCY = 2  # two cores: more simultaneous runs only share them
KEEP_EXPORTS = 20  # run folders of downloadable files kept on disk


def row_value(cells: list[dict]) -> dict:
    return {"html": edit_row(cells), "cells": cells, "action": None}


class Request(NamedTuple):
    """One checked generation request."""

    templates: list[Template]
    options: SampleOptions
    seed: int
    keep: int  # how many ranked results to show (a `...` blank samples more rows than that)
    controls: list[Control]
    guide: Guidance | None


def whole_number(value: object, name: str, low: int, high: int) -> int:
    """A control's value as an int in [low, high], or an EngineError naming the control."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise EngineError(f"{name} must be a whole number, got {value!r}") from None
    if math.isnan(number) or not low <= number <= high or number != int(number):
        raise EngineError(f"{name} must be a whole number from {low} to {high}, got {value!r}")
    return int(number)


def checks_text(candidate: Candidate) -> str:
    checks = [("✓ " if ok else "✗ ") + name for name, ok in candidate.checks.items()]
    return " · ".join(checks + [f"{name} {score:.0%}" for name, score in candidate.control_scores.items()])


def number(value: object, name: str, low: float, high: float) -> float:
    """A control's value as a float in [low, high], or an EngineError naming the control."""
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise EngineError(f"{name} must be a number, got {value!r}") from None
    if math.isnan(result) or not low <= result <= high:
        raise EngineError(f"{name} must be a number from {low} to {high}, got {value!r}")
    return result


class Editor:
    """The page's handlers, bound to one loaded pipeline."""

    def __init__(self, pipe: Pipeline):
        self.pipe = pipe
        self.export_dir = Path(tempfile.mkdtemp(prefix="dlm-studio-"))

    # --- editing -------------------------------------------------------------------------
    def set_text(self, text: str, value: dict | None = None) -> tuple[dict, str]:
        """The row for the text; the current cells stay (with words remembered in unlocked cells)
        when the text is what they already say, and then the message stays too."""
        text = text if isinstance(text, str) else ""
        try:
            cells = parse_cells(value)
        except CellActionError:
            cells = []
        if text_from_cells(cells) == " ".join(text.split()):
            return row_value(cells), gr.skip()
        return row_value(cells_from_text(text)), ""

    def cell_action(self, value: dict) -> tuple[dict, str, str]:
        try:
            cells = parse_cells(value)
        except CellActionError as exc:
            return gr.skip(), gr.skip(), message(str(exc))
        try:
            cells = apply_action(cells, (value.get("action") if isinstance(value, dict) else None) or {})
        except CellActionError as exc:
            return row_value(cells), text_from_cells(cells), message(str(exc))
        return row_value(cells), text_from_cells(cells), ""

    def use_result(self, choice: int | None, state: dict | None) -> tuple[dict, str, str]:
        candidates = (state.get("candidates") if isinstance(state, dict) else None) or []
        try:
            index = whole_number(choice, "result", 0, len(candidates) - 1)
        except EngineError:
            return gr.skip(), gr.skip(), message("generate first, then pick one of the results to use")
        words = candidates[index]["words"]
        cells = cells_from_words(words)
        return row_value(cells), text_from_cells(cells), message("copied into the row: unlock words to rewrite them",
                                                                  "info")

    # --- generating ----------------------------------------------------------------------
    def request(self, template: str | None, length: object, steps: object, samples: object,  # noqa: PLR0917
                seed: object, controls: ControlValues = NO_CONTROLS, record_latents: bool = True) -> Request:
        """The controls as the page or the API sent them, checked; EngineError names the bad one."""
        keep = whole_number(samples, "samples", 1, MAX_BATCH)
        templates = self.pipe.templates(template, whole_number(length, "length", 0, self.pipe.seq_len - 2) or None,
                                        keep)
        options = SampleOptions(steps=whole_number(steps, "steps", 1, self.pipe.model.config.T),
                                record_latents=record_latents)
        seed = whole_number(seed, "seed", 0, 2**63 - 1)
        semantic = controls.semantic if isinstance(controls.semantic, list | tuple) else [controls.semantic]
        targets = targets_from_fields(controls.pos, controls.tree, controls.spans, [s for s in semantic if s])
        if not targets:
            return Request(templates, options, seed, keep, [], None)
        weights = {k: number(v, f"{k} weight", 0, 100) for k, v in controls.weights().items()}
        guidance = GuidanceOptions(strength=number(controls.strength, "guidance strength", 0, 10),
                                   fluency=number(controls.fluency, "fluency", 0, 100), reads=controls.reads)
        templates, chosen = self.pipe.guided_templates(templates, targets, weights)
        return Request(templates, options, seed, keep, chosen, Guidance(chosen, guidance))

    def generate(self, text: str, value: dict, length: int, steps: int, samples: int, seed: int,  # noqa: PLR0913, PLR0917
                 pos: str = "", tree: str = "", spans: str = "", semantic: list[str] | None = None,
                 strength: float = DEFAULT_GUIDANCE.strength, fluency: float = DEFAULT_GUIDANCE.fluency,
                 weight_pos: float = 1.0, weight_tree: float = 1.0, weight_spans: float = 1.0,
                 weight_semantic: float = 1.0, reads: str = DEFAULT_GUIDANCE.reads):
        """Stream one row per denoising step, then the ranked results, plots and exports. The
        arguments after `seed` are the guidance panel's (see ControlValues); empty ones ask nothing."""
        cells = self.set_text(text, value)[0]["cells"]
        controls = ControlValues(pos or "", tree or "", spans or "", semantic or (), strength, fluency, weight_pos,
                                 weight_tree, weight_spans, weight_semantic, reads)
        try:
            request = self.request(text_from_cells(cells) or None, length, steps, samples, seed, controls)
            templates = request.templates
            stream = self.pipe.stream(templates, request.options, request.seed, request.guide)
        except EngineError as exc:
            yield (row_value(cells), message(str(exc)), *[gr.skip()] * 9)
            return
        frames, compute, last_yield = [], 0.0, 0.0
        while True:
            start = time.perf_counter()
            frame = next(stream, None)
            compute += time.perf_counter() - start  # the model's time, without the pacing below
            if frame is None:
                break
            frames.append(frame)
            wait = 1.0 / MAX_FPS - (time.perf_counter() - last_yield)
            if wait > 0:
                time.sleep(wait)
            last_yield = time.perf_counter()
            view = frame_view(frame, self.pipe.tokenizer, 0, request.options.steps)
            yield ({"html": frame_row(view, list(templates[0].locked)), "cells": cells, "action": None},
                   "", *[gr.skip()] * 9)
        trajectory = self.pipe.collect(frames, templates, compute)
        ranked = self.pipe.rank(trajectory, templates, keep=request.keep, controls=request.controls)
        record = run_record(trajectory, self.pipe.tokenizer, [c.row for c in ranked])
        if request.guide:
            record["classifier_passes"] = request.guide.classifier_passes
        state = {"record": record, "candidates": [c.to_dict() for c in ranked]}
        last = record["steps"] - 1
        table = [[i + 1, c.text, round(c.judge_ppl, 2) if c.judge_ppl else None, checks_text(c)]
                 for i, c in enumerate(ranked)]
        heat, proj, score = plots.all_figures(record, 0)
        summary = message(self.summary(record, ranked, len(templates)), "info")
        yield (self.recorded_row(state, last, cells), summary, table, state,
               gr.update(maximum=last + 1, value=last + 1, interactive=True),
               heat, proj, score, *self.exports(record),
               gr.update(choices=[(f"{i + 1}: {c.text}", i) for i, c in enumerate(ranked)], value=0))

    def summary(self, record: dict, ranked: list[Candidate], rows: int) -> str:
        ranking = "ranked by the fluency judge" if self.pipe.judge else "no fluency judge in this model folder"
        guided = f" + {record['classifier_passes']} classifier passes" if record.get("classifier_passes") else ""
        return (f"best {len(ranked)} of {rows} samples, {record['steps']} steps, {record['network_passes']} network "
                f"passes{guided}, {record['seconds']:.2f} s of model time; {ranking}")

    def recorded_row(self, state: dict, step: int, cells: list[dict] | None = None) -> dict:
        """The best sample's row at one step of a stored run."""
        record = state["record"]
        best = record["samples"][0]
        view = {"step": step, "steps": record["steps"], "t": record["t"][step],
                "alpha_bar": record["alpha_bar"][step], **best["frames"][step]}
        return {"html": frame_row(view, best["locked"]), "cells": cells or [], "action": None}

    def exports(self, record: dict) -> tuple[str, str]:
        """Files for the two download buttons, in a folder of their own (users never share a file)."""
        for old in sorted(self.export_dir.iterdir(), key=lambda p: p.stat().st_mtime)[:-KEEP_EXPORTS]:
            shutil.rmtree(old, ignore_errors=True)  # a user may still be downloading it: not an error
        folder = Path(tempfile.mkdtemp(prefix=time.strftime("run-%Y%m%d-%H%M%S-"), dir=self.export_dir))
        json_path, html_path = folder / "trajectory.json", folder / "plots.html"
        json_path.write_text(json.dumps(record))
        html_path.write_text(plots.figures_html(record))
        return str(json_path), str(html_path)

    # --- replaying -----------------------------------------------------------------------
    def scrub(self, step: int, state: dict | None, value: dict):
        if not isinstance(state, dict) or "record" not in state or not isinstance(step, int | float):
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        index = max(0, min(int(step) - 1, state["record"]["steps"] - 1))
        cells = value.get("cells", []) if isinstance(value, dict) else []
        return (self.recorded_row(state, index, cells), *plots.all_figures(state["record"], 0, index))

    def play(self, state: dict | None, value: dict):
        """Replay the stored run: the row every step, the plots every PLOT_EVERY steps and at the end."""
        if not isinstance(state, dict) or "record" not in state:
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        cells = value.get("cells", []) if isinstance(value, dict) else []
        last = state["record"]["steps"] - 1
        for step in range(last + 1):
            time.sleep(1.0 / MAX_FPS)
            figures = plots.all_figures(state["record"], 0, step) if step % PLOT_EVERY == 0 or step == last \
                else (gr.skip(),) * 3
            yield self.recorded_row(state, step, cells), step + 1, *figures

    def write(self, text: str, length: int = 0, steps: int = 50, samples: int = 4, seed: int = 0,  # noqa: PLR0917
              pos: str = "", tree: str = "", spans: str = "", semantic: list[str] | None = None,
              strength: float = DEFAULT_GUIDANCE.strength, fluency: float = DEFAULT_GUIDANCE.fluency,
              weights: dict[str, float] | None = None, reads: str = DEFAULT_GUIDANCE.reads) -> dict:
        """API: ranked results for a template as JSON (no animation). pos: tags separated by spaces;
        tree: an exemplar sentence; spans: "i j LABEL; ..."; semantic: ["food=Italian", ...];
        weights: {"pos": 1.0, ...} when combining controls; reads: "x_t" or "x0_hat"."""
        try:
            if weights is not None and not isinstance(weights, dict):
                raise EngineError(f'weights must be an object like {{"pos": 1.0}}, got {weights!r}')
            weight_values = [(weights or {}).get(kind, 1.0) for kind in ("pos", "tree", "spans", "semantic")]
            controls = ControlValues(pos or "", tree or "", spans or "", semantic or (), strength, fluency,
                                     *weight_values, reads)
            request = self.request(text if isinstance(text, str) and text.strip() else None, length, steps, samples,
                                   seed, controls, record_latents=False)
            trajectory = self.pipe.sample(request.templates, request.options, request.seed, request.guide)
        except EngineError as exc:
            return {"error": str(exc)}
        ranked = self.pipe.rank(trajectory, request.templates, keep=request.keep, controls=request.controls)
        return {"results": [c.to_dict() for c in ranked], "seconds": round(trajectory.seconds, 3),
                "network_passes": trajectory.network_passes,
                "classifier_passes": request.guide.classifier_passes if request.guide else 0}


def semantic_labels(pipe: Pipeline) -> list[str]:
    return pipe.classifier("semantic").config.labels if "semantic" in pipe.control_kinds() else []


def build_app(pipe: Pipeline) -> gr.Blocks:
    ed = Editor(pipe)
    max_words = pipe.seq_len - 2
    with gr.Blocks(title="DLM Studio") as demo:
        gr.Markdown("## DLM Studio — write with a diffusion language model\n"
                    "Type words, `_` for one free word, `...` for a blank of any length. Click a cell to lock or "
                    "unlock it, double-click to type a word, **+**/**×** to insert or delete blanks.")
        with gr.Row():
            with gr.Column(scale=3):
                text = gr.Textbox(label="Sentence or template", elem_id="template",
                                  placeholder="The Eagle is a _ _ coffee shop near _ _ .")
                msg = gr.HTML(elem_id="message")
                row = TokenRow(elem_id="token-row")
                with gr.Row():
                    generate_btn = gr.Button("Generate", variant="primary", elem_id="generate")
                    stop_btn = gr.Button("Stop", elem_id="stop")
                    play_btn = gr.Button("Play", elem_id="play")
                step_slider = gr.Slider(1, 2, value=1, step=1, label="step (scrub the run)", interactive=False,
                                        elem_id="scrub")
            with gr.Column(scale=1):
                gr.Markdown("### Controls")
                length = gr.Slider(0, max_words, value=0, step=1, label="length in words (0 = template/model decides)",
                                   elem_id="length")
                steps = gr.Slider(10, 200, value=50, step=10, label="denoising steps", elem_id="steps")
                samples = gr.Slider(1, 8, value=4, step=1, label="samples", elem_id="samples")
                seed = gr.Number(value=0, precision=0, label="seed", elem_id="seed")
                panel = build_panel(pipe.control_kinds(), semantic_labels(pipe))
        gr.Examples(examples=[[e] for e in EXAMPLES], inputs=[text], label="Examples")
        gr.Markdown("### Results")
        results = gr.Dataframe(headers=["#", "text", "judge ppl", "checks"], interactive=False, elem_id="results",
                               wrap=True)
        with gr.Row():
            choice = gr.Dropdown(label="result", choices=[], elem_id="choice")
            use_btn = gr.Button("Use this", elem_id="use")
            json_file = gr.DownloadButton("Trajectory (JSON)", elem_id="export-json")
            html_file = gr.DownloadButton("Plots (HTML)", elem_id="export-html")
        with gr.Row():
            heat = gr.Plot(label="confidence", elem_id="heatmap")
            proj = gr.Plot(label="latents", elem_id="projection")
            score = gr.Plot(label="scores", elem_id="scores")
        state = gr.State(None)

        # .change (not .input) so that pasting, deleting and examples update the row too
        text.change(ed.set_text, [text, row], [row, msg], api_name="set_text", trigger_mode="always_last",
                    show_progress="hidden")
        row.cell_action(ed.cell_action, [row], [row, text, msg], api_name="cell_action", trigger_mode="always_last",
                        show_progress="hidden")
        run = generate_btn.click(
            ed.generate, [text, row, length, steps, samples, seed, *panel],
            [row, msg, results, state, step_slider, heat, proj, score, json_file, html_file, choice],
            api_name="generate", concurrency_limit=MODEL_CONCURRENCY, concurrency_id="model",
            show_progress="minimal")
        step_slider.release(ed.scrub, [step_slider, state, row], [row, heat, proj, score], api_name="scrub")
        replay = play_btn.click(ed.play, [state, row], [row, step_slider, heat, proj, score], api_name="play",
                                show_progress="hidden")
        stop_btn.click(None, cancels=[run, replay])
        use_btn.click(ed.use_result, [choice, state], [row, text, msg], api_name="use_result")
        gr.api(ed.write, api_name="write", concurrency_limit=MODEL_CONCURRENCY, concurrency_id="model")
    return demo
