"""Generate text from the command line.

    python -m engine.generate --template "The Eagle is a _ _ coffee shop near _ _ ." --samples 4 --seed 7
    python -m engine.generate --length 12 --samples 4 --json
    python -m engine.generate --pos "PROPN AUX DET ADJ NOUN PUNCT" --semantic food=Italian --samples 4

Every `_` is one free word and `...` a blank of any length (several lengths are tried in one batch
and the fluency judge ranks them); every other word comes out exactly as written, in order.
Controls (--pos, --tree, --spans, --semantic) steer the samples with classifier guidance; the
results are then ranked by how well an independent oracle finds them met, then by the judge.
"""

from __future__ import annotations

import argparse
import json
import sys

from engine.controls.guidance import READS, Guidance, GuidanceOptions
from engine.controls.targets import targets_from_fields
from engine.diffusion.sampler import SampleOptions
from engine.errors import EngineError
from engine.pipeline import Pipeline
from engine.text.template import has_ellipsis

GUIDANCE = GuidanceOptions()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m engine.generate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--template", help="text with '_' for each word the model fills")
    p.add_argument("--length", type=int, help="no template: sample freely with exactly this many words")
    p.add_argument("--samples", type=int, default=4, help="how many samples (one batch)")
    p.add_argument("--steps", type=int, default=50, help="denoising steps (strided from T=2000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", help="model directory (default: the bundled model in assets/model)")
    p.add_argument("--no-clamp", action="store_true", help="do not clamp x0 estimates to word vectors")
    p.add_argument("--temperature", type=float, default=1.0, help="softmax temperature behind unclamped x0")
    p.add_argument("--noise-scale", type=float, default=1.0, help="scale of per-step noise (1 = ancestral)")
    p.add_argument("--candidates", type=int, default=1,
                   help="sample this many per output and keep the one the fluency judge ranks best")
    p.add_argument("--pos", default="", help="Universal POS tags, one per word: 'PROPN AUX DET NOUN PUNCT'")
    p.add_argument("--tree", default="", help="an exemplar sentence whose dependency tree to follow")
    p.add_argument("--spans", default="", help="constituents 'i j LABEL' separated by ';' (words from 0)")
    p.add_argument("--semantic", action="append", default=[], help="field=value, e.g. food=Italian (repeatable)")
    p.add_argument("--strength", type=float, default=GUIDANCE.strength, help="guidance step size (0 = off)")
    p.add_argument("--fluency", type=float, default=GUIDANCE.fluency, help="lambda of the fluency term")
    p.add_argument("--guide-steps", type=int, default=GUIDANCE.steps, help="gradient steps per denoising step")
    p.add_argument("--reads", choices=READS, default=GUIDANCE.reads, help="what the classifiers read")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    return p


def guided(pipe: Pipeline, args: argparse.Namespace, options: SampleOptions):
    """Samples steered by the controls asked for: the best `samples` of samples x candidates."""
    targets = targets_from_fields(args.pos, args.tree, args.spans, args.semantic)
    templates = pipe.templates(args.template, args.length, args.samples * max(1, args.candidates))
    templates, controls = pipe.guided_templates(templates, targets)
    guidance = GuidanceOptions(strength=args.strength, fluency=args.fluency, steps=args.guide_steps, reads=args.reads)
    result = pipe.sample(templates, options, args.seed, Guidance(controls, guidance))
    return [c.words for c in pipe.rank(result, templates, keep=args.samples, controls=controls)], result


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        pipe = Pipeline.load(args.model)
        options = SampleOptions(steps=args.steps, clamp=not args.no_clamp, temperature=args.temperature,
                                noise_scale=args.noise_scale, record_latents=False)
        if args.pos or args.tree or args.spans or args.semantic:
            words, result = guided(pipe, args, options)
        elif args.template and has_ellipsis(args.template):  # several lengths tried: keep the judge's favourites
            if args.candidates != 1:
                raise EngineError("--candidates does not combine with '...': a '...' blank is already "
                                  "sampled at several lengths and ranked by the fluency judge")
            templates = pipe.templates(args.template, args.length, args.samples)
            result = pipe.sample(templates, options, args.seed)
            words = [c.words for c in pipe.rank(result, templates, keep=args.samples)]
        else:
            templates = pipe.templates(args.template, args.length, args.samples)
            best, result = pipe.best_of(templates, args.candidates, options, args.seed)
            words = [result.words[j] for j in best]
    except EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({
            "samples": [{"text": " ".join(w), "tokens": w} for w in words],
            "seconds": round(result.seconds, 4), "network_passes": result.network_passes,
            "candidates_per_sample": args.candidates, "steps": args.steps, "seed": args.seed,
        }, indent=2))
    else:
        for w in words:
            print(" ".join(w))
    return 0


if __name__ == "__main__":
    sys.exit(main())
