"""The public entry point: a bundled or trained model directory, ready to generate.

    pipe = Pipeline.load()                       # assets/model
    out = pipe.generate("The Eagle is a _ _ .", samples=4, seed=7)
    out.texts, out.network_passes, out.seconds
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from engine.controls.base import Control, build_controls, constrain
from engine.controls.classifier import KINDS, ControlClassifier, classifier_path, load_classifier
from engine.controls.targets import Target
from engine.diffusion.checkpoint import BUNDLED_MODEL, load_denoiser
from engine.diffusion.model import Denoiser
from engine.diffusion.sampler import Frame, Guide, SampleOptions, Sampler, Trajectory
from engine.errors import CheckpointError, TemplateError
from engine.scoring.judge import Judge
from engine.scoring.metrics import has_repeated_trigram, locked_kept
from engine.text.template import (
    Template,
    expand_ellipsis,
    fixed_length,
    free_template,
    has_ellipsis,
    length_template,
    parse_template,
)
from engine.text.tokenizer import Tokenizer

ELLIPSIS_LENGTHS = (1, 2, 3, 4, 5, 6, 8)  # words tried for each `...` blank
MAX_BATCH = 32


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
class Pipeline:
    model: Denoiser
    tokenizer: Tokenizer
    sampler: Sampler
    judge: Judge | None
    record: dict  # how the model was trained (steps, time, losses)
    directory: Path
    classifiers: dict[str, ControlClassifier] = field(default_factory=dict)  # loaded on first use

    @classmethod
    def load(cls, directory: Path | str | None = None, bf16: bool = True) -> Pipeline:
        directory = Path(directory) if directory else BUNDLED_MODEL
        if not directory.is_dir():
            raise CheckpointError(f"model directory not found: {directory}")
        model, tokenizer, record = load_denoiser(directory)
        judge = Judge(directory, tokenizer) if (directory / "judge.json").is_file() else None
        return cls(model, tokenizer, Sampler(model, tokenizer, bf16=bf16), judge, record, directory)

    @property
    def seq_len(self) -> int:
        return self.model.config.seq_len

    def templates(self, template: str | None = None, length: int | None = None, samples: int = 1) -> list[Template]:
        """One template per sample: from text with `_` blanks, an exact word count, or free.

        A `...` in the text is a blank of unknown length: each length in ELLIPSIS_LENGTHS that fits
        gets `samples` rows (fewer when that would pass MAX_BATCH rows); `rank(..., keep=samples)`
        then keeps the best."""
        if not 1 <= samples <= MAX_BATCH:
            raise TemplateError(f"samples must be between 1 and {MAX_BATCH}, got {samples}")
        if template is not None and length is not None:
            raise TemplateError("conflicting controls: a template fixes the length, so leave the length "
                                "unset (or use a free template of only '_' blanks)")
        if template is not None and has_ellipsis(template):
            rows = []
            for n in ELLIPSIS_LENGTHS:
                try:
                    rows.append(parse_template(expand_ellipsis(template, n), self.tokenizer, self.seq_len))
                except TemplateError:
                    if not rows:  # even the shortest does not fit, or an unknown word: say why
                        raise
                    break  # longer blanks no longer fit
            per_length = max(1, min(samples, MAX_BATCH // len(rows)))
            return [row for row in rows for _ in range(per_length)]
        if template is not None:
            row = parse_template(template, self.tokenizer, self.seq_len)
        elif length is not None:
            if length > self.seq_len - 2:
                raise TemplateError(f"length {length} is impossible: the model writes at most "
                                    f"{self.seq_len - 2} words")
            row = length_template(length, self.seq_len)
        else:
            row = free_template(self.seq_len)
        return [row] * samples

    def control_kinds(self) -> list[str]:
        """The controls this model directory offers: a trained classifier each, and length."""
        return [k for k in KINDS if classifier_path(self.directory, k).is_file()] + ["length"]

    def classifier(self, kind: str) -> ControlClassifier:
        if kind not in self.classifiers:
            self.classifiers[kind] = load_classifier(self.directory, kind)
        return self.classifiers[kind]

    def controls(self, rows: Sequence[Sequence[Target]], weights: dict[str, float] | None = None) -> list[Control]:
        """Controls for a batch: `rows` holds each sample's targets (see engine.controls.targets)."""
        return build_controls(rows, self.classifier, weights)

    def guided_templates(self, templates: list[Template], targets: Sequence[Target],
                         weights: dict[str, float] | None = None) -> tuple[list[Template], list[Control]]:
        """The same targets for every row: the templates with the word counts the targets imply (rows of
        a `...` blank whose length does not fit are left out) and the controls for those rows."""
        controls = self.controls([targets] * len(templates), weights)
        fitting = constrain(templates, controls, self.seq_len, drop_conflicts=len(set(templates)) > 1)
        if len(fitting) != len(templates):
            controls = self.controls([targets] * len(fitting), weights)
        return fitting, controls

    def stream(self, templates: list[Template], options: SampleOptions | None = None,
               seed: int = 0, guide: Guide | None = None) -> Iterator[Frame]:
        return self.sampler.frames(templates, options, seed, guide)

    def generate(self, template: str | None = None, length: int | None = None, samples: int = 1,
                 options: SampleOptions | None = None, seed: int = 0) -> Trajectory:
        return self.sampler.sample(self.templates(template, length, samples), options, seed)

    def sample(self, templates: list[Template], options: SampleOptions | None = None, seed: int = 0,
               guide: Guide | None = None) -> Trajectory:
        return self.sampler.sample(templates, options, seed, guide)

    def collect(self, frames: list[Frame], templates: list[Template], seconds: float) -> Trajectory:
        """The Trajectory of frames streamed by `stream()`."""
        return self.sampler.collect(frames, templates, seconds)

    def rank(self, trajectory: Trajectory, templates: list[Template], keep: int | None = None,
             controls: Sequence[Control] = ()) -> list[Candidate]:
        """The samples of a run, best first: those passing more checks first, then those meeting
        the controls better (by their oracles), then by the judge's perplexity (lower is better);
        the first `keep` of them (all by default)."""
        words = trajectory.words
        ppl = self.judge.sentence_perplexities(words) if self.judge else [None] * len(templates)
        oracle = {c.name: c.evaluate(words) for c in controls}
        candidates = [Candidate(w, row, ppl[row], self.checks(template, w),
                                {name: round(s[row], 3) for name, s in oracle.items() if s[row] is not None})
                      for row, (w, template) in enumerate(zip(words, templates, strict=True))]

        def order(c: Candidate) -> tuple:
            met = sum(c.control_scores.values()) / len(c.control_scores) if c.control_scores else 0.0
            return -sum(c.checks.values()), -met, c.judge_ppl or 0.0

        return sorted(candidates, key=order)[:keep]

    def checks(self, template: Template, words: list[str]) -> dict[str, bool]:
        """Independent checks on finished words (string comparison, not the model's beliefs)."""
        result = {"locked words kept": locked_kept([template], [words], self.tokenizer) in (1.0, None),
                  "no repeated 3-gram": not has_repeated_trigram(words)}
        length = fixed_length(template)
        if length is not None:
            result[f"exactly {length} words"] = len(words) == length
        return result

    def best_of(self, templates: list[Template], candidates: int, options: SampleOptions | None = None,
                seed: int = 0) -> tuple[list[int], Trajectory]:
        """Sample `candidates` per template in one batch; returns, per template, the index (into the
        trajectory's batch) of the candidate the fluency judge likes best, and the trajectory."""
        if candidates < 1:
            raise TemplateError(f"candidates must be at least 1, got {candidates}")
        result = self.sampler.sample([t for t in templates for _ in range(candidates)], options, seed)
        if candidates == 1:
            return list(range(len(templates))), result
        if self.judge is None:
            raise CheckpointError(f"ranking candidates needs the fluency judge, missing in {self.directory}")
        ppl = self.judge.sentence_perplexities(result.words)
        best = [min(range(i * candidates, (i + 1) * candidates), key=ppl.__getitem__) for i in range(len(templates))]
        return best, result
