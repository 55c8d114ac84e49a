"""Training speed on this machine, as JSON: seconds per step of the bundled model's fine-tune recipe.

    python -m engine.bench_train --json

One step is what `engine.train` runs with the shipped flags (windows, given words in three rows of
four, self-conditioning, dropout, frozen word vectors): forward, backward, clip and AdamW, at
`--batch-size` rows. Each setting below runs in turn, round by round (so a passing load falls on all
of them alike), and the median step of the rounds is kept:
  precision fp32 and bf16 autocast, each with the trainer's dropout and with torch's nn.Dropout.
Beside them, the FLOP floor: the step's matrix-multiply work divided by the best rate this
machine's matrix multiplies reach in each precision (a probe at the network's shapes).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

from engine.cli import parser_for, run_command
from engine.diffusion.checkpoint import BUNDLED_MODEL, load_denoiser
from engine.diffusion.model import Denoiser, FastDropout, swap_dropout
from engine.errors import EngineError
from engine.evaluation import DATA
from engine.precision import choose_precision
from engine.text.data import encode_corpus, read_sentences
from engine.train import TrainConfig, autocast_in, compute_loss


def with_torch_dropout(model: Denoiser) -> Denoiser:
    """The model with torch's nn.Dropout where the trainer uses FastDropout (the old step)."""
    swap_dropout(model, FastDropout, nn.Dropout)
    return model


def step_flops(model: Denoiser, tokens: int) -> float:
    """Matrix-multiply FLOPs of one step: forward and backward (6 per weight per token) plus the
    self-conditioning pass (forward only, on half the rows), attention excluded (small at L <= 64)."""
    weights = sum(p.numel() for n, p in model.named_parameters() if p.dim() == 2 and "embeddings" not in n)
    return 6 * weights * tokens + 2 * weights * tokens / 2


def matmul_rate(precision: str, hidden: int, ffn: int, rows: int, repeats: int = 20) -> float:
    """The best FLOP/s of this machine's matrix multiply at the network's largest shapes."""
    a, b = torch.randn(rows, hidden), torch.randn(hidden, ffn)
    if precision == "bf16":
        a, b = a.bfloat16(), b.bfloat16()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * rows * hidden * ffn / best


def bench(args: argparse.Namespace) -> int:
    if args.rounds < 1 or args.batch_size < 1:
        raise EngineError(f"--rounds and --batch-size must be at least 1, got {args.rounds} and {args.batch_size}")
    base, tokenizer, _ = load_denoiser(args.model)
    config = TrainConfig(data="-", out="-", conditioned=0.75, model=base.config)
    rows, _ = encode_corpus(read_sentences(Path(args.data)), tokenizer, base.config.seq_len)
    lengths = (rows != tokenizer.pad_id).sum(1)
    settings = [(p, d) for p in ("fp32", "bf16") for d in ("trainer", "torch")]
    models, optimizers = {}, {}
    for setting in settings:
        model = Denoiser(base.config)
        model.load_state_dict(base.state_dict())
        model.word_vectors.requires_grad_(False)
        models[setting] = (with_torch_dropout(model) if setting[1] == "torch" else model).train()
        optimizers[setting] = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    generator = torch.Generator().manual_seed(0)
    times: dict[tuple[str, str], list[float]] = {s: [] for s in settings}
    windows = []  # positions a step's rows are cut to: the longest row in the batch and a few PAD
    for round_ in range(args.rounds + 1):  # round 0 warms up
        batch = torch.randint(0, len(rows), (args.batch_size,), generator=generator)
        windows.append(min(base.config.seq_len, int(lengths[batch].max()) + 4))
        for setting in settings:
            model, optimizer = models[setting], optimizers[setting]
            start = time.perf_counter()
            with autocast_in(setting[0]):
                loss = compute_loss(config, model, rows[batch], generator)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            if round_:
                times[setting].append(time.perf_counter() - start)
    tokens = args.batch_size * round(statistics.mean(windows))
    flops = step_flops(base, tokens)
    floor = {p: flops / matmul_rate(p, base.config.hidden, base.config.ffn, tokens) for p in ("fp32", "bf16")}
    chosen, why = choose_precision("auto")
    step = {s: statistics.median(times[s]) for s in settings}
    report = {
        "machine": {"cpu_capability": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads(),
                    "processor": platform.processor() or platform.machine(), "auto_precision": chosen, "why": why},
        "batch_size": args.batch_size, "rounds": args.rounds, "step_gflop": round(flops / 1e9, 2),
        "settings": [{"precision": p, "dropout": d, "seconds_per_step": round(step[p, d], 4),
                      "steps_per_hour": round(3600 / step[p, d]), "flop_floor_seconds": round(floor[p], 5),
                      "times_floor": round(step[p, d] / floor[p], 2)}
                     for p, d in settings],
    }
    print(json.dumps(report, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = parser_for("engine.bench_train", __doc__)
    parser.add_argument("--model", default=str(BUNDLED_MODEL), help="model directory (default: the bundled model)")
    parser.add_argument("--data", default=str(DATA / "train.csv"),
                        help="training sentences the steps draw from (CSV or text)")
    parser.add_argument("--batch-size", type=int, default=64, help="rows per step")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (each setting once a round)")
    parser.add_argument("--json", action="store_true", help="print JSON (the only output)")
    args = parser.parse_args(argv)
    return run_command(bench, args)


if __name__ == "__main__":
    sys.exit(main())
