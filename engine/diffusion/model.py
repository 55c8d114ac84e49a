"""The denoiser: a network that reads noisy word vectors x_t at time t and predicts the words.

Only the network lives here. Noise maths is in `schedule`, the training objective in `losses`,
the sampling loop in `sampler`. Word vectors are learned, L2-normalised to norm sqrt(dim) so that
they cannot collapse towards each other (which would make denoising trivially easy and useless).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from transformers import BertConfig, BertModel

from engine.errors import ConfigError
from engine.options import option

OBJECTIVES = ("ce", "mse")


@dataclass
class DenoiserConfig:
    vocab_size: int = field(default=0, metadata={"derived": True})  # set from the vocabulary when training starts
    seq_len: int = option(64, "positions per sentence, START and END included (longer sentences are left out)")
    embed_dim: int = option(16, "dimension of the word vectors the diffusion runs on")
    hidden: int = option(256, "transformer width")
    layers: int = option(4, "transformer layers")
    attention_heads: int = option(4, "attention heads per layer (must divide --hidden)")
    ffn: int = option(1024, "width of each layer's feed-forward part")
    dropout: float = option(0.1, "dropout in the transformer while training")
    T: int = option(2000, "diffusion steps of the noise schedule (sampling strides over them)")
    objective: str = option("ce", "ce: logits over words (CDCD/Plaid); mse: x0 regression (Diffusion-LM)",
                            choices=OBJECTIVES)
    self_condition: bool = option(True, "feed the model its previous estimate of x0 (self-conditioning)")
    windows: bool = option(False, "train on windows cut a few positions after END (and some full ones), so "
                                  "that a text of n words is sampled on about n + 4 positions, not seq_len")

    def __post_init__(self) -> None:
        check_network_config(self, "model", ("hidden", "layers", "attention_heads", "ffn", "seq_len", "embed_dim", "T"))
        if self.objective not in OBJECTIVES:
            raise ConfigError(f"objective must be one of {OBJECTIVES}, got {self.objective!r}")


@dataclass
class Denoised:
    logits: torch.Tensor  # [B, L, V] scores over the vocabulary at every position
    embeddings: torch.Tensor  # [V, D] the word vectors the scores refer to
    regressed_x0: torch.Tensor | None = None  # [B, L, D] the "mse" objective's direct estimate of x0

    def x0_from(self, word_probs: torch.Tensor, embeddings: torch.Tensor | None = None) -> torch.Tensor:
        """[B, L, D] the estimate of the clean vectors: the "mse" objective's own regression, else the
        expected word vector under `word_probs` (the sampler passes masked, tempered probabilities)."""
        if self.regressed_x0 is not None:
            return self.regressed_x0
        return word_probs @ (self.embeddings if embeddings is None else embeddings)

    @property
    def x0_hat(self) -> torch.Tensor:
        """[B, L, D] the estimate from the plain softmax of the logits (as in training)."""
        return self.x0_from(self.logits.softmax(-1))


def check_network_config(config, what: str, whole: tuple[str, ...]) -> None:
    """The bounds of a transformer's config: `whole` names fields that are whole numbers >= 1;
    hidden, attention_heads and dropout are checked too (a hand-edited config file included)."""
    for name in whole:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{what} {name} must be a whole number >= 1, got {value!r}")
    if config.hidden % config.attention_heads:
        raise ConfigError(f"{what} hidden size {config.hidden} must be a multiple of attention_heads "
                          f"({config.attention_heads})")
    if not (isinstance(config.dropout, int | float) and 0 <= config.dropout < 1):
        raise ConfigError(f"{what} dropout must be a number from 0 to below 1, got {config.dropout!r}")


def window_positions(windows: torch.Tensor, length: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """[B, length] True inside each row's window (its first `windows[b]` positions), and the
    network's attention mask for them: None when every row fills the length, so whole rows pay
    nothing for windows."""
    inside = torch.arange(length, device=windows.device)[None] < windows[:, None]
    return inside, None if bool(inside.all()) else inside.long()


def timestep_features(t: torch.Tensor, dim: int, T: int) -> torch.Tensor:
    """Sinusoidal features of t in [0, T] (one row per batch entry)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=t.device) / half)
    angles = (t.float() * (1000.0 / T))[:, None] * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


class FastDropout(nn.Dropout):
    """nn.Dropout with a cheaper mask: on a CPU, drawing the random numbers is most of dropout's cost,
    and a 16-bit draw per element (four from each 64-bit one) gives the same keep rate, to 1/65536,
    at about a third of the time. Subclassing keeps `p` where BERT's attention reads it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0 or x.device.type != "cpu":
            return super().forward(x)
        n = x.numel()
        draws = torch.randint(-2**63, 2**63 - 1, ((n + 3) // 4,), dtype=torch.int64)
        keep = draws.view(torch.int16)[:n].view(x.shape) >= round(-32768 + self.p * 65536)
        return x * keep.to(x.dtype) * (1.0 / (1.0 - self.p))


def bert_encoder(c) -> BertModel:
    """A BERT encoder fed `inputs_embeds`, sized by a config with hidden, layers, attention_heads, ffn, dropout
    and seq_len. Its own token table is frozen: it is never used, and data-parallel training must
    not wait for a gradient it will never get."""
    bert = BertConfig(
        vocab_size=1, hidden_size=c.hidden, num_hidden_layers=c.layers, num_attention_heads=c.attention_heads,
        intermediate_size=c.ffn, hidden_dropout_prob=c.dropout, attention_probs_dropout_prob=c.dropout,
        max_position_embeddings=c.seq_len, type_vocab_size=1,
    )
    bert._attn_implementation = "sdpa"
    encoder = BertModel(bert, add_pooling_layer=False)
    encoder.embeddings.word_embeddings.weight.requires_grad_(False)
    swap_dropout(encoder, nn.Dropout, FastDropout)
    return encoder


def swap_dropout(network: nn.Module, old: type[nn.Dropout], new: type[nn.Dropout]) -> None:
    """Replace every dropout module of exactly type `old` by one of type `new` with the same rate."""
    for module in list(network.modules()):
        for name, child in module.named_children():
            if type(child) is old:
                setattr(module, name, new(child.p))


class Denoiser(nn.Module):
    def __init__(self, config: DenoiserConfig):
        super().__init__()
        self.config = config
        c = config
        self.word_vectors = nn.Parameter(torch.randn(c.vocab_size, c.embed_dim))
        in_dim = c.embed_dim * (2 if c.self_condition else 1)
        self.input_proj = nn.Linear(in_dim, c.hidden)
        self.time_mlp = nn.Sequential(nn.Linear(c.hidden, c.hidden), nn.SiLU(), nn.Linear(c.hidden, c.hidden))
        self.transformer = bert_encoder(c)
        out_dim = c.vocab_size if c.objective == "ce" else c.embed_dim
        self.output = nn.Linear(c.hidden, out_dim)

    def embeddings(self) -> torch.Tensor:
        """The word vectors, each of norm sqrt(embed_dim): x0 for a word is its row here."""
        return F.normalize(self.word_vectors, dim=-1) * math.sqrt(self.config.embed_dim)

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        return self.embeddings()[ids]

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, x0_prev: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None) -> Denoised:
        """x_t: [B, L, D]; t: [B] times; x0_prev: the previous estimate (self-conditioning) or None;
        attention_mask: [B, L], 1 at the positions a row's window holds (None: every position)."""
        if self.config.self_condition:
            if x0_prev is None:
                x0_prev = torch.zeros_like(x_t)
            x_t = torch.cat([x_t, x0_prev], dim=-1)
        dtype = self.input_proj.weight.dtype  # float32, or bfloat16 for a copy made for fast sampling
        time_features = timestep_features(t, self.config.hidden, self.config.T).to(dtype)
        h = self.input_proj(x_t.to(dtype)) + self.time_mlp(time_features)[:, None]
        h = self.transformer(inputs_embeds=h, attention_mask=attention_mask).last_hidden_state
        out = self.output(h).float()
        E = self.embeddings().float()
        if self.config.objective == "ce":
            return Denoised(logits=out, embeddings=E)
        # mse: the network regresses x0 directly; words score by (negative squared) distance to it
        logits = 2 * out @ E.T - (E * E).sum(-1) - (out * out).sum(-1, keepdim=True)
        return Denoised(logits=logits, embeddings=E, regressed_x0=out)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
