"""The noise schedule of Diffusion-LM as pure tensor functions (no state, no model).

alpha_bar(t) = 1 - sqrt(t/T + s) is the "sqrt" schedule of Li et al. (2022): it adds noise
quickly at small t, which matters for word embeddings that are easy to recover from light noise.
Time t is an integer (or float) in [0, T]; t = 0 is clean data.
"""

from __future__ import annotations

import torch

T_DEFAULT = 2000
S_DEFAULT = 1e-4
_MIN_ALPHA_BAR = 1e-5  # 1 - sqrt(1 + s) is negative at t = T: keep a tiny positive signal


def alpha_bar(t: torch.Tensor | float, T: int = T_DEFAULT, s: float = S_DEFAULT) -> torch.Tensor:
    """Fraction of signal variance left at time t (t = 0 gives exactly 1), on t's device (a number: the CPU)."""
    t = torch.as_tensor(t, dtype=torch.float64, device=t.device if isinstance(t, torch.Tensor) else "cpu")
    value = (1.0 - torch.sqrt(t / T + s)).clamp(min=_MIN_ALPHA_BAR)
    return torch.where(t <= 0, torch.ones_like(value), value).float()


def q_sample(x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, T: int = T_DEFAULT) -> torch.Tensor:
    """Draw x_t ~ q(x_t | x_0) = N(sqrt(alpha_bar) x_0, (1 - alpha_bar) I). t has one entry per batch row."""
    ab = per_row(alpha_bar(t, T), x0)
    return ab.sqrt() * x0 + (1.0 - ab).sqrt() * noise


def posterior(
    x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor | float, t_prev: torch.Tensor | float, T: int = T_DEFAULT
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and variance of q(x_{t_prev} | x_t, x_0) for any t_prev < t (strided sampling)."""
    ab_t = per_row(alpha_bar(t, T), x0)
    ab_prev = per_row(alpha_bar(t_prev, T), x0)
    alpha_step = ab_t / ab_prev
    mean = (ab_prev.sqrt() * (1.0 - alpha_step) * x0 + alpha_step.sqrt() * (1.0 - ab_prev) * x_t) / (1.0 - ab_t)
    return mean, per_row(posterior_variance(t, t_prev, T), x0)


def posterior_variance(t: torch.Tensor | float, t_prev: torch.Tensor | float, T: int = T_DEFAULT) -> torch.Tensor:
    """Variance of q(x_{t_prev} | x_t, x_0): a function of the two times alone (guidance's trust region)."""
    ab_t, ab_prev = alpha_bar(t, T), alpha_bar(t_prev, T)
    return (1.0 - ab_t / ab_prev) * (1.0 - ab_prev) / (1.0 - ab_t)


def strided_timesteps(steps: int, T: int = T_DEFAULT, start: int | None = None) -> list[int]:
    """`steps` integer times from `start` (default T) down to 1, evenly spaced: sampling visits
    these, then t = 0. A run that starts below T varies a sentence noised to `start` (SDEdit)."""
    times = torch.linspace(T if start is None else start, 0, steps + 1, device="cpu")[:-1].round().long().tolist()
    return [max(1, int(x)) for x in times]


def per_row(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Broadcast one value per batch row over the remaining dimensions of `like`."""
    values = values.to(like.device).reshape(-1, *([1] * (like.dim() - 1)))
    return values.to(like.dtype)
