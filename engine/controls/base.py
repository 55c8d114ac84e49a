"""The control protocol and the record that registers a kind of control.

Every control follows one small protocol (`Control`): a differentiable log-probability of its
target given a noisy latent (used by `Guidance`), an oracle that scores finished words
independently of any classifier (spaCy parse or string match), and the number of words the
target implies, if any. A control holds one target per batch row (None where that row asks
nothing of it), so a batch can mix targets.

A kind of control is one module (engine/controls/pos.py, ...) that ends in a `ControlKind`
record: its target type, how people write a target (CLI flag, editor input), how its target
files read, its Control class, its classifier network (head, labels, training labels), the
network of its left-to-right (FUDGE) discriminator where that differs, and its default weight.
`engine.controls` registers each record with one line; nothing else names kinds.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import torch

from engine.errors import TargetError, TemplateError

if TYPE_CHECKING:
    from engine.controls.classifier import ControlClassifier
    from engine.text.syntax import Parse

IGNORE = -100  # "no claim" at a label entry
PAD_LABEL, END_LABEL = "PAD", "END"  # position labels after the words
NOT_WORDS = ("START", "END", "\n", "PAD")  # entries of a target file's word list that are not words


class Control(Protocol):
    name: str
    weight: float
    steers: bool  # False for a control met by the template alone (its log_prob is never asked)

    def log_prob(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """[B] log p(target | x_t) under what steers it (classifier or word posterior), differentiable in x_t."""
        ...

    def claims(self) -> torch.Tensor:
        """[B] how many claims log_prob sums over (a per-claim probability is exp(log_prob / claims))."""
        ...

    def evaluate(self, words: Sequence[Sequence[str]]) -> list[float | None]:
        """Per row, how well finished words meet the target (1 = fully), by an independent oracle."""
        ...

    def lengths(self) -> list[int | None]:
        """Per row, the number of words the target requires (None: any)."""
        ...


@dataclass(frozen=True)
class Example:
    """One labelled sentence, from which `make_targets` writes a target of every kind."""

    words: list[str]
    tree: Parse
    meaning: Any  # one field=value of its meaning representation that a reader can judge
    rng: random.Random


@dataclass(frozen=True)
class ControlKind:
    """Everything about one kind of control, in one place."""

    name: str  # the CLI flag (--pos), the editor input's id (ctl-pos), the key of its weight
    label: str  # the editor input's label and the CLI flag's help
    placeholder: str  # an example of what to write
    parse_field: Callable[[str], Any]  # one written value (a flag, an input) -> a target
    read_line: Callable[[str], tuple[Any, Any]]  # a line of its target file -> (target, the raw entry)
    compose_key: str  # its key in a composition line ({"pos": ..., "attr": ...})
    from_compose: Callable[[dict], Any]  # a composition line's object -> its target of this kind
    write_target: Callable[[Example], str | None]  # a line of its target file for `make_targets`
    compose_entry: Callable[[Example], dict]  # its keys in a composition line for `make_targets`
    file_name: str  # the target file `make_targets` writes
    # (what steers it: engine.loading.Networks.control_source, targets per row, weight)
    control: Callable[[Any, list, float], Control]
    classifier: type[ControlClassifier] | None = None  # the network with this kind's head; None: needs none
    discriminator: type[ControlClassifier] | None = None  # FUDGE's future discriminator, where not `classifier`
    steers: bool = True  # False: met by the template alone (length), no input in the guidance panel
    many: bool = False  # several targets of this kind per sample (a list of values)
    choices_from_classifier: bool = False  # the editor offers the classifier's labels to pick from
    weight: float = 1.0  # default weight when combined with other controls
    guidance: dict = field(default_factory=dict)  # its measured guidance setting (GuidanceOptions fields)
    candidates: int = 1  # rows drawn per sample kept by default, the best by the ranking (its oracle, the judge)
    # True: a trained kind whose targets are also words, so its diffusion control takes the denoiser's word
    # posterior beside its classifier (engine.loading.Networks.control_source hands it a `Steering`)
    words_steer: bool = False
    composed: bool = False  # part of Diffusion-LM's composition task (compose.jsonl; engine.bench's composed row)
    # the targets of this kind an E2E meaning representation ("name[The Eagle], food[Italian]") holds that a
    # sentence spells out: `make_targets` draws an Example's meaning from them; None: it reads none
    from_mr: Callable[[str], list] | None = None

    @property
    def trained(self) -> bool:
        """Whether it steers with a trained classifier (else with the denoiser's word vectors)."""
        return self.classifier is not None

    @property
    def future_network(self) -> type[ControlClassifier] | None:
        """The network of its FUDGE future discriminator (engine.autoregressive); None: FUDGE cannot steer it."""
        return self.discriminator or self.classifier


@dataclass(frozen=True)
class Steering:
    """What steers a kind that reads both a classifier and the denoiser's word posterior."""

    classifier: ControlClassifier
    posterior: Any  # engine.diffusion.posterior.WordPosterior


@dataclass
class Labels:
    """What a classifier is asked about, per batch row, as named tensors; the entries of the
    tensors named in `claimed` are claims, except where they hold IGNORE."""

    tensors: dict[str, torch.Tensor]
    claimed: tuple[str, ...]

    def __getitem__(self, name: str) -> torch.Tensor:
        return self.tensors[name]

    def claims(self) -> torch.Tensor:
        """[B] how many claims each row makes (to average a loss over)."""
        return sum((self.tensors[name] != IGNORE).flatten(1).sum(-1) for name in self.claimed)

    def to(self, device: torch.device) -> Labels:
        return Labels({name: t.to(device) for name, t in self.tensors.items()}, self.claimed)


@dataclass
class ClassifierControl:
    """A control steered by a trained classifier; subclasses turn targets into `Labels`."""

    classifier: ControlClassifier
    targets: list  # one target (or None) per row
    weight: float = 1.0
    labels: Labels = field(init=False)
    name = "control"
    steers = True

    def __post_init__(self) -> None:
        with torch.device("cpu"):  # built entry by entry on the host, then moved to the classifier's device once
            labels = self.build_labels()
        self.labels = labels.to(next(self.classifier.parameters()).device)

    @property
    def seq_len(self) -> int:
        return self.classifier.config.seq_len

    def label_index(self, name: str) -> int:
        names = self.classifier.config.labels
        if name not in names:
            raise TargetError(f"the {self.name} classifier does not know {name!r}")
        return names.index(name)

    def build_labels(self) -> Labels:
        raise NotImplementedError

    def log_prob(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.classifier.log_prob(x_t, t, self.labels)

    def claims(self) -> torch.Tensor:
        return self.labels.claims()

    def lengths(self) -> list[int | None]:
        return [None] * len(self.targets)

    def position_labels(self, per_row: list[list[str] | None]) -> torch.Tensor:
        """[B, L] START ignored, one label per word, END, then PAD (all IGNORE for rows without a target)."""
        rows = []
        for names in per_row:
            if names is None:
                rows.append([IGNORE] * self.seq_len)
                continue
            if len(names) + 2 > self.seq_len:
                raise TemplateError(f"a {self.name} target of {len(names)} words is impossible: the model "
                                    f"writes at most {self.seq_len - 2}")
            rows.append(position_targets(self.label_index, names, self.seq_len))
        return torch.tensor(rows)


def position_targets(label_index: Callable[[str], int], per_word: Sequence[str], seq_len: int) -> list[int]:
    """The layout of per-position labels: IGNORE at START, each word's label, END, then PAD."""
    ids = [label_index(name) for name in [*per_word, END_LABEL]]
    return [IGNORE, *ids] + [label_index(PAD_LABEL)] * (seq_len - len(ids) - 1)


def categorical(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """[B] summed log-probability of the target class at every entry not marked IGNORE."""
    claimed = targets != IGNORE
    picked = logits.log_softmax(-1).gather(-1, targets.clamp(min=0)[..., None])[..., 0]
    return (picked * claimed).flatten(1).sum(-1)


def word_list(words: Any) -> list[str]:
    """A target file's `words_` entry, checked."""
    if words is None:
        return []
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        raise TargetError('"words_" must be a list of words')
    return words


def json_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise TargetError(f"not valid JSON ({exc.msg} at column {exc.colno})") from exc


def json_object(text: str, keys: tuple[str, ...]) -> dict:
    value = json_value(text)
    if not isinstance(value, dict) or not any(k in value for k in keys):
        raise TargetError(f"expected a JSON object with {' or '.join(map(repr, keys))}")
    return value
