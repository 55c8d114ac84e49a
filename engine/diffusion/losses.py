"""Training objectives for the denoiser.

"ce" (default): cross-entropy of the denoiser's logits against the true words at a random t, in
the style of CDCD / Plaid. "mse": Diffusion-LM's objective, ||x0_hat - x0||^2 plus the rounding
term -log p(w | x0_hat) plus the prior term ||sqrt(alpha_bar_T) x0||^2.
Either way, half the time the model first sees its own estimate (self-conditioning), so that at
sampling time it can refine the previous step's x0_hat rather than start over.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from engine.diffusion.model import Denoiser, window_positions
from engine.diffusion.schedule import alpha_bar, q_sample
from engine.text.tokenizer import Tokenizer

WINDOW_PAD = 4  # a training window keeps END and 0 .. WINDOW_PAD positions after it
FULL_WINDOWS = 0.1  # share of training rows that keep all seq_len positions (long and unknown lengths)


def training_windows(tokens: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """[B] how many leading positions each training row keeps: END plus a few PAD after it, so the
    model learns to write a text of n words on about n + 2 positions; a FULL_WINDOWS share keep all."""
    B, L = tokens.shape
    device = tokens.device
    end = (tokens == Tokenizer.end_id).float().argmax(-1)
    pad = (torch.rand(B, generator=generator, device=device) * (WINDOW_PAD + 1)).long()
    full = torch.rand(B, generator=generator, device=device) < FULL_WINDOWS
    return torch.where(full, L, (end + 1 + pad).clamp(max=L))


def given_positions(tokens: torch.Tensor, conditioned: float, generator: torch.Generator | None = None
                    ) -> torch.Tensor:
    """[B, L] the positions a training row is given clean, as the sampler holds locked words: START
    always; in a `conditioned` share of the rows also a prefix, a suffix, both around a blanked
    middle, or scattered single words (30%), each pattern equally likely, and END with the PAD
    after it (the length is known). The other rows are free generation."""
    B, L = tokens.shape
    device = tokens.device
    position = torch.arange(L, device=device)[None]
    end = (tokens == Tokenizer.end_id).float().argmax(-1, keepdim=True)  # [B, 1] END's position
    words = (position >= 1) & (position < end)

    def uniform(low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        """An integer in [low, high] per row."""
        return low + (torch.rand(low.shape, generator=generator, device=device) * (high - low + 1)).long()

    cut_a = uniform(torch.ones_like(end), (end - 1).clamp(min=1))  # prefix: words 1 .. cut_a - 1
    cut_b = uniform(cut_a, (end - 1).clamp(min=1))  # suffix: words cut_b + 1 .. end - 1
    pattern = (torch.rand((B, 1), generator=generator, device=device) * 4).long()
    scattered = torch.rand((B, L), generator=generator, device=device) < 0.3
    given = torch.where(pattern == 0, position < cut_a, torch.zeros_like(words))
    given |= (pattern == 1) & (position > cut_b)
    given |= (pattern == 2) & ((position < cut_a) | (position > cut_b))
    given |= (pattern == 3) & scattered
    rows = torch.rand((B, 1), generator=generator, device=device) < conditioned
    given = rows & ((given & words) | (position >= end))
    given[:, 0] = True
    return given


def diffusion_loss(
    model: Denoiser, tokens: torch.Tensor, generator: torch.Generator | None = None, *,
    t: torch.Tensor | None = None, forward=None, given: torch.Tensor | None = None,
    windows: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean loss over a batch of token sequences [B, L]; t is drawn uniformly from 1..T unless given.

    `forward` is the callable that runs the network (a DistributedDataParallel wrapper of `model`
    during data-parallel training); it defaults to `model` itself. `given` [B, L] marks positions
    held at their clean vectors (in x_t and in the self-conditioning input), as the sampler holds
    locked words; the loss is then taken on the other positions only. `windows` [B] cuts each row
    to its first positions (the network attends and the loss counts only inside them).
    """
    forward = forward or model
    attention_mask, counted = None, None
    if windows is not None:
        length = int(windows.max())
        tokens = tokens[:, :length]
        given = given[:, :length] if given is not None else None
        counted, attention_mask = window_positions(windows, length)
    if given is not None:
        counted = ~given if counted is None else counted & ~given
    c = model.config
    B = tokens.shape[0]
    device = tokens.device
    if t is None:
        t = torch.randint(1, c.T + 1, (B,), generator=generator, device=device)
    x0 = model.embed(tokens)
    noise = torch.randn(x0.shape, generator=generator, device=device)
    x_t = q_sample(x0, t, noise, c.T)
    hold = given[..., None] if given is not None else None
    if hold is not None:
        x_t = torch.where(hold, x0, x_t)

    x0_prev = None
    if c.self_condition and model.training:
        use = torch.rand((B, 1, 1), generator=generator, device=device) < 0.5
        rows = use.view(-1).nonzero().view(-1)  # the first pass runs only where its estimate is used
        x0_prev = torch.zeros_like(x0)
        if len(rows):
            with torch.no_grad():
                mask = attention_mask[rows] if attention_mask is not None else None
                x0_prev[rows] = forward(x_t[rows], t[rows], None, mask).x0_hat.to(x0_prev.dtype)
            if hold is not None:
                x0_prev = torch.where(hold & use, x0.detach(), x0_prev)

    out = forward(x_t, t, x0_prev, attention_mask)
    if counted is None:
        ce = F.cross_entropy(out.logits.reshape(-1, out.logits.shape[-1]), tokens.reshape(-1))
    else:
        each = F.cross_entropy(out.logits.transpose(1, 2), tokens, reduction="none")  # [B, L]
        ce = (each * counted).sum() / counted.sum().clamp(min=1)
    if c.objective == "ce":
        return ce
    mse = (out.x0_hat - x0).pow(2).mean()
    prior = (alpha_bar(torch.tensor(c.T), c.T).sqrt() * x0).pow(2).mean()
    return mse + ce + prior
