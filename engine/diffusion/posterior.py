"""The word posterior of the forward process: how likely each word is at each position of a latent.

A latent x_i at time t is its word's vector e_w scaled and noised, x_i ~ N(sqrt(alpha_bar_t) e_w,
(1 - alpha_bar_t) I), so the noise schedule and the word vectors alone, no network, say

    log p(w | x_i) = log_softmax over w of  -||x_i - sqrt(alpha_bar_t) e_w||^2 / (2 (1 - alpha_bar_t)).

Read through x0_hat (t ~ 0) this is the denoiser's own word distribution. The forward process
(engine.diffusion.forward) reads noised sentences with it; controls whose targets are words
(engine.controls.include, the semantic kind's "words" way) steer with its gradient.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.diffusion.schedule import alpha_bar
from engine.text.tokenizer import Tokenizer


@dataclass
class WordPosterior:
    """p(word | latent) at each position, from the denoiser's word vectors and noise schedule alone."""

    embeddings: torch.Tensor  # [V, D] the word vectors x0 is made of
    T: int
    tokenizer: Tokenizer
    seq_len: int  # positions per row: START, the words, END

    def log_probs(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """[B, L, V] log p(w | x_i) at times t [B]."""
        ab = alpha_bar(t, self.T).to(x)[:, None, None].clamp(max=1 - 1e-6)
        E = self.embeddings.to(x)
        distance = (x * x).sum(-1, keepdim=True) - 2 * ab.sqrt() * (x @ E.T) + ab * (E * E).sum(-1)
        return (-distance / (2 * (1 - ab))).log_softmax(-1)

    def ids(self, words: list[str]) -> list[int]:
        """The vocabulary ids of `words`; a TemplateError names any it does not know."""
        self.tokenizer.check_known(words)
        return self.tokenizer.encode_words(words)
