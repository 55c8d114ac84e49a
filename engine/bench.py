"""Sampling speed and memory on this machine, as JSON.

    python -m engine.bench --json

Seconds per full-length sample (the model's sequence length, 64 positions) and denoiser passes at
200 and 50 steps, for 1 and for 16 samples in one batch, plus peak resident memory. Runs stop once
their words settle (the default stop rule), so the passes say how many steps ran. With trained
control classifiers in the model directory, also one guided sample per control (each kind's
example target), the composition of parts of speech and semantic content, and semantic content
with the classifiers reading x0_hat, at the default guidance settings. Every run goes through
`Pipeline.run`; the seconds are its cost record's model time (ranking excluded).

    python -m engine.bench --models OLD_DIR assets/model --steps 50 20

times each model side by side (runs interleaved) on a 12-word template at batches 1 and 16, a
full-length text and a guided sample reading x0_hat, each beside the model's own GPT-2 judge
writing the same number of tokens left to right with its KV cache, in the same process. With
--compare-settle each model runs both ways: every step, and stopping once its words settle (the
default stop rule); the denoiser passes are the mean over the timed rounds.

    python -m engine.bench --passes --repeats 20

times one denoiser pass (what every step costs besides its own small ops) at 1, 4, 16 and 64 rows of
16 and 64 positions: the float32 network, its bfloat16 copy, and each compiled by torch.compile
where this build can compile; and one step of the sampler around the pass (estimate, step rule,
locks, frame) at 1 row of 16 positions.

    python -m engine.bench --methods --repeats 5

times one sample (`--batch N`: N in one batch) of each control FUDGE can steer (each kind's
example target) written both ways, one draw each: diffusion at the kind's default guidance and
FUDGE on the judge's LM, interleaved round by round; the median and the best of the rounds, with
each way's network passes.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import platform
import resource
import statistics
import sys
import time

import torch

from engine.cli import add_model_options, parser_for, run_command
from engine.controls import COMPOSED, FUTURE, KINDS, MEANING, STEERED
from engine.controls.guidance import GuidanceOptions
from engine.controls.targets import targets_from_fields
from engine.diffusion.sampler import SampleOptions
from engine.diffusion.steps import STEP_RULES
from engine.errors import EngineError
from engine.pipeline import Pipeline
from engine.precision import choose_precision
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


def measure_guided(pipe: Pipeline, name: str, kinds: tuple[str, ...], repeats: int) -> dict:
    """One guided sample at batch 1 with the kinds' placeholder targets and their default settings."""
    targets = targets_from_fields({k: [KINDS[k].placeholder] if KINDS[k].many else KINDS[k].placeholder
                                   for k in kinds})
    request = Request.one(targets=targets, samples=1, sampling=SampleOptions(steps=50, record_latents=False))
    best, result = timed(pipe, request, repeats)
    return {"controls": name, "targets": {k: KINDS[k].placeholder for k in kinds}, "steps": 50, "samples": 1,
            "rows": result.cost.rows, "guidance": dataclasses.asdict(request.guidance.resolved(kinds)),
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


SIDE_BY_SIDE_TEMPLATE = "The Eagle is a _ _ coffee shop near _ _ ."  # 12 words, 4 to fill


def judge_seconds(pipe: Pipeline, tokens: int, batch: int, repeats: int) -> float:
    """Best wall time of the judge sampling `tokens` tokens for `batch` rows from START, KV-cached."""
    start = torch.full((batch, 1), pipe.tokenizer.start_id, device=pipe.judge.model.device)
    times = []
    for r in range(repeats + 1):
        torch.manual_seed(r)
        began = time.perf_counter()
        with torch.no_grad():
            pipe.judge.model.generate(input_ids=start, attention_mask=torch.ones_like(start), do_sample=True,
                                      max_new_tokens=tokens, min_new_tokens=tokens, use_cache=True,
                                      pad_token_id=pipe.tokenizer.pad_id)
        times.append(time.perf_counter() - began)
    return min(times[1:])


def side_by_side(pipes: list[Pipeline], steps: list[int], repeats: int, compare_settle: bool = False) -> list[dict]:
    """Each model's seconds on the same requests, runs interleaved, each beside its judge; with
    `compare_settle`, each model both every step and with the default stop rule."""
    stops = {"every step": 0, "settled": SampleOptions().settle_steps} if compare_settle else \
        {"default": SampleOptions().settle_steps}
    variants = [(pipe, n_steps, stop) for pipe, n_steps in zip(pipes, steps, strict=True) for stop in stops]
    settings = [("12-word template", SIDE_BY_SIDE_TEMPLATE, None, 1, "x_t"),
                ("12-word template", SIDE_BY_SIDE_TEMPLATE, None, 16, "x_t"),
                ("full-length text", None, None, 1, "x_t"),
                (f"guided: {MEANING} reads x0_hat", "_ _ _ is a _ _ near _ _ .",
                 {MEANING: [KINDS[MEANING].placeholder]}, 1, "x0_hat")]
    best: dict[tuple[int, int], float] = {}
    passes: dict[tuple[int, int], list[int]] = {}
    positions: dict[tuple[int, int], int] = {}
    for seed in range(repeats + 1):  # the first round warms up
        for m, (pipe, n_steps, stop) in enumerate(variants):
            for s, (_, template, fields, batch, reads) in enumerate(settings):
                if fields and not set(fields) <= set(pipe.control_kinds()):
                    continue
                length = pipe.seq_len - 2 if template is None else None
                sampling = SampleOptions(steps=n_steps, record_latents=False, settle_steps=stops[stop])
                request = Request.one(template, length, samples=batch, seed=seed,
                                      targets=targets_from_fields(fields) if fields else (), sampling=sampling,
                                      guidance=GuidanceOptions(reads=reads), candidates=1)
                result = pipe.run(request)
                if seed:
                    best[m, s] = min(best.get((m, s), float("inf")), result.cost.seconds)
                    passes.setdefault((m, s), []).append(result.cost.denoiser_passes)
                else:  # the warm-up round: what every round runs
                    positions[m, s] = pipe.plan(request).templates[0].window or pipe.seq_len
    rows = []
    judged: dict[tuple[str, int, int], float | None] = {}
    for m, (pipe, n_steps, stop) in enumerate(variants):
        for s, (name, template, _, batch, _) in enumerate(settings):
            if (m, s) not in best:
                continue
            words = pipe.seq_len - 2 if template is None else len(template.split())
            if (str(pipe.directory), words, batch) not in judged:
                judged[str(pipe.directory), words, batch] = \
                    judge_seconds(pipe, words + 1, batch, repeats) if pipe.judge else None
            judge = judged[str(pipe.directory), words, batch]
            rows.append({"model": str(pipe.directory), "run": name, "batch": batch, "steps": n_steps, "stops": stop,
                         "positions": positions[m, s], "seconds": round(best[m, s], 4),
                         "denoiser_passes": round(statistics.mean(passes[m, s]), 1),
                         "judge_seconds": round(judge, 4) if judge else None,
                         "ratio_to_judge": round(best[m, s] / judge, 2) if judge else None})
    return rows


def measure_methods(pipe: Pipeline, repeats: int, batch: int = 1) -> list[dict]:
    """Seconds per sample of diffusion and FUDGE on each FUDGE-steered kind's example target, in
    batches of `batch`, the two interleaved in every round (the first round warms up)."""
    kinds = [k for k in FUTURE if k in pipe.control_kinds()]
    seconds: dict[tuple[str, str], list[float]] = {}
    passes: dict[tuple[str, str], dict] = {}
    refused: dict[str, str] = {}
    for seed in range(repeats + 1):
        for kind in kinds:
            if kind in refused:
                continue
            value = KINDS[kind].placeholder
            targets = targets_from_fields({kind: [value] if KINDS[kind].many else value})
            for method in ("diffusion", "fudge"):
                request = Request.one(targets=targets, samples=batch, candidates=1, seed=seed, method=method,
                                      sampling=SampleOptions(record_latents=False))
                try:
                    result = pipe.run(request)
                except EngineError as exc:  # a target this model cannot write one of the two ways
                    refused[kind] = f"{method}: {exc}"
                    break
                if seed:
                    seconds.setdefault((kind, method), []).append(result.cost.seconds / batch)
                    passes[kind, method] = result.cost.passes()
    rows = []
    for kind in kinds:
        row = {"control": kind, "target": KINDS[kind].placeholder, "batch": batch}
        if kind in refused:
            rows.append({**row, "refused": refused[kind]})
            continue
        rows += [{**row, "method": method, "median_seconds": round(statistics.median(seconds[kind, method]), 4),
                  "best_seconds": round(min(seconds[kind, method]), 4), "passes_last_round": passes[kind, method]}
                 for method in ("diffusion", "fudge")]
    return rows


def bench(args) -> int:
    if args.repeats < 1:
        raise EngineError(f"--repeats must be at least 1, got {args.repeats}")
    if args.models:
        steps = args.steps or [SampleOptions().steps]
        if len(steps) not in (1, len(args.models)):
            raise EngineError(f"--steps takes one count or one per model ({len(args.models)}), got {len(steps)}")
        pipes = [Pipeline.from_pretrained(d, device=args.device, precision=args.precision) for d in args.models]
        rows = side_by_side(pipes, steps * len(pipes) if len(steps) == 1 else steps, args.repeats,
                            args.compare_settle)
        print(json.dumps({"side_by_side": rows, "precision": pipes[0].precision, "peak_rss_mb": peak_rss_mb(),
                          "threads": torch.get_num_threads(), "torch": torch.__version__}, indent=2))
        return 0
    pipe = Pipeline.from_pretrained(args.model, device=args.device, precision=args.precision)
    if args.methods:
        if not 1 <= args.batch <= 32:
            raise EngineError(f"--batch must be from 1 to 32, got {args.batch}")
        rows = measure_methods(pipe, args.repeats, args.batch)
        print(json.dumps({"methods": rows, "precision": pipe.precision, "threads": torch.get_num_threads(),
                          "torch": torch.__version__}, indent=2))
        return 0
    if args.passes:
        print(json.dumps(measure_passes(pipe, args.repeats), indent=2))
        return 0
    if args.step_rules:
        print(json.dumps({"step_rules": measure_step_rules(pipe, args.repeats)}, indent=2))
        return 0
    runs = [measure(pipe, steps, batch, args.repeats) for steps in (200, 50) for batch in (1, 16)]
    offered = pipe.control_kinds()
    settings = [(name, (name,)) for name in STEERED] + [("+".join(COMPOSED), COMPOSED)]
    guided = [measure_guided(pipe, name, kinds, args.repeats)
              for name, kinds in settings if all(k in offered for k in kinds)]
    report = {
        "runs": runs, "guided": guided,
        "peak_rss_mb": peak_rss_mb(),
        "dtype": {"fp32": "float32", "bf16": "bfloat16"}[pipe.precision],
        "precision_why": choose_precision(args.precision, args.device)[1],
        "threads": torch.get_num_threads(), "torch": torch.__version__, "machine": platform.machine(),
        "parameters": pipe.model.num_parameters(),
    }
    print(json.dumps(report, indent=2))
    return 0


def pass_seconds(network, x: torch.Tensor, t: torch.Tensor, repeats: int) -> float:
    """The median seconds of one no-grad pass of `network` on x (after two warm-up passes)."""
    times = []
    with torch.no_grad():
        for r in range(repeats + 2):
            began = time.perf_counter()
            network(x, t, x)
            if r >= 2:
                times.append(time.perf_counter() - began)
    return statistics.median(times)


def measure_passes(pipe: Pipeline, repeats: int) -> dict:
    """Seconds per denoiser pass by rows, positions and network (see the module docstring)."""
    model = pipe.model.eval()
    networks = {"fp32": model, "bf16": copy.deepcopy(model).to(torch.bfloat16)}
    torch._dynamo.config.recompile_limit = 64  # a compiled network per rows x positions x precision
    compiled = {}
    for name, network in list(networks.items()):
        try:
            compiled[f"{name} compiled"] = torch.compile(network, dynamic=False)
            pass_seconds(compiled[f"{name} compiled"], torch.zeros(1, 16, model.config.embed_dim, device=pipe.device),
                         torch.ones(1, device=pipe.device), 1)
        except Exception as exc:  # noqa: BLE001  (any failure to compile is reported, not fatal)
            compiled.pop(f"{name} compiled", None)
            networks[f"{name} compiled"] = f"torch.compile failed: {type(exc).__name__}: {str(exc)[:200]}"
    networks |= compiled
    rows = []
    for positions in (16, 64):
        for batch in (1, 4, 16, 64):
            x = torch.randn(batch, positions, model.config.embed_dim, device=pipe.device)
            t = torch.full((batch,), model.config.T // 2, device=pipe.device)
            row = {"rows": batch, "positions": positions}
            for name, network in networks.items():
                row[name] = network if isinstance(network, str) else round(pass_seconds(network, x, t, repeats), 5)
            rows.append(row)
    template = SIDE_BY_SIDE_TEMPLATE
    request = Request.one(template, samples=1, sampling=SampleOptions(steps=50, record_latents=False, settle_steps=0),
                          candidates=1)
    steps = [pipe.run(request).cost.seconds / 50 for _ in range(3)]
    return {"passes": rows, "sampler_step_1_row_s": round(min(steps), 5), "precision": pipe.precision,
            "threads": torch.get_num_threads(), "torch": torch.__version__}


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def main(argv: list[str] | None = None) -> int:
    parser = parser_for("engine.bench", __doc__)
    add_model_options(parser)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per setting (the best is kept)")
    parser.add_argument("--step-rules", action="store_true",
                        help="only time every step rule at 10, 20 and 50 steps (interleaved, best of --repeats)")
    parser.add_argument("--passes", action="store_true",
                        help="only time one denoiser pass by rows, positions and network (fp32, bf16, compiled)")
    parser.add_argument("--methods", action="store_true",
                        help="only time diffusion beside FUDGE on each control FUDGE steers (interleaved)")
    parser.add_argument("--batch", type=int, default=1, help="with --methods: samples per batch (1 to 32)")
    parser.add_argument("--models", nargs="+", metavar="DIR",
                        help="time these model directories side by side, each beside its GPT-2 judge")
    parser.add_argument("--steps", nargs="+", type=int, metavar="N",
                        help="with --models: denoising steps, one for all or one per model (default: the default)")
    parser.add_argument("--compare-settle", action="store_true",
                        help="with --models: each model every step and with the default stop rule, side by side")
    parser.add_argument("--json", action="store_true", help="print JSON (the default output is also JSON)")
    return run_command(bench, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
