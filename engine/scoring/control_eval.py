"""`python -m engine.evaluate control`: how often guided samples meet their targets, and at what cost.

    python -m engine.evaluate control --kind pos --targets docs/targets/pos.jsonl \\
        --n-targets 50 --samples-per-target 1 --json [--no-guidance]

Each target gets S samples. `success` is the task's oracle metric (POS accuracy, attachment F1,
span found, value mentioned, exact length; for compose the mean over its controls), averaged
over a target's samples and then over targets. `fluency_ppl` is the judge's perplexity of all
samples. With --no-guidance nothing steers or constrains the samples (free text): chance level.
"""

from __future__ import annotations

import argparse
from statistics import mean

from engine.controls.base import constrain
from engine.controls.guidance import READS, Guidance, GuidanceOptions
from engine.controls.targets import TARGET_KINDS, read_targets
from engine.diffusion.sampler import SampleOptions
from engine.errors import EngineError
from engine.pipeline import Pipeline
from engine.text.template import free_template

DEFAULTS = GuidanceOptions()


def add_parser(sub) -> None:
    c = sub.add_parser("control", help="success, fluency and cost of the controls",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("--kind", required=True, choices=TARGET_KINDS)
    c.add_argument("--targets", required=True, help="target file in the format of the kind (see engine.controls.targets)")
    c.add_argument("--n-targets", type=int, default=50, help="use the first K targets of the file")
    c.add_argument("--samples-per-target", type=int, default=1)
    c.add_argument("--no-guidance", action="store_true", help="free samples, no control at all (chance level)")
    c.add_argument("--strength", type=float, default=DEFAULTS.strength, help="guidance step size")
    c.add_argument("--fluency", type=float, default=DEFAULTS.fluency, help="lambda of the fluency term")
    c.add_argument("--guide-steps", type=int, default=DEFAULTS.steps, help="gradient steps per denoising step")
    c.add_argument("--reads", choices=READS, default=DEFAULTS.reads, help="what the classifiers read")
    c.add_argument("--weights", default="", help="composition weights, e.g. pos=1,semantic=2")
    c.add_argument("--steps", type=int, default=50, help="denoising steps")
    c.add_argument("--batch", type=int, default=32)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--model", help="model directory (default: the bundled model)")
    c.add_argument("--json", action="store_true", help="print JSON (the default output is also JSON)")


def parse_weights(text: str) -> dict[str, float]:
    weights = {}
    for part in filter(None, text.split(",")):
        name, _, value = part.partition("=")
        try:
            weights[name.strip()] = float(value)
        except ValueError as exc:
            raise EngineError(f"--weights: expected kind=number, got {part!r}") from exc
    return weights


def evaluate_control(args: argparse.Namespace) -> dict:
    if args.n_targets < 1 or args.samples_per_target < 1 or args.batch < 1:
        raise EngineError("--n-targets, --samples-per-target and --batch must be at least 1")
    pipe = Pipeline.load(args.model)
    lines = read_targets(args.kind, args.targets, limit=args.n_targets)
    rows = [line for line in lines for _ in range(args.samples_per_target)]
    guidance_options = GuidanceOptions(strength=args.strength, fluency=args.fluency, steps=args.guide_steps,
                                       reads=args.reads)
    options = SampleOptions(steps=args.steps, record_latents=False)
    weights = parse_weights(args.weights)
    texts, words, row_scores, by_control = [], [], [], {}
    seconds = denoiser_passes = classifier_passes = 0.0
    batches = 0
    for start in range(0, len(rows), args.batch):
        batch = rows[start:start + args.batch]
        controls = pipe.controls([line.targets for line in batch], weights)
        templates = [free_template(pipe.seq_len)] * len(batch)
        guide = None
        if not args.no_guidance:
            templates = constrain(templates, controls, pipe.seq_len)
            guide = Guidance(controls, guidance_options)
        result = pipe.sample(templates, options, seed=args.seed + start, guide=guide)
        seconds += result.seconds
        denoiser_passes += result.network_passes + (guide.denoiser_passes if guide else 0)
        classifier_passes += guide.classifier_passes if guide else 0
        batches += 1
        per_control = {c.name: c.evaluate(result.words) for c in controls}
        for name, scores in per_control.items():
            by_control.setdefault(name, []).extend(s for s in scores if s is not None)
        for r in range(len(batch)):
            scores = [s[r] for s in per_control.values() if s[r] is not None]
            row_scores.append(mean(scores))
        words += result.words
        texts += result.texts
    per_target = [mean(row_scores[i:i + args.samples_per_target])
                  for i in range(0, len(rows), args.samples_per_target)]
    report = {
        "kind": args.kind, "guidance": not args.no_guidance,
        "success": round(mean(per_target), 4),
        "fluency_ppl": round(pipe.judge.perplexity(words), 2) if pipe.judge else None,
        "seconds_per_sample": round(seconds / len(rows), 4),
        "passes_per_sample": round((denoiser_passes + classifier_passes) / batches, 1),
        "denoiser_passes_per_sample": round(denoiser_passes / batches, 1),
        "classifier_passes_per_sample": round(classifier_passes / batches, 1),
        "n_targets": len(lines), "samples_per_target": args.samples_per_target,
        "settings": {"steps": args.steps, "strength": args.strength, "fluency": args.fluency,
                     "guide_steps": args.guide_steps, "reads": args.reads, "weights": weights,
                     "batch": args.batch, "seed": args.seed, "targets": str(args.targets),
                     "model": str(pipe.directory)},
        "samples": [{"target": line.raw, "text": text} for line, text in zip(rows, texts, strict=True)],
    }
    if len(by_control) > 1:
        report["success_by_control"] = {k: round(mean(v), 4) for k, v in by_control.items() if v}
    return report

