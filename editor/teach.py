"""The forward-process view, for teaching: type a sentence, drag t (or press Play) and watch it
dissolve into noise; then "denoise from here" runs the reverse from the chosen t, starting from
exactly the latent shown (engine.Pipeline.forward and a variation of the same seed share noise).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import gradio as gr

from editor import plots
from editor.form import whole_number
from editor.limits import Limits, error_message
from editor.render import frame_row, html_value, message, noised_row
from editor.replay import DEFAULT_SPEED, number_input, steps_per_second, stored_run
from engine.diffusion.sampler import SampleOptions
from engine.errors import ConfigError, EngineError
from engine.pipeline import Pipeline
from engine.request import Request
from engine.views import frame_view, noising_view

if TYPE_CHECKING:
    from editor.layout import TeachPanel

POINTS = 50  # times shown between t = 0 and T

Updates = dict[Any, Any]


class Teach:
    """The forward-process tab's handlers, bound to one pipeline and the tab's components."""

    def __init__(self, pipe: Pipeline, panel: TeachPanel, limits: Limits):
        self.pipe, self.panel, self.limits = pipe, panel, limits

    def noise(self, sentence: str, seed: object = 0) -> Updates:
        """The sentence's forward process at POINTS + 1 times, shown clean (t = 0) first."""
        panel = self.panel
        try:
            if not isinstance(sentence, str) or not sentence.strip():
                raise ConfigError("type a sentence to dissolve into noise")
            self.limits.check_text(sentence, "the sentence", ConfigError)
            seed = whole_number(seed, "seed", 0)
            record = noising_view(self.pipe.forward(sentence, seed, POINTS), self.pipe.tokenizer)
        except EngineError as exc:
            return {panel.msg: message(error_message(exc))}
        state = {"record": record, "sentence": " ".join(sentence.split()), "seed": seed}
        return {panel.state: state, panel.msg: "", **self.at(0, state),
                panel.t: gr.update(value=0, maximum=POINTS, interactive=True)}

    def at(self, index: object, state: object) -> Updates:
        """The row and latent plot at the slider's time."""
        run, index = stored_run(state), number_input(index)
        if run is None or index is None:
            return {self.panel.row: gr.skip()}  # nothing to show: the tab stays as it is
        index = max(0, min(index, run["record"]["steps"] - 1))
        return {self.panel.row: html_value(noised_row(run["record"], index)),
                self.panel.plot: plots.noising_plot(run["record"], index)}

    def play(self, state: object, index: object = 0, speed: object = DEFAULT_SPEED) -> Iterator[Updates]:
        """Noise grows at `speed` steps a second, from the slider's time to T (from 0 when it is at T)."""
        run = stored_run(state)
        try:
            pause = 1.0 / steps_per_second(speed)
        except EngineError as exc:
            yield {self.panel.msg: message(error_message(exc))}
            return
        if run is None:
            yield {self.panel.msg: message("type a sentence and press Noise it first")}
            return
        last = run["record"]["steps"] - 1
        start = number_input(index) or 0
        start = 0 if start >= last else max(0, start)
        for i in range(start, last + 1):
            time.sleep(pause)
            yield {**self.at(i, run), self.panel.t: i}

    def denoise(self, state: object, index: object = 0, steps: object = None, speed: object = DEFAULT_SPEED
                ) -> Updates:
        """The reverse from the slider's time: a variation of the sentence with strength t/T, its
        first latent the one shown. The run is made here, in a model slot; `show_denoising` then
        draws its steps at `speed` steps a second, outside it (a slow playback holds no slot)."""
        panel = self.panel
        run = stored_run(state)
        if run is None:
            return {panel.msg: message("type a sentence and press Noise it first"), panel.denoised: None}
        record = run["record"]
        i = max(0, min(number_input(index) or 0, record["steps"] - 1))
        t, T = record["t"][i], self.pipe.model.config.T
        try:
            if t == 0:
                raise ConfigError("drag t above 0 first: at t = 0 there is no noise to remove")
            pause = 1.0 / steps_per_second(speed)
            options = SampleOptions(steps=whole_number(steps, "steps", SampleOptions().steps), vary_strength=t / T,
                                    record_latents=False)  # the rows show words and confidence only
            request = Request.one(vary=run["sentence"], samples=1, candidates=1, seed=run["seed"], sampling=options)
            result = self.pipe.run(request)
        except EngineError as exc:
            return {panel.msg: message(error_message(exc)), panel.denoised: None}
        frames = result.trajectory.frames
        rows = []
        for frame in frames:
            view = frame_view(frame, self.pipe.tokenizer, 0, len(frames))
            rows.append(html_value(frame_row(view, view["locked"], editable=False)))
        done = f"denoised from t = {t} in {len(frames)} steps: {result.best[0].text}"
        return {panel.row: rows[0], panel.msg: message(f"denoising from t = {t}"),
                panel.denoised: {"rows": rows, "pause": pause, "message": done}}

    def show_denoising(self, denoised: dict | None) -> Iterator[Updates]:
        """The steps `denoise` made, one every pause, then what it wrote."""
        panel = self.panel
        if not isinstance(denoised, dict) or not denoised.get("rows"):
            return
        for row in denoised["rows"][1:]:
            time.sleep(denoised["pause"])
            yield {panel.row: row}
        yield {panel.msg: message(denoised["message"], "info")}
