"""The forward-process view, for teaching: type a sentence, drag t (or press Play) and watch it
dissolve into noise; then "denoise from here" runs the reverse from the chosen t, starting from
exactly the latent shown (engine.Pipeline.forward and a variation of the same seed share noise).

The slider and the status line both speak of t on the schedule's 0..T; the tab shows POINTS + 1 of
those times, and a time typed between two of them shows the nearer. A time outside 0..T is
refused with a message, and the tab stays at the time it shows (kept in its state as `shown`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import gradio as gr

from editor import plots
from editor.form import number, whole_number
from editor.limits import Limits, error_message, shown
from editor.outputs import updates
from editor.render import frame_row, html_value, message, noised_row
from editor.replay import DEFAULT_SPEED, steps_per_second, stored_run
from engine.diffusion.sampler import SampleOptions
from engine.errors import ConfigError, EngineError
from engine.pipeline import Pipeline
from engine.request import Request
from engine.views import frame_view, noising_view

if TYPE_CHECKING:
    from editor.layout import TeachPanel

POINTS = 50  # times shown between t = 0 and T

Updates = dict[Any, Any]


def slider_step(T: int) -> int:
    """The t slider's step: the spacing of the shown times when T divides evenly, else 1."""
    return T // POINTS if T % POINTS == 0 else 1


class Paced:
    """Yields 0, 1, 2, ... one every `pause` seconds by the clock (not a pause after each piece of
    work), so that a playback keeps its pace however long each frame takes to make. A frame more
    than one pause late moves the clock on instead of rushing the frames after it out in a burst."""

    def __init__(self, pause: float):
        self.pause, self.start = pause, time.monotonic()

    def wait(self, n: int) -> None:
        """Sleep until the n-th frame (from 1) is due."""
        delay = self.start + n * self.pause - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        elif delay < -self.pause:
            self.start -= delay  # late: frame n is due now, and the next one a pause after it


class Teach:
    """The forward-process tab's handlers, bound to one pipeline and the tab's components."""

    def __init__(self, pipe: Pipeline, panel: TeachPanel, limits: Limits):
        self.pipe, self.panel, self.limits = pipe, panel, limits

    @property
    def view(self) -> TeachPanel:
        """What the handlers' declared updates name (editor.outputs)."""
        return self.panel

    @property
    def T(self) -> int:
        return self.pipe.model.config.T

    @updates("state", "msg", "row", "plot", "t")
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
        state = {"record": record, "sentence": " ".join(sentence.split()), "seed": seed, "shown": 0}
        return {panel.state: state, **self.at(0, state), panel.t: gr.update(value=0, interactive=True)}

    def index(self, t: object, run: dict) -> int:
        """The shown time nearest `t` (a time on the schedule's 0..T), as its index; a ConfigError
        for anything else."""
        try:
            value = number(t, "t", None)
        except ConfigError:
            value = None  # not a number: the same message as a number out of range
        if value is None or not 0 <= value <= self.T:
            raise ConfigError(f"t must be a number from 0 to {self.T} (the schedule's T), got {shown(t)}")
        times = run["record"]["t"]
        return min(range(len(times)), key=lambda i: abs(times[i] - value))

    def refused(self, exc: EngineError, run: dict) -> Updates:
        """A time the tab cannot show: the message, and the slider back at the time shown."""
        return {self.panel.msg: message(error_message(exc)), self.panel.t: run["record"]["t"][run.get("shown", 0)]}

    @updates("row", "plot", "t", "msg")
    def at(self, t: object, state: object) -> Updates:
        """The row and latent plot at the shown time nearest `t` (0..T), and the slider at that time."""
        panel, run = self.panel, stored_run(state)
        if run is None or t is None:
            return {panel.row: gr.skip()}  # nothing to show: the tab stays as it is
        try:
            index = self.index(t, run)
        except EngineError as exc:
            return self.refused(exc, run)
        run["shown"] = index
        return {panel.row: html_value(noised_row(run["record"], index)),
                panel.plot: plots.noising_plot(run["record"], index), panel.t: run["record"]["t"][index],
                panel.msg: ""}

    @updates("plot")
    def plot(self, state: object) -> Updates:
        """The latent plot at the time shown (after Play, which streams the row and the slider alone)."""
        run = stored_run(state)
        if run is None:
            return {self.panel.plot: gr.skip()}
        return {self.panel.plot: plots.noising_plot(run["record"], run.get("shown", 0))}

    @updates("row", "t", "msg")
    def play(self, state: object, t: object = 0, speed: object = DEFAULT_SPEED) -> Iterator[Updates]:
        """Noise grows at `speed` steps a second, from the slider's time to T (from 0 when it is at
        T): the row and the slider each step, paced by the clock; the plot follows at the end
        (`plot`), since redrawing it every step would slow the row below the pace asked."""
        panel, run = self.panel, stored_run(state)
        try:
            pause = 1.0 / steps_per_second(speed)
        except EngineError as exc:
            yield {panel.msg: message(error_message(exc))}
            return
        if run is None:
            yield {panel.msg: message("type a sentence and press Noise it first")}
            return
        record = run["record"]
        last = record["steps"] - 1
        try:
            start = self.index(t, run)
        except EngineError as exc:
            yield self.refused(exc, run)
            return
        paced = Paced(pause)
        for n, i in enumerate(range(start + 1 if start < last else 0, last + 1), start=1):
            paced.wait(n)
            run["shown"] = i
            yield {panel.row: html_value(noised_row(record, i)), panel.t: record["t"][i]}

    @updates("row", "msg", "denoised", "t")
    def denoise(self, state: object, t: object = 0, steps: object = None, speed: object = DEFAULT_SPEED
                ) -> Updates:
        """The reverse from the slider's time: a variation of the sentence with strength t/T, its
        first latent the one shown. The run is made here, in a model slot; `show_denoising` then
        draws its steps at `speed` steps a second, outside it (a slow playback holds no slot)."""
        panel = self.panel
        run = stored_run(state)
        if run is None:
            return {panel.msg: message("type a sentence and press Noise it first"), panel.denoised: None}
        record = run["record"]
        try:
            index = self.index(t, run)
        except EngineError as exc:
            return {**self.refused(exc, run), panel.denoised: None}
        t = record["t"][index]
        try:
            if t == 0:
                raise ConfigError("drag t above 0 first: at t = 0 there is no noise to remove")
            pause = 1.0 / steps_per_second(speed)
            options = SampleOptions(steps=whole_number(steps, "steps", SampleOptions().steps), vary_strength=t / self.T,
                                    record_latents=False,  # the rows show words and confidence only
                                    settle_steps=0)  # the class watches every step down to t = 0
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

    @updates("row", "msg")
    def show_denoising(self, denoised: dict | None) -> Iterator[Updates]:
        """The steps `denoise` made, one every pause by the clock, then what it wrote."""
        panel = self.panel
        if not isinstance(denoised, dict) or not denoised.get("rows"):
            return
        paced = Paced(denoised["pause"])
        for n, row in enumerate(denoised["rows"][1:], start=1):
            paced.wait(n)
            yield {panel.row: row}
        yield {panel.msg: message(denoised["message"], "info")}
