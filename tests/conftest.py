"""Fixtures: a tiny corpus written here and a tiny model trained on it in seconds (no ../shared)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.controls import FUTURE, TRAINED
from engine.controls.classifier import ClassifierConfig
from engine.diffusion.model import DenoiserConfig
from engine.train import TrainConfig, train
from engine.train_control import ControlTrainConfig, train_control
from tests.browser import browser, open_page  # noqa: F401  (fixtures of the browser tests)
from tests.server import app_url  # noqa: F401  (the app the API and browser tests share)

NAMES = ["The Eagle", "Alimentum", "The Mill", "Wildwood", "Blue Spice", "The Punter"]
KINDS = ["coffee shop", "pub", "restaurant"]
PLACES = ["the river", "the city centre", "Burger King"]
FOODS = ["Italian", "French", "English"]


def labelled_corpus() -> list[tuple[str, str]]:
    """(E2E-style meaning representation, sentence) pairs."""
    pairs = []
    for i, name in enumerate(NAMES):
        for j, kind in enumerate(KINDS):
            place = PLACES[(i + j) % len(PLACES)]
            food = FOODS[(i * 2 + j) % len(FOODS)]
            where = f"near[{place}]" if place == "Burger King" else f"area[{place.removeprefix('the ')}]"
            pairs.append((f"name[{name}], eatType[{kind}], {where}", f"{name} is a {kind} near {place} ."))
            pairs.append((f"name[{name}], eatType[{kind}], food[{food}]",
                          f"{name} serves {food} food and is a {kind} ."))
    return pairs


def corpus() -> list[str]:
    return [ref for _, ref in labelled_corpus()]


TINY = dict(model=DenoiserConfig(seq_len=16, embed_dim=8, hidden=32, layers=1, attention_heads=2, ffn=64, dropout=0.0),
            batch_size=16, warmup=5, lr=3e-3, eval_every=20, save_every=1000, precision="fp32", quiet=True)


@pytest.fixture(scope="session")
def corpus_files(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("data")
    sentences = corpus()
    (root / "train.txt").write_text("\n".join(sentences) + "\n")
    (root / "valid.csv").write_text("mr,ref\n" + "\n".join(f'"x","{s}"' for s in sentences[::5]) + "\n")
    return root / "train.txt", root / "valid.csv"


@pytest.fixture(scope="session")
def labelled_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("labelled") / "train.csv"
    path.write_text("mr,ref\n" + "\n".join(f'"{mr}","{ref}"' for mr, ref in labelled_corpus()) + "\n")
    return path


TINY_CLASSIFIER = dict(classifier=ClassifierConfig(hidden=32, layers=1, attention_heads=2, ffn=64, dropout=0.0),
                       batch_size=16, warmup=5, lr=3e-3, eval_every=1000, quiet=True)


@pytest.fixture(scope="session")
def control_model(tmp_path_factory, tiny_model, labelled_csv) -> Path:
    """The tiny model with a tiny classifier of every kind trained beside it."""
    out = tmp_path_factory.mktemp("control_model")
    shutil.copytree(tiny_model, out, dirs_exist_ok=True)
    for kind in TRAINED:
        train_control(ControlTrainConfig(kind=kind, model=str(out), data=str(labelled_csv), max_steps=60,
                                         **TINY_CLASSIFIER))
    return out


@pytest.fixture(scope="session")
def fudge_model(tmp_path_factory, control_model, corpus_files, labelled_csv) -> Path:
    """The tiny model with its classifiers, a judge trained long enough to write the fixture's
    sentences, and a FUDGE discriminator of every kind FUDGE steers."""
    out = tmp_path_factory.mktemp("fudge_model")
    shutil.copytree(control_model, out, dirs_exist_ok=True)
    train_file, valid_file = corpus_files
    train(TrainConfig(data=str(train_file), valid=str(valid_file), out=str(out), max_steps=300, judge=True, **TINY))
    for kind in FUTURE:
        train_control(ControlTrainConfig(kind=kind, model=str(out), data=str(labelled_csv), max_steps=300,
                                         method="fudge", **TINY_CLASSIFIER))
    return out


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, corpus_files) -> Path:
    """Directory with a denoiser and a judge trained for a few dozen steps on the fixture corpus."""
    train_file, valid_file = corpus_files
    out = tmp_path_factory.mktemp("model")
    train(TrainConfig(data=str(train_file), valid=str(valid_file), out=str(out), max_steps=60, **TINY))
    train(TrainConfig(data=str(train_file), valid=str(valid_file), out=str(out), max_steps=30, judge=True, **TINY))
    return out


@pytest.fixture(scope="module")
def editor(tiny_model):
    """The editor's handlers on the tiny model, one per test module."""
    from editor.layout import build
    from engine.pipeline import Pipeline

    ed = build(Pipeline.from_pretrained(tiny_model, precision="fp32"))[1]
    yield ed
    ed.close()
