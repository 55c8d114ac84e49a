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
from editor.form import KINDS_HERE, MEASURED, WEIGHT_PREFIX, WRITE_ORDER, shown_settings, write_parameters
from editor.handlers import Editor
from editor.outputs import outputs_of
from editor.replay import DEFAULT_SPEED, MAX_SPEED
from editor.serving import CACHE_AGE_S, CACHE_SWEEP_S, MODEL_CONCURRENCY
from editor.studio import Studio
from editor.teach import slider_step
from editor.token_row import TokenRow
from engine.controls import KINDS, STEERED
from engine.controls.base import ControlKind
from engine.options import NOT_SET, Setting
from engine.pipeline import Pipeline

EXAMPLES = [
    "The Eagle is a _ _ coffee shop near _ _ .",
    "_ _ _ is a pub in the city centre .",
    "Blue Spice serves ... food .",
    "There is a cheap _ called _ _ near the river .",
    "_ _ _ _ _ _ _ _ _ _",
]


@dataclass
class GuidancePanel:
    """The guidance inputs: a target and a weight per steered kind, and how hard to steer: each
    control's measured setting (`measured`, on by default) or the sliders' own."""

    fields: dict[str, gr.components.Component]  # kind name -> its input
    weights: dict[str, gr.Slider]  # kind name -> its weight
    measured: gr.Checkbox
    own: dict[str, gr.components.Component]  # the guidance options the page shows (strength, fluency, reads)

    def inputs(self) -> dict[str, gr.components.Component]:
        """The inputs by the names the generate handler (and the /generate API) takes them, in order."""
        return {**self.fields, MEASURED: self.measured, **in_order(self.own, before="weights"),
                **{WEIGHT_PREFIX + name: slider for name, slider in self.weights.items()},
                **in_order(self.own, after="weights"), **added(self.own)}

    def own_setting(self) -> list[gr.components.Component]:
        """The inputs that steer only with `measured` off (shown only then)."""
        return list(self.own.values())


@dataclass
class TeachPanel:
    """The forward-process tab: a sentence, its buttons, the time slider, its row, its latent plot."""

    text: gr.Textbox
    msg: gr.HTML
    row: TokenRow
    t: gr.Slider
    plot: gr.Plot
    state: gr.State  # the sentence's forward process (engine.views.noising_view) and seed
    denoised: gr.State  # the rows of the last "denoise from here", for Teach.show_denoising to draw
    noise_btn: gr.Button
    play_btn: gr.Button
    denoise_btn: gr.Button
    stop_btn: gr.Button


@dataclass
class Page:
    """The components the handlers read and update."""

    text: gr.Textbox
    examples: gr.Examples  # they write the text box; the row follows (connect_writing)
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
    state: gr.State  # the run on the page (see editor.runs)
    panel: GuidancePanel
    ar_row: TokenRow  # the left-to-right side of a comparison
    compare: gr.Dataframe  # both sides' best results
    alternatives: gr.Plot  # what the model weighed at a clicked word
    history: gr.State  # the session's runs
    history_list: gr.Radio
    pinned: gr.State  # run A of an A/B comparison
    pinned_row: TokenRow
    ab_table: gr.Dataframe
    ab_plot: gr.Plot
    settings: dict[str, gr.components.Component]  # a run's settings by name (restored with it)
    teach: TeachPanel
    fresh: gr.State  # the page's run just finished: show_fresh has yet to show it


def kind_input(kind: ControlKind, pipe: Pipeline, offered: bool) -> gr.components.Component:
    """A kind's target input: a dropdown of its classifier's labels, or a text box."""
    elem_id = f"ctl-{kind.name}"
    if kind.choices_from_classifier:
        choices = pipe.classifier(kind.name).config.labels if offered else []
        return gr.Dropdown(choices=choices, value=[] if kind.many else None, multiselect=kind.many, label=kind.label,
                           elem_id=elem_id, visible=offered)
    return gr.Textbox("", label=kind.label, placeholder=kind.placeholder, elem_id=elem_id, visible=offered)


def option_widget(setting: Setting, bounds: dict[str, float], **shown: Any) -> gr.components.Component:
    """The page's widget of one option of the request (engine.options.Widget): its kind, label,
    range and step, and its start (the widget's own default, else the engine's). `bounds`: the
    values of bounds the loaded model sets, by name."""
    widget = setting.spec.page
    value = setting.default if widget.default is NOT_SET else widget.default
    elem_id = ("ctl-" if widget.group == "guidance" else "") + setting.name.replace("_", "-")
    common = {"value": value, "label": widget.label, "elem_id": elem_id, **shown}
    if widget.kind == "slider":
        high = bounds[widget.high] if isinstance(widget.high, str) else widget.high
        return gr.Slider(widget.low, high, step=widget.step, **common)
    if widget.kind == "number":
        return gr.Number(precision=0 if setting.kind is int else None, **common)
    if widget.kind == "checkbox":
        return gr.Checkbox(**common)
    return gr.Radio(list(setting.spec.choices), **common)


def in_order(components: dict[str, Any], after: str | None = None, before: str | None = None) -> dict[str, Any]:
    """Those of `components` (by option name) that WRITE_ORDER lists after `after` and before
    `before` (None: from its start, to its end): the order the APIs published."""
    low = -1 if after is None else WRITE_ORDER.index(after)
    high = len(WRITE_ORDER) if before is None else WRITE_ORDER.index(before)
    return {name: c for name, c in components.items() if name in WRITE_ORDER and low < WRITE_ORDER.index(name) < high}


def added(components: dict[str, Any]) -> dict[str, Any]:
    """Those of `components` added since the APIs' order was published: they come after the rest."""
    return {name: c for name, c in components.items() if name not in WRITE_ORDER}


def build_panel(pipe: Pipeline) -> GuidancePanel:
    """The panel's inputs; kinds whose classifier this model lacks are hidden."""
    offered = pipe.control_kinds()
    gr.Markdown("Steer with classifiers and the denoiser's own word odds.")
    fields = {name: kind_input(KINDS[name], pipe, name in offered) for name in STEERED}
    measured = gr.Checkbox(True, label="measured setting per control", elem_id="ctl-measured",
                           info="each control steers at the strength, λ and reading measured best for its kind "
                                "(docs/controls.md); turn off to set your own")
    # the sliders show only when the user sets them
    own = {s.name: option_widget(s, {}, visible=not measured.value) for s in shown_settings("page")
           if s.spec.page.group == "guidance"}
    with gr.Accordion("weights when combining controls", open=False):
        weights = {name: gr.Slider(0, 5, value=KINDS[name].weight, step=0.1, label=name,
                                   elem_id=f"ctl-weight-{name}", visible=name in offered) for name in STEERED}
    panel = GuidancePanel(fields, weights, measured, own)
    # .change, not .input: a restored run's setting shows or hides the sliders too
    measured.change(lambda on: [gr.update(visible=not on)] * len(panel.own_setting()), [measured],
                    panel.own_setting(), show_progress="hidden", queue=False, api_visibility="private")
    return panel


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


@dataclass
class Controls:
    """The side panel's inputs and buttons that are not the handlers' outputs."""

    generate: gr.Button
    vary: gr.Button
    stop: gr.Button
    play: gr.Button
    pin: gr.Button
    unpin: gr.Button
    use: gr.Button
    compare: gr.Checkbox
    speed: gr.Slider
    present: gr.Checkbox
    load: gr.UploadButton


def build(pipe: Pipeline, concurrency: int = MODEL_CONCURRENCY, cache_age_s: int = CACHE_AGE_S
          ) -> tuple[gr.Blocks, Editor]:
    """The page and the handlers bound to its components. `concurrency`: generations run at once
    (the others queue); `cache_age_s`: how long the files served for download stay on disk (every
    Generate writes a trajectory and a plots page, ~5 MB with the bundled model: the editor keeps
    the last KEEP_EXPORTS runs younger than this, and Gradio's cache expiry removes anything it
    copied itself, such as uploads). The page's own CSS (PAGE_CSS) goes to `launch(css=...)`. The
    Blocks are a `Studio` (editor.studio): a raw API call that leaves arguments out gets their defaults."""
    with Studio(title="DLM Studio", delete_cache=(min(CACHE_SWEEP_S, cache_age_s), cache_age_s)) as demo:
        with gr.Row(equal_height=True, elem_id="header"):
            with gr.Column(scale=3, min_width=560):
                gr.Markdown("## DLM Studio — write with a diffusion language model")
            with gr.Column(scale=1, min_width=300):  # above the side panel, which presentation mode hides
                present = gr.Checkbox(False, elem_id="present", label="presentation mode (large type)",
                                      container=False)
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=560), gr.Tabs(elem_id="main-tabs"):
                with gr.Tab("Write", id="write", elem_id="tab-write"):
                    page_parts, buttons = build_write_tab()
                with gr.Tab("Forward process", id="teach", elem_id="tab-teach", render_children=True):
                    teach = build_teach(pipe.model.config.T)
            with gr.Column(scale=1, min_width=300, elem_id="side-column"), gr.Tabs(elem_id="side-tabs"):
                settings, controls, panel, history_list = build_side(pipe, buttons, present)
        page = Page(**page_parts, state=gr.State(None), panel=panel, history=gr.State([]), history_list=history_list,
                    pinned=gr.State(None), settings=settings, teach=teach, fresh=gr.State(False))
        ed = Editor(pipe, page, keep_exports_s=cache_age_s)
        connect_writing(ed, page, controls, concurrency)
        connect_teaching(ed, page, controls, concurrency)
    return demo, ed


def build_write_tab() -> tuple[dict, dict[str, gr.Button]]:
    """The Write tab: the text, the row and its buttons, the step slider, A/B, the left-to-right
    comparison, the results and the plots."""
    text = gr.Textbox(label="Sentence or template (_ one free word, ... a blank of any length)",
                      elem_id="template", placeholder="The Eagle is a _ _ coffee shop near _ _ .")
    examples = gr.Examples(examples=[[e] for e in EXAMPLES], inputs=[text], label="Examples")
    msg = gr.HTML(elem_id="message")
    pinned_row = TokenRow(elem_id="pinned-row", visible=False)
    row = TokenRow(elem_id="token-row", follows="template")  # hears of pastes and deletions too
    with gr.Row():
        buttons = {"generate": gr.Button("Generate", variant="primary", elem_id="generate", min_width=90),
                   "vary": gr.Button("Vary", elem_id="vary", min_width=70),
                   "stop": gr.Button("Stop", elem_id="stop", min_width=70),
                   "play": gr.Button("Play", elem_id="play", min_width=70),
                   "pin": gr.Button("Pin as A", elem_id="pin", min_width=90),
                   "unpin": gr.Button("Unpin", elem_id="unpin", min_width=70)}
    step_slider = gr.Slider(1, 2, value=1, step=1, label="step (scrub the run)", interactive=False, elem_id="scrub")
    alternatives = gr.Plot(label="what the model weighed", elem_id="alternatives", visible=False)
    ab_table = gr.Dataframe(headers=["run", "best text", "judge ppl", "oracle scores", "checks", "model seconds",
                                     "passes", "settings changed"],
                            column_widths=["9%", "21%", "7%", "10%", "18%", "8%", "11%", "16%"],
                            interactive=False, elem_id="ab-table", wrap=True, visible=False, label="A / B")
    ab_plot = gr.Plot(elem_id="ab-plot", visible=False, label="A / B per step")
    ar_row = TokenRow({"html": IDLE, "cells": []}, elem_id="ar-row", visible=False)
    compare = gr.Dataframe(headers=["method", "text", "oracle scores", "judge ppl", "checks", "model seconds"],
                           column_widths=["12%", "33%", "13%", "8%", "25%", "9%"],
                           interactive=False, elem_id="compare-table", wrap=True, visible=False,
                           label="diffusion beside left to right (the judge's own LM writes the left-to-right "
                                 "text, so the judge's perplexity flatters it)")
    # Widths shared out (and cells wrapped) so that every column fits beside the side panel: sized
    # by their content, the columns ran past the table's edge and cut off the checks.
    results = gr.Dataframe(headers=["#", "text", "judge ppl", "checks"], column_widths=["5%", "47%", "9%", "39%"],
                           interactive=False, elem_id="results", wrap=True, label="Results")
    with gr.Row():
        choice = gr.Dropdown(label="result", choices=[], elem_id="choice", scale=3)
        buttons["use"] = gr.Button("Use this", elem_id="use", min_width=80)
        json_file = gr.DownloadButton("Trajectory (JSON)", elem_id="export-json", min_width=120)
        html_file = gr.DownloadButton("Plots (HTML)", elem_id="export-html", min_width=110)
    with gr.Row():
        heat = gr.Plot(label="confidence", elem_id="heatmap")
        proj = gr.Plot(label="latents", elem_id="projection")
        score = gr.Plot(label="scores", elem_id="scores")
    parts = {"text": text, "examples": examples, "msg": msg, "row": row, "step_slider": step_slider,
             "results": results, "choice": choice, "json_file": json_file, "html_file": html_file, "heat": heat,
             "proj": proj, "score": score, "ar_row": ar_row, "compare": compare, "alternatives": alternatives,
             "pinned_row": pinned_row, "ab_table": ab_table, "ab_plot": ab_plot}
    return parts, buttons


def build_side(pipe: Pipeline, buttons: dict[str, gr.Button], present: gr.Checkbox
               ) -> tuple[dict[str, gr.components.Component], Controls, GuidancePanel, gr.Radio]:
    """The side panel's tabs: the settings, the guidance panel, the session's history; so that
    they never push the results down."""
    with gr.Tab("Settings", id="settings", elem_id="tab-settings", render_children=True):
        options = {s.name: option_widget(s, {"words": pipe.seq_len - 2}) for s in shown_settings("page")
                   if s.spec.page.group == "settings"}
        compare = gr.Checkbox(False, elem_id="compare", label="compare with left-to-right (FUDGE)")
        speed = gr.Slider(1, MAX_SPEED, value=DEFAULT_SPEED, step=1, elem_id="speed",
                          label="playback speed (steps per second)")
    with gr.Tab("Guidance", id="guidance", elem_id="tab-guidance", render_children=True):
        panel = build_panel(pipe)
    with gr.Tab("History", id="history", elem_id="tab-history", render_children=True):
        history_list = gr.Radio([], label="this session's runs (click one to restore it)", elem_id="history")
        load = gr.UploadButton("Load a run (trajectory JSON)", file_types=[".json"], type="filepath",
                               elem_id="load-run")
    settings = {**in_order(options, before=KINDS_HERE), **panel.inputs(), **in_order(options, after=KINDS_HERE),
                "compare": compare, **added(options)}
    return settings, Controls(**buttons, compare=compare, speed=speed, present=present, load=load), panel, history_list


def connect_writing(ed: Editor, page: Page, controls: Controls, concurrency: int) -> None:
    """The Write tab's events, their outputs those each handler declares (editor.outputs). Generate
    and Vary share the model's queue; the states are inputs but not API arguments, so each API's
    positional arguments keep their places."""
    row, state, pinned, history = page.row, page.state, page.pinned, page.history
    settings, replay = page.settings, ed.replay
    model_queue = {"concurrency_limit": concurrency, "concurrency_id": "model", "show_progress": "minimal"}

    # The row follows what the user types, pastes or deletes (`input`; the row reports what Gradio
    # hears on key presses only, see TokenRow's `follows`) and the examples they pick; not every
    # change of the text box (`change`): a row action writes the text box too, and the row must not
    # be redrawn from a text that a later action has already moved on from.
    page.text.input(ed.set_text, [page.text, row], outputs_of(ed.set_text), api_name="set_text",
                    trigger_mode="always_last", show_progress="hidden")
    page.examples.load_input_event.then(ed.set_text, [page.text, row], outputs_of(ed.set_text),
                                        api_visibility="private", show_progress="hidden")
    row.cell_action(ed.cell_action, [row], outputs_of(ed.cell_action), api_name="cell_action",
                    trigger_mode="multiple", show_progress="hidden")  # the page sends one at a time
    row.inspect(replay.inspect, [row, state], outputs_of(replay.inspect), api_name="inspect",
                trigger_mode="always_last", show_progress="hidden")
    # in the settings' order (the published one: every option added since comes after compare)
    generate_inputs = {**{name: c for name, c in settings.items() if name != "vary_strength"}, "history": history}
    vary_inputs = {"vary_strength": settings["vary_strength"],
                   **{name: c for name, c in settings.items() if name not in ("vary_strength", "compare")},
                   "history": history}
    # The page streams into few outputs, then shows the rest (see Editor.generate_on_page); the API's
    # /generate and /vary stream the same run with every output at its end, from buttons never shown.
    # The page's Generate chain is callable but undocumented (generate_page, show_run, runs), so
    # `editor.bench --scenario class` can press Generate as the page does.
    run = controls.generate.click(ed.generate_on_page, [page.text, row], outputs_of(ed.generate_on_page),
                                  api_name="generate_page", api_visibility="undocumented",
                                  inputs_kwargs=generate_inputs, **model_queue)
    varied = controls.vary.click(ed.vary_on_page, [page.text, row], outputs_of(ed.vary_on_page),
                                 api_visibility="private", inputs_kwargs=vary_inputs, **model_queue)
    for event, (shown_name, runs_name) in ((run, ("show_run", "runs")), (varied, (False, False))):
        event.then(ed.show_fresh, [state, page.fresh], outputs_of(ed.show_fresh),
                   api_name=shown_name, api_visibility="undocumented" if shown_name else "private",
                   show_progress="hidden").then(
            ed.runs_view, [state, history, pinned], outputs_of(ed.runs_view), api_name=runs_name,
            show_progress="hidden")
    api_generate, api_vary = gr.Button(visible=False), gr.Button(visible=False)
    api_generate.click(ed.generate, [page.text, row], outputs_of(ed.generate), api_name="generate",
                       inputs_kwargs=generate_inputs, **model_queue)
    api_vary.click(ed.vary, [page.text, row], outputs_of(ed.vary), api_name="vary", inputs_kwargs=vary_inputs,
                   **model_queue)
    page.step_slider.release(replay.scrub, [page.step_slider, state, row, pinned], outputs_of(replay.scrub),
                             api_name="scrub")
    replaying = controls.play.click(replay.play, [state, row, controls.speed, pinned], outputs_of(replay.play),
                                    api_name="play", show_progress="hidden")
    controls.stop.click(None, cancels=[run, varied, replaying])
    controls.pin.click(replay.pin, [state], outputs_of(replay.pin), api_name="pin")
    controls.unpin.click(replay.unpin, None, outputs_of(replay.unpin), api_name="unpin")
    page.history_list.input(ed.restore, [page.history_list, history, pinned], outputs_of(ed.restore),
                            api_name="restore_run")
    controls.load.upload(ed.load_run, [controls.load, history, pinned], outputs_of(ed.load_run), api_name="load_run")
    controls.compare.change(lambda on: (gr.update(visible=on), gr.update(visible=on)), [controls.compare],
                            [page.ar_row, page.compare], show_progress="hidden", queue=False,
                            api_visibility="private")
    controls.present.change(None, [controls.present], None, js=PRESENT_JS, api_visibility="private")
    controls.use.click(ed.use_result, [page.choice, state], outputs_of(ed.use_result), api_name="use_result")
    gr.api(with_signature(ed.write, write_parameters(), dict), api_name="write", concurrency_limit=concurrency,
           concurrency_id="model")


def connect_teaching(ed: Editor, page: Page, controls: Controls, concurrency: int) -> None:
    """The forward-process tab's events, their outputs those each handler declares. The events that
    read the t slider take its raw value (`preprocess=False`): the handlers check it and refuse a
    time outside 0..T with the tab's own message, where Gradio's bounds check would answer with an
    error of its own."""
    teach, teacher = page.teach, ed.teach
    raw = {"preprocess": False}
    teach.noise_btn.click(teacher.noise, [teach.text, page.settings["seed"]], outputs_of(teacher.noise),
                          api_name="forward")
    teach.t.release(teacher.at, [teach.t, teach.state], outputs_of(teacher.at), api_name="forward_at", **raw)
    # Play streams the row and the slider alone (a plot every step would hold it below the pace
    # asked); the plot follows once Play ends or is stopped.
    playing = teach.play_btn.click(teacher.play, [teach.state, teach.t, controls.speed], outputs_of(teacher.play),
                                   api_name="forward_play", show_progress="hidden", **raw)
    playing.then(teacher.plot, [teach.state], outputs_of(teacher.plot), api_visibility="private",
                 show_progress="hidden")
    denoising = teach.denoise_btn.click(teacher.denoise, [teach.state, teach.t, page.settings["steps"], controls.speed],
                                        outputs_of(teacher.denoise), api_name="denoise_from_here",
                                        concurrency_limit=concurrency, concurrency_id="model", show_progress="minimal",
                                        **raw)
    drawing = denoising.success(teacher.show_denoising, [teach.denoised], outputs_of(teacher.show_denoising),
                                api_name="denoise_play", show_progress="hidden", concurrency_limit=None)  # sleeps only
    teach.denoise_btn.click(None, cancels=[drawing])  # a new run's playback replaces the last one's
    teach.stop_btn.click(None, cancels=[playing, denoising, drawing]).then(
        teacher.plot, [teach.state], outputs_of(teacher.plot), api_visibility="private", show_progress="hidden")


def build_teach(T: int) -> TeachPanel:
    """The forward-process tab's components (its events are joined in `build`); `T`: the model's
    schedule, the t slider's range."""
    gr.Markdown("Type a sentence, press **Noise it**, then drag **t** (or press **Play**) and watch it dissolve "
                "into noise: each cell shows the word nearest its noisy latent and how far that latent has "
                "drifted from its word's vector. **Denoise from here** runs the model back from the chosen t.",
                elem_id="teach-intro")
    text = gr.Textbox("The Eagle is a cheap coffee shop near the river .", label="sentence", elem_id="teach-text")
    with gr.Row():
        noise_btn = gr.Button("Noise it", variant="primary", elem_id="teach-noise", min_width=90)
        play = gr.Button("Play", elem_id="teach-play", min_width=70)
        denoise = gr.Button("Denoise from here", elem_id="teach-denoise", min_width=140)
        stop = gr.Button("Stop", elem_id="teach-stop", min_width=70)
    t = gr.Slider(0, T, value=0, step=slider_step(T), elem_id="teach-t", interactive=False,
                  label=f"t: the noise, from 0 (the clean sentence) to T = {T} (pure noise)")
    msg = gr.HTML(elem_id="teach-message")
    row = TokenRow({"html": '<div class="empty">press Noise it</div>', "cells": []}, elem_id="teach-row")
    plot = gr.Plot(label="latents", elem_id="teach-plot")
    return TeachPanel(text, msg, row, t, plot, gr.State(None), gr.State(None), noise_btn, play, denoise, stop)


# Presentation mode: large type for a projector. The side panel steps aside (its settings stay as
# set), so the rows have the page's width, and the forward-process tab's instructions go. Each row
# keeps to one line: its type starts at 30 px and shrinks (to 16 px at the least) until its cells fit
# the row's width; then it may wrap. The fit is made again whenever a row is drawn anew, changes size
# (a tab shown) or the window is resized.
PRESENT_JS = """(on) => {
  document.body.classList.toggle('present', !!on);
  if (!window.__presentFit) {
    const ROWS = ['token-row', 'teach-row', 'pinned-row', 'ar-row'];
    const fit = () => {
      if (!document.body.classList.contains('present')) return;
      for (const row of document.querySelectorAll(ROWS.map(id => `#${id} .row`).join(', '))) {
        const cells = row.querySelectorAll('.cell');
        let size = 30;
        row.style.setProperty('--present-size', `${size}px`);
        while (cells.length && size > 16 && cells[cells.length - 1].offsetTop > cells[0].offsetTop) {
          size -= 1;
          row.style.setProperty('--present-size', `${size}px`);
        }
      }
    };
    window.__presentFit = fit;
    new MutationObserver(fit).observe(document.body, {subtree: true, childList: true});
    const resized = new ResizeObserver(() => requestAnimationFrame(fit));
    for (const id of ROWS) { const el = document.getElementById(id); if (el) resized.observe(el); }
    window.addEventListener('resize', fit);
  }
  window.__presentFit();
  return [];
}"""
PAGE_CSS = """
body.present #side-column { display: none !important; }
body.present .cell { font-size: var(--present-size, 30px) !important; padding: 8px 12px !important; }
body.present .status { font-size: 20px !important; }
body.present .caption { font-size: 26px !important; }
body.present #template textarea, body.present #teach-text textarea { font-size: 24px !important; }
body.present #teach-intro { display: none; }
"""


def build_app(pipe: Pipeline) -> gr.Blocks:
    return build(pipe)[0]
