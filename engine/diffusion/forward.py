"""The forward process, for teaching: a sentence dissolving into noise as t grows.

Sampling runs the reverse. Here the sentence's word vectors are noised to a range of times with
one draw of noise (the draw a run of the same seed starts from), and at each time every position
is read the way the schedule alone allows: the word whose vector, scaled by sqrt(alpha_bar), lies
nearest the noisy latent (p(w | x_t) from the distances, no network involved), how sure that
reading is, and how far the latent has drifted from the true word's vector. A free position is
read as a word of the vocabulary, never as PAD, UNK, START or END: under heavy noise a latent can
lie nearest one of those, and a row of noise would then show them as if they were words.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.diffusion.posterior import WordPosterior
from engine.diffusion.sampler import Sampler
from engine.diffusion.schedule import alpha_bar
from engine.text.template import Template
from engine.text.tokenizer import SPECIALS


@dataclass
class Noising:
    """A sentence at each of several times of the forward process, with one draw of noise."""

    template: Template  # the sentence (free positions hold its words)
    times: list[int]  # increasing, from 0 (the clean sentence)
    alpha_bar: list[float]  # signal fraction at each time
    tokens: torch.Tensor  # [N, L] the nearest word at each position (locked: its own token)
    confidence: torch.Tensor  # [N, L] p(nearest word | x_t)
    true_probability: torch.Tensor  # [N, L] p(the sentence's word | x_t)
    distance: torch.Tensor  # [N, L] ||x_t - e_word||: how far the latent is from its true word vector
    latents: torch.Tensor  # [N, L, D] x_t


def noising(sampler: Sampler, posterior: WordPosterior, template: Template, seed: int, times: list[int]) -> Noising:
    """The template's words noised to each of `times` (see the module docstring)."""
    T = sampler.model.config.T
    x = sampler.noised(template, seed, times)
    t = torch.tensor(times, device=x.device)
    with torch.no_grad():
        probs = posterior.log_probs(x, t).exp()
    words = probs.clone()
    words[..., :len(SPECIALS)] = -1.0  # ids 0-3 are PAD, UNK, START, END: no word to read
    confidence, tokens = words.max(-1)
    ids = torch.tensor(template.ids[:x.shape[1]], device=x.device)
    locked = torch.tensor(template.locked[:x.shape[1]], device=x.device)  # held at their words, as a run holds them
    true_probability = probs.gather(-1, ids.expand(len(times), -1)[..., None])[..., 0]
    one = torch.ones_like(confidence)
    return Noising(template=template, times=list(times),  # on the host, as a Frame's tensors are
                   alpha_bar=[float(alpha_bar(v, T)) for v in times],
                   tokens=torch.where(locked, ids, tokens).cpu(), confidence=torch.where(locked, one, confidence).cpu(),
                   true_probability=torch.where(locked, one, true_probability).cpu(),
                   distance=(x - posterior.embeddings[ids]).norm(dim=-1).cpu(), latents=x.cpu())
