"""Classifier guidance (Diffusion-LM section 5): after each denoising step, a few gradient steps
on the latent x_{t-1} that raise the controls' log-probabilities while a fluency term keeps it
near the denoiser's own proposal:

    maximise   sum_c weight_c * log p_c(target_c | x)  -  fluency * ||x - mean||^2 / (2 variance)

where mean is where the sampler's step landed before any fresh noise (the ancestral posterior's
mean; a deterministic step's own latent) and variance the ancestral posterior variance of the step's
two times, which the schedule alone gives, whatever the step rule (GuideStep). Like the paper
it takes Adagrad steps (step size `strength`). The classifiers read either x itself (the paper's
way, cheap: no pass through the denoiser) or x0_hat(x) = softmax(logits(x)) . E, the denoiser's
clean estimate, which is differentiable in x but costs a denoiser pass forward and back per step.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from engine.controls import KINDS
from engine.controls.base import Control
from engine.diffusion.sampler import GuideStep
from engine.diffusion.schedule import strided_timesteps
from engine.errors import ConfigError
from engine.options import Widget, check, option

READS = ("x_t", "x0_hat")
BASE_GUIDANCE = {"strength": 0.3, "fluency": 0.01, "gradient_steps": 3, "reads": "x_t",
                 "t_min": 0.0, "t_max": 1.0}  # a kind that sets none
COST = {"x_t": 0, "x0_hat": 1}  # what the classifiers read, cheap to dear


@dataclass
class GuidanceOptions:
    """How hard and how guidance steers. A field left None takes the controls' measured default
    (`resolved`): each kind of control records its own (`ControlKind.guidance`, docs/controls.md)."""

    strength: float | None = option(None, "guidance step size (Adagrad); 0 turns the gradient off, candidates are "
                                          "still drawn and ranked (default: each control's measured setting)",
                                    low=0, high=10, label="guidance strength", api=True,
                                    page=Widget("slider", "guidance strength (0 = off)", 0, 5, 0.01, group="guidance",
                                                default=BASE_GUIDANCE["strength"]))
    fluency: float | None = option(None, "lambda of the term tying x to the denoiser's proposal (default: each "
                                         "control's)", low=0, high=100, label="fluency", api=True,
                                   page=Widget("slider", "fluency λ (keeps each step near the model's own proposal)",
                                               0, 1, 0.005, group="guidance", default=BASE_GUIDANCE["fluency"]))
    gradient_steps: int | None = option(None, "gradient steps on the latent per denoising step (default: each "
                                              "control's)", low=0, high=20, label="guidance gradient steps")
    reads: str | None = option(None, "what the classifiers read: x_t itself (fast) or the denoiser's x0_hat (default: "
                                     "each control's)", choices=READS, label="guidance reads", api=True,
                               page=Widget("radio", "classifiers read: x_t (fast) or the denoiser's x0_hat (stronger, "
                                                    "~2.5x slower)", group="guidance", default=BASE_GUIDANCE["reads"]))
    t_min: float | None = option(None, "guide only the steps to times t >= t_min * T: 0 guides down to the last step, "
                                       "more leaves the cleanest steps unguided (default: each control's)",
                                 low=0, high=1, label="guidance t_min")
    t_max: float | None = option(None, "guide only the steps to times t <= t_max * T: 1 guides from the first step, "
                                       "less leaves the noisiest steps unguided (default: each control's)",
                                 low=0, high=1, label="guidance t_max")

    def __post_init__(self) -> None:
        check(self)
        if self.t_min is not None and self.t_max is not None and self.t_min >= self.t_max:
            raise ConfigError(f"guidance t_min ({self.t_min}) must be below t_max ({self.t_max}): "
                              "no step would be guided")

    def resolved(self, kinds: Sequence[str]) -> GuidanceOptions:
        """Every field set: those left None from `default_guidance(kinds)`."""
        defaults = default_guidance(kinds)
        return GuidanceOptions(**{name: defaults[name] if value is None else value
                                  for name, value in dataclasses.asdict(self).items()})

    def guides(self, t: int, T: int) -> bool:
        """Whether the step to time t is guided (a resolved option's window over the schedule)."""
        return self.t_min * T <= t <= self.t_max * T

    def steps_guided(self, steps: int, T: int) -> int:
        """How many of `steps` denoising steps a resolved option guides: the steps to each sampled
        time after the first (the last step, to t = 0, is never guided) inside its window."""
        return sum(self.guides(t, T) for t in strided_timesteps(steps, T)[1:])


def default_guidance(kinds: Sequence[str]) -> dict:
    """The measured setting of these kinds of control together: one kind's own; for several, that of
    the kind whose setting costs most (x0_hat over x_t, then more gradient steps, then more of the
    schedule guided) at the gentlest strength of them all: one kind's strength over another's window
    turns the text to salad (POS + semantic at semantic's strength 2 over the whole schedule: judge
    perplexity 15.5 on templates, docs/controls.md)."""
    settings = [BASE_GUIDANCE | KINDS[kind].guidance for kind in kinds] or [BASE_GUIDANCE]
    costliest = max(settings, key=lambda g: (COST[g["reads"]], g["gradient_steps"], g["t_max"] - g["t_min"]))
    return costliest | {"strength": min(g["strength"] for g in settings)}


DEFAULT_GUIDANCE = GuidanceOptions(**BASE_GUIDANCE)  # the editor's sliders start here


class Guidance:
    """Joins controls (summed with their weights) into one guide for the sampler."""

    def __init__(self, controls: Sequence[Control], options: GuidanceOptions | None = None):
        self.controls = [c for c in controls if c.steers]  # a length is a template constraint, not steered
        self.options = (options or GuidanceOptions()).resolved([c.name for c in self.controls])
        self.classifier_passes = 0  # classifier forward+backward passes over the whole batch
        self.denoiser_passes = 0  # extra denoiser forward+backward passes (reads="x0_hat")

    @property
    def active(self) -> bool:
        return bool(self.controls) and self.options.strength > 0 and self.options.gradient_steps > 0

    def guides(self, t: int, T: int) -> bool:
        """Whether the step to time t is steered."""
        return self.active and self.options.guides(t, T)

    def log_prob(self, x: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """[B] the weighted sum of the controls' log-probabilities, and each control's own."""
        each = {c.name: c.log_prob(x, t) for c in self.controls}
        total = sum(c.weight * each[c.name] for c in self.controls)
        return total, each

    def __call__(self, step: GuideStep) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The guided latent, and for each control the classifier's probability of its target per
        claim (geometric mean over the claims) at the latent before the last update."""
        options = self.options
        if not self.guides(step.t, step.T):
            return step.x, {}
        t = torch.full((step.x.shape[0],), step.t, device=step.x.device)
        read_t = t if options.reads == "x_t" else torch.ones_like(t)  # x0_hat: the least noise trained on
        x = step.x.detach().clone().requires_grad_(True)
        optimizer = torch.optim.Adagrad([x], lr=options.strength)
        with torch.enable_grad():
            for _ in range(options.gradient_steps):
                seen = step.whole(x if options.reads == "x_t" else step.estimate(x))
                total, each = self.log_prob(seen, read_t)
                tether = ((x - step.mean) ** 2 / (2 * step.variance.clamp(min=1e-8))).flatten(1).sum(-1)
                loss = (-total + options.fluency * tether).sum()
                (x.grad,) = torch.autograd.grad(loss, [x])  # only the latent's gradient, no weight gradients
                optimizer.step()
                self.classifier_passes += len(self.controls)
                self.denoiser_passes += options.reads == "x0_hat"
        scores = {c.name: (each[c.name].detach() / c.claims().clamp(min=1)).exp() for c in self.controls}
        return x.detach(), scores
