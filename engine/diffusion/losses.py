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

from engine.diffusion.model import Denoiser
from engine.diffusion.schedule import alpha_bar, q_sample


def diffusion_loss(
    model: Denoiser, tokens: torch.Tensor, generator: torch.Generator | None = None,
    t: torch.Tensor | None = None, forward=None,
) -> torch.Tensor:
    """Mean loss over a batch of token sequences [B, L]; t is drawn uniformly from 1..T unless given.

    `forward` is the callable that runs the network (a DistributedDataParallel wrapper of `model`
    during data-parallel training); it defaults to `model` itself.
    """
    forward = forward or model
    c = model.config
    B = tokens.shape[0]
    device = tokens.device
    if t is None:
        t = torch.randint(1, c.T + 1, (B,), generator=generator, device=device)
    x0 = model.embed(tokens)
    noise = torch.randn(x0.shape, generator=generator, device=device)
    x_t = q_sample(x0, t, noise, c.T)

    x0_prev = None
    if c.self_condition and model.training:
        use = torch.rand((B, 1, 1), generator=generator, device=device) < 0.5
        with torch.no_grad():
            first = forward(x_t, t).x0_hat
        x0_prev = torch.where(use, first.detach(), torch.zeros_like(first))

    out = forward(x_t, t, x0_prev)
    ce = F.cross_entropy(out.logits.reshape(-1, out.logits.shape[-1]), tokens.reshape(-1))
    if c.objective == "ce":
        return ce
    mse = (out.x0_hat - x0).pow(2).mean()
    prior = (alpha_bar(torch.tensor(c.T), c.T).sqrt() * x0).pow(2).mean()
    return mse + ce + prior
