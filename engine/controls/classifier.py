"""Control classifiers: small networks that read the noisy latent x_t at time t and predict a
property of the sentence it will become. Their gradients steer sampling (see `controls`).

One network class with a head per kind:
  pos       a tag for every position (Universal POS for words, END and PAD after them)
  tree      a dependency label for every position, and for every word a distribution over which
            position is its head (a biaffine-style pointer; the root points at START)
  spans     a constituent label (or NONE) for a pair of positions (i, j)
  semantic  for every E2E "field=value", whether the sentence expresses it (independent sigmoids)
They are trained (`python -m engine.train_control`) on noised latents of the denoiser's own word
vectors, and saved as control_<kind>.safetensors + control_<kind>.json in the model directory.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from engine.diffusion.checkpoint import atomic_write, load_weights, read_json, save_weights
from engine.diffusion.model import bert_encoder, timestep_features
from engine.errors import CheckpointError

KINDS = ("pos", "tree", "spans", "semantic")
PAD_LABEL, END_LABEL, NONE_LABEL = "PAD", "END", "NONE"  # position labels after the words; "no constituent"
IGNORE = -100


@dataclass
class Labels:
    """What a classifier is asked about, per batch row; -100 marks "no claim" at an entry."""

    tags: torch.Tensor | None = None  # pos/tree [B, L]: label index at each position
    heads: torch.Tensor | None = None  # tree [B, L]: the head's position for each word
    spans: torch.Tensor | None = None  # spans [B, S, 2]: (i, j) positions, inclusive
    span_labels: torch.Tensor | None = None  # spans [B, S]: label index of each pair (0 = NONE)
    values: torch.Tensor | None = None  # semantic [B, labels]: 1 expressed, 0 not expressed

    def claims(self) -> torch.Tensor:
        """[B] how many claims each row makes (to average a loss over)."""
        parts = [x for x in (self.tags, self.heads, self.span_labels, self.values) if x is not None]
        return sum((x != IGNORE).flatten(1).sum(-1) for x in parts)


@dataclass
class ClassifierConfig:
    kind: str
    labels: list[str]  # the classes of the kind's head (tags, dependency labels, span labels or field=value)
    embed_dim: int
    seq_len: int
    T: int
    hidden: int = 128
    layers: int = 3
    heads: int = 4
    ffn: int = 512
    dropout: float = 0.1
    training: dict = field(default_factory=dict)  # how it was trained (steps, time, accuracy)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")


class ControlClassifier(nn.Module):
    def __init__(self, config: ClassifierConfig):
        super().__init__()
        self.config = c = config
        n = len(c.labels)
        self.input_proj = nn.Linear(c.embed_dim, c.hidden)
        self.time_mlp = nn.Sequential(nn.Linear(c.hidden, c.hidden), nn.SiLU(), nn.Linear(c.hidden, c.hidden))
        self.transformer = bert_encoder(c)
        if c.kind in ("pos", "tree"):
            self.label_head = nn.Linear(c.hidden, n)
        if c.kind == "tree":
            self.head_query = nn.Linear(c.hidden, c.hidden)
            self.head_key = nn.Linear(c.hidden, c.hidden)
        if c.kind == "spans":
            self.span_head = nn.Sequential(nn.Linear(3 * c.hidden, c.hidden), nn.GELU(), nn.Linear(c.hidden, n))
        if c.kind == "semantic":
            self.pool_score = nn.Linear(c.hidden, 1)
            self.value_head = nn.Linear(c.hidden, n)

    def encode(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """[B, L, hidden] features of the noisy latent x_t [B, L, D] at times t [B]."""
        time = self.time_mlp(timestep_features(t, self.config.hidden, self.config.T))
        return self.transformer(inputs_embeds=self.input_proj(x_t) + time[:, None]).last_hidden_state

    def label_logits(self, h: torch.Tensor) -> torch.Tensor:
        """pos/tree: [B, L, labels] scores of each position's tag or dependency label."""
        return self.label_head(h)

    def head_logits(self, h: torch.Tensor) -> torch.Tensor:
        """tree: [B, L, L] scores that position j (last axis) is the head of position i."""
        return self.head_query(h) @ self.head_key(h).transpose(1, 2) / math.sqrt(self.config.hidden)

    def span_logits(self, h: torch.Tensor, spans: torch.Tensor) -> torch.Tensor:
        """spans: [B, S, labels] scores for S position pairs per row ([B, S, 2] long, inclusive)."""
        index = spans[..., None].expand(*spans.shape, h.shape[-1])  # [B, S, 2, hidden]
        ends = h[:, None].expand(-1, spans.shape[1], -1, -1).gather(2, index)
        left, right = ends[:, :, 0], ends[:, :, 1]
        return self.span_head(torch.cat([left, right, left * right], dim=-1))

    def value_logits(self, h: torch.Tensor) -> torch.Tensor:
        """semantic: [B, labels] scores that the sentence expresses each field=value."""
        weights = self.pool_score(h).softmax(dim=1)  # attention pooling over positions
        return self.value_head((weights * h).sum(dim=1))


    def log_prob(self, x_t: torch.Tensor, t: torch.Tensor, labels: Labels) -> torch.Tensor:
        """[B] log-probability of every claim in `labels` given x_t (summed over claims): the
        training loss is its negative mean, and guidance climbs its gradient."""
        h = self.encode(x_t, t)
        kind = self.config.kind
        if kind in ("pos", "tree"):
            total = _categorical(self.label_logits(h), labels.tags)
            return total + _categorical(self.head_logits(h), labels.heads) if kind == "tree" else total
        if kind == "spans":
            return _categorical(self.span_logits(h, labels.spans), labels.span_labels)
        logits, claimed = self.value_logits(h), labels.values != IGNORE
        signed = torch.where(labels.values == 1, logits, -logits)
        return (F.logsigmoid(signed) * claimed).sum(-1)


def position_targets(label_index: Callable[[str], int], per_word: Sequence[str], seq_len: int) -> list[int]:
    """The pos/tree heads' layout, one entry per position: IGNORE at START, each word's label,
    END, then PAD."""
    ids = [label_index(name) for name in [*per_word, END_LABEL]]
    return [IGNORE, *ids] + [label_index(PAD_LABEL)] * (seq_len - len(ids) - 1)


def head_positions(heads: Sequence[int]) -> list[int]:
    """Each word's head as a sequence position (word i sits at i + 1; the root points at START, 0)."""
    return [0 if h == i else h + 1 for i, h in enumerate(heads)]


def _categorical(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """[B] summed log-probability of the target class at every entry not marked IGNORE."""
    claimed = targets != IGNORE
    picked = logits.log_softmax(-1).gather(-1, targets.clamp(min=0)[..., None])[..., 0]
    return (picked * claimed).flatten(1).sum(-1)


def save_classifier(directory: Path, model: ControlClassifier) -> None:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    kind = model.config.kind
    save_weights(directory / f"control_{kind}.safetensors", model)
    path = directory / f"control_{kind}.json"
    atomic_write(path, lambda p: p.write_text(json.dumps(asdict(model.config), indent=1)))


def classifier_path(directory: Path, kind: str) -> Path:
    return Path(directory) / f"control_{kind}.json"


def load_classifier(directory: Path, kind: str) -> ControlClassifier:
    """The trained classifier of `kind` from a model directory, in eval mode."""
    path = classifier_path(directory, kind)
    if not path.is_file():
        raise CheckpointError(f"no {kind} classifier in {directory} (train one with "
                              f"python -m engine.train_control --kind {kind} --model {directory})")
    meta = read_json(path, what=f"{kind} classifier config")
    try:
        config = ClassifierConfig(**meta)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{kind} classifier config {path} is malformed: {exc}") from exc
    model = ControlClassifier(config)
    load_weights(model, path.with_suffix(".safetensors"))
    return model.eval().requires_grad_(False)  # guidance differentiates the latent, never the weights
