"""Sampling speed and memory on this machine, as JSON.

    python -m engine.bench --json

Seconds per full-length sample (the model's sequence length, 64 positions) and network passes at
200 and 50 steps, for 1 and for 16 samples in one batch, plus peak resident memory. With trained
control classifiers in the model directory, also one guided sample per control (and POS with
semantic content together) at the default guidance settings, with its denoiser and classifier passes.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time

import torch

from engine.controls.guidance import Guidance, GuidanceOptions
from engine.controls.targets import targets_from_fields
from engine.diffusion.sampler import SampleOptions
from engine.errors import EngineError
from engine.pipeline import Pipeline
from engine.text.template import free_template

# one target per control for the guided timings (the cost does not depend on which target), and
# what the classifiers read
POS_TAGS = "DET PROPN AUX DET ADJ NOUN ADP DET NOUN PUNCT"
GUIDED = {
    "pos": ({"pos": POS_TAGS}, "x_t"),
    "tree": ({"tree": "The Mill is a cheap pub near the river ."}, "x_t"),
    "spans": ({"spans": "4 6 PP"}, "x_t"),
    "semantic": ({"semantic": ["food=Italian"]}, "x_t"),
    "pos+semantic": ({"pos": POS_TAGS, "semantic": ["food=Italian"]}, "x_t"),
    "semantic, reads x0_hat": ({"semantic": ["food=Italian"]}, "x0_hat"),
}


def measure(pipe: Pipeline, steps: int, batch: int, repeats: int) -> dict:
    templates = [free_template(pipe.seq_len)] * batch
    options = SampleOptions(steps=steps, record_latents=False)
    pipe.sampler.sample(templates, SampleOptions(steps=2, record_latents=False))  # warm-up
    times = []
    for r in range(repeats):
        start = time.perf_counter()
        result = pipe.sampler.sample(templates, options, seed=r)
        times.append(time.perf_counter() - start)
    best = min(times)
    return {"steps": steps, "batch": batch, "seconds_per_batch": round(best, 4),
            "seconds_per_sample": round(best / batch, 4), "network_passes": result.network_passes,
            "positions": pipe.seq_len}


def measure_guided(pipe: Pipeline, name: str, fields: dict, reads: str, steps: int, repeats: int) -> dict:  # noqa: PLR0917
    templates, controls = pipe.guided_templates([free_template(pipe.seq_len)], targets_from_fields(**fields))
    options = SampleOptions(steps=steps, record_latents=False)
    guidance = GuidanceOptions(reads=reads)
    times, guide = [], None
    for r in range(repeats + 1):  # the first run warms up
        guide = Guidance(controls, guidance)
        start = time.perf_counter()
        result = pipe.sampler.sample(templates, options, seed=r, guide=guide)
        times.append(time.perf_counter() - start)
    return {"controls": name, "steps": steps, "batch": 1, "seconds_per_sample": round(min(times[1:]), 4),
            "denoiser_passes": result.network_passes + guide.denoiser_passes,
            "classifier_passes": guide.classifier_passes, "positions": pipe.seq_len}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="model directory (default: the bundled model)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per setting (the best is kept)")
    parser.add_argument("--fp32", action="store_true", help="run the network in float32 instead of bfloat16")
    parser.add_argument("--json", action="store_true", help="print JSON (the default output is also JSON)")
    args = parser.parse_args(argv)
    try:
        if args.repeats < 1:
            raise EngineError(f"--repeats must be at least 1, got {args.repeats}")
        pipe = Pipeline.load(args.model, bf16=not args.fp32)
        runs = [measure(pipe, steps, batch, args.repeats) for steps in (200, 50) for batch in (1, 16)]
        kinds = pipe.control_kinds()
        guided = [measure_guided(pipe, name, fields, reads, 50, args.repeats)
                  for name, (fields, reads) in GUIDED.items() if all(kind in kinds for kind in fields)]
    except EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report = {
        "runs": runs,
        "guided": guided,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "dtype": "float32" if args.fp32 else "bfloat16",
        "threads": torch.get_num_threads(), "torch": torch.__version__, "machine": platform.machine(),
        "parameters": pipe.model.num_parameters(),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
