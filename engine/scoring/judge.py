"""The fluency judge: a small autoregressive LM (GPT-2 architecture) over the same vocabulary.

Its perplexity measures fluency, as Diffusion-LM measured it with a fine-tuned GPT-2, and it
ranks candidate samples. It is trained by `python -m engine.train --judge`.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import GPT2Config, GPT2LMHeadModel

from engine.diffusion.checkpoint import atomic_write, load_weights, read_json, save_weights
from engine.diffusion.model import check_network_config
from engine.errors import CheckpointError, ConfigError
from engine.text.tokenizer import Tokenizer


@dataclass
class JudgeConfig:
    vocab_size: int
    seq_len: int = 64
    layers: int = 4
    hidden: int = 256
    attention_heads: int = 4
    dropout: float = 0.1

    def __post_init__(self) -> None:
        check_network_config(self, "judge", ("hidden", "layers", "attention_heads", "seq_len", "vocab_size"))


def build_judge(config: JudgeConfig) -> GPT2LMHeadModel:
    gpt2 = GPT2Config(
        vocab_size=config.vocab_size, n_positions=config.seq_len, n_embd=config.hidden, n_layer=config.layers,
        n_head=config.attention_heads, resid_pdrop=config.dropout, embd_pdrop=config.dropout, attn_pdrop=config.dropout,
        bos_token_id=Tokenizer.start_id, eos_token_id=Tokenizer.end_id, pad_token_id=Tokenizer.pad_id,
    )
    return GPT2LMHeadModel(gpt2)


def judge_loss(model: GPT2LMHeadModel, tokens: torch.Tensor) -> torch.Tensor:
    """Next-word cross-entropy over START ... END (PAD positions ignored)."""
    padding = tokens == Tokenizer.pad_id
    labels = tokens.masked_fill(padding, -100)
    return model(input_ids=tokens, attention_mask=(~padding).long(), labels=labels).loss


def save_judge(directory: Path, model: GPT2LMHeadModel, config: JudgeConfig, record: dict) -> None:
    Path(directory).mkdir(parents=True, exist_ok=True)
    save_weights(Path(directory) / "judge.safetensors", model)
    text = json.dumps({"config": asdict(config), "training": record}, indent=2)
    atomic_write(Path(directory) / "judge.json", lambda p: p.write_text(text))


class Judge:
    """Scores finished word sequences by their likelihood under the autoregressive LM."""

    def __init__(self, directory: Path, tokenizer: Tokenizer, device: torch.device | str = "cpu"):
        meta = read_json(Path(directory) / "judge.json", what="fluency judge config")
        try:
            self.config = JudgeConfig(**meta["config"])
        except (KeyError, TypeError, ConfigError) as exc:
            raise CheckpointError(f"fluency judge config in {directory} is malformed: {exc}") from exc
        if self.config.vocab_size != len(tokenizer):
            raise CheckpointError(f"the judge in {directory} expects {self.config.vocab_size} words but "
                                  f"vocab.json has {len(tokenizer)}")
        self.model = build_judge(self.config)
        load_weights(self.model, Path(directory) / "judge.safetensors")
        self.model.to(device).eval()
        self.tokenizer = tokenizer

    @torch.no_grad()
    def sentence_nll(self, sentences: list[list[str]]) -> list[tuple[float, int]]:
        """(total negative log-likelihood, number of predicted tokens) of each word list, END included."""
        tok = self.tokenizer
        rows = [[tok.start_id, *tok.encode_words(words)][: self.config.seq_len - 1] + [tok.end_id]
                for words in sentences]
        width = max(len(r) for r in rows)
        ids = torch.tensor([r + [tok.pad_id] * (width - len(r)) for r in rows], device=self.model.device)
        logits = self.model(input_ids=ids, attention_mask=(ids != tok.pad_id).long()).logits[:, :-1].float()
        targets = ids[:, 1:]
        nll = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
        mask = targets != tok.pad_id
        return [(float(n[m].sum()), int(m.sum())) for n, m in zip(nll, mask, strict=True)]

    def perplexity(self, sentences: list[list[str]], batch_size: int = 64) -> float:
        """Corpus perplexity: exp(total NLL / total predicted tokens)."""
        total, count = 0.0, 0
        for i in range(0, len(sentences), batch_size):
            for nll, n in self.sentence_nll(sentences[i:i + batch_size]):
                total, count = total + nll, count + n
        return math.exp(total / max(count, 1))

    @classmethod
    def other_or(cls, directory: str | Path | None, own: Judge | None, tokenizer: Tokenizer) -> Judge | None:
        """The judge in `directory` (an LM trained apart, to score text the model's own judge wrote
        left to right), else the model's own."""
        device = own.model.device if own else "cpu"
        return cls(Path(directory), tokenizer, device) if directory else own

    def sentence_perplexities(self, sentences: list[list[str]]) -> list[float]:
        return [math.exp(nll / max(n, 1)) for nll, n in self.sentence_nll(sentences)]
