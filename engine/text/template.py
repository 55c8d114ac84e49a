"""Templates: which positions are locked to a written word and which the model fills.

A template is text where `_` stands for one free word, e.g. "The Eagle is a _ _ near _ .".
It becomes one row of fixed length: START, the words and blanks, END, then PAD. Everything except
the blanks is locked, so the length is fixed by the template. A free sample locks only START.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from engine.errors import TemplateError
from engine.text.tokenizer import CHARS_PER_WORD, Tokenizer, split_words

BLANK = "_"
ELLIPSIS = "..."  # a blank of unknown length: the pipeline tries several


@dataclass(frozen=True)
class Template:
    # one id per position; free positions hold PAD (ignored), or the words a variation starts from
    ids: tuple[int, ...]
    locked: tuple[bool, ...]  # True where the position must come out exactly as `ids`
    # positions the denoiser runs on (the first `window`; the rest stay as `ids`); None: all of them
    window: int | None = None

    def with_window(self, window: int) -> Template:
        """This template run on its first `window` positions (at least up to its locked END)."""
        length = fixed_length(self)
        if length is not None and window < length + 2:
            raise TemplateError(f"a window of {window} positions cannot hold {length} words with START and END")
        return replace(self, window=min(window, len(self.ids)))


def expand_ellipsis(text: str, n_words: int) -> str:
    """The text with every standalone `...` replaced by n_words `_` blanks."""
    return " ".join(" ".join([BLANK] * n_words) if chunk == ELLIPSIS else chunk for chunk in text.split())


def has_ellipsis(text: str) -> bool:
    return ELLIPSIS in text.split()


def template_pieces(text: str, seq_len: int) -> list[str | None]:
    """The template's words in order, None for each `_` blank (a `...` must be expanded first)."""
    if has_ellipsis(text):
        raise TemplateError(f"expand '{ELLIPSIS}' into blanks first (the pipeline tries several lengths)")
    if len(text) > (seq_len - 2) * CHARS_PER_WORD:
        raise TemplateError(f"the template is {len(text)} characters long: the model holds at most {seq_len - 2} "
                            f"words (at most {(seq_len - 2) * CHARS_PER_WORD} characters)")
    pieces: list[str | None] = []
    for chunk in text.split():
        if chunk == BLANK:
            pieces.append(None)
        else:
            pieces.extend(split_words(chunk))
    if not pieces:
        raise TemplateError("the template is empty: write some words and '_' for each word the model should fill")
    return pieces


def parse_template(text: str, tokenizer: Tokenizer, seq_len: int) -> Template:
    """Template from text with `_` blanks; unknown words and over-long templates raise TemplateError."""
    pieces = template_pieces(text, seq_len)
    if all(p is not None for p in pieces):
        raise TemplateError("the template has no blanks: put '_' where the model should write a word")
    tokenizer.check_known([p for p in pieces if p is not None])
    return template_from_ids([None if p is None else tokenizer.index[p] for p in pieces], seq_len)


def vary_template(sentence: str, template: str | None, tokenizer: Tokenizer, seq_len: int) -> Template:
    """A sentence to reword, as a template whose free positions hold the sentence's words: a run
    that starts from them noised (SDEdit, `SampleOptions.vary_strength`) keeps their gist. The
    `template` (one word or `_` per word of the sentence) locks the words it writes; without one,
    every word may change. The length stays the sentence's."""
    words = template_pieces(sentence, seq_len)
    if None in words:
        raise TemplateError(f"the sentence to vary has a blank ('{BLANK}'): write a word in every place, and lock "
                            f"words with the template instead")
    pieces = [None] * len(words) if template is None else template_pieces(template, seq_len)
    if len(pieces) != len(words):
        raise TemplateError(f"the template has {len(pieces)} words and blanks but the sentence to vary has "
                            f"{len(words)} words: give one per word")
    if all(p is not None for p in pieces):
        raise TemplateError("every word of the sentence to vary is locked: leave as '_' (unlock) the words "
                            "that may change")
    tokenizer.check_known(list(dict.fromkeys(p if p is not None else w for p, w in zip(pieces, words, strict=True))))
    start = template_from_ids([None if p is None else tokenizer.index[p] for p in pieces], seq_len)
    ids = list(start.ids)
    for i, (piece, word) in enumerate(zip(pieces, words, strict=True)):
        if piece is None:
            ids[i + 1] = tokenizer.index[word]
    return Template(ids=tuple(ids), locked=start.locked)


def length_template(n_words: int, seq_len: int) -> Template:
    """Exactly n_words free words: END locked right after them, PAD locked after END."""
    if not 1 <= n_words <= seq_len - 2:
        raise TemplateError(f"length {n_words} is impossible: the model writes 1 to {seq_len - 2} words")
    return template_from_ids([None] * n_words, seq_len)


def free_template(seq_len: int) -> Template:
    """Only START is locked: the model chooses the words and where to put END."""
    return Template(ids=(Tokenizer.start_id,) + (Tokenizer.pad_id,) * (seq_len - 1),
                    locked=(True,) + (False,) * (seq_len - 1))


def stack(templates: list[Template], device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """(ids [B, L] long, locked_mask [B, L] bool) for a batch of templates, on `device`."""
    return (torch.tensor([t.ids for t in templates], device=device),
            torch.tensor([t.locked for t in templates], device=device))


def template_from_ids(words: list[int | None], seq_len: int) -> Template:
    """START, then each word id (None = a free word), END, PAD...; all but the free words locked."""
    needed = len(words) + 2
    if needed > seq_len:
        raise TemplateError(
            f"the template has {len(words)} words and blanks but the model holds at most {seq_len - 2} "
            f"(its sequence length is {seq_len} with START and END): remove {needed - seq_len}")
    ids = [Tokenizer.start_id] + [Tokenizer.pad_id if w is None else w for w in words]
    locked = [True] + [w is not None for w in words]
    ids += [Tokenizer.end_id] + [Tokenizer.pad_id] * (seq_len - needed)
    locked += [True] * (seq_len - len(locked))
    return Template(ids=tuple(ids), locked=tuple(locked))


def fixed_length(template: Template) -> int | None:
    """The number of words a template fixes (END locked after them), or None for a free one."""
    for i, (word, locked) in enumerate(zip(template.ids, template.locked, strict=True)):
        if i > 0 and locked and word == Tokenizer.end_id:
            return i - 1
    return None
