"""Step rules: how a sampler moves from x_t to x_{t_prev} given the denoiser's clean estimate x0_hat.

A step rule is one function with the signature of `StepRule`; `SampleOptions.step_rule` names it.
Each returns the new latent together with the mean and variance of the ancestral posterior
q(x_{t_prev} | x_t, x0_hat), which guidance uses as its trust region (see engine.controls.guidance).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from engine.diffusion.schedule import alpha_bar, per_row, posterior


@dataclass
class Step:
    x: torch.Tensor  # [B, L, D] the latent at t_prev
    mean: torch.Tensor  # [B, L, D] the posterior mean
    variance: torch.Tensor  # [B, 1, 1] the posterior variance (the scale guidance ties x to)


StepRule = Callable[..., Step]  # (x0_hat, x_t, t, t_prev, noise, T, noise_scale) -> Step


def ancestral(x0_hat: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor, t_prev: torch.Tensor,  # noqa: PLR0917
              noise: torch.Tensor, T: int, noise_scale: float = 1.0) -> Step:
    """Draw x_{t_prev} ~ q(x_{t_prev} | x_t, x0_hat) (DDPM's ancestral step); `noise_scale` scales
    the fresh noise (0 gives the posterior mean)."""
    mean, variance = posterior(x0_hat, x_t, t, t_prev, T)
    return Step(mean + noise_scale * variance.sqrt() * noise, mean, variance)


def ddim(x0_hat: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor, t_prev: torch.Tensor,  # noqa: PLR0917
         noise: torch.Tensor, T: int, noise_scale: float = 1.0) -> Step:
    """The deterministic DDIM step (eta = 0): keep the noise direction implied by x_t and x0_hat
    and move it to the noise level of t_prev. `noise` and `noise_scale` are unused."""
    del noise, noise_scale
    ab_t = per_row(alpha_bar(t, T), x0_hat)
    ab_prev = per_row(alpha_bar(t_prev, T), x0_hat)
    eps = (x_t - ab_t.sqrt() * x0_hat) / (1.0 - ab_t).sqrt()
    x = ab_prev.sqrt() * x0_hat + (1.0 - ab_prev).sqrt() * eps
    _, variance = posterior(x0_hat, x_t, t, t_prev, T)
    return Step(x, x, variance)


STEP_RULES: dict[str, StepRule] = {"ancestral": ancestral, "ddim": ddim}
