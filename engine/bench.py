"""Sampling speed and memory on this machine, as JSON.

    python -m engine.bench --json

Seconds per full-length sample (the model's sequence length, 64 positions) and denoiser passes at
200 and 50 steps, for 1 and for 16 samples in one batch, plus peak resident memory. With trained
control classifiers in the model directory, also one guided sample per control (each kind's
example target), the composition of parts of speech and semantic content, and semantic content
with the classifiers reading x0_hat, at the default guidance settings. Every run goes through
`Pipeline.run`; the seconds are its cost record's model time (ranking excluded).
"""

from __future__ import annotations

import json
import platform
import resource
import sys

import torch

from engine.cli import parser_for, run_command
from engine.controls import COMPOSED, KINDS, STEERED
from engine.controls.guidance import GuidanceOptions
from engine.controls.targets import targets_from_fields
from engine.diffusion.sampler import SampleOptions
from engine.diffusion.steps import STEP_RULES
from engine.errors import EngineError
from engine.pipeline import Pipeline
from engine.request import Request, Result


def timed(pipe: Pipeline, request: Request, repeats: int) -> tuple[float, Result]:
    """The best model time of `repeats` runs after one warm-up run, and the last result."""
    times, result = [], None
    for r in range(repeats + 1):
        request.seed = r
        result = pipe.run(request)
        times.append(result.cost.seconds)
    return min(times[1:]), result


def measure(pipe: Pipeline, steps: int, batch: int, repeats: int) -> dict:
    sampling = SampleOptions(steps=steps, record_latents=False)
    best, result = timed(pipe, Request.one(samples=batch, sampling=sampling), repeats)
    return {"steps": steps, "batch": batch, "seconds_per_batch": round(best, 4),
            "seconds_per_sample": round(best / batch, 4), "denoiser_passes": result.cost.denoiser_passes,
            "positions": pipe.seq_len}


def measure_guided(pipe: Pipeline, name: str, kinds: tuple[str, ...], reads: str, repeats: int) -> dict:
    targets = targets_from_fields({k: [KINDS[k].placeholder] if KINDS[k].many else KINDS[k].placeholder
                                   for k in kinds})
    request = Request.one(targets=targets, samples=1, sampling=SampleOptions(steps=50, record_latents=False),
                          guidance=GuidanceOptions(reads=reads))
    best, result = timed(pipe, request, repeats)
    return {"controls": name, "targets": {k: KINDS[k].placeholder for k in kinds}, "steps": 50, "batch": 1,
            "seconds_per_sample": round(best, 4), "denoiser_passes": result.cost.denoiser_passes,
            "classifier_passes": result.cost.classifier_passes, "positions": pipe.seq_len}


def measure_step_rules(pipe: Pipeline, repeats: int) -> list[dict]:
    """Seconds per sample of every step rule at 10, 20 and 50 steps, batches of 1 and 16; the rules
    interleaved run by run, so that a busy moment does not favour one of them."""
    settings = [(rule, steps, batch) for steps in (10, 20, 50) for batch in (1, 16) for rule in STEP_RULES]
    pipe.run(Request.one(samples=16, sampling=SampleOptions(steps=5, record_latents=False)))  # warm-up
    best: dict[tuple, float] = {}
    for seed in range(repeats):
        for rule, steps, batch in settings:
            sampling = SampleOptions(steps=steps, step_rule=rule, record_latents=False)
            seconds = pipe.run(Request.one(samples=batch, seed=seed, sampling=sampling)).cost.seconds / batch
            best[(rule, steps, batch)] = min(best.get((rule, steps, batch), seconds), seconds)
    return [{"step_rule": rule, "steps": steps, "batch": batch,
             "seconds_per_sample": round(best[rule, steps, batch], 4)} for rule, steps, batch in settings]


def bench(args) -> int:
    if args.repeats < 1:
        raise EngineError(f"--repeats must be at least 1, got {args.repeats}")
    pipe = Pipeline.load(args.model, bf16=not args.fp32)
    if args.step_rules:
        print(json.dumps({"step_rules": measure_step_rules(pipe, args.repeats)}, indent=2))
        return 0
    runs = [measure(pipe, steps, batch, args.repeats) for steps in (200, 50) for batch in (1, 16)]
    offered = pipe.control_kinds()
    settings = [(name, (name,), "x_t") for name in STEERED]
    settings += [("+".join(COMPOSED), COMPOSED, "x_t"), (f"{COMPOSED[-1]}, reads x0_hat", COMPOSED[-1:], "x0_hat")]
    guided = [measure_guided(pipe, name, kinds, reads, args.repeats)
              for name, kinds, reads in settings if all(k in offered for k in kinds)]
    report = {
        "runs": runs, "guided": guided,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "dtype": "float32" if args.fp32 else "bfloat16",
        "threads": torch.get_num_threads(), "torch": torch.__version__, "machine": platform.machine(),
        "parameters": pipe.model.num_parameters(),
    }
    print(json.dumps(report, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = parser_for("engine.bench", __doc__)
    parser.add_argument("--model", help="model directory (default: the bundled model)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per setting (the best is kept)")
    parser.add_argument("--fp32", action="store_true", help="run the network in float32 instead of bfloat16")
    parser.add_argument("--step-rules", action="store_true",
                        help="only time every step rule at 10, 20 and 50 steps (interleaved, best of --repeats)")
    parser.add_argument("--json", action="store_true", help="print JSON (the default output is also JSON)")
    return run_command(bench, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
