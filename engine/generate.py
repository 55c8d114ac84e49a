"""Generate text from the command line.

    python -m engine.generate --template "The Eagle is a _ _ coffee shop near _ _ ." --samples 4 --seed 7
    python -m engine.generate --length 12 --samples 4 --json
    python -m engine.generate --pos "PROPN AUX DET ADJ NOUN PUNCT" --semantic food=Italian --samples 4
    python -m engine.generate --vary "The Eagle is a cheap coffee shop near the river ." --vary-strength 0.4

Every `_` is one free word and `...` a blank of any length (several lengths are tried in one batch);
every other word comes out exactly as written, in order. Target flags (one per kind of control)
steer the samples by guidance (a trained classifier's gradient, or for --include the denoiser's
word posterior); flags left out take each control's measured default. The samples are ranked by independent checks, then
by how well an oracle finds the targets met, then by the fluency judge; `--candidates N` draws N
per sample kept. `--method fudge` writes left to right with the judge's autoregressive LM instead,
from the template's words before its first blank, steered by FUDGE's discriminators (`--method ar`:
no control); the words locked after a blank are then only checked, not kept. `--vary SENTENCE`
rewords a sentence you have (SDEdit): the run starts from its words noised to t = strength x T
(`--vary-strength`, from above 0 to 1: low keeps most words); a `--template` of the same length
locks the words it writes, and `_` marks those that may change.
"""

from __future__ import annotations

import json
import sys

from engine.cli import add_model_options, add_options, options_from, parser_for, run_command
from engine.controls import KINDS, STEERED
from engine.controls.targets import targets_from_fields
from engine.pipeline import Pipeline
from engine.request import Prompt, Request


def build_parser():
    p = parser_for("engine.generate", __doc__)
    add_options(p, Prompt)
    add_options(p, Request)
    add_model_options(p)
    for name in STEERED:
        kind = KINDS[name]
        p.add_argument(f"--{name}", action="append" if kind.many else "store", default=[] if kind.many else "",
                       help=f"{kind.label}, e.g. {kind.placeholder!r}" + (" (repeatable)" if kind.many else ""))
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    return p


def request_from(args) -> Request:
    prompt = options_from(Prompt, args, targets=targets_from_fields({k: getattr(args, k) for k in STEERED}))
    request = options_from(Request, args, prompts=(prompt,))
    request.sampling.record_latents = False
    return request


def generate(args) -> int:
    result = Pipeline.from_pretrained(args.model, device=args.device, precision=args.precision).run(request_from(args))
    if args.json:
        print(json.dumps({"samples": [{"text": c.text, "tokens": c.words, "control_scores": c.control_scores}
                                      for c in result.best],
                          **result.cost.to_dict(), "method": args.method, "seed": args.seed,
                          **({"steps": args.steps} if args.method == "diffusion" else {}),
                          **({"vary": args.vary, "vary_strength": args.vary_strength} if args.vary else {})},
                         indent=2))
    else:
        for candidate in result.best:
            print(candidate.text)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command(generate, build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
