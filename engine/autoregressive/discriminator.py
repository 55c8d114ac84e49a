"""FUDGE's future discriminators (Yang & Klein 2021): for one kind of control, how likely the
finished sentence is to meet a target, read from a prefix of its words.

A discriminator is the kind's own classifier network (its head and its `Labels`, so each kind's
Control builds its targets unchanged) reading a prefix instead of a noisy latent: the known
positions hold learned word vectors, every later one a learned "not written yet" vector, and the
classifier's time input is the number of known positions. It is trained on prefixes of the
training sentences, with the labels of the whole sentence, by
`python -m engine.train_control --method fudge --kind K`, and saved as fudge_<kind>.* beside the
model.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from engine.controls.base import Labels
from engine.controls.classifier import ClassifierConfig, read_config, save_network
from engine.diffusion.checkpoint import load_weights
from engine.errors import ConfigError
from engine.text.tokenizer import Tokenizer


class FutureDiscriminator(nn.Module):
    """p(target | the first `known` positions of a row), for one kind of control."""

    def __init__(self, config: ClassifierConfig, vocab_size: int):
        from engine.controls import KINDS

        super().__init__()
        network = KINDS[config.kind].future_network
        if network is None:
            raise ConfigError(f"{config.kind!r} has no future discriminator network")
        self.unknown_id = vocab_size  # the vector of a position not written yet
        self.word_vectors = nn.Embedding(vocab_size + 1, config.embed_dim)
        self.network = network(config)

    @property
    def config(self) -> ClassifierConfig:
        return self.network.config

    def log_prob(self, ids: torch.Tensor, known: torch.Tensor, labels: Labels) -> torch.Tensor:
        """[B] log-probability of every claim in `labels` given the first known[b] ids of row b
        (ids [B, L]; the rest are not read)."""
        visible = torch.arange(ids.shape[1], device=ids.device)[None] < known[:, None]
        x = self.word_vectors(torch.where(visible, ids, self.unknown_id))
        return self.network.log_prob(x, known, labels)


def prefix_rows(ids: torch.Tensor, lengths: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """[B] known positions for training rows: START and a uniform number of words, or (one time in
    n + 2) the whole finished row, END and PAD included (as a decoder sees once it writes END)."""
    cut = (torch.rand(len(lengths), generator=generator) * (lengths + 2)).long() + 1  # 1 .. n + 2
    return torch.where(cut == lengths + 2, ids.shape[1], cut)


def discriminator_path(directory: Path, kind: str) -> Path:
    return Path(directory) / f"fudge_{kind}.json"


def save_discriminator(directory: Path, model: FutureDiscriminator) -> None:
    save_network(discriminator_path(directory, model.config.kind), model)


def load_discriminator(directory: Path, kind: str, tokenizer: Tokenizer) -> FutureDiscriminator:
    """The trained future discriminator of `kind` from a model directory, in eval mode."""
    from engine.controls import FUTURE, KINDS

    if kind not in FUTURE:
        offered = ", ".join(FUTURE)
        raise ConfigError(f"FUDGE has no discriminator for {kind} controls: it steers {offered}" if kind in KINDS
                          else f"unknown kind of control {kind!r}")
    path = discriminator_path(directory, kind)
    model = FutureDiscriminator(read_config(path, kind, "FUDGE discriminator", "--method fudge "), len(tokenizer))
    load_weights(model, path.with_suffix(".safetensors"))
    return model.eval().requires_grad_(False)
