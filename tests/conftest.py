"""Fixtures: a tiny corpus written here and a tiny model trained on it in seconds (no ../shared)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.train import TrainConfig, train

NAMES = ["The Eagle", "Alimentum", "The Mill", "Wildwood", "Blue Spice", "The Punter"]
KINDS = ["coffee shop", "pub", "restaurant"]
PLACES = ["the river", "the city centre", "Burger King"]
FOODS = ["Italian", "French", "English"]


def corpus() -> list[str]:
    sentences = []
    for i, name in enumerate(NAMES):
        for j, kind in enumerate(KINDS):
            place = PLACES[(i + j) % len(PLACES)]
            food = FOODS[(i * 2 + j) % len(FOODS)]
            sentences.append(f"{name} is a {kind} near {place} .")
            sentences.append(f"{name} serves {food} food and is a {kind} .")
    return sentences


TINY = dict(seq_len=16, embed_dim=8, hidden=32, layers=1, heads=2, ffn=64, dropout=0.0, batch_size=16,
            warmup=5, lr=3e-3, eval_every=20, save_every=1000, bf16=False, quiet=True)


@pytest.fixture(scope="session")
def corpus_files(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("data")
    sentences = corpus()
    (root / "train.txt").write_text("\n".join(sentences) + "\n")
    (root / "valid.csv").write_text("mr,ref\n" + "\n".join(f'"x","{s}"' for s in sentences[::5]) + "\n")
    return root / "train.txt", root / "valid.csv"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, corpus_files) -> Path:
    """Directory with a denoiser and a judge trained for a few dozen steps on the fixture corpus."""
    train_file, valid_file = corpus_files
    out = tmp_path_factory.mktemp("model")
    train(TrainConfig(data=str(train_file), valid=str(valid_file), out=str(out), max_steps=60, **TINY))
    train(TrainConfig(data=str(train_file), valid=str(valid_file), out=str(out), max_steps=30, judge=True, **TINY))
    return out
