"""Train a control classifier on noised latents of a trained diffusion model's word vectors.

    python -m engine.train_control --kind pos --model assets/model --data train.csv --valid valid.csv

Labels come from spaCy (parts of speech, trees, spans; see engine.text.syntax) or the CSV's `mr`
column (semantic content); each kind's module says how. The classifier sees x_t = q_sample(E[words], t)
for t uniform over 1..T, with START always clean and, as the sampler holds them, a fixed length's
END/PAD (half the rows) and some locked words (a quarter of the rows) clean too. The result is
saved beside the model as control_<kind>.*.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from tqdm import tqdm

from engine.cli import add_options, option, options_from, parser_for, run_command
from engine.controls import KINDS, TRAINED
from engine.controls.classifier import ClassifierConfig, ControlClassifier, LabelledCorpus, save_classifier
from engine.diffusion.checkpoint import load_denoiser
from engine.diffusion.schedule import q_sample
from engine.errors import ConfigError, EngineError
from engine.text.data import read_pairs
from engine.text.tokenizer import Tokenizer, split_words
from engine.train import check_optimisation, learning_rate


@dataclass
class ControlTrainConfig:
    kind: str = field(metadata={"choices": TRAINED, "help": "the kind of control the classifier serves"})
    model: str = field(metadata={"help": "the diffusion model directory; the classifier is saved into it"})
    data: str = field(metadata={"help": "CSV with 'ref' (and 'mr' for kinds labelled from meaning representations)"})
    valid: str = option("", "held-out CSV for the held-out scores")
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
        if self.kind not in TRAINED:
            raise ConfigError(f"--kind must be one of {', '.join(TRAINED)}, got {self.kind!r}")
        check_optimisation(self, ("batch_size", "max_steps", "eval_every"))


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


def batch_labels(model: ControlClassifier, data: ControlData, index: torch.Tensor, generator: torch.Generator):
    return model.batch_labels(data.labels, index, data.lengths[index], data.ids.shape[1], generator)


@torch.no_grad()
def held_out_score(model: ControlClassifier, E: torch.Tensor, data: ControlData, t_fraction: float) -> float:
    """Geometric-mean probability the classifier gives the truth per claim, on up to 512 held-out
    rows at t = t_fraction * T (a fixed noise seed, so figures compare across steps)."""
    model.eval()
    generator = torch.Generator().manual_seed(1234)
    index = torch.arange(min(len(data), 512))
    t = torch.full((len(index),), round(t_fraction * model.config.T))
    labels = batch_labels(model, data, index, generator)
    x_t = noised_latents(E, data.ids[index], data.lengths[index], t, T=model.config.T,
                         generator=generator, hold=False)
    log_prob = model.log_prob(x_t, t, labels).sum() / labels.claims().sum().clamp(min=1)
    model.train()
    return round(float(log_prob.exp()), 4)


def train_control(config: ControlTrainConfig) -> ControlClassifier:
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    denoiser, tokenizer, _ = load_denoiser(Path(config.model))
    E = denoiser.embeddings().detach()
    network = KINDS[config.kind].classifier
    seq_len, T = denoiser.config.seq_len, denoiser.config.T
    corpus = labelled_corpus(read_pairs(Path(config.data), need_mr=network.needs_meanings), seq_len)
    labels = network.label_names(corpus)
    if not config.quiet:
        print(f"{config.kind}: labelling {len(corpus.words)} sentences", file=sys.stderr)
    data = build_data(network, corpus, tokenizer, seq_len, labels)
    valid = None
    if config.valid:
        valid_corpus = labelled_corpus(read_pairs(Path(config.valid), need_mr=network.needs_meanings), seq_len)
        valid = build_data(network, valid_corpus, tokenizer, seq_len, labels)
    model = network(replace(config.classifier, kind=config.kind, labels=labels, embed_dim=E.shape[1],
                            seq_len=seq_len, T=T))
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.01)
    bar = tqdm(total=config.max_steps, disable=config.quiet, dynamic_ncols=True, desc=f"train {config.kind}")
    start, step, scores = time.time(), 0, {}
    model.train()
    while step < config.max_steps and not (config.minutes and time.time() - start > config.minutes * 60):
        progress = max(step / config.max_steps, (time.time() - start) / (config.minutes * 60) if config.minutes else 0)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(config, step, progress)
        index = torch.randint(0, len(data), (config.batch_size,), generator=generator)
        t = torch.randint(1, T + 1, (config.batch_size,), generator=generator)
        batch = batch_labels(model, data, index, generator)
        x_t = noised_latents(E, data.ids[index], data.lengths[index], t, T=T, generator=generator)
        loss = -model.log_prob(x_t, t, batch).sum() / batch.claims().sum().clamp(min=1)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
        bar.update(1)
        if step % 25 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
        if valid is not None and (step % config.eval_every == 0 or step == config.max_steps):
            scores = {f"t={f}T": held_out_score(model, E, valid, f) for f in (0.1, 0.5, 0.9)}
            bar.write(f"step {step}: loss {loss.item():.4f}, held-out p(truth) per claim {scores}", file=sys.stderr)
    bar.close()
    model.config.training = {"steps": step, "seconds": round(time.time() - start, 1), "sentences": len(data),
                             "held_out_p_truth": scores, "data": Path(config.data).name}
    save_classifier(Path(config.model), model)
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
