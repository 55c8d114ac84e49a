"""Measure sample quality and control with numbers, as JSON.

    python -m engine.evaluate quality --n 64 --json
    python -m engine.evaluate control --kind pos --targets FILE --n-targets 50 --json
    python -m engine.evaluate rescore --judge DIR REPORT.json ...
    python -m engine.evaluate vary --n 30 --strengths 0.2,0.4,0.6,0.8,1 --json
    python -m engine.evaluate settle --n 40 --json

See engine.scoring.quality, engine.scoring.control_eval, engine.scoring.variation and
engine.scoring.settling for what each measures.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from engine.autoregressive.writer import WriteOptions
from engine.cli import add_model_options, add_options, options_from, parse_weights, parser_for, run_command
from engine.controls.guidance import GuidanceOptions
from engine.controls.semantic import STEER_BY
from engine.controls.targets import FILE_KINDS
from engine.diffusion.sampler import SampleOptions
from engine.request import METHODS
from engine.scoring import control_eval, quality, settling, variation

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "e2e"


def build_parser():
    parser = parser_for("engine.evaluate", __doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    q = sub.add_parser("quality", help="fluency, well-formedness, copying, diversity, locked words kept",
                       description=quality.__doc__)
    q.add_argument("--n", type=int, default=64, help="samples of each kind")
    q.add_argument("--batch", type=int, default=64)
    q.add_argument("--candidates", type=int, default=4, help="candidates per infill for the best-of figures")
    q.add_argument("--train", default=str(DATA / "train.csv"), help="training sentences (for copied_from_train)")
    q.add_argument("--valid", default=str(DATA / "valid.csv"), help="real sentences to compare and infill")
    q.add_argument("--show", type=int, default=0, help="include this many verbatim samples of each kind")
    q.add_argument("--method", choices=("diffusion", "ar"), default="diffusion",
                   help="ar: free text and infills written left to right by the autoregressive LM (left-only)")
    add_options(q, WriteOptions)
    c = sub.add_parser("control", help="success, fluency and cost of the controls", description=control_eval.__doc__)
    c.add_argument("--kind", required=True, choices=FILE_KINDS)
    c.add_argument("--targets", required=True, help="target file in the format of the kind (see engine.controls)")
    c.add_argument("--n-targets", type=int, default=50, help="use the first K targets of the file")
    c.add_argument("--template-from", metavar="FILE",
                   help="ask each target on a template: line n of FILE (a POS, spans or compose file) gives target "
                        "n's sentence, blanked but for 2 to 4 words (never one the target asks for)")
    c.add_argument("--samples-per-target", type=int, default=1)
    c.add_argument("--candidates", type=int, default=None,
                   help="draw this many per sample kept, the best kept by the pipeline's ranking (checks, the "
                        "control's oracle, then the judge), as the editor and engine.generate do (default: "
                        "the controls' own; 1 is the paper's protocol)")
    c.add_argument("--template", help="ask every target on this template (\"_ _ _ is a _ _ near _ _ .\")")
    c.add_argument("--steer-meaning", choices=STEER_BY,
                   help="steer every semantic value by its classifier label, the word posterior towards its words, "
                        "or both (default: each field's measured way)")
    c.add_argument("--no-guidance", action="store_true", help="free samples, no control at all (chance level)")
    c.add_argument("--weights", default="", help="composition weights, e.g. pos=1,semantic=2")
    c.add_argument("--batch", type=int, default=32)
    c.add_argument("--method", choices=METHODS, default="diffusion",
                   help="diffusion; fudge: left to right, steered by FUDGE's discriminators; ar: left to right, "
                        "no control")
    add_options(c, GuidanceOptions)
    add_options(c, WriteOptions)
    r = sub.add_parser("rescore", help="the fluency of saved control reports' samples under another judge",
                       description="Each report's samples scored again by the judge in --judge (e.g. an LM trained "
                                   "apart from the one that wrote left-to-right samples): corpus perplexity per file.")
    r.add_argument("reports", nargs="+", help="JSON files written by `engine.evaluate control`")
    r.add_argument("--judge", required=True, metavar="DIR", help="directory with judge.json and vocab.json")
    v = sub.add_parser("vary", help="words changed and fluency of variations (SDEdit), by strength",
                       description=variation.__doc__)
    v.add_argument("--n", type=int, default=30, help="real sentences to vary")
    v.add_argument("--samples", type=int, default=4, help="variations of each sentence per strength")
    v.add_argument("--strengths", default="0.1,0.2,0.3,0.4,0.5,0.6,0.8,1", help="vary strengths, comma-separated")
    v.add_argument("--valid", default=str(DATA / "valid.csv"), help="real sentences to vary")
    v.add_argument("--show", type=int, default=0, help="include the variations of this many sentences verbatim")
    s = sub.add_parser("settle", help="passes saved and texts changed by stopping runs once their words settle",
                       description=settling.__doc__)
    s.add_argument("--n", type=int, default=40, help="requests of each kind (free text, four infill patterns)")
    s.add_argument("--samples", type=int, default=4, help="rows per request (the editor's default)")
    s.add_argument("--settle-grid-steps", default="1,2,3,5,8", help="k: steps unchanged, comma-separated")
    s.add_argument("--settle-grid-confidence", default="0,0.5,0.8,0.9,0.95",
                   help="c: least probability, comma-separated")
    s.add_argument("--valid", default=str(DATA / "valid.csv"), help="real sentences to infill")
    for p in (q, c, v, s):
        p.add_argument("--fluency-judge", metavar="DIR",
                       help="score fluency with the judge in DIR, an LM trained apart (the model's own judge writes "
                            "the left-to-right methods' text, so it flatters them)")
        add_options(p, SampleOptions)
        p.add_argument("--seed", type=int, default=0)
        add_model_options(p)
        p.add_argument("--json", action="store_true", help="print JSON (the default output is also JSON)")
    return parser


def evaluate(args) -> int:
    if args.command == "rescore":
        print(json.dumps(control_eval.rescore(args.reports, args.judge), indent=2))
        return 0
    sampling = options_from(SampleOptions, args)
    if args.command == "vary":
        report = variation.vary_report(args, sampling)
    elif args.command == "settle":
        report = settling.settle_report(args, sampling)
    elif args.command == "control":
        report = control_eval.evaluate_control(args, sampling, options_from(GuidanceOptions, args),
                                               parse_weights(args.weights), options_from(WriteOptions, args))
    else:
        report = quality.quality(args, sampling, options_from(WriteOptions, args))
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command(evaluate, build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
