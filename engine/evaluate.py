"""Measure sample quality and control with numbers.

    python -m engine.evaluate quality --n 64 --json
    python -m engine.evaluate control --kind pos --targets FILE --n-targets 50 --json   (see control_eval)

Free samples and infilling (valid sentences with their middle third blanked) are scored by the
fluency judge's perplexity (beside the same figure for real valid sentences), well-formedness,
copying from the training set, diversity (distinct-2) and how many locked words were kept.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from engine.diffusion.sampler import SampleOptions
from engine.errors import EngineError
from engine.pipeline import Pipeline
from engine.scoring.control_eval import add_parser as add_control_parser
from engine.scoring.control_eval import evaluate_control
from engine.scoring.metrics import copied_fraction, distinct_n, locked_kept, well_formed
from engine.text.data import read_sentences
from engine.text.template import Template, free_template, template_from_ids
from engine.text.tokenizer import split_words

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "e2e"


def infill_templates(sentences: list[list[str]], pipe: Pipeline) -> list[Template]:
    """Each sentence with its middle third of words blanked (one free word per blanked word)."""
    templates = []
    for words in sentences:
        third = len(words) // 3
        ids = [None if third <= i < 2 * third else pipe.tokenizer.index[w] for i, w in enumerate(words)]
        templates.append(template_from_ids(ids, pipe.seq_len))
    return templates


def score(pipe: Pipeline, templates: list[Template], options: SampleOptions, args: argparse.Namespace,
          train: set[tuple[str, ...]], *, candidates: int = 1) -> tuple[dict, list[str]]:
    words, tokens, seconds = [], [], 0.0
    step = max(1, args.batch // candidates)
    for i in range(0, len(templates), step):
        best, result = pipe.best_of(templates[i:i + step], candidates, options, args.seed + i)
        words += [result.words[j] for j in best]
        tokens += [result.tokens[j].tolist() for j in best]
        seconds += result.seconds
    metrics = {
        "judge_ppl": round(pipe.judge.perplexity(words), 2) if pipe.judge else None,
        "well_formed": round(sum(well_formed(t, pipe.tokenizer) for t in tokens) / len(tokens), 3),
        "copied_from_train": round(copied_fraction(words, train), 3),
        "distinct_2": round(distinct_n(words, 2), 3),
        "locked_kept": locked_kept(templates, words, pipe.tokenizer),
        "seconds_per_sample": round(seconds / len(templates), 4),
    }
    return metrics, [" ".join(w) for w in words]


def quality(args: argparse.Namespace) -> dict:
    pipe = Pipeline.load(args.model)
    if pipe.judge is None:
        raise EngineError(f"{pipe.directory} has no fluency judge (judge.json): train one with --judge")
    train = {tuple(split_words(s)) for s in read_sentences(Path(args.train))}
    valid = [split_words(s) for s in read_sentences(Path(args.valid))]
    valid = [w for w in valid if all(x in pipe.tokenizer for x in w) and len(w) + 2 <= pipe.seq_len][: args.n]
    options = SampleOptions(steps=args.steps, clamp=not args.no_clamp, temperature=args.temperature,
                            noise_scale=args.noise_scale, locked_noise=args.locked_noise, record_latents=False)
    free, free_text = score(pipe, [free_template(pipe.seq_len)] * args.n, options, args, train)
    infill, infill_text = score(pipe, infill_templates(valid, pipe), options, args, train)
    ranked, ranked_text = score(pipe, infill_templates(valid, pipe), options, args, train,
                                candidates=args.candidates)
    report = {
        "real_valid": {"judge_ppl": round(pipe.judge.perplexity(valid), 2),
                       "distinct_2": round(distinct_n(valid), 3), "n": len(valid)},
        "free": free, "infill": infill, f"infill_best_of_{args.candidates}": ranked,
        "settings": {"n": args.n, "steps": args.steps, "clamp": not args.no_clamp,
                     "temperature": args.temperature, "noise_scale": args.noise_scale,
                     "locked_noise": args.locked_noise, "seed": args.seed,
                     "model": str(pipe.directory)},
    }
    if args.show:
        report["samples"] = {"free": free_text[: args.show], "infill": infill_text[: args.show],
                             f"infill_best_of_{args.candidates}": ranked_text[: args.show],
                             "infill_source": [" ".join(w) for w in valid[: args.show]]}
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    q = sub.add_parser("quality", help="fluency, well-formedness, copying, diversity, locked words kept")
    q.add_argument("--n", type=int, default=64, help="samples of each kind")
    q.add_argument("--steps", type=int, default=50)
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--batch", type=int, default=64)
    q.add_argument("--no-clamp", action="store_true")
    q.add_argument("--temperature", type=float, default=1.0)
    q.add_argument("--noise-scale", type=float, default=1.0)
    q.add_argument("--locked-noise", type=float, default=0.0,
                   help="noise on locked positions as a fraction of t (1 = Diffusion-LM's replacement)")
    q.add_argument("--candidates", type=int, default=4, help="candidates per infill for the judge-ranked figures")
    q.add_argument("--model", help="model directory (default: the bundled model)")
    q.add_argument("--train", default=str(DATA / "train.csv"), help="training sentences (for copied_from_train)")
    q.add_argument("--valid", default=str(DATA / "valid.csv"), help="real sentences to compare and infill")
    q.add_argument("--show", type=int, default=0, help="include this many verbatim samples of each kind")
    q.add_argument("--json", action="store_true", help="print JSON (the default output is also JSON)")
    add_control_parser(sub)
    args = parser.parse_args(argv)
    try:
        if args.command == "control":
            report = evaluate_control(args)
        elif args.n < 1:
            raise EngineError(f"--n must be at least 1, got {args.n}")
        else:
            report = quality(args)
    except EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
