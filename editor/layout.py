"""The editor page: its components and the events that connect them to the handlers.

Type or click a template, lock words, pick controls, watch the text condense. The guidance panel
has one input and one weight per steered control kind of the engine's registry (shown when the
model has that kind's classifier, or the kind needs none); the /generate and /write APIs take them
by the kinds' names.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr

from editor.compare import IDLE
from editor.form import DEFAULT_SAMPLES, DEFAULT_STEPS, WEIGHT_PREFIX, write_parameters
from editor.handlers import Editor
from editor.serving import CACHE_AGE_S, CACHE_SWEEP_S, MODEL_CONCURRENCY
from editor.token_row import TokenRow
from engine.controls import KINDS, STEERED
from engine.controls.base import ControlKind
from engine.controls.guidance import DEFAULT_GUIDANCE, READS
from engine.pipeline import Pipeline

EXAMPLES = [
    "The Eagle is a _ _ coffee shop near _ _ .",
    "_ _ _ is a pub in the city centre .",
    "Blue Spice serves ... food .",
    "There is a cheap _ called _ _ near the river .",
    "_ _ _ _ _ _ _ _ _ _",
]
MAX_SAMPLES_SLIDER = 8
STEPS_RANGE = (10, 200)


@dataclass
class GuidancePanel:
    """The guidance inputs: a target and a weight per steered kind, and how hard to steer."""

    fields: dict[str, gr.components.Component]  # kind name -> its input
    weights: dict[str, gr.Slider]  # kind name -> its weight
    strength: gr.Slider
    fluency: gr.Slider
    reads: gr.Radio

    def inputs(self) -> dict[str, gr.components.Component]:
        """The inputs by the names the generate handler (and the /generate API) takes them, in order."""
        return {**self.fields, "strength": self.strength, "fluency": self.fluency,
                **{WEIGHT_PREFIX + name: slider for name, slider in self.weights.items()}, "reads": self.reads}


@dataclass
class Page:
    """The components the handlers read and update."""

    text: gr.Textbox
    msg: gr.HTML
    row: TokenRow
    step_slider: gr.Slider
    results: gr.Dataframe
    choice: gr.Dropdown
    json_file: gr.DownloadButton
    html_file: gr.DownloadButton
    heat: gr.Plot
    proj: gr.Plot
    score: gr.Plot
    state: gr.State
    panel: GuidancePanel
    ar_row: TokenRow  # the left-to-right side of a comparison
    compare: gr.Dataframe  # both sides' best results


def kind_input(kind: ControlKind, pipe: Pipeline, offered: bool) -> gr.components.Component:
    """A kind's target input: a dropdown of its classifier's labels, or a text box."""
    elem_id = f"ctl-{kind.name}"
    if kind.choices_from_classifier:
        choices = pipe.classifier(kind.name).config.labels if offered else []
        return gr.Dropdown(choices=choices, value=[] if kind.many else None, multiselect=kind.many, label=kind.label,
                           elem_id=elem_id, visible=offered)
    return gr.Textbox("", label=kind.label, placeholder=kind.placeholder, elem_id=elem_id, visible=offered)


def build_panel(pipe: Pipeline) -> GuidancePanel:
    """The panel's inputs; kinds whose classifier this model lacks are hidden."""
    offered = pipe.control_kinds()
    with gr.Accordion("Guidance: steer with classifiers and the denoiser's own word odds", open=True):
        fields = {name: kind_input(KINDS[name], pipe, name in offered) for name in STEERED}
        strength = gr.Slider(0, 5, value=DEFAULT_GUIDANCE.strength, step=0.01, label="guidance strength (0 = off)",
                             elem_id="ctl-strength")
        fluency = gr.Slider(0, 1, value=DEFAULT_GUIDANCE.fluency, step=0.005,
                            label="fluency λ (keeps each step near the model's own proposal)", elem_id="ctl-fluency")
        reads = gr.Radio(list(READS), value=DEFAULT_GUIDANCE.reads, elem_id="ctl-reads",
                         label="classifiers read: x_t (fast) or the denoiser's x0_hat (stronger, ~2.5x slower)")
        with gr.Accordion("weights when combining controls", open=False):
            weights = {name: gr.Slider(0, 5, value=KINDS[name].weight, step=0.1, label=name,
                                       elem_id=f"ctl-weight-{name}", visible=name in offered) for name in STEERED}
    return GuidancePanel(fields, weights, strength, fluency, reads)


def with_signature(fn: Callable, parameters: list[inspect.Parameter], returns: Any) -> Callable:
    """`fn` (taking keyword arguments) behind an explicit signature: Gradio reads the API's
    argument names, types and defaults from it, and calls it positionally."""
    signature = inspect.Signature(parameters, return_annotation=returns)

    def call(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return fn(**bound.arguments)

    functools.update_wrapper(call, fn, assigned=("__module__", "__name__", "__qualname__", "__doc__"), updated=())
    call.__signature__ = signature  # type: ignore[attr-defined]
    call.__annotations__ = {p.name: p.annotation for p in parameters} | {"return": returns}
    return call


def build(pipe: Pipeline, concurrency: int = MODEL_CONCURRENCY, cache_age_s: int = CACHE_AGE_S
          ) -> tuple[gr.Blocks, Editor]:
    """The page and the handlers bound to its components. `concurrency`: generations run at once
    (the others queue); `cache_age_s`: how long the files served for download stay on disk (every
    Generate writes a trajectory and a plots page, ~5 MB with the bundled model: the editor keeps
    the last KEEP_EXPORTS runs younger than this, and Gradio's cache expiry removes anything it
    copied itself, such as uploads)."""
    with gr.Blocks(title="DLM Studio", delete_cache=(min(CACHE_SWEEP_S, cache_age_s), cache_age_s)) as demo:
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
                compare = gr.Checkbox(False, elem_id="compare", label="compare with left-to-right (FUDGE)")
                ar_row = TokenRow({"html": IDLE, "cells": []}, elem_id="ar-row", visible=False)
                compare_table = gr.Dataframe(
                    headers=["method", "text", "oracle scores", "judge ppl", "checks", "model seconds"],
                    interactive=False, elem_id="compare-table", wrap=True, visible=False,
                    label="diffusion beside left to right (the judge's own LM writes the left-to-right text, "
                          "so the judge's perplexity flatters it)")
            with gr.Column(scale=1):
                gr.Markdown("### Controls")
                length = gr.Slider(0, pipe.seq_len - 2, value=0, step=1, elem_id="length",
                                   label="length in words (0 = template/model decides)")
                steps = gr.Slider(*STEPS_RANGE, value=DEFAULT_STEPS, step=10, label="denoising steps", elem_id="steps")
                samples = gr.Slider(1, MAX_SAMPLES_SLIDER, value=DEFAULT_SAMPLES, step=1, label="samples",
                                    elem_id="samples")
                seed = gr.Number(value=0, precision=0, label="seed", elem_id="seed")
                panel = build_panel(pipe)
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
        page = Page(text, msg, row, step_slider, results, choice, json_file, html_file, heat, proj, score, state,
                    panel, ar_row, compare_table)
        ed = Editor(pipe, page, keep_exports_s=cache_age_s)

        # .change (not .input) so that pasting, deleting and examples update the row too
        text.change(ed.set_text, [text, row], [row, msg], api_name="set_text", trigger_mode="always_last",
                    show_progress="hidden")
        row.cell_action(ed.cell_action, [row], [row, text, msg], api_name="cell_action", trigger_mode="always_last",
                        show_progress="hidden")
        run = generate_btn.click(
            ed.generate, [text, row],
            [row, msg, results, state, step_slider, heat, proj, score, json_file, html_file, choice, ar_row,
             compare_table],
            inputs_kwargs={"length": length, "steps": steps, "samples": samples, "seed": seed, **panel.inputs(),
                           "compare": compare},  # last: the API's positional arguments keep their places
            api_name="generate", concurrency_limit=concurrency,
            concurrency_id="model", show_progress="minimal")
        step_slider.release(ed.scrub, [step_slider, state, row], [row, heat, proj, score], api_name="scrub")
        replay = play_btn.click(ed.play, [state, row], [row, step_slider, heat, proj, score], api_name="play",
                                show_progress="hidden")
        stop_btn.click(None, cancels=[run, replay])
        compare.change(lambda on: (gr.update(visible=on), gr.update(visible=on)), [compare], [ar_row, compare_table],
                       show_progress="hidden", queue=False, api_visibility="private")
        use_btn.click(ed.use_result, [choice, state], [row, text, msg], api_name="use_result")
        gr.api(with_signature(ed.write, write_parameters(), dict), api_name="write",
               concurrency_limit=concurrency, concurrency_id="model")
    return demo, ed


def build_app(pipe: Pipeline) -> gr.Blocks:
    return build(pipe)[0]
