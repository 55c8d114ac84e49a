"""The one path of every generation: a Request in, a Result out.

    pipe = Pipeline.from_pretrained()                         # assets/model
    result = pipe.run(Request.one("The Eagle is a _ _ .", samples=4, seed=7))
    [c.text for c in result.best], result.cost

`stream(request)` yields a Frame after every denoising step, then the Result; `run(request)`
returns only the Result. A request with method "fudge" or "ar" is written left to right by the
judge's autoregressive LM instead (`write`): a `Written` state per word, then a `Writing`.
Inside: the request's prompts become template rows (`plan`), the
controls are built for those rows, the sampler denoises them (guided when controls steer), and
engine.ranking orders each prompt's rows by independent checks, the controls' oracles and the
judge. Reading a model folder, and the networks that steer controls, is engine.loading's.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import torch

from engine.autoregressive.prompts import Opening, checked_template
from engine.autoregressive.prompts import opening as left_opening
from engine.autoregressive.writer import Passes, Written
from engine.autoregressive.writer import write as write_left_to_right
from engine.controls.base import Control
from engine.controls.classifier import ControlClassifier
from engine.controls.guidance import Guidance
from engine.controls.spans import check_ends, fitting
from engine.controls.targets import build_controls, constrain
from engine.diffusion.checkpoint import BUNDLED_MODEL, load_denoiser
from engine.diffusion.forward import Noising, noising
from engine.diffusion.model import Denoiser
from engine.diffusion.sampler import Frame, Sampler
from engine.diffusion.schedule import strided_timesteps
from engine.errors import ConfigError, TemplateError
from engine.loading import Networks, load_judge, model_directory
from engine.precision import check_device, choose_precision
from engine.provenance import model_name, request_dict, versions, weights_digests
from engine.ranking import Plan, rank
from engine.request import MAX_ROWS, MAX_SEED, Cost, Prompt, Request, Result, WriteCost, Writing
from engine.scoring.judge import Judge
from engine.text.template import (
    Template,
    expand_ellipsis,
    fixed_length,
    free_template,
    has_ellipsis,
    length_template,
    parse_template,
    vary_template,
)
from engine.text.tokenizer import Tokenizer

ELLIPSIS_LENGTHS = (1, 2, 3, 4, 5, 6, 8)  # words tried for each `...` blank
ELLIPSIS_ROWS = 32  # at most this many rows for one prompt's '...' lengths together
SAMPLE_PAD = 2  # positions after END a windowed model samples on (it trained on 0 .. losses.WINDOW_PAD)


@dataclass
class Timed:
    """Iterates `steps`, adding up the time spent inside them (the model's time, not a caller's
    between items)."""

    steps: Iterator
    seconds: float = 0.0

    def __iter__(self) -> Iterator:
        while True:
            start = time.perf_counter()
            item = next(self.steps, None)
            self.seconds += time.perf_counter() - start
            if item is None:
                return
            yield item


@dataclass
class LeftPlan:
    """The rows a left-to-right request writes: each one's opening, prompt and targets, and the controls."""

    openings: list[Opening]
    prompt_rows: list[int]
    targets: list[tuple]
    controls: list[Control]


@dataclass
class Pipeline:
    model: Denoiser
    tokenizer: Tokenizer
    sampler: Sampler
    judge: Judge | None
    training: dict  # how the denoiser was trained (steps, time, losses)
    directory: Path
    networks: Networks  # the judge's LM and what steers each kind of control, loaded on first use

    @classmethod
    def from_pretrained(cls, directory: Path | str | None = None, *, device: str = "cpu", precision: str = "auto",
                        shared: bool = True) -> Pipeline:
        """The model folder's networks (None: the bundled model) on `device` ("cpu", "cuda", "cuda:1"; see
        engine.precision.check_device), the denoiser in `precision` (auto: bf16 where the device runs it
        natively, else fp32). `shared`: runs in different threads (the editor's users) share their denoiser
        passes (engine.diffusion.batching)."""
        directory, device = model_directory(directory), check_device(device)
        precision = choose_precision(precision, device)[0]
        model, tokenizer, training = load_denoiser(directory, device)
        judge = load_judge(directory, tokenizer, device)
        sampler = Sampler(model, tokenizer, bf16=precision == "bf16", shared=shared)
        return cls(model, tokenizer, sampler, judge, training, directory, Networks(directory, model, tokenizer, judge))

    @property
    def precision(self) -> str:
        """What the denoiser runs in: "bf16" or "fp32" (see engine.precision)."""
        return "bf16" if self.sampler.bf16 else "fp32"

    @property
    def seq_len(self) -> int:
        return self.model.config.seq_len

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def control_kinds(self) -> list[str]:
        """The controls this model folder offers: those with a trained classifier, and those needing none."""
        return self.networks.kinds()

    def classifier(self, kind: str) -> ControlClassifier:
        """The trained classifier of `kind` (its labels are what a UI offers to pick from)."""
        return self.networks.classifier(kind)

    @cached_property
    def weights(self) -> dict[str, str]:
        """{weights file: SHA-256} of this model folder (what an exported run records as its model)."""
        return weights_digests(self.directory)

    def provenance(self, request: Request) -> dict:
        """What makes a run of `request` again: the model's name and its weights' hashes (not where
        it lies on this machine), the request as read, the package versions."""
        model = {"name": model_name(self.directory, BUNDLED_MODEL), "weights_sha256": self.weights,
                 "device": str(self.device),  # a seed draws other noise on a GPU than on the CPU
                 "precision": self.precision}  # and bf16 rounds otherwise than fp32
        return {"model": model, "request": request_dict(request), "versions": versions()}

    # --- the path ----------------------------------------------------------------------------
    def run(self, request: Request) -> Result | Writing:
        *_, result = self.stream(request)
        return result

    def stream(self, request: Request) -> Iterator[Frame | Result | Written | Writing]:
        """A Frame after every denoising step, then the Result (ranked, with the trajectory and the
        cost); or, for a left-to-right method, what `write` yields."""
        if request.method != "diffusion":
            yield from self.write(request)
            return
        plan = self.plan(request)
        guide = Guidance(plan.controls, request.guidance) if request.steer and plan.controls else None
        steps = Timed(self.sampler.frames(plan.templates, request.sampling, request.seed, guide))
        frames = []
        for frame in steps:
            frames.append(frame)
            yield frame
        trajectory = self.sampler.trajectory(frames, plan.templates)
        cost = Cost(seconds=steps.seconds, denoiser_passes=len(frames) + (guide.denoiser_passes if guide else 0),
                    classifier_passes=guide.classifier_passes if guide else 0, rows=len(plan.templates))
        ranked = rank(trajectory.words, plan, request.samples, self.tokenizer, self.judge)
        yield Result(ranked, trajectory, plan.prompt_rows, plan.controls, cost)

    def write(self, request: Request) -> Iterator[Written | Writing]:
        """Left to right: each prompt's locked words before its first blank as the prefix, its fixed
        length held (END barred before it, forced at it), the rest of the prompt out of reach; the
        controls steer through their FUDGE discriminators ("fudge") or are only judged ("ar").
        A `Written` state after every word, then the `Writing`, checked and ranked as diffusion's."""
        plan = self.left_plan(request)
        tok, seq_len = self.tokenizer, self.networks.lm_seq_len

        def controls_for(rows: list[int]) -> list[Control]:
            return build_controls([plan.targets[r] for r in rows], self.networks.discriminator, request.weights)

        passes = Passes()
        steps = Timed(write_left_to_right(
            self.networks.lm, tok, [o.prefix for o in plan.openings], [o.length for o in plan.openings],
            controls_for if request.steers and plan.controls else None, options=request.writing, seed=request.seed,
            seq_len=seq_len, passes=passes))
        states = []
        for state in steps:
            states.append(state)
            yield state
        words = [tok.decode_words(row) for row in states[-1].tokens]
        templates = [checked_template(o, w, tok, seq_len) for o, w in zip(plan.openings, words, strict=True)]
        cost = WriteCost(seconds=steps.seconds, lm_passes=passes.lm, discriminator_passes=passes.discriminator,
                         rows=len(plan.openings))
        ranked = rank(words, Plan(templates, plan.prompt_rows, plan.controls), request.samples, tok, self.judge)
        yield Writing(ranked, states, plan.prompt_rows, plan.controls, cost)

    def left_plan(self, request: Request) -> LeftPlan:
        """A left-to-right request's rows: each one's opening, prompt and targets, and the controls
        (through the FUDGE discriminators when they steer, else only for their oracles)."""
        openings, prompt_rows = [], []
        for p, prompt in enumerate(request.prompts):
            rows = request.samples * request.drawn(prompt)
            prompt.check_one_length()
            opening = left_opening(prompt.template, prompt.length, self.tokenizer, self.networks.lm_seq_len)
            if opening.length is not None:
                check_ends(prompt.targets, opening.length, "the template")
            openings += [opening] * rows
            prompt_rows += [p] * rows
        targets = [request.prompts[p].targets for p in prompt_rows]
        source = self.networks.discriminator if request.steers else self.networks.control_source
        controls = build_controls(targets, source, request.weights) if any(targets) else []
        return LeftPlan(openings, prompt_rows, targets, controls)

    def check(self, request: Request) -> None:
        """Raise what the request would fail on (a value a classifier lacks, an impossible length),
        without writing anything."""
        if request.method == "diffusion":
            self.plan(request)
        else:
            self.left_plan(request)

    def plan(self, request: Request) -> Plan:
        """Template rows for every prompt (samples x candidates each; a `...` blank tries several
        lengths), fitted to the word counts the targets imply, and the controls for those rows.
        Every bound of a request that depends on the model is checked here."""
        T = self.model.config.T
        if not 1 <= request.sampling.steps <= T:
            raise ConfigError(f"steps must be from 1 to {T} (the schedule's T), got {request.sampling.steps}")
        templates, prompt_rows, droppable, targets = [], [], [], []
        for p, prompt in enumerate(request.prompts):
            rows = self.prompt_templates(prompt, request.samples * request.drawn(prompt))
            templates += rows
            prompt_rows += [p] * len(rows)
            droppable += [len(set(rows)) > 1] * len(rows)
            targets += [prompt.targets] * len(rows)
        if len(templates) > MAX_ROWS:
            raise ConfigError(f"the request needs {len(templates)} rows, more than the {MAX_ROWS} one batch holds")
        if not any(targets):
            return Plan(self.windowed(templates), prompt_rows, [])
        controls = build_controls(targets, self.networks.control_source, request.weights)
        if request.steer:
            kept = constrain(templates, controls, self.seq_len, droppable)
            if len(kept) != len(templates):
                templates = [templates[r] for r in kept]
                prompt_rows = [prompt_rows[r] for r in kept]
                controls = build_controls([targets[r] for r in kept], self.networks.control_source, request.weights)
        # the network runs on each row's window; the classifiers read whole rows (GuideStep.whole)
        return Plan(self.windowed(templates), prompt_rows, controls)

    def windowed(self, templates: list[Template]) -> list[Template]:
        """Each template of a known length cut to the positions it needs, for a model trained on
        such windows: its words, START, END and SAMPLE_PAD more. Free text keeps the whole row and
        the model picks its length: drawing a length first and running at that size read worse
        (9 of 20 fluent against 15 of 20, docs/quality.md)."""
        if not self.model.config.windows:
            return templates
        windowed = []
        for template in templates:
            length = fixed_length(template)
            known = template.window is None and length is not None
            windowed.append(template.with_window(length + 2 + SAMPLE_PAD) if known else template)
        return windowed

    def prompt_templates(self, prompt: Prompt, rows: int) -> list[Template]:
        """`rows` templates for one prompt; a `...` blank gets each length in ELLIPSIS_LENGTHS that
        fits, `rows` times each (fewer when that would pass ELLIPSIS_ROWS). A template of a fixed
        length must reach the end of the prompt's spans (engine.controls.spans.fitting), steered or not."""
        prompt.check_one_length()
        template, length, targets = prompt.template, prompt.length, prompt.targets
        if isinstance(template, Template):
            return fitting([template], targets, "the template") * rows
        if prompt.vary is not None:
            varied = vary_template(prompt.vary, template, self.tokenizer, self.seq_len)
            return fitting([varied], targets, "the sentence to vary") * rows
        if template is not None and has_ellipsis(template):
            lengths = []
            for n in ELLIPSIS_LENGTHS:
                try:
                    lengths.append(parse_template(expand_ellipsis(template, n), self.tokenizer, self.seq_len))
                except TemplateError:
                    if not lengths:  # even the shortest does not fit, or an unknown word: say why
                        raise
                    break  # longer blanks no longer fit
            lengths = fitting(lengths, targets, "the template")
            per_length = max(1, min(rows, ELLIPSIS_ROWS // len(lengths)))
            return [row for row in lengths for _ in range(per_length)]
        if template is not None:
            return fitting([parse_template(template, self.tokenizer, self.seq_len)], targets, "the template") * rows
        if length is not None:
            return fitting([length_template(length, self.seq_len)], targets, "the length asked for") * rows
        return [free_template(self.seq_len)] * rows

    # --- the forward process ------------------------------------------------------------------
    def forward(self, sentence: str, seed: int = 0, points: int = 50) -> Noising:
        """The sentence dissolving into noise: its words noised to `points` + 1 times from 0 to T,
        with the noise that a variation of it (Request.one(vary=sentence, seed=seed)) starts from."""
        if not 1 <= points <= self.model.config.T:
            raise ConfigError(f"points must be from 1 to {self.model.config.T}, got {points}")
        if not 0 <= seed <= MAX_SEED:
            raise ConfigError(f"seed must be a whole number from 0 to {MAX_SEED}, got {seed}")
        template = self.windowed([vary_template(sentence, None, self.tokenizer, self.seq_len)])[0]
        return noising(self.sampler, self.networks.word_posterior, template, seed,
                       [0, *reversed(strided_timesteps(points, self.model.config.T))])
