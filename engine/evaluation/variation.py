"""`python -m engine.evaluate vary`: how much a variation changes a sentence, by strength.

Real sentences (n of the valid file, evenly spread) are each varied `--samples` times at every
strength in `--strengths` (SDEdit: the run starts from the sentence's words noised to t =
strength x T, nothing locked, so the length stays). For each strength: the share of words changed
(position by position: the length is the sentence's), how many variations came back unchanged,
how many of a sentence's variations differ from each other, the judge's perplexity (beside the
real sentences'), and the model seconds per variation.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from engine.cli import option
from engine.diffusion.sampler import SampleOptions
from engine.errors import EngineError
from engine.evaluation import DATA
from engine.evaluation.quality import judge_for, spread_sentences
from engine.pipeline import Pipeline
from engine.request import MAX_ROWS, Prompt, Request


def strengths(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise EngineError(f"--strengths takes numbers separated by commas, e.g. 0.2,0.5,1, got {text!r}") from None
    if not values:
        raise EngineError("--strengths needs at least one strength")
    return values


@dataclass
class VaryOptions:
    """`evaluate vary`'s own flags (the model, sampling and seed are every evaluation's)."""

    n: int = option(30, "real sentences to vary")
    samples: int = option(4, "variations of each sentence per strength")
    strengths: str = option("0.1,0.2,0.3,0.4,0.5,0.6,0.8,1", "vary strengths, comma-separated")
    valid: str = option(str(DATA / "valid.csv"), "real sentences to vary")
    show: int = option(0, "include the variations of this many sentences verbatim")

    def __post_init__(self) -> None:
        if self.n < 1 or self.samples < 1 or self.n * self.samples > MAX_ROWS:
            raise EngineError(f"--n and --samples must be at least 1, with n x samples at most {MAX_ROWS}")
        strengths(self.strengths)  # a bad list is an error before any model loads


def changed(source: list[str], words: list[str]) -> float:
    """The share of the source's positions whose word differs (a variation keeps the length)."""
    return sum(a != b for a, b in zip(source, words, strict=True)) / len(source)


def vary_report(pipe: Pipeline, options: VaryOptions, sampling: SampleOptions, *, seed: int = 0,
                fluency_judge: str | None = None) -> dict:
    """The report of `python -m engine.evaluate vary` (see the module docstring); `fluency_judge`: the
    directory of the judge that scores fluency (None: the model's own)."""
    judge = judge_for(pipe, fluency_judge)
    sources = spread_sentences(Path(options.valid), pipe, options.n)
    report = {"real_valid": {"judge_ppl": round(judge.perplexity(sources), 2), "n": len(sources)}, "by_strength": {}}
    shown = {}
    for strength in strengths(options.strengths):
        request = Request(prompts=tuple(Prompt(vary=" ".join(w)) for w in sources), samples=options.samples,
                          candidates=1, seed=seed,
                          sampling=replace(sampling, vary_strength=strength, record_latents=False))
        result = pipe.run(request)
        words = [[c.words for c in group] for group in result.ranked]
        flat = [w for group in words for w in group]
        shares = [changed(source, w) for source, group in zip(sources, words, strict=True) for w in group]
        report["by_strength"][str(strength)] = {
            "words_changed": round(sum(shares) / len(shares), 3),
            "unchanged": round(sum(s == 0 for s in shares) / len(shares), 3),
            "distinct_variations": round(sum(len({tuple(w) for w in g}) for g in words) / len(flat), 3),
            "judge_ppl": round(judge.perplexity(flat), 2),
            "steps": len(result.trajectory.frames),
            "seconds_per_variation": round(result.cost.seconds / len(flat), 4),
        }
        shown[str(strength)] = [[" ".join(w) for w in group] for group in words[: options.show]]
    report["settings"] = {"n": len(sources), "samples": options.samples, "seed": seed, "steps": sampling.steps,
                          "fluency_judge": str(fluency_judge or pipe.directory), "model": str(pipe.directory)}
    if options.show:
        report["samples"] = {"sources": [" ".join(w) for w in sources[: options.show]], **shown}
    return report
