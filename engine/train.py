"""Train the diffusion LM (or, with --judge, the fluency judge) on a text corpus.

    python -m engine.train --data train.csv --valid valid.csv --out runs/model --minutes 60
    torchrun --nproc_per_node 2 -m engine.train ...     (data-parallel: gloo on CPU, nccl on GPU)

Checkpoints are written every --save-every steps and at the end; --resume continues from the
last one in --out (same optimiser state, step count and learning-rate schedule).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
import torch.distributed as dist
from tqdm import tqdm

from engine.cli import add_options, options_from, parser_for, run_command
from engine.diffusion.checkpoint import load_train_state, load_weights, save_denoiser, save_train_state
from engine.diffusion.losses import diffusion_loss
from engine.diffusion.model import Denoiser, DenoiserConfig
from engine.errors import ConfigError
from engine.scoring.judge import JudgeConfig, build_judge, judge_loss, save_judge
from engine.text.data import encode_corpus, read_sentences
from engine.text.tokenizer import Tokenizer, split_words


@dataclass
class TrainConfig:
    data: str
    out: str
    valid: str = ""
    pretokenized: bool = False  # words already separated by single spaces (no spaCy needed)
    judge: bool = False  # train the autoregressive fluency judge (reuses the vocabulary in --out)
    model: DenoiserConfig = field(default_factory=DenoiserConfig)  # the judge takes its size from it too
    min_count: int = 1
    # optimisation
    batch_size: int = 64
    lr: float = 1e-3
    warmup: int = 200
    clip: float = 1.0
    max_steps: int = 1_000_000
    minutes: float = 0.0  # wall-clock budget; 0 = stop at max_steps only
    eval_every: int = 500
    save_every: int = 1000
    seed: int = 0
    device: str = "cpu"
    bf16: bool = True
    resume: bool = False
    keep_best: bool = False  # also keep the checkpoint with the lowest validation loss in OUT/best
    quiet: bool = False

    def __post_init__(self) -> None:
        check_optimisation(self, ("batch_size", "max_steps", "eval_every", "save_every", "min_count"))


def check_optimisation(config, positive: tuple[str, ...]) -> None:
    """The bounds of a training config's optimisation fields (shared by the classifier training)."""
    for name in positive:
        if getattr(config, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(config, name)}")
    if not (config.minutes >= 0 and config.lr > 0):
        raise ConfigError("--minutes must be >= 0 and --lr positive")


def learning_rate(config: TrainConfig, step: int, progress: float) -> float:
    """Linear warmup, then cosine decay over the real progress (steps or wall time, whichever is further)."""
    if step < config.warmup:
        return config.lr * (step + 1) / config.warmup
    return config.lr * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def build_model(config: TrainConfig, vocab_size: int) -> torch.nn.Module:
    if config.judge:
        return build_judge(judge_config(config, vocab_size))
    return Denoiser(replace(config.model, vocab_size=vocab_size))


def judge_config(config: TrainConfig, vocab_size: int) -> JudgeConfig:
    m = config.model
    return JudgeConfig(vocab_size=vocab_size, seq_len=m.seq_len, layers=m.layers, hidden=m.hidden,
                       attention_heads=m.attention_heads, dropout=m.dropout)


def compute_loss(config: TrainConfig, model, tokens: torch.Tensor, generator=None) -> torch.Tensor:
    net = getattr(model, "module", model)
    if config.judge:
        return judge_loss(model, tokens)
    return diffusion_loss(net, tokens, generator, forward=model)


@torch.no_grad()
def validate(config: TrainConfig, model, tokens: torch.Tensor, autocast) -> float:
    """Mean loss on the validation rows, with a fixed noise seed so numbers compare across steps."""
    model.eval()
    generator = torch.Generator(device=tokens.device).manual_seed(1234)
    losses = []
    for i in range(0, len(tokens), 256):
        with autocast():
            losses.append(float(compute_loss(config, model, tokens[i:i + 256], generator)))
    model.train()
    return sum(losses) / len(losses)


def train(config: TrainConfig) -> dict:
    """Run training; returns the record saved with the model (steps, time, losses, parameters)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world > 1:
        dist.init_process_group("nccl" if config.device == "cuda" else "gloo")
    device = torch.device(config.device if config.device == "cpu" else f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}")
    torch.manual_seed(config.seed + rank)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)

    split = str.split if config.pretokenized else split_words
    sentences = read_sentences(Path(config.data))
    if config.judge or config.resume:
        tokenizer = Tokenizer.load(out / "vocab.json")
    else:
        tokenizer = Tokenizer.build(sentences, config.min_count, split)
    train_rows, dropped = encode_corpus(sentences, tokenizer, config.model.seq_len, split)
    valid_rows = None
    if config.valid:
        valid_rows = encode_corpus(read_sentences(Path(config.valid)), tokenizer, config.model.seq_len, split)[0]
    train_rows = train_rows.to(device)
    valid_rows = valid_rows.to(device) if valid_rows is not None else None

    model = build_model(config, len(tokenizer)).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.0)
    generator = torch.Generator(device=device).manual_seed(config.seed * 1000 + rank)
    step, elapsed_before, best_loss = 0, 0.0, float("inf")
    if config.resume:
        load_weights(model, out / ("judge.safetensors" if config.judge else "denoiser.safetensors"))
        meta = load_train_state(out, optimizer, generator)
        step, elapsed_before, best_loss = meta["step"], meta["elapsed_s"], meta.get("best_loss", float("inf"))
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(model)
    raw_model = getattr(model, "module", model)
    n_params = sum(p.numel() for p in raw_model.parameters())

    def autocast():
        if not config.bf16:
            return nullcontext()
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)

    def save_model(directory: Path, record: dict) -> None:
        if config.judge:
            save_judge(directory, raw_model, judge_config(config, len(tokenizer)), record)
        else:
            save_denoiser(directory, raw_model, tokenizer, record)

    def save(record: dict) -> None:
        save_model(out, record)
        save_train_state(out, optimizer, generator, step, {"elapsed_s": record["wall_seconds"], "best_loss": best_loss})

    record = {"parameters": n_params, "train_sentences": len(train_rows), "dropped_too_long": dropped,
              "world_size": world, "config": asdict(config)}
    if rank == 0 and not config.quiet:
        what = "judge" if config.judge else f"denoiser ({config.model.objective})"
        print(f"{what}: {n_params / 1e6:.2f}M parameters, vocabulary {len(tokenizer)}, "
              f"{len(train_rows)} sentences ({dropped} too long), {world} process(es)", file=sys.stderr)
    bar = tqdm(total=config.max_steps if not config.minutes else None, initial=step,
               disable=rank != 0 or config.quiet, dynamic_ncols=True, desc="train")
    start = time.time()
    valid_loss, train_loss = float("nan"), None
    model.train()
    while True:
        elapsed = elapsed_before + time.time() - start
        progress = max(step / config.max_steps, elapsed / (config.minutes * 60) if config.minutes else 0.0)
        if world > 1:  # rank 0's clock decides for everyone, so all ranks stop on the same step
            shared = torch.tensor([progress], device=device)
            dist.broadcast(shared, 0)
            progress = float(shared)
        if progress >= 1.0:
            break
        lr = learning_rate(config, step, progress)
        for group in optimizer.param_groups:
            group["lr"] = lr
        index = torch.randint(0, len(train_rows), (config.batch_size,), generator=generator, device=device)
        with autocast():
            loss = compute_loss(config, model, train_rows[index], generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip)
        optimizer.step()
        step += 1
        train_loss = loss.detach()
        bar.update(1)
        if step % 50 == 0:  # reading the loss waits for the device: not every step
            bar.set_postfix(loss=f"{loss.item():.3f}", valid=f"{valid_loss:.3f}", lr=f"{lr:.1e}", refresh=False)
        if rank == 0 and valid_rows is not None and step % config.eval_every == 0:
            valid_loss = validate(config, raw_model, valid_rows, autocast)
            if not config.quiet:
                bar.write(f"step {step}: train loss {loss.item():.4f}, valid loss {valid_loss:.4f}")
            if config.keep_best and valid_loss < best_loss:
                best_loss = valid_loss
                save_model(out / "best", {**record, "steps": step, "wall_seconds": elapsed, "valid_loss": valid_loss})
        if rank == 0 and step % config.save_every == 0:
            save({**record, "steps": step, "wall_seconds": elapsed, "valid_loss": valid_loss})
    bar.close()
    if rank == 0:
        if valid_rows is not None:
            valid_loss = validate(config, raw_model, valid_rows, autocast)
        record.update(steps=step, wall_seconds=round(elapsed_before + time.time() - start, 1),
                      train_loss=round(train_loss.item(), 4) if train_loss is not None else None,
                      valid_loss=round(valid_loss, 4))
        save(record)
        if not config.quiet:
            print(f"done: {step} steps, {record['wall_seconds']} s, valid loss {valid_loss:.4f} -> {out}",
                  file=sys.stderr)
    if world > 1:
        del model, loss  # the DDP reducer must go before its process group, or its destructor waits forever
        dist.destroy_process_group()
    return record


def command(args: argparse.Namespace) -> None:
    train(options_from(TrainConfig, args))


def main(argv: list[str] | None = None) -> int:
    parser = parser_for("engine.train", __doc__)
    add_options(parser, TrainConfig, required=("data", "out"))
    return run_command(command, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
