"""Measure sample quality and control with numbers, as JSON.

    python -m engine.evaluate quality --n 64 --json
    python -m engine.evaluate control --kind pos --targets FILE --n-targets 50 --json
    python -m engine.evaluate rescore --judge DIR REPORT.json ...
    python -m engine.evaluate vary --n 30 --strengths 0.2,0.4,0.6,0.8,1 --json
    python -m engine.evaluate settle --n 40 --json

See engine.evaluation.quality, engine.evaluation.control, engine.evaluation.variation and
engine.evaluation.settling for what each measures; each module's options dataclass declares its
subcommand's own flags.
"""

from __future__ import annotations

import json
import sys

from engine.autoregressive.writer import WriteOptions
from engine.cli import add_model_options, add_options, options_from, parse_weights, parser_for, run_command
from engine.controls.guidance import GuidanceOptions
from engine.diffusion.sampler import SampleOptions
from engine.evaluation import control, quality, settling, variation
from engine.evaluation.control import ControlOptions
from engine.evaluation.quality import QualityOptions
from engine.evaluation.settling import SettleOptions
from engine.evaluation.variation import VaryOptions
from engine.pipeline import Pipeline


def build_parser():
    parser = parser_for("engine.evaluate", __doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    q = sub.add_parser("quality", help="fluency, well-formedness, copying, diversity, locked words kept",
                       description=quality.__doc__)
    add_options(q, QualityOptions)
    add_options(q, WriteOptions)
    c = sub.add_parser("control", help="success, fluency and cost of the controls", description=control.__doc__)
    add_options(c, ControlOptions, required=("kind", "targets"))
    c.add_argument("--weights", default="", help="composition weights, e.g. pos=1,semantic=2")
    add_options(c, GuidanceOptions)
    add_options(c, WriteOptions)
    r = sub.add_parser("rescore", help="the fluency of saved control reports' samples under another judge",
                       description="Each report's samples scored again by the judge in --judge (e.g. an LM trained "
                                   "apart from the one that wrote left-to-right samples): corpus perplexity per file.")
    r.add_argument("reports", nargs="+", help="JSON files written by `engine.evaluate control`")
    r.add_argument("--judge", required=True, metavar="DIR", help="directory with judge.json and vocab.json")
    v = sub.add_parser("vary", help="words changed and fluency of variations (SDEdit), by strength",
                       description=variation.__doc__)
    add_options(v, VaryOptions)
    s = sub.add_parser("settle", help="passes saved and texts changed by stopping runs once their words settle",
                       description=settling.__doc__)
    add_options(s, SettleOptions)
    for p in (q, c, v, s):
        p.add_argument("--fluency-judge", metavar="DIR",
                       help="score fluency with the judge in DIR, an LM trained apart (the model's own judge writes "
                            "the left-to-right methods' text, so it flatters them)")
        add_options(p, SampleOptions)
        p.add_argument("--seed", type=int, default=0)
        add_model_options(p)
        p.add_argument("--json", action="store_true", help="print JSON (the default output is also JSON)")
    return parser


# each evaluation's options and the function that measures it
EVALUATIONS = {"quality": (QualityOptions, quality.quality), "control": (ControlOptions, control.evaluate_control),
               "vary": (VaryOptions, variation.vary_report), "settle": (SettleOptions, settling.settle_report)}


def evaluate(args) -> int:
    if args.command == "rescore":
        print(json.dumps(control.rescore(args.reports, args.judge), indent=2))
        return 0
    declared, measure = EVALUATIONS[args.command]
    options = options_from(declared, args)  # every option is checked before the model loads
    sampling = options_from(SampleOptions, args)
    shaping = {}  # how the left-to-right methods write, and how controls steer
    if args.command in ("quality", "control"):
        shaping["writing"] = options_from(WriteOptions, args)
    if args.command == "control":
        shaping |= {"guidance": options_from(GuidanceOptions, args), "weights": parse_weights(args.weights)}
    pipe = Pipeline.from_pretrained(args.model, device=args.device, precision=args.precision)
    report = measure(pipe, options, sampling, seed=args.seed, fluency_judge=args.fluency_judge, **shaping)
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command(evaluate, build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
