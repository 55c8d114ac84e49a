"""The sampling loop: one loop for free text, fixed lengths and infilling.

Each step: the denoiser predicts x0 (and word logits) from x_t; the estimate is optionally
clamped to the nearest word vectors; locked positions are reset to their true word vectors; the
step is recorded as a Frame; then x moves to the next (lower) time by the posterior
q(x_{t'} | x_t, x0_hat), and locked positions are set again from their true vectors (clean by
default; `locked_noise` re-noises them towards the current t, as Diffusion-LM's replacement did).
`frames()` yields every Frame as it is made (for a UI to stream); `sample()` returns the whole
Trajectory.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch

from engine.diffusion.model import Denoiser
from engine.diffusion.schedule import alpha_bar, posterior, q_sample, strided_timesteps
from engine.errors import EngineError
from engine.text.template import Template, stack
from engine.text.tokenizer import Tokenizer


@dataclass
class SampleOptions:
    steps: int = 50
    clamp: bool = True  # replace x0_hat by the vector of its most likely word (Diffusion-LM's clamping trick)
    temperature: float = 1.0  # softmax temperature of the word distribution behind an unclamped x0_hat
    noise_scale: float = 1.0  # scale of the fresh noise added at each step (1 = ancestral sampling)
    record_latents: bool = True
    # noise on locked positions, as a fraction of the current t: 0 holds their clean word vectors
    # (measured best for infilling), 1 re-noises them to t like everything else (Diffusion-LM's replacement)
    locked_noise: float = 0.0

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise EngineError(f"steps must be at least 1, got {self.steps}")
        if self.temperature <= 0:
            raise EngineError(f"temperature must be positive, got {self.temperature}")
        if self.noise_scale < 0 or not 0 <= self.locked_noise <= 1:
            raise EngineError("noise_scale must be >= 0 and locked_noise between 0 and 1")


@dataclass
class Frame:
    """The state after one denoising step, for every sample in the batch."""

    index: int  # 0 .. steps-1
    t: int  # the time the estimate was made at (T ... 1)
    alpha_bar: float  # signal fraction at t: 0 = pure noise, 1 = clean
    tokens: torch.Tensor  # [B, L] the nearest word at each position (locked words as written)
    confidence: torch.Tensor  # [B, L] probability of that word under the model
    latents: torch.Tensor | None  # [B, L, D] x_t that the model read
    # each control's classifier probability of its target per claim (geometric mean) at that x_t,
    # [B] per control (guided runs only)
    scores: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def final(self) -> bool:
        return self.t == self.last_t

    last_t: int = field(default=1, repr=False)


@dataclass
class GuideStep:
    """What the sampler hands a guide after drawing x ~ N(mean, variance) at time t."""

    x: torch.Tensor  # [B, L, D]
    mean: torch.Tensor
    variance: torch.Tensor  # [B, 1, 1]
    t: int
    estimate: Callable[[torch.Tensor], torch.Tensor]  # x -> x0_hat(x), differentiable (one denoiser pass)


# a guide returns the adjusted x and each control's score: see engine.controls.guidance
Guide = Callable[[GuideStep], tuple[torch.Tensor, dict[str, torch.Tensor]]]


@dataclass
class Trajectory:
    frames: list[Frame]
    tokens: torch.Tensor  # [B, L] final words
    locked_mask: torch.Tensor  # [B, L]
    words: list[list[str]]  # final words between START and END
    network_passes: int  # denoiser calls per sample
    seconds: float

    @property
    def texts(self) -> list[str]:
        return [" ".join(w) for w in self.words]


class Sampler:
    """Joins a trained denoiser and the noise schedule. With bf16=True the network runs as a
    bfloat16 copy (about 1.5-2x faster on CPUs with AVX-512 BF16); word vectors stay float32."""

    def __init__(self, model: Denoiser, tokenizer: Tokenizer, bf16: bool = True):
        self.model = model.eval()
        self.network = copy.deepcopy(self.model).to(torch.bfloat16) if bf16 else self.model
        self.tokenizer = tokenizer

    @torch.no_grad()
    def frames(self, templates: list[Template], options: SampleOptions | None = None,
               seed: int = 0, guide: Guide | None = None) -> Iterator[Frame]:
        """Denoise one sample per template, yielding a Frame after every step. A `guide` may move
        each new latent (classifier guidance) before locked positions are set again."""
        options = options or SampleOptions()
        model, T = self.model, self.model.config.T
        device = next(model.parameters()).device
        generator = torch.Generator(device=device).manual_seed(seed)
        locked_ids, locked_mask = (x.to(device) for x in stack(templates))
        B, L = locked_ids.shape
        E = model.embeddings()
        locked_vectors = E[locked_ids]
        lock = locked_mask[..., None]
        banned = self._banned_words(locked_ids, locked_mask)
        if options.steps > T:
            raise EngineError(f"steps must be at most the schedule's T = {T}, got {options.steps}")
        times = strided_timesteps(options.steps, T)

        x = torch.randn((B, L, E.shape[1]), generator=generator, device=device)
        x0_prev, scores = None, {}
        for i, t in enumerate(times):
            t_next = times[i + 1] if i + 1 < len(times) else 0
            t_batch = torch.full((B,), t, device=device)
            x = torch.where(lock, self._locked_latent(locked_vectors, t, options, x), x) if i == 0 else x
            out = self.network(x, t_batch, x0_prev)
            logits = out.logits.float().masked_fill(banned, float("-inf"))
            probs = logits.softmax(-1)
            confidence, tokens = probs.max(-1)
            tokens = torch.where(locked_mask, locked_ids, tokens)
            confidence = torch.where(locked_mask, torch.ones_like(confidence), confidence)
            if model.config.objective == "mse":  # the network regresses x0 itself
                soft = out.x0_hat.float()
            else:
                word_probs = probs if options.temperature == 1.0 else (logits / options.temperature).softmax(-1)
                soft = word_probs @ E
            soft = torch.where(lock, locked_vectors, soft)
            x0_hat = E[tokens] if options.clamp else soft
            yield Frame(index=i, t=t, alpha_bar=float(alpha_bar(torch.tensor(t), T)), tokens=tokens.cpu(),
                        confidence=confidence.cpu(), latents=x.cpu() if options.record_latents else None,
                        scores={k: v.cpu() for k, v in scores.items()}, last_t=times[-1])
            if t_next == 0:
                break
            mean, variance = posterior(x0_hat, x, t_batch, torch.full((B,), t_next, device=device), T)
            noise = torch.randn(x.shape, generator=generator, device=device)
            x = mean + options.noise_scale * variance.sqrt() * noise
            if guide is not None:
                estimate = self._estimator(t_next, soft, banned, lock, locked_vectors)
                x, scores = guide(GuideStep(x=x, mean=mean, variance=variance, t=t_next, estimate=estimate))
            relock_noise = torch.randn(x.shape, generator=generator, device=device)
            x = torch.where(lock, self._locked_latent(locked_vectors, t_next, options, relock_noise), x)
            x0_prev = soft

    def _estimator(self, t: int, x0_prev: torch.Tensor, banned: torch.Tensor, lock: torch.Tensor,
                   locked_vectors: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        """x -> the float32 model's x0_hat at time t (locked positions as written), for guides that
        steer through the denoiser's estimate."""
        model = self.model

        def estimate(x: torch.Tensor) -> torch.Tensor:
            out = model(x, torch.full((x.shape[0],), t, device=x.device), x0_prev)
            if model.config.objective == "mse":
                soft = out.x0_hat
            else:
                soft = out.logits.masked_fill(banned, float("-inf")).softmax(-1) @ out.embeddings
            return torch.where(lock, locked_vectors, soft)

        return estimate

    def _locked_latent(self, vectors: torch.Tensor, t: int, options: SampleOptions,
                       noise: torch.Tensor) -> torch.Tensor:
        """Locked positions' latent at time t: their true word vectors, noised by `locked_noise`."""
        t_locked = torch.full((vectors.shape[0],), round(t * options.locked_noise), device=vectors.device)
        return q_sample(vectors, t_locked, noise, self.model.config.T)

    def _banned_words(self, locked_ids: torch.Tensor, locked_mask: torch.Tensor) -> torch.Tensor:
        """[B, L, V] True where a word may not appear: UNK anywhere free, and in a row whose END is
        locked (fixed length), no PAD/START/END at free positions, so it has exactly the words asked for."""
        tok = self.tokenizer
        B, L = locked_ids.shape
        banned = torch.zeros((B, L, len(tok)), dtype=torch.bool, device=locked_ids.device)
        free = ~locked_mask
        banned[..., tok.unk_id] = free
        fixed = free & (locked_mask & (locked_ids == tok.end_id)).any(-1, keepdim=True)
        for special in (tok.pad_id, tok.start_id, tok.end_id):
            banned[..., special] |= fixed
        return banned

    def sample(self, templates: list[Template], options: SampleOptions | None = None, seed: int = 0,
               guide: Guide | None = None) -> Trajectory:
        start = time.perf_counter()
        frames = list(self.frames(templates, options, seed, guide))
        return self.collect(frames, templates, time.perf_counter() - start)

    def collect(self, frames: list[Frame], templates: list[Template], seconds: float) -> Trajectory:
        """The Trajectory of frames streamed from `frames()` (the last frame holds the result)."""
        last = frames[-1]
        _, locked_mask = stack(templates)
        return Trajectory(
            frames=frames, tokens=last.tokens, locked_mask=locked_mask,
            words=[self.tokenizer.decode_words(row) for row in last.tokens.tolist()],
            network_passes=len(frames), seconds=seconds,
        )
