"""Control classifiers: small networks that read the noisy latent x_t at time t and predict a
property of the sentence it will become. Their gradients steer sampling (see `guidance`).

`ControlClassifier` is the shared part: a time-conditioned transformer encoder over x_t. Each kind
of control subclasses it in its own module with its output layer (`build_output`), its
log-probability of a target (`output_log_prob`) and how its training labels are made. They are
trained (`python -m engine.train_control`) on noised latents of the denoiser's own word vectors,
and saved as control_<kind>.safetensors + control_<kind>.json in the model directory.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path

import torch
from torch import nn

from engine.controls.base import Labels
from engine.diffusion.checkpoint import atomic_write, load_weights, read_json, save_weights
from engine.diffusion.model import bert_encoder, check_network_config, timestep_features
from engine.errors import CheckpointError, ConfigError
from engine.options import option
from engine.text.syntax import Parse, parse


@dataclass
class ClassifierConfig:
    # the network's size (the training command's flags)
    hidden: int = option(128, "classifier transformer width")
    layers: int = option(3, "classifier transformer layers")
    attention_heads: int = option(4, "attention heads per layer (must divide --hidden)")
    ffn: int = option(512, "width of each layer's feed-forward part")
    dropout: float = option(0.1, "dropout while training")
    # filled in from the kind, the data and the diffusion model when training starts
    kind: str = field(default="", metadata={"derived": True})
    labels: list[str] = field(default_factory=list, metadata={"derived": True})  # classes of the output layer
    embed_dim: int = field(default=0, metadata={"derived": True})
    seq_len: int = field(default=0, metadata={"derived": True})
    T: int = field(default=0, metadata={"derived": True})
    training: dict = field(default_factory=dict, metadata={"derived": True})  # steps, time, held-out scores

    def __post_init__(self) -> None:
        check_network_config(self, "classifier", ("hidden", "layers", "attention_heads", "ffn"))


@dataclass
class LabelledCorpus:
    """Training sentences with their meaning representations; parsed on first use."""

    words: list[list[str]]
    meanings: list[str]  # the E2E `mr` column ("" when the data has none)

    @cached_property
    def trees(self) -> list[Parse]:
        return parse(self.words)


class ControlClassifier(nn.Module):
    """The encoder shared by every kind; a kind's subclass adds its output layer."""

    needs_meanings = False  # training labels come from the `mr` column, not from a parse

    def __init__(self, config: ClassifierConfig):
        super().__init__()
        self.config = c = config
        self.input_proj = nn.Linear(c.embed_dim, c.hidden)
        self.time_mlp = nn.Sequential(nn.Linear(c.hidden, c.hidden), nn.SiLU(), nn.Linear(c.hidden, c.hidden))
        self.transformer = bert_encoder(c)
        self.build_output(c.hidden, len(c.labels))

    def build_output(self, hidden: int, n_labels: int) -> None:
        raise NotImplementedError

    def output_log_prob(self, h: torch.Tensor, labels: Labels) -> torch.Tensor:
        """[B] summed log-probability of the claims in `labels`, from encoded features h."""
        raise NotImplementedError

    def encode(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """[B, L, hidden] features of the noisy latent x_t [B, L, D] at times t [B]."""
        time = self.time_mlp(timestep_features(t, self.config.hidden, self.config.T))
        return self.transformer(inputs_embeds=self.input_proj(x_t) + time[:, None]).last_hidden_state

    def log_prob(self, x_t: torch.Tensor, t: torch.Tensor, labels: Labels) -> torch.Tensor:
        """[B] log-probability of every claim in `labels` given x_t (summed over claims): the
        training loss is its negative mean, and guidance climbs its gradient."""
        return self.output_log_prob(self.encode(x_t, t), labels)

    # --- training labels ---------------------------------------------------------------------
    @classmethod
    def label_names(cls, corpus: LabelledCorpus) -> list[str]:
        """The classes of the output layer."""
        raise NotImplementedError

    @classmethod
    def encode_labels(cls, corpus: LabelledCorpus, labels: list[str], seq_len: int) -> dict[str, torch.Tensor]:
        """Per-sentence label tensors (first axis: sentences)."""
        raise NotImplementedError

    @classmethod
    def batch_labels(cls, data: dict[str, torch.Tensor], index: torch.Tensor, lengths: torch.Tensor,
                     seq_len: int, generator: torch.Generator) -> Labels:
        """The labels of training rows `index` (`lengths`: their word counts)."""
        raise NotImplementedError


def classifier_path(directory: Path, kind: str) -> Path:
    return Path(directory) / f"control_{kind}.json"


def save_network(path: Path, model: nn.Module) -> None:
    """A trained network as `path` (its config, JSON) and the safetensors file beside it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    save_weights(path.with_suffix(".safetensors"), model)
    atomic_write(path, lambda p: p.write_text(json.dumps(asdict(model.config), indent=1)))


def save_classifier(directory: Path, model: ControlClassifier) -> None:
    save_network(classifier_path(directory, model.config.kind), model)


def read_config(path: Path, kind: str, what: str, train_flags: str = "") -> ClassifierConfig:
    """The checked config of a trained `what` ("classifier", "FUDGE discriminator") of `kind` at
    `path`; a missing file names the command that trains one."""
    if not path.is_file():
        raise CheckpointError(f"no {kind} {what} in {path.parent} (train one with python -m engine.train_control "
                              f"{train_flags}--kind {kind} --model {path.parent})")
    meta = read_json(path, what=f"{kind} {what} config")
    try:
        config = ClassifierConfig(**meta)
    except (TypeError, ConfigError) as exc:
        raise CheckpointError(f"{kind} {what} config {path} is malformed: {exc}") from exc
    if config.kind != kind:
        raise CheckpointError(f"{path} holds a {config.kind!r} {what}, not {kind!r}")
    return config


def load_classifier(directory: Path, kind: str) -> ControlClassifier:
    """The trained classifier of `kind` from a model directory, in eval mode."""
    from engine.controls import KINDS

    if kind not in KINDS or KINDS[kind].classifier is None:
        raise CheckpointError(f"{kind!r} is not a kind of control steered by a classifier")
    path = classifier_path(directory, kind)
    model = KINDS[kind].classifier(read_config(path, kind, "classifier"))
    load_weights(model, path.with_suffix(".safetensors"))
    return model.eval().requires_grad_(False)  # guidance differentiates the latent, never the weights
