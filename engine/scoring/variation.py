"""`python -m engine.evaluate vary`: how much a variation changes a sentence, by strength.

Real sentences (n of the valid file, evenly spread) are each varied `--samples` times at every
strength in `--strengths` (SDEdit: the run starts from the sentence's words noised to t =
strength x T, nothing locked, so the length stays). For each strength: the share of words changed
(position by position: the length is the sentence's), how many variations came back unchanged,
how many of a sentence's variations differ from each other, the judge's perplexity (beside the
real sentences'), and the model seconds per variation.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from engine.diffusion.sampler import SampleOptions
from engine.errors import EngineError
from engine.request import MAX_ROWS, Prompt, Request
from engine.scoring.quality import judged_pipeline, spread_sentences


def strengths(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise EngineError(f"--strengths takes numbers separated by commas, e.g. 0.2,0.5,1, got {text!r}") from None
    if not values:
        raise EngineError("--strengths needs at least one strength")
    return values


def changed(source: list[str], words: list[str]) -> float:
    """The share of the source's positions whose word differs (a variation keeps the length)."""
    return sum(a != b for a, b in zip(source, words, strict=True)) / len(source)


def vary_report(args: argparse.Namespace, sampling: SampleOptions) -> dict:
    if args.n < 1 or args.samples < 1 or args.n * args.samples > MAX_ROWS:
        raise EngineError(f"--n and --samples must be at least 1, with n x samples at most {MAX_ROWS}")
    pipe, judge = judged_pipeline(args)
    sources = spread_sentences(Path(args.valid), pipe, args.n)
    report = {"real_valid": {"judge_ppl": round(judge.perplexity(sources), 2), "n": len(sources)}, "by_strength": {}}
    shown = {}
    for strength in strengths(args.strengths):
        request = Request(prompts=tuple(Prompt(vary=" ".join(w)) for w in sources), samples=args.samples,
                          candidates=1, seed=args.seed,
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
        shown[str(strength)] = [[" ".join(w) for w in group] for group in words[: args.show]]
    report["settings"] = {"n": len(sources), "samples": args.samples, "seed": args.seed, "steps": sampling.steps,
                          "fluency_judge": str(args.fluency_judge or pipe.directory), "model": str(pipe.directory)}
    if args.show:
        report["samples"] = {"sources": [" ".join(w) for w in sources[: args.show]], **shown}
    return report
