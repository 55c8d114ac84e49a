"""Train a control classifier on noised latents of a trained diffusion model's word vectors, or
(--method fudge) a FUDGE future discriminator on prefixes of the sentences.

    python -m engine.train_control --kind pos --model assets/model --data train.csv --valid valid.csv
    python -m engine.train_control --method fudge --kind length --model assets/model --data train.csv

Labels come from spaCy (parts of speech, trees, spans; see engine.text.syntax) or the CSV's `mr`
column (semantic content); each kind's module says how. The classifier sees x_t = q_sample(E[words], t)
for t uniform over 1..T, with START always clean and, as the sampler holds them, a fixed length's
END/PAD (half the rows) and some locked words (a quarter of the rows) clean too. The result is
saved beside the model as control_<kind>.*. A FUDGE discriminator (engine.autoregressive.discriminator)
sees START and a uniform number of a sentence's first words (or, one time in n + 2, the whole
row), with the labels of the whole sentence; it is saved as fudge_<kind>.*.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from tqdm import tqdm

from engine.autoregressive.discriminator import FutureDiscriminator, prefix_rows, save_discriminator
from engine.cli import add_options, options_from, parser_for, run_command
from engine.controls import FUTURE, KINDS, TRAINED
from engine.controls.base import Labels
from engine.controls.classifier import ClassifierConfig, ControlClassifier, LabelledCorpus, save_classifier
from engine.diffusion.checkpoint import load_denoiser
from engine.diffusion.schedule import q_sample
from engine.errors import ConfigError, EngineError
from engine.options import option
from engine.scoring.judge import Judge
from engine.text.augment import augment
from engine.text.data import read_pairs
from engine.text.tokenizer import Tokenizer, split_words
from engine.train import check_optimisation, learning_rate

METHODS = ("diffusion", "fudge")


@dataclass
class ControlTrainConfig:
    kind: str = field(metadata={"choices": FUTURE, "help": "the kind of control the classifier serves"})
    model: str = field(metadata={"help": "the model directory; the classifier is saved into it"})
    data: str = field(metadata={"help": "CSV with 'ref' (and 'mr' for kinds labelled from meaning representations)"})
    valid: str = option("", "held-out CSV for the held-out scores")
    augment: int = option(0, "train on up to this many relabelled copies of each row too (name, near and food "
                             "values swapped in the sentence and its MR, as engine.train --augment; needs 'mr')")
    method: str = option("diffusion", "diffusion: a classifier of noisy latents, for guidance; fudge: a "
                         "future discriminator of prefixes, for left-to-right writing", choices=METHODS)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    batch_size: int = option(64, "sentences per step")
    lr: float = option(1e-3, "peak learning rate (AdamW)")
    warmup: int = option(100, "steps of linear learning-rate warmup")
    max_steps: int = option(3000, "stop after this many steps")
    minutes: float = option(0.0, "stop after this many minutes (0: no time limit, only --max-steps)")
    eval_every: int = option(500, "steps between held-out scores")
    seed: int = option(0, "random seed")
    quiet: bool = option(False, "no progress bar or messages")

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"--method must be one of {', '.join(METHODS)}, got {self.method!r}")
        kinds = TRAINED if self.method == "diffusion" else FUTURE
        if self.kind not in kinds:
            raise ConfigError(f"--kind must be one of {', '.join(kinds)} for --method {self.method}, got {self.kind!r}")
        check_optimisation(self, ("batch_size", "max_steps", "eval_every"))
        if self.augment < 0:
            raise ConfigError(f"--augment must be a number of copies >= 0, got {self.augment}")


@dataclass
class ControlData:
    ids: torch.Tensor  # [N, L] START words END PAD...
    lengths: torch.Tensor  # [N] words per sentence
    labels: dict[str, torch.Tensor]  # the kind's per-sentence label tensors

    def __len__(self) -> int:
        return len(self.ids)


def labelled_corpus(pairs: list[tuple[str, str]], seq_len: int) -> LabelledCorpus:
    """The sentences that fit in `seq_len` positions, with their meaning representations."""
    rows = [(mr, split_words(ref)) for mr, ref in pairs]
    rows = [(mr, words) for mr, words in rows if len(words) + 2 <= seq_len]
    if not rows:
        raise EngineError(f"no sentence fits in {seq_len} positions")
    return LabelledCorpus(words=[w for _, w in rows], meanings=[mr for mr, _ in rows])


def build_data(network: type[ControlClassifier], corpus: LabelledCorpus, tokenizer: Tokenizer, seq_len: int,
               labels: list[str]) -> ControlData:
    ids = torch.tensor([tokenizer.encode(" ".join(w), seq_len, str.split) for w in corpus.words])
    return ControlData(ids=ids, lengths=torch.tensor([len(w) for w in corpus.words]),
                       labels=network.encode_labels(corpus, labels, seq_len))


def noised_latents(E: torch.Tensor, ids: torch.Tensor, lengths: torch.Tensor, t: torch.Tensor, *, T: int,
                   generator: torch.Generator, hold: bool = True) -> torch.Tensor:
    """x_t of rows `ids` with START clean and, when `hold`, the positions a sampler holds clean
    (a fixed length's END/PAD in half the rows, 30% of all positions in a quarter of them)."""
    x0 = E[ids]
    x_t = q_sample(x0, t, torch.randn(x0.shape, generator=generator), T)
    B, L = ids.shape
    clean = torch.zeros((B, L), dtype=torch.bool)
    clean[:, 0] = True
    if hold:
        positions = torch.arange(L)[None]
        fixed_length = torch.rand((B, 1), generator=generator) < 0.5
        clean |= fixed_length & (positions > lengths[:, None])
        some_locked = torch.rand((B, 1), generator=generator) < 0.25
        clean |= some_locked & (torch.rand((B, L), generator=generator) < 0.3)
    return torch.where(clean[..., None], x0, x_t)


def batch_labels(network: type[ControlClassifier], data: ControlData, index: torch.Tensor,
                 generator: torch.Generator) -> Labels:
    return network.batch_labels(data.labels, index, data.lengths[index], data.ids.shape[1], generator)


def batch_inputs(model: ControlClassifier | FutureDiscriminator, E: torch.Tensor | None, data: ControlData,
                 index: torch.Tensor, generator: torch.Generator, *, fraction: float | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """What the model reads for rows `index` and its time input: x_t and t (a classifier), or the
    ids and the known positions (a FUDGE discriminator). With `fraction`, fixed for held-out
    scores: t = fraction * T, or START and that fraction of the words (1: the whole row)."""
    ids, lengths = data.ids[index], data.lengths[index]
    if isinstance(model, FutureDiscriminator):
        if fraction is None:
            return ids, prefix_rows(ids, lengths, generator)
        known = 1 + (fraction * lengths).round().long()
        return ids, known if fraction < 1 else torch.full_like(known, ids.shape[1])
    T = model.config.T
    t = torch.randint(1, T + 1, (len(index),), generator=generator) if fraction is None else \
        torch.full((len(index),), round(fraction * T))
    return noised_latents(E, ids, lengths, t, T=T, generator=generator, hold=fraction is None), t


# the fixed times (a fraction of T) or prefixes (a fraction of the words) of the held-out scores
HELD_OUT = {"diffusion": ("t={}T", (0.1, 0.5, 0.9)), "fudge": ("known={}n", (0.25, 0.5, 1.0))}


@torch.no_grad()
def held_out_score(model: ControlClassifier | FutureDiscriminator, network: type[ControlClassifier],
                   E: torch.Tensor | None, data: ControlData, fraction: float) -> float:
    """Geometric-mean probability the model gives the truth per claim, on up to 512 held-out rows
    at one fixed time or prefix (a fixed noise seed, so figures compare across steps)."""
    model.eval()
    generator = torch.Generator().manual_seed(1234)
    index = torch.arange(min(len(data), 512))
    labels = batch_labels(network, data, index, generator)
    x, t = batch_inputs(model, E, data, index, generator, fraction=fraction)
    log_prob = model.log_prob(x, t, labels).sum() / labels.claims().sum().clamp(min=1)
    model.train()
    return round(float(log_prob.exp()), 4)


def reading(config: ControlTrainConfig) -> tuple[Tokenizer, int, int, torch.Tensor | None]:
    """The vocabulary, the row length, the time input's range and (for a classifier) the
    denoiser's word vectors that its noisy latents are made of."""
    directory = Path(config.model)
    if config.method == "fudge":  # FUDGE writes with the judge's LM; its time input counts known positions
        judge = Judge(directory, Tokenizer.load(directory / "vocab.json"))
        return judge.tokenizer, judge.config.seq_len, judge.config.seq_len, None
    denoiser, tokenizer, _ = load_denoiser(directory)
    return tokenizer, denoiser.config.seq_len, denoiser.config.T, denoiser.embeddings().detach()


def train_control(config: ControlTrainConfig) -> ControlClassifier | FutureDiscriminator:
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    kind = KINDS[config.kind]
    network = kind.classifier if config.method == "diffusion" else kind.future_network
    tokenizer, seq_len, T, E = reading(config)
    pairs = read_pairs(Path(config.data), need_mr=network.needs_meanings or config.augment > 0)
    corpus = labelled_corpus(augment(pairs, config.augment, config.seed), seq_len)
    labels = network.label_names(corpus)
    shape = replace(config.classifier, kind=config.kind, labels=labels, seq_len=seq_len, T=T,
                    embed_dim=config.classifier.hidden if E is None else E.shape[1])
    model = network(shape) if E is not None else FutureDiscriminator(shape, len(tokenizer))
    if not config.quiet:
        print(f"{config.kind}: labelling {len(corpus.words)} sentences", file=sys.stderr)
    data = build_data(network, corpus, tokenizer, seq_len, labels)
    valid = None
    if config.valid:
        valid_corpus = labelled_corpus(read_pairs(Path(config.valid), need_mr=network.needs_meanings), seq_len)
        valid = build_data(network, valid_corpus, tokenizer, seq_len, labels)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.01)
    what = config.kind if config.method == "diffusion" else f"fudge {config.kind}"
    bar = tqdm(total=config.max_steps, disable=config.quiet, dynamic_ncols=True, desc=f"train {what}")
    start, step, scores = time.time(), 0, {}
    model.train()
    while step < config.max_steps and not (config.minutes and time.time() - start > config.minutes * 60):
        progress = max(step / config.max_steps, (time.time() - start) / (config.minutes * 60) if config.minutes else 0)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(config, step, progress)
        index = torch.randint(0, len(data), (config.batch_size,), generator=generator)
        batch = batch_labels(network, data, index, generator)
        x, t = batch_inputs(model, E, data, index, generator)
        loss = -model.log_prob(x, t, batch).sum() / batch.claims().sum().clamp(min=1)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
        bar.update(1)
        if step % 25 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
        if valid is not None and (step % config.eval_every == 0 or step == config.max_steps):
            name, fractions = HELD_OUT[config.method]
            scores = {name.format(f): held_out_score(model, network, E, valid, f) for f in fractions}
            bar.write(f"step {step}: loss {loss.item():.4f}, held-out p(truth) per claim {scores}", file=sys.stderr)
    bar.close()
    model.config.training = {"steps": step, "seconds": round(time.time() - start, 1), "sentences": len(data),
                             "held_out_p_truth": scores, "data": Path(config.data).name}
    (save_discriminator if config.method == "fudge" else save_classifier)(Path(config.model), model)
    if not config.quiet:
        print(f"done: {step} steps in {model.config.training['seconds']} s -> {config.model}", file=sys.stderr)
    return model


def command(args: argparse.Namespace) -> None:
    train_control(options_from(ControlTrainConfig, args))


def main(argv: list[str] | None = None) -> int:
    parser = parser_for("engine.train_control", __doc__)
    add_options(parser, ControlTrainConfig, required=("kind", "model", "data"))
    return run_command(command, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
