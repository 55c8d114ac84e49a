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
import signal
import sys
import threading
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from engine.cli import add_options, options_from, parser_for, run_command
from engine.diffusion.checkpoint import (
    load_train_state,
    load_weights,
    raw_weights_file,
    save_denoiser,
    save_train_state,
    save_weights,
)
from engine.diffusion.losses import diffusion_loss, given_positions, training_windows
from engine.diffusion.model import Denoiser, DenoiserConfig
from engine.errors import ConfigError, EngineError
from engine.options import device_option, option, precision_option
from engine.precision import check_device, choose_precision
from engine.scoring.judge import JudgeConfig, build_judge, judge_loss, save_judge
from engine.text.augment import augment
from engine.text.data import encode_corpus, read_pairs, read_sentences
from engine.text.tokenizer import Tokenizer, split_words


@dataclass
class TrainConfig:
    data: str = field(metadata={"help": "training text: a CSV with a 'ref' column, or one sentence a line"})
    out: str = field(metadata={"help": "model directory to write (checkpoints, vocabulary, training record)"})
    valid: str = option("", "held-out text in the same format, for the validation loss")
    pretokenized: bool = option(False, "words are already separated by single spaces (no spaCy needed)")
    judge: bool = option(False, "train the autoregressive fluency judge instead (reuses the vocabulary in --out)")
    model: DenoiserConfig = field(default_factory=DenoiserConfig)  # the judge takes its size from it too
    min_count: int = option(1, "keep words seen at least this often (others become UNK)")
    augment: int = option(0, "add up to this many relabelled copies of each row, its name, near and food values "
                             "swapped for others of the same slot (engine.text.augment; needs a CSV with 'mr')")
    conditioned: float = option(0.0, "share of rows given clean words (prefix, suffix, both, or scattered, and the "
                                     "length), as the sampler holds locked words; the loss skips them (0: none)")
    init: str = option("", "start from the weights and vocabulary of this model directory (same size): fine-tuning")
    freeze_embeddings: bool = option(False, "keep the word vectors fixed (the control classifiers stay valid)")
    batch_size: int = option(64, "sentences per step")
    lr: float = option(1e-3, "peak learning rate (AdamW)")
    weight_decay: float = option(0.0, "AdamW weight decay")
    ema: float = option(0.0, "keep an exponential moving average of the weights at this rate (e.g. 0.999): it is "
                              "validated and saved as the model; the raw weights are kept for --resume (0: none)")
    warmup: int = option(200, "steps of linear learning-rate warmup")
    clip: float = option(1.0, "gradient norm clip")
    max_steps: int = option(1_000_000, "stop after this many steps")
    minutes: float = option(0.0, "stop after this many minutes of training (0: no time limit, only --max-steps; "
                                 "the learning rate decays over whichever limit is nearer)")
    eval_every: int = option(500, "steps between validation losses")
    save_every: int = option(1000, "steps between checkpoints")
    seed: int = option(0, "random seed")
    device: str = device_option()
    precision: str = precision_option()
    resume: bool = option(False, "continue from the checkpoint in --out (same optimiser state and schedule)")
    keep_best: bool = option(False, "also keep the checkpoint with the lowest validation loss in OUT/best")
    quiet: bool = option(False, "no progress bar or messages")

    def __post_init__(self) -> None:
        check_optimisation(self, ("batch_size", "max_steps", "eval_every", "save_every", "min_count"))
        if self.augment < 0:
            raise ConfigError(f"--augment must be a number of copies >= 0, got {self.augment}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ConfigError(f"--weight-decay must be a number >= 0, got {self.weight_decay}")
        if not (math.isfinite(self.ema) and 0 <= self.ema < 1):
            raise ConfigError(f"--ema must be a rate from 0 (none) to below 1, e.g. 0.999, got {self.ema}")
        if not 0 <= self.conditioned <= 1:
            raise ConfigError(f"--conditioned must be a share from 0 to 1, got {self.conditioned}")
        if self.init and not Path(self.init, "denoiser.json").is_file():
            raise ConfigError(f"--init {self.init}: no model there (denoiser.json is missing)")
        if not (math.isfinite(self.clip) and self.clip > 0):
            raise ConfigError(f"--clip must be a positive number, got {self.clip}")
        check_device(self.device)


def check_optimisation(config, positive: tuple[str, ...]) -> None:
    """The bounds of a training config's optimisation fields (shared by the classifier training)."""
    for name in positive:
        if getattr(config, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(config, name)}")
    if not (math.isfinite(config.minutes) and config.minutes >= 0):
        raise ConfigError(f"--minutes must be a number >= 0 (0: no time limit), got {config.minutes}")
    if not (math.isfinite(config.lr) and config.lr > 0):
        raise ConfigError(f"--lr must be a positive number, got {config.lr}")


def learning_rate(config: TrainConfig, step: int, progress: float) -> float:
    """Linear warmup, then cosine decay over the real progress (steps or wall time, whichever is further)."""
    if step < config.warmup:
        return config.lr * (step + 1) / config.warmup
    return config.lr * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def autocast_in(precision: str, device_type: str = "cpu"):
    """The context a training step runs in: bf16 autocast, or nothing for fp32."""
    if precision == "fp32":
        return nullcontext()
    return torch.autocast(device_type=device_type, dtype=torch.bfloat16)


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
    given = given_positions(tokens, config.conditioned, generator) if config.conditioned else None
    windows = training_windows(tokens, generator) if net.config.windows else None
    return diffusion_loss(net, tokens, generator, forward=model, given=given, windows=windows)


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
    device = check_device(config.device)
    if world > 1:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda" and device.index is None:  # each process of a distributed run takes its own GPU
        device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}")
    torch.manual_seed(config.seed + rank)
    out = Path(config.out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a directory: name a directory for the checkpoint")
    if config.resume and not (out / "train_state.json").is_file():
        raise ConfigError(f"--resume: no checkpoint to resume in {out} (train_state.json is missing)")
    out.mkdir(parents=True, exist_ok=True)

    split = str.split if config.pretokenized else split_words
    if config.augment:
        sentences = [ref for _, ref in augment(read_pairs(Path(config.data), need_mr=True), config.augment,
                                                config.seed)]
    else:
        sentences = read_sentences(Path(config.data))
    if config.init and not config.resume:
        tokenizer = Tokenizer.load(Path(config.init) / "vocab.json")
    elif config.judge or config.resume:
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
    if config.init and not config.resume:
        load_weights(model, Path(config.init) / ("judge.safetensors" if config.judge else "denoiser.safetensors"))
    if config.freeze_embeddings and not config.judge:
        model.word_vectors.requires_grad_(False)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.lr,
                                  weight_decay=config.weight_decay)
    # parameters only: BERT's integer position_ids buffer must not be averaged (it would truncate)
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(config.ema)) if config.ema else None
    weights_file = "judge.safetensors" if config.judge else "denoiser.safetensors"
    raw_file = raw_weights_file(weights_file)
    generator = torch.Generator(device=device).manual_seed(config.seed * 1000 + rank)
    step, elapsed_before, best_loss = 0, 0.0, float("inf")
    if config.resume:
        meta = load_train_state(out, optimizer, generator)
        if float(meta.get("ema", 0.0)) != config.ema:
            raise ConfigError(f"--resume: the run in {out} was trained with --ema {meta.get('ema', 0.0)}, not "
                              f"{config.ema}: resume it with the same --ema")
        load_weights(model, out / (raw_file if ema is not None else weights_file))
        step, elapsed_before, best_loss = meta["step"], meta["elapsed_s"], meta.get("best_loss", float("inf"))
        if ema is not None:
            load_weights(ema.module, out / weights_file)
            ema.n_averaged.fill_(max(step, 1))  # averaging goes on from the saved average, not from a copy
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(model)
    raw_model = getattr(model, "module", model)
    shipped = ema.module if ema is not None else raw_model  # the weights validated and saved as the model
    n_params = sum(p.numel() for p in raw_model.parameters())
    precision, why = choose_precision(config.precision, device.type)

    def autocast():
        return autocast_in(precision, device.type)

    def save_model(directory: Path, record: dict) -> None:
        if config.judge:
            save_judge(directory, shipped, judge_config(config, len(tokenizer)), record)
        else:
            save_denoiser(directory, shipped, tokenizer, record)

    def save(record: dict) -> None:
        save_model(out, record)
        if ema is not None:
            save_weights(out / raw_file, raw_model)
        else:
            (out / raw_file).unlink(missing_ok=True)  # a stale one from an earlier run must not be resumed
        save_train_state(out, optimizer, generator, step,
                         {"elapsed_s": record["wall_seconds"], "best_loss": best_loss, "ema": config.ema})

    record = {"parameters": n_params, "train_sentences": len(train_rows), "dropped_too_long": dropped,
              "world_size": world, "precision": precision, "config": asdict(config)}
    if rank == 0 and not config.quiet:
        what = "judge" if config.judge else f"denoiser ({config.model.objective})"
        print(f"{what}: {n_params / 1e6:.2f}M parameters, vocabulary {len(tokenizer)}, "
              f"{len(train_rows)} sentences ({dropped} too long), {world} process(es); precision {precision} "
              f"({why}){f'; EMA {config.ema}' if ema is not None else ''}", file=sys.stderr)
    bar = tqdm(total=config.max_steps if not config.minutes else None, initial=step, unit="step",
               disable=rank != 0 or config.quiet, dynamic_ncols=True, desc="train")
    start = time.time()
    valid_loss, train_loss = float("nan"), None
    model.train()
    interrupted, previous_handler = stop_on_interrupt()
    while True:
        elapsed = elapsed_before + time.time() - start
        progress = max(step / config.max_steps, elapsed / (config.minutes * 60) if config.minutes else 0.0)
        if interrupted.is_set():  # Ctrl-C: finish this step, save, then say how to go on
            progress = 1.0
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
        if ema is not None:
            ema.update_parameters(raw_model)
        step += 1
        train_loss = loss.detach()
        bar.update(1)
        if step % 50 == 0:  # reading the loss waits for the device: not every step
            bar.set_postfix(loss=f"{loss.item():.3f}", valid=f"{valid_loss:.3f}", lr=f"{lr:.1e}", refresh=False)
        if rank == 0 and valid_rows is not None and step % config.eval_every == 0:
            valid_loss = validate(config, shipped, valid_rows, autocast)
            if not config.quiet:
                bar.write(f"step {step}: train loss {loss.item():.4f}, valid loss {valid_loss:.4f}")
            if config.keep_best and valid_loss < best_loss:
                best_loss = valid_loss
                save_model(out / "best", {**record, "steps": step, "wall_seconds": elapsed, "valid_loss": valid_loss})
        if rank == 0 and step % config.save_every == 0:
            save({**record, "steps": step, "wall_seconds": elapsed, "valid_loss": valid_loss})
    bar.close()
    if previous_handler is not None:  # Ctrl-C is the caller's again (a test session, a notebook)
        signal.signal(signal.SIGINT, previous_handler)
    if rank == 0:
        if valid_rows is not None:
            valid_loss = validate(config, shipped, valid_rows, autocast)
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
    if interrupted.is_set():
        raise EngineError(f"interrupted at step {step}: the checkpoint is saved in {out}; continue with the same "
                          f"command and --resume")
    return record


def stop_on_interrupt() -> tuple[threading.Event, Any]:
    """An event set by Ctrl-C (SIGINT), so the loop can stop between steps and save; and the handler
    it replaced, to put back once training ends (None off the main thread, where none is set)."""
    event = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        return event, None
    return event, signal.signal(signal.SIGINT, lambda *_: event.set())


def command(args: argparse.Namespace) -> None:
    train(options_from(TrainConfig, args))


def main(argv: list[str] | None = None) -> int:
    parser = parser_for("engine.train", __doc__)
    add_options(parser, TrainConfig, required=("data", "out"))
    return run_command(command, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
