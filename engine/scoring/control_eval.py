"""`python -m engine.evaluate control`: how often guided samples meet their targets, and at what cost.

    python -m engine.evaluate control --kind pos --targets docs/targets/pos.jsonl \\
        --n-targets 50 --samples-per-target 1 --json [--no-guidance] [--method diffusion|fudge|ar]

Each target gets S samples. `success` is the task's oracle metric (POS accuracy, attachment F1,
span found, value mentioned, exact length; for compose the mean over its controls), averaged
over a target's samples and then over all targets read, a target that could not be used counting
as a failure. A line that cannot be used (malformed, or asking what this model cannot do: a value
its classifier never saw, a length it cannot write) stops nothing: `unusable` lists each with its
line and reason, and `coverage` is the share of targets used. `fluency_ppl` is the judge's (or
--fluency-judge's)
perplexity of all samples. With --no-guidance nothing steers or constrains the samples (free
text, one draw per sample): chance level. With --candidates K every sample kept is the best of K drawn, ranked as the
editor ranks them (independent checks, the control's own oracle, then the judge): what a user
gets, not the paper's protocol of one draw per sample. --method fudge writes left to right with
the autoregressive LM, steered by FUDGE's future discriminators, and --method ar without control:
the same targets, oracles, judge and cost figures (passes per network, seconds per sample).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from statistics import mean, quantiles

from engine.autoregressive.writer import WriteOptions
from engine.controls import KINDS
from engine.controls.guidance import GuidanceOptions
from engine.controls.targets import TargetLine, Unusable, scan_targets
from engine.diffusion.checkpoint import read_json
from engine.diffusion.sampler import SampleOptions
from engine.errors import EngineError, TargetError
from engine.pipeline import Pipeline
from engine.request import Prompt, Request
from engine.scoring.judge import Judge
from engine.text.tokenizer import Tokenizer


def evaluate_control(args: argparse.Namespace, sampling: SampleOptions, guidance: GuidanceOptions,
                     weights: dict[str, float], writing: WriteOptions) -> dict:
    spt = args.samples_per_target
    if min(args.n_targets, spt, args.batch, 1 if args.candidates is None else args.candidates) < 1:
        raise EngineError("--n-targets, --samples-per-target, --candidates and --batch must be at least 1")
    pipe = Pipeline.load(args.model, device=args.device)
    judge = Judge.other_or(args.fluency_judge, pipe.judge, pipe.tokenizer)
    read, unusable = scan_targets(args.kind, args.targets, limit=args.n_targets)
    sampling.record_latents = False
    lines = []
    method = "ar" if args.no_guidance and args.method == "fudge" else args.method
    for line in read:  # what only the model can refuse (a value its classifier lacks, a length it cannot write)
        try:
            pipe.check(Request(prompts=(Prompt(targets=line.targets),), samples=1, sampling=sampling,
                               steer=not args.no_guidance, method=method))
            lines.append(line)
        except EngineError as exc:
            unusable.append(Unusable(line.line, str(exc)))
    total = len(lines) + len(unusable)
    if not lines:
        raise TargetError(f"{args.targets}: none of its {total} targets can be used, e.g. line "
                          f"{unusable[0].line}: {unusable[0].reason}")
    requests = [Request(prompts=(Prompt(targets=line.targets),), samples=spt, candidates=args.candidates,
                        steer=not args.no_guidance, method=method) for line in lines]
    drawn = max(request.drawn(request.prompts[0]) for request in requests)
    per_batch = max(1, args.batch // (spt * drawn))
    samples, per_target, by_control, passes = [], [], {}, {}
    seconds = batches = 0
    for first in range(0, len(lines), per_batch):
        batch = lines[first:first + per_batch]
        result = pipe.run(Request(prompts=tuple(Prompt(targets=line.targets) for line in batch), samples=spt,
                                  candidates=args.candidates, seed=args.seed + first * spt, sampling=sampling,
                                  guidance=guidance, weights=weights, steer=not args.no_guidance, method=method,
                                  writing=writing))
        seconds += result.cost.seconds
        for network, n in result.cost.passes().items():
            passes[network] = passes.get(network, 0) + n
        batches += 1
        for line, group in zip(batch, result.ranked, strict=True):
            per_target.append(mean(mean(c.control_scores.values()) for c in group))
            for c in group:
                samples.append({"target": line.raw, "text": c.text, "words": c.words, "scores": c.control_scores})
                for name, value in c.control_scores.items():
                    by_control.setdefault(name, []).append(value)
    report = {
        "kind": args.kind, "method": method, "guidance": method != "ar" and not args.no_guidance,
        "success": round(sum(per_target) / total, 4),
        "coverage": round(len(lines) / total, 4),
        "unusable": [{"line": u.line, "reason": u.reason} for u in sorted(unusable, key=lambda u: u.line)],
        "fluency_ppl": round(judge.perplexity([s.pop("words") for s in samples]), 2) if judge else None,
        "fluency_judge": str(args.fluency_judge or pipe.directory),
        "seconds_per_sample": round(seconds / len(samples), 4),
        "passes_per_sample": round(sum(passes.values()) / batches, 1),
        **{f"{network}_passes_per_sample": round(n / batches, 1) for network, n in passes.items()},
        "spread": spread(per_target, unusable=len(unusable)),
        "n_targets": total, "n_used": len(lines), "samples_per_target": spt, "candidates": drawn,
        "settings": {**method_settings(method, sampling, guidance, writing, lines), "weights": weights,
                     "batch": args.batch, "seed": args.seed, "targets": str(args.targets),
                     "model": str(pipe.directory)},
        "samples": samples,
    }
    # success_by_control below: over the targets used
    if len(by_control) > 1:
        report["success_by_control"] = {k: round(mean(v), 4) for k, v in by_control.items()}
    return report


def rescore(reports: list[str], judge_dir: str) -> dict:
    """{report: the corpus perplexity of its samples under the judge in `judge_dir`}."""
    judge = Judge(Path(judge_dir), Tokenizer.load(Path(judge_dir) / "vocab.json"))
    scores = {}
    for report in reports:
        samples = read_json(Path(report), what="control report").get("samples")
        if not isinstance(samples, list) or not samples:
            raise EngineError(f"{report} holds no samples (write it with engine.evaluate control)")
        scores[report] = round(judge.perplexity([sample["text"].split() for sample in samples]), 2)
    return {"judge": judge_dir, "fluency_ppl": scores}


def method_settings(method: str, sampling: SampleOptions, guidance: GuidanceOptions, writing: WriteOptions,
                    lines: list[TargetLine]) -> dict:
    """The options that shaped the samples of `method`."""
    if method != "diffusion":
        return vars(writing)
    settings = {**vars(sampling), **vars(guidance.resolved(steered_kinds(lines)))}
    settings.pop("record_latents")
    return settings


def spread(per_target: list[float], unusable: int) -> dict:
    """How success varies over targets (each target's mean over its samples, an unusable one 0):
    the quartiles, the extremes, and the share of targets fully met."""
    scores = sorted(per_target + [0.0] * unusable)
    q1, median, q3 = quantiles(scores, n=4, method="inclusive") if len(scores) > 1 else scores * 3
    return {"min": round(scores[0], 4), "q1": round(q1, 4), "median": round(median, 4), "q3": round(q3, 4),
            "max": round(scores[-1], 4), "fully_met": round(sum(s == 1.0 for s in scores) / len(scores), 4)}


def steered_kinds(lines: list[TargetLine]) -> list[str]:
    """The kinds of control these target lines steer with, in registry order."""
    named = {target.kind for line in lines for target in line.targets}
    return [name for name, kind in KINDS.items() if name in named and kind.steers]
