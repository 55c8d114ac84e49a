"""Loading a model folder: where it is, the device it runs on, and the networks read from it.

`Pipeline.from_pretrained` reads the denoiser, its vocabulary and the fluency judge at once. The
networks that steer controls are read here on first use and kept (`Networks`): a trained kind's
classifier, a kind's FUDGE discriminator (which must read as many positions as the judge's LM
writes); the kinds that need no network steer with the forward process's word posterior. Nothing
here runs a request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import torch
from transformers import GPT2LMHeadModel

from engine.autoregressive.discriminator import FutureDiscriminator, load_discriminator
from engine.controls import KINDS
from engine.controls.base import Steering
from engine.controls.classifier import ControlClassifier, classifier_path, load_classifier
from engine.diffusion.checkpoint import BUNDLED_MODEL
from engine.diffusion.model import Denoiser
from engine.diffusion.posterior import WordPosterior
from engine.errors import CheckpointError
from engine.scoring.judge import Judge
from engine.text.tokenizer import Tokenizer


def model_directory(directory: Path | str | None) -> Path:
    """The model folder `directory` names (None: the bundled model), which must exist."""
    directory = Path(directory) if directory else BUNDLED_MODEL
    if not directory.is_dir():
        raise CheckpointError(f"model directory not found: {directory}")
    return directory


def load_judge(directory: Path, tokenizer: Tokenizer, device: torch.device) -> Judge | None:
    """The folder's fluency judge (judge.json), or None where it has none."""
    return Judge(directory, tokenizer, device) if (directory / "judge.json").is_file() else None


@dataclass
class Networks:
    """The networks of a model folder beside the denoiser's sampling: the judge's LM (which writes left
    to right), and what steers each kind of control, loaded on first use and kept."""

    directory: Path
    model: Denoiser
    tokenizer: Tokenizer
    judge: Judge | None
    classifiers: dict[str, ControlClassifier] = field(default_factory=dict)
    discriminators: dict[str, FutureDiscriminator] = field(default_factory=dict)  # FUDGE's

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def kinds(self) -> list[str]:
        """The controls this model folder offers: those with a trained classifier, and those needing none."""
        return [name for name, kind in KINDS.items()
                if not kind.trained or classifier_path(self.directory, name).is_file()]

    def classifier(self, kind: str) -> ControlClassifier:
        if kind not in self.classifiers:
            self.classifiers[kind] = load_classifier(self.directory, kind).to(self.device)
        return self.classifiers[kind]

    @cached_property
    def word_posterior(self) -> WordPosterior:
        return WordPosterior(self.model.embeddings().detach(), self.model.config.T, self.tokenizer,
                             self.model.config.seq_len)

    def control_source(self, kind: str) -> ControlClassifier | Steering | WordPosterior | None:
        """What steers a control of `kind`: its trained classifier (with the denoiser's word posterior
        for a kind whose targets are words), else the word posterior alone."""
        if KINDS[kind].trained:
            if KINDS[kind].words_steer:
                return Steering(self.classifier(kind), self.word_posterior)
            return self.classifier(kind)
        return self.word_posterior if KINDS[kind].steers else None

    @property
    def lm(self) -> GPT2LMHeadModel:
        """The autoregressive LM that writes left to right: the judge's."""
        if self.judge is None:
            raise CheckpointError(f"left-to-right writing needs the autoregressive LM (judge.json) in {self.directory}")
        return self.judge.model

    @property
    def lm_seq_len(self) -> int:
        """The positions a left-to-right row has: the LM's."""
        return self.lm.config.n_positions

    def discriminator(self, kind: str) -> FutureDiscriminator:
        """What steers a control of `kind` left to right: its FUDGE discriminator."""
        if kind not in self.discriminators:
            discriminator = load_discriminator(self.directory, kind, self.tokenizer)
            if discriminator.config.seq_len != self.lm_seq_len:
                raise CheckpointError(f"the FUDGE {kind} discriminator reads {discriminator.config.seq_len} "
                                      f"positions but the LM writes {self.lm_seq_len}: retrain it")
            self.discriminators[kind] = discriminator.to(self.device)
        return self.discriminators[kind]
