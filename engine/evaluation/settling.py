"""`python -m engine.evaluate settle`: what stopping a run once its words settle saves, and what it changes.

Each request of `--samples` rows (free text, and infills of valid sentences in the four blank patterns
of engine.evaluation.quality) runs every step once. A run with a stop rule (k, c) is the same run cut at
the first step where every free word of every row has stayed the same for k steps and is at least c
likely (engine.diffusion.sampler.Settling): up to there the two are the same computation, so one full
trajectory gives every rule's result exactly. Per rule: the denoiser passes saved, the share of rows
whose text is the full run's, and the judge's perplexity of the texts at the stop beside the full
runs'. The texts a rule changes are listed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from engine.cli import option
from engine.diffusion.sampler import Frame, SampleOptions, Settling
from engine.errors import EngineError
from engine.evaluation import DATA
from engine.evaluation.quality import BLANK_PATTERNS, infill_templates, judge_for, spread_sentences
from engine.pipeline import Pipeline
from engine.request import Prompt, Request
from engine.text.template import Template, free_template


@dataclass
class SettleOptions:
    """`evaluate settle`'s own flags (the model, sampling and seed are every evaluation's)."""

    n: int = option(40, "requests of each kind (free text, four infill patterns)")
    samples: int = option(4, "rows per request (the editor's default)")
    settle_grid_steps: str = option("1,2,3,5,8", "k: steps unchanged, comma-separated")
    settle_grid_confidence: str = option("0,0.5,0.8,0.9,0.95", "c: least probability, comma-separated")
    valid: str = option(str(DATA / "valid.csv"), "real sentences to infill")

    def __post_init__(self) -> None:
        if self.n < 1 or self.samples < 1:
            raise EngineError("--n and --samples must be at least 1")
        self.rules()  # a bad grid is an error before any model loads

    def rules(self) -> list[tuple[int, float]]:
        """Every stop rule (k, c) of the grid."""
        try:
            rules = [(int(k), float(c)) for k in self.settle_grid_steps.split(",")
                     for c in self.settle_grid_confidence.split(",")]
        except ValueError:
            raise EngineError("--settle-grid-steps takes whole numbers and --settle-grid-confidence numbers, "
                              f"each separated by commas: got {self.settle_grid_steps!r} and "
                              f"{self.settle_grid_confidence!r}") from None
        if any(k < 1 or not 0 <= c <= 1 for k, c in rules):
            raise EngineError("each k of --settle-grid-steps must be at least 1, each c of --settle-grid-confidence "
                              "from 0 to 1")
        return rules


def stop_index(frames: list[Frame], steps: int, confidence: float) -> int:
    """The frame a run with this stop rule ends on (the last one if it never settles)."""
    settling = Settling(steps, confidence, frames[0].locked)
    for frame in frames[:-1]:
        if settling.update(frame.tokens, frame.confidence):
            return frame.index
    return frames[-1].index


def full_runs(pipe: Pipeline, templates: list[Template], sampling: SampleOptions, samples: int,
              seed: int) -> list[list[Frame]]:
    """Every step of one request of `samples` rows per template."""
    runs = []
    for i, template in enumerate(templates):
        request = Request(prompts=(Prompt(template),), samples=samples, seed=seed + i, sampling=sampling)
        runs.append(pipe.run(request).trajectory.frames)
    return runs


def words_at(pipe: Pipeline, frame: Frame) -> list[list[str]]:
    return [pipe.tokenizer.decode_words(row) for row in frame.tokens.tolist()]


def settle_report(pipe: Pipeline, options: SettleOptions, sampling: SampleOptions, *, seed: int = 0,
                  fluency_judge: str | None = None) -> dict:
    """The report of `python -m engine.evaluate settle` (see the module docstring); `fluency_judge`: the
    directory of the judge that scores fluency (None: the model's own)."""
    judge = judge_for(pipe, fluency_judge)
    sampling = replace(sampling, record_latents=False, settle_steps=0)
    valid = spread_sentences(Path(options.valid), pipe, options.n)
    cases = {"free": [free_template(pipe.seq_len)] * options.n}
    cases |= {f"infill_{p}": infill_templates(valid, pipe, p) for p in BLANK_PATTERNS}
    runs = {name: full_runs(pipe, templates, sampling, options.samples, seed) for name, templates in cases.items()}
    full = {name: [words_at(pipe, frames[-1]) for frames in group] for name, group in runs.items()}
    report = {"settings": {"n": options.n, "samples": options.samples, "steps": sampling.steps, "seed": seed,
                           "model": str(pipe.directory), "precision": pipe.precision,
                           "fluency_judge": str(fluency_judge or pipe.directory)},
              "full": {name: {"judge_ppl": round(judge.perplexity([w for ws in group for w in ws]), 2)}
                       for name, group in full.items()},
              "rules": []}
    for k, c in options.rules():
        row = {"settle_steps": k, "settle_confidence": c, "cases": {}}
        passes = planned = same = rows = 0
        for name, group in runs.items():
            texts, changed = [], []
            for frames, final in zip(group, full[name], strict=True):
                stop = stop_index(frames, k, c)
                passes += stop + 1
                planned += len(frames)
                words = words_at(pipe, frames[stop])
                texts += words
                for early, done in zip(words, final, strict=True):
                    rows += 1
                    same += early == done
                    if early != done:
                        changed.append({"stopped": " ".join(early), "full": " ".join(done), "step": stop})
            row["cases"][name] = {"judge_ppl": round(judge.perplexity(texts), 2), "changed": changed}
        row["passes_saved"] = round(1 - passes / planned, 3)
        row["identical"] = round(same / rows, 4)
        report["rules"].append(row)
    return report
