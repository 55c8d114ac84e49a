"""Train a control classifier on noised latents of a trained diffusion model's word vectors.

    python -m engine.train_control --kind pos --model assets/model --data train.csv --valid valid.csv

Labels come from spaCy (pos, tree, spans; see `syntax`) or the CSV's `mr` column (semantic). The
classifier sees x_t = q_sample(E[words], t) for t uniform over 1..T, with START always clean and,
as the sampler holds them, a fixed length's END/PAD (half the rows) and some locked words (a
quarter of the rows) clean too. The result is saved beside the model as control_<kind>.*.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
from tqdm import tqdm

from engine.controls.classifier import (
    END_LABEL,
    IGNORE,
    KINDS,
    NONE_LABEL,
    PAD_LABEL,
    ClassifierConfig,
    ControlClassifier,
    Labels,
    head_positions,
    position_targets,
    save_classifier,
)
from engine.controls.targets import parse_mr
from engine.diffusion.checkpoint import load_denoiser
from engine.diffusion.schedule import q_sample
from engine.errors import EngineError
from engine.text.data import read_pairs
from engine.text.syntax import SPAN_LABELS, UPOS, constituent_spans, dependency_labels, parse
from engine.text.tokenizer import Tokenizer, split_words
from engine.train import config_arguments, learning_rate

SPAN_SAMPLES = (8, 16)  # per row and step: gold spans drawn, random (mostly NONE) pairs drawn


@dataclass
class ControlTrainConfig:
    kind: str
    model: str  # the diffusion model directory; the classifier is saved into it
    data: str  # CSV with `ref` (and `mr` for semantic)
    valid: str = ""
    hidden: int = 128
    layers: int = 3
    heads: int = 4
    ffn: int = 512
    dropout: float = 0.1
    batch_size: int = 64
    lr: float = 1e-3
    warmup: int = 100
    max_steps: int = 3000
    minutes: float = 0.0
    eval_every: int = 500
    seed: int = 0
    quiet: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"--kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        for name in ("hidden", "layers", "heads", "ffn", "batch_size", "max_steps", "eval_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")


@dataclass
class ControlData:
    ids: torch.Tensor  # [N, L] START words END PAD...
    lengths: torch.Tensor  # [N] words per sentence
    tags: torch.Tensor | None = None  # pos/tree [N, L]
    heads: torch.Tensor | None = None  # tree [N, L]
    gold_spans: torch.Tensor | None = None  # spans [N, G, 3] (i, j, label) positions, padded with IGNORE
    gold_counts: torch.Tensor | None = None  # spans [N]
    values: torch.Tensor | None = None  # semantic [N, labels]

    def __len__(self) -> int:
        return len(self.ids)


def label_names(kind: str, pairs: list[tuple[str, str]]) -> list[str]:
    """The classes of a kind's head."""
    if kind == "pos":
        return [PAD_LABEL, END_LABEL, *UPOS]
    if kind == "tree":
        return [PAD_LABEL, END_LABEL, *dependency_labels()]
    if kind == "spans":
        return [NONE_LABEL, *SPAN_LABELS]
    return sorted({target.label for mr, _ in pairs for target in parse_mr(mr)})


def build_data(kind: str, pairs: list[tuple[str, str]], tokenizer: Tokenizer, seq_len: int,
               labels: list[str]) -> ControlData:
    """Encode the sentences that fit, with the labels of `kind` for each."""
    rows = [(mr, split_words(ref)) for mr, ref in pairs]
    rows = [(mr, words) for mr, words in rows if len(words) + 2 <= seq_len]
    if not rows:
        raise EngineError(f"no sentence fits in {seq_len} positions")
    ids = torch.tensor([tokenizer.encode(" ".join(w), seq_len, str.split) for _, w in rows])
    data = ControlData(ids=ids, lengths=torch.tensor([len(w) for _, w in rows]))
    if kind == "semantic":
        index = {name: i for i, name in enumerate(labels)}
        data.values = torch.zeros((len(rows), len(labels)))
        for r, (mr, _) in enumerate(rows):
            for target in parse_mr(mr):
                if target.label in index:
                    data.values[r, index[target.label]] = 1.0
        return data
    trees = parse([w for _, w in rows])
    label_index = {name: i for i, name in enumerate(labels)}.__getitem__
    if kind == "pos":
        data.tags = torch.tensor([position_targets(label_index, tree.pos, seq_len) for tree in trees])
    elif kind == "tree":
        data.tags = torch.tensor([position_targets(label_index, tree.deps, seq_len) for tree in trees])
        data.heads = torch.full((len(rows), seq_len), IGNORE)
        for r, tree in enumerate(trees):
            data.heads[r, 1:len(tree) + 1] = torch.tensor(head_positions(tree.heads))
    else:
        span_sets = [sorted(constituent_spans(tree)) for tree in trees]
        width = max(len(s) for s in span_sets)
        data.gold_spans = torch.full((len(rows), width, 3), IGNORE)
        data.gold_counts = torch.tensor([len(s) for s in span_sets])
        for r, spans in enumerate(span_sets):
            if spans:
                positions = [(i + 1, j + 1, labels.index(label)) for i, j, label in spans]
                data.gold_spans[r, :len(spans)] = torch.tensor(positions)
    return data


def batch_labels(data: ControlData, index: torch.Tensor, generator: torch.Generator) -> Labels:
    """The labels of rows `index`; for spans, a fresh draw of gold and random position pairs."""
    if data.gold_spans is None:
        return Labels(tags=None if data.tags is None else data.tags[index],
                      heads=None if data.heads is None else data.heads[index],
                      values=None if data.values is None else data.values[index].long())
    n_gold, n_random = SPAN_SAMPLES
    B = len(index)
    counts = data.gold_counts[index]
    pick = (torch.rand((B, n_gold), generator=generator) * counts[:, None]).long()
    gold = data.gold_spans[index].gather(1, pick[..., None].expand(-1, -1, 3))
    limit = (data.lengths[index] + 2).clamp(max=data.ids.shape[1] - 1)  # up to END and one beyond
    ends = 1 + (torch.rand((B, n_random, 2), generator=generator) * limit[:, None, None]).long()
    ends = ends.clamp(max=data.ids.shape[1] - 1).sort(-1).values
    row = torch.arange(B)[:, None].expand(-1, n_random)
    dense = _dense_gold(data, index)
    random_labels = dense[row, ends[..., 0], ends[..., 1]]
    spans = torch.cat([gold[..., :2], ends], dim=1)
    return Labels(spans=spans, span_labels=torch.cat([gold[..., 2], random_labels], dim=1))


def _dense_gold(data: ControlData, index: torch.Tensor) -> torch.Tensor:
    """[B, L, L] the gold label of every (i, j) position pair (0 = NONE)."""
    L = data.ids.shape[1]
    dense = torch.zeros((len(index), L, L), dtype=torch.long)
    gold = data.gold_spans[index]
    valid = gold[..., 0] != IGNORE
    rows = torch.arange(len(index))[:, None].expand_as(valid)
    dense[rows[valid], gold[..., 0][valid], gold[..., 1][valid]] = gold[..., 2][valid]
    return dense


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


@torch.no_grad()
def held_out_score(model: ControlClassifier, E: torch.Tensor, data: ControlData, t_fraction: float) -> float:
    """Geometric-mean probability the classifier gives the truth per claim, on up to 512 held-out
    rows at t = t_fraction * T (a fixed noise seed, so figures compare across steps)."""
    model.eval()
    generator = torch.Generator().manual_seed(1234)
    index = torch.arange(min(len(data), 512))
    t = torch.full((len(index),), round(t_fraction * model.config.T))
    labels = batch_labels(data, index, generator)
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
    pairs = read_pairs(Path(config.data), need_mr=config.kind == "semantic")
    labels = label_names(config.kind, pairs)
    seq_len, T = denoiser.config.seq_len, denoiser.config.T
    if not config.quiet:
        print(f"{config.kind}: labelling {len(pairs)} sentences", file=sys.stderr)
    data = build_data(config.kind, pairs, tokenizer, seq_len, labels)
    valid = None
    if config.valid:
        valid = build_data(config.kind, read_pairs(Path(config.valid), need_mr=config.kind == "semantic"),
                           tokenizer, seq_len, labels)
    names = {f.name for f in fields(ClassifierConfig)} & set(asdict(config))
    model = ControlClassifier(ClassifierConfig(labels=labels, embed_dim=E.shape[1], seq_len=seq_len, T=T,
                                               **{k: getattr(config, k) for k in names}))
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
        batch = batch_labels(data, index, generator)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.train_control", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    config_arguments(parser, ControlTrainConfig, required=("kind", "model", "data"), choices={"kind": KINDS})
    try:
        train_control(ControlTrainConfig(**vars(parser.parse_args(argv))))
    except (EngineError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
