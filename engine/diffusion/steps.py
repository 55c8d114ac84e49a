"""Schedulers: how a run moves from x_t to the next, lower time given the denoiser's clean estimate x0_hat.

A scheduler, as in diffusers, holds the times one run visits (`set_timesteps`) and makes the update
between them (`step`), carrying whatever a rule needs from one step to the next: a multistep solver
keeps its earlier estimates. A scheduler serves one run; the sampler makes a fresh one per run (runs
in different threads share none), and `set_timesteps` forgets any earlier run. `STEP_RULES` maps the
names `SampleOptions.step_rule` takes to the scheduler classes.

A step returns the new latent and its `mean`, where it landed before any fresh noise (the ancestral
posterior's mean; a deterministic rule's latent itself): guidance ties its steered latent to that
mean within the ancestral posterior variance of the step's two times, which the schedule alone gives
(`engine.diffusion.schedule.posterior_variance`), so no rule computes a posterior for guidance.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch

from engine.diffusion.schedule import alpha_bar, per_row, posterior


@dataclass
class SchedulerOutput:
    x_prev: torch.Tensor  # [B, L, D] the latent at the next time
    mean: torch.Tensor  # [B, L, D] where the step landed before fresh noise (x_prev for a deterministic rule)


class Scheduler(ABC):
    """The times a run visits, from T (or a variation's start) down, then t = 0, and one step
    between each two; a subclass defines the step (`update`)."""

    def __init__(self, T: int, *, noise_scale: float = 1.0):
        self.T = T
        self.noise_scale = noise_scale  # the scale of the fresh noise a stochastic rule draws
        self.timesteps: list[int] = []
        self.index = 0  # the position in `timesteps` of the time the next step starts from

    def set_timesteps(self, times: list[int]) -> None:
        """Visit `times` (descending, as `SampleOptions.times` gives them) and forget any earlier run."""
        self.timesteps, self.index = list(times), 0

    def step(self, x0_hat: torch.Tensor, t: int, x: torch.Tensor,
             generator: torch.Generator | None = None) -> SchedulerOutput:
        """Move x from time t, the next time this run visits, to the one after it (0 after the last);
        a stochastic rule draws its noise from `generator` (the run's)."""
        if self.index >= len(self.timesteps) or self.timesteps[self.index] != t:
            expected = self.timesteps[self.index] if self.index < len(self.timesteps) else "none (the run is over)"
            raise ValueError(f"a step from t = {t}, but the next time this run visits is {expected}")
        self.index += 1
        t_prev = self.timesteps[self.index] if self.index < len(self.timesteps) else 0
        return self.update(x0_hat, x, t, t_prev, generator=generator)

    @abstractmethod
    def update(self, x0_hat: torch.Tensor, x: torch.Tensor, t: int, t_prev: int, *,
               generator: torch.Generator | None) -> SchedulerOutput:
        """The step from t to t_prev < t."""


class AncestralScheduler(Scheduler):
    """DDPM's ancestral step: draw x_{t_prev} ~ q(x_{t_prev} | x_t, x0_hat), one draw of noise per
    step from the run's generator, scaled by `noise_scale` (0 gives the posterior mean)."""

    def update(self, x0_hat: torch.Tensor, x: torch.Tensor, t: int, t_prev: int, *,
               generator: torch.Generator | None) -> SchedulerOutput:
        noise = torch.randn(x.shape, generator=generator, device=x.device)
        mean, variance = posterior(x0_hat, x, t, t_prev, self.T)
        return SchedulerOutput(mean + self.noise_scale * variance.sqrt() * noise, mean)


class DDIMScheduler(Scheduler):
    """The deterministic DDIM step (eta = 0): keep the noise direction implied by x_t and x0_hat and
    move it to the noise level of t_prev. Draws no noise."""

    def update(self, x0_hat: torch.Tensor, x: torch.Tensor, t: int, t_prev: int, *,
               generator: torch.Generator | None) -> SchedulerOutput:
        ab_t = per_row(alpha_bar(t, self.T), x0_hat)
        ab_prev = per_row(alpha_bar(t_prev, self.T), x0_hat)
        eps = (x - ab_t.sqrt() * x0_hat) / (1.0 - ab_t).sqrt()
        x_prev = ab_prev.sqrt() * x0_hat + (1.0 - ab_prev).sqrt() * eps
        return SchedulerOutput(x_prev, x_prev)


class DPMSolver2MScheduler(Scheduler):
    """DPM-Solver++(2M) (Lu et al. 2022, algorithm 2): a deterministic multistep solver of the
    diffusion ODE in data prediction (x0_hat), on the VP schedule alpha_t = sqrt(alpha_bar),
    sigma_t = sqrt(1 - alpha_bar), lambda_t = log(alpha_t / sigma_t). With h = lambda_{t_prev} - lambda_t,

        x_{t_prev} = sigma_{t_prev} / sigma_t * x_t + alpha_{t_prev} (1 - e^{-h}) D

    where D = x0_hat on the first step (exactly DDIM's step) and, after it, the second-order
    D = x0_hat + h / (2 h_last) (x0_hat - x0_hat_last) from the previous step's estimate and h.
    The step to t = 0 (lambda infinite) is first order: it lands on x0_hat. Draws no noise."""

    def set_timesteps(self, times: list[int]) -> None:
        super().set_timesteps(times)
        self.previous: tuple[torch.Tensor, float] | None = None  # the last step's x0_hat and its h

    def update(self, x0_hat: torch.Tensor, x: torch.Tensor, t: int, t_prev: int, *,
               generator: torch.Generator | None) -> SchedulerOutput:
        (alpha_t, sigma_t), (alpha_prev, sigma_prev) = self.signal_noise(t), self.signal_noise(t_prev)
        h = math.log(alpha_prev / sigma_prev) - math.log(alpha_t / sigma_t) if sigma_prev > 0 else math.inf
        D = x0_hat
        if self.previous is not None and math.isfinite(h) and self.previous[1] > 0:
            last, h_last = self.previous
            D = x0_hat + h / (2 * h_last) * (x0_hat - last)
        self.previous = (x0_hat, h)
        # alpha_prev (1 - e^{-h}) written without lambda, so that t_prev = 0 (sigma = 0) needs no infinity
        x_prev = sigma_prev / sigma_t * x + (alpha_prev - alpha_t * sigma_prev / sigma_t) * D
        return SchedulerOutput(x_prev, x_prev)

    def signal_noise(self, t: int) -> tuple[float, float]:
        """alpha_t and sigma_t of the VP schedule."""
        ab = float(alpha_bar(t, self.T))
        return math.sqrt(ab), math.sqrt(1.0 - ab)


STEP_RULES: dict[str, type[Scheduler]] = {"ancestral": AncestralScheduler, "ddim": DDIMScheduler,
                                          "dpm++2m": DPMSolver2MScheduler}
