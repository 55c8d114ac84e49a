"""What a caller asks of the pipeline, and what it gets back.

Every caller (the editor and its API, `engine.generate`, `engine.evaluate`, `engine.bench`,
`editor.bench`) builds a `Request` and hands it to `Pipeline.run` or `Pipeline.stream`; the
`Result` carries the ranked candidates, the trajectory with its templates, and one `Cost`. A
request with `method` "fudge" or "ar" is written left to right by the autoregressive LM instead
(engine.autoregressive): its stream yields `Written` states and ends in a `Writing`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from engine.autoregressive.writer import WriteOptions, Written
from engine.controls import KINDS
from engine.controls.base import Control
from engine.controls.guidance import GuidanceOptions
from engine.diffusion.sampler import SampleOptions, Trajectory
from engine.errors import ConfigError, TemplateError
from engine.options import Widget, build, check, derived, option, settings
from engine.text.template import Template

MAX_SAMPLES = 32  # results kept per prompt
MAX_ROWS = 256  # rows sampled in one batch (samples x candidates x prompts, '...' lengths included)
MAX_SEED = 2**63 - 1  # the largest seed a torch generator takes
# diffusion; fudge: left to right, steered by FUDGE's discriminators; ar: left to right, targets only judged
METHODS = ("diffusion", "fudge", "ar")


@dataclass(frozen=True)
class Prompt:
    """One thing to write. `template`: text with `_` for one free word and `...` for a blank of
    unknown length (or a ready Template); or `length`: exactly that many free words; or neither:
    free text. `targets`: what the controls ask of it (see engine.controls.targets). `vary`: a
    sentence to reword instead of blanks to fill: the run starts from its words noised
    (`SampleOptions.vary_strength`), and the template, when given, locks some of them."""

    template: str | Template | None = option(None, "text with '_' for each word the model fills, '...' for a blank "
                                                   "of any length")
    length: int | None = option(None, "no template: sample exactly this many words", api=True, unset=0,
                                page=Widget("slider", "length in words (0 = template/model decides)", 0, "words", 1,
                                            default=0))
    targets: tuple = derived(())  # from the control kinds' own inputs (engine.controls.targets)
    vary: str | None = option(None, "reword this sentence, starting from its words noised to --vary-strength (the "
                                    "template, if given, locks words of it)", api=True,
                              label="sentence to vary")

    def check_one_length(self) -> None:
        """A template fixes the length: a length beside it conflicts."""
        if self.template is not None and self.length is not None:
            raise TemplateError("conflicting controls: a template fixes the length, so leave the length "
                                "unset (or use a free template of only '_' blanks)")
        if self.vary is not None and self.length is not None:
            raise TemplateError("conflicting controls: a sentence to vary keeps its own length, so leave the length "
                                "unset")


def drawn_per_result(targets: tuple, candidates: int | None, steer: bool) -> int:
    """`candidates` if set, else the kinds' defaults (`ControlKind.candidates`): the fewest any
    steered kind among `targets` asks for (each steered control adds its classifier's passes to
    every row drawn, so a composition draws fewer: docs/controls.md), else the most of the rest;
    1 without steering."""
    if candidates is not None:
        return candidates
    if not steer:
        return 1
    kinds = {t.kind for t in targets}
    steered = [KINDS[k].candidates for k in kinds if KINDS[k].steers]
    return min(steered) if steered else max((KINDS[k].candidates for k in kinds), default=1)


@dataclass
class Request:
    prompts: tuple[Prompt, ...] = derived((Prompt(),))  # one per thing to write
    samples: int = option(4, "results kept per prompt", low=1, high=MAX_SAMPLES, api=True,
                          page=Widget("slider", "samples", 1, 8, 1))
    candidates: int | None = option(None, "rows drawn per result kept, the best kept (default: the controls' own, 1 "
                                          "without controls)", low=1, high=MAX_ROWS)
    seed: int = option(0, "random seed of the run", low=0, high=MAX_SEED, api=True, page=Widget("number", "seed"))
    sampling: SampleOptions = option(SampleOptions(), "how the sampler denoises")
    guidance: GuidanceOptions = option(GuidanceOptions(), "how guidance steers")
    weights: dict[str, float] = option({}, "weights of combined controls, per kind, e.g. pos=1,semantic=2", api=True,
                                       unset=None)
    steer: bool = option(True, "False: targets are only judged (no guidance, no length they imply): chance level",
                         cli=False)
    method: str = option("diffusion", "diffusion; fudge: left to right with FUDGE control; ar: left to right, no "
                                      "control", choices=METHODS)
    writing: WriteOptions = option(WriteOptions(), "left-to-right methods only")

    def __post_init__(self) -> None:
        check(self)
        if not self.prompts:
            raise ConfigError("a request needs at least one prompt")
        drawn = [self.drawn(prompt) for prompt in self.prompts]
        rows = self.samples * sum(drawn)
        if rows > MAX_ROWS:
            raise ConfigError(f"samples x candidates x prompts must be at most {MAX_ROWS} rows, got {rows} "
                              f"({self.samples} samples, {max(drawn)} candidates, {len(self.prompts)} prompts)")
        for kind, weight in self.weights.items():
            if not isinstance(weight, int | float) or not 0 <= weight <= 100:
                raise ConfigError(f"the {kind} weight must be a number from 0 to 100, got {weight!r}")
        varied = [prompt.vary is not None for prompt in self.prompts]
        if any(varied) and self.method != "diffusion":
            raise ConfigError(f"varying a sentence starts from its noised words: only diffusion can, not {self.method}")
        if self.sampling.varies and not all(varied):
            raise ConfigError(f"a vary strength below 1 ({self.sampling.vary_strength:g}) needs a sentence to vary "
                              f"for every prompt")

    @property
    def steers(self) -> bool:
        """Whether the controls steer (else they are only judged)."""
        return self.steer and self.method != "ar"

    def drawn(self, prompt: Prompt) -> int:
        """Rows drawn per result kept for `prompt` (left to right: one, unless `candidates` says)."""
        if self.method != "diffusion":
            return self.candidates or 1
        return drawn_per_result(prompt.targets, self.candidates, self.steer)

    @classmethod
    def from_settings(cls, values: dict[tuple[str, ...], Any], targets: tuple = ()) -> Request:
        """A one-prompt request from option values by path (see `SETTINGS`); options left out take
        their defaults."""
        prompt = Prompt(**{path[1]: value for path, value in values.items() if path[0] == "prompt"},
                        targets=tuple(targets))
        return build(cls, {**{path: value for path, value in values.items() if path[0] != "prompt"},
                           ("prompts",): (prompt,)})

    @classmethod
    def one(cls, template: str | Template | None = None, length: int | None = None, targets: tuple = (),
            vary: str | None = None, **options: Any) -> Request:
        """A request with a single prompt (what the editor and `engine.generate` send)."""
        return cls(prompts=(Prompt(template, length, tuple(targets), vary),), **options)


SETTINGS = (*settings(Prompt, ("prompt",)), *settings(Request))  # every option of a one-prompt request


@dataclass
class Cost:
    """What a run cost, counted once, here. Passes are over the whole batch."""

    seconds: float  # model time (sampling and guidance), without ranking or a caller's pauses
    denoiser_passes: int  # sampling steps plus guidance's passes through the denoiser (reads x0_hat)
    classifier_passes: int  # control classifier passes (forward and backward) made by guidance
    rows: int  # samples drawn in the batch

    def to_dict(self) -> dict:
        return {**asdict(self), "seconds": round(self.seconds, 4)}

    def passes(self) -> dict[str, int]:
        """Passes per network, named."""
        return {"denoiser": self.denoiser_passes, "classifier": self.classifier_passes}


@dataclass
class WriteCost:
    """What a left-to-right run cost. Passes are over the rows still writing."""

    seconds: float  # model time (LM and discriminators), without ranking
    lm_passes: int  # one per word written
    discriminator_passes: int  # FUDGE discriminator passes over the k candidates of every row
    rows: int

    to_dict = Cost.to_dict

    def passes(self) -> dict[str, int]:
        return {"lm": self.lm_passes, "discriminator": self.discriminator_passes}


@dataclass
class Candidate:
    """One finished sample with the judge's score and independent checks of what was asked."""

    words: list[str]
    row: int  # index in the trajectory's batch
    judge_ppl: float | None
    checks: dict[str, bool]  # e.g. {"locked words kept": True, "exactly 12 words": True}
    control_scores: dict[str, float] = field(default_factory=dict)  # each control's oracle, 1 = fully met

    @property
    def text(self) -> str:
        return " ".join(self.words)

    def to_dict(self) -> dict:
        return {"text": self.text, "words": self.words, "judge_ppl": self.judge_ppl, "checks": self.checks,
                "control_scores": self.control_scores}


@dataclass
class Result:
    ranked: list[list[Candidate]]  # per prompt, the best `samples` of its rows, best first
    trajectory: Trajectory  # every row of the batch, with its templates
    prompt_rows: list[int]  # the prompt each trajectory row belongs to
    controls: list[Control]
    cost: Cost

    @property
    def best(self) -> list[Candidate]:
        """The ranked candidates of the first (usually only) prompt."""
        return self.ranked[0]

    def tokens(self, row: int) -> list[int]:
        """Row `row`'s final token ids (START ... END PAD ...)."""
        return self.trajectory.tokens[row].tolist()

    def to_dict(self) -> dict:
        """The first prompt's ranked results and the cost, as JSON-ready values."""
        return {"results": [c.to_dict() for c in self.best], **self.cost.to_dict()}


@dataclass
class Writing:
    """The result of a left-to-right run."""

    ranked: list[list[Candidate]]  # per prompt, its best `samples` rows, best first (ranked as diffusion's)
    written: list[Written]  # the state after every step
    prompt_rows: list[int]
    controls: list[Control]
    cost: WriteCost

    best = Result.best
    to_dict = Result.to_dict

    def tokens(self, row: int) -> list[int]:
        """Row `row`'s final token ids (START ... END; no PAD)."""
        return self.written[-1].tokens[row]
