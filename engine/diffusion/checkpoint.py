"""Checkpoints: safetensors weights + JSON config and vocabulary. Nothing here unpickles.

A model directory holds:
  denoiser.safetensors, denoiser.json   the diffusion model (config + training record)
  vocab.json                            the word list shared by both models
  judge.safetensors, judge.json         the autoregressive fluency judge (optional)
  train_state.safetensors, train_state.json   optimiser and RNG state, for resuming training
  denoiser.raw.safetensors              the trained weights when the model saved is their moving
  (judge.raw.safetensors)               average (--ema): training resumes from these
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, load_model, save_file, save_model

from engine.diffusion.model import Denoiser, DenoiserConfig
from engine.errors import CheckpointError, ConfigError
from engine.text.tokenizer import Tokenizer

BUNDLED_MODEL = Path(__file__).resolve().parents[2] / "assets" / "model"


def raw_weights_file(weights_file: str) -> str:
    """Where the raw weights beside a moving average are kept: denoiser.safetensors -> denoiser.raw.safetensors."""
    return weights_file.removesuffix(".safetensors") + ".raw.safetensors"


def save_denoiser(directory: Path, model: Denoiser, tokenizer: Tokenizer, record: dict[str, Any]) -> None:
    """Write weights, config (+ a record of how it was trained) and vocabulary into `directory`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_weights(directory / "denoiser.safetensors", model)
    _write_json(directory / "denoiser.json", {"config": asdict(model.config), "training": record})
    tokenizer.save(directory / "vocab.json")


def load_denoiser(directory: Path | None = None, device: str = "cpu") -> tuple[Denoiser, Tokenizer, dict]:
    """The model in eval mode, its tokenizer and its training record."""
    directory = Path(directory or BUNDLED_MODEL)
    meta = read_json(directory / "denoiser.json", what="model config")
    tokenizer = Tokenizer.load(directory / "vocab.json")
    try:
        config = DenoiserConfig(**meta["config"])
    except (KeyError, TypeError, ConfigError) as exc:
        raise CheckpointError(f"model config in {directory} is malformed: {exc}") from exc
    if config.vocab_size != len(tokenizer):
        raise CheckpointError(
            f"model in {directory} expects {config.vocab_size} words but vocab.json has {len(tokenizer)}")
    model = Denoiser(config)
    load_weights(model, directory / "denoiser.safetensors")
    return model.to(device).eval(), tokenizer, meta.get("training", {})


def save_weights(path: Path, model: torch.nn.Module) -> None:
    """safetensors file of the model's weights (tied weights stored once)."""
    atomic_write(Path(path), lambda p: save_model(model, str(p)))


def load_weights(model: torch.nn.Module, path: Path) -> None:
    if not Path(path).is_file():
        raise CheckpointError(f"weights not found: {path}")
    try:
        load_model(model, str(path), strict=True, device=str(next(model.parameters()).device))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"weights file {path} is unreadable: {exc}") from exc
    except RuntimeError as exc:
        raise CheckpointError(f"weights in {path} do not match the model config: {exc}") from exc


def save_train_state(directory: Path, optimizer: torch.optim.Optimizer, generator: torch.Generator, step: int,
                     extra: dict[str, Any]) -> None:
    """Optimiser moments and RNG states (global and the batch/noise generator) as tensors, the rest
    (step, hyper-parameters) as JSON."""
    tensors = {"rng.cpu": torch.get_rng_state(), "rng.batches": generator.get_state()}
    for i, state in optimizer.state_dict()["state"].items():
        for name, value in state.items():
            tensors[f"optim.{i}.{name}"] = torch.as_tensor(value).detach().cpu().contiguous()
    atomic_write(Path(directory) / "train_state.safetensors", lambda p: save_file(tensors, str(p)))
    groups = [{k: v for k, v in g.items() if k != "params"} for g in optimizer.state_dict()["param_groups"]]
    _write_json(Path(directory) / "train_state.json", {"step": step, "param_groups": groups, **extra})


def load_train_state(directory: Path, optimizer: torch.optim.Optimizer, generator: torch.Generator) -> dict[str, Any]:
    """Restore the optimiser and RNG saved by `save_train_state`; returns the JSON part (step, ...)."""
    meta = read_json(Path(directory) / "train_state.json", what="training state")
    try:
        tensors = load_file(str(Path(directory) / "train_state.safetensors"))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"training state in {directory} is unreadable: {exc}") from exc
    try:
        torch.set_rng_state(tensors.pop("rng.cpu"))
        generator.set_state(tensors.pop("rng.batches"))
        state: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
        current = optimizer.state_dict()
        pairs = zip(meta["param_groups"], current["param_groups"], strict=True)
        groups = [{**saved, "params": g["params"]} for saved, g in pairs]
        optimizer.load_state_dict({"state": state, "param_groups": groups})
        meta = {**meta, "step": int(meta["step"]), "elapsed_s": float(meta["elapsed_s"])}
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"training state in {directory} is damaged ({type(exc).__name__}: {exc}): train "
                              f"afresh into another --out, or restore train_state.json") from exc
    return meta


def read_json(path: Path, what: str) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what} not found: {path} (is this a model directory?)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{what} {path} is not valid JSON: {exc}") from exc


def _write_json(path: Path, data: dict[str, Any]) -> None:
    atomic_write(path, lambda p: p.write_text(json.dumps(data, indent=2)))


def atomic_write(path: Path, write) -> None:
    """Write to a temporary name then rename, so a killed run never leaves half a checkpoint."""
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    tmp.replace(path)
