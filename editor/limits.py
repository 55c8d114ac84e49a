"""How much the editor reads, all derived from the model's window, and how its messages are cut.

The model writes at most `seq_len - 2` words (START and END take two of its `seq_len` positions),
so a longer template, row or exemplar can never be sampled. Text is refused by its size before it
is split into words or parsed: first by characters, a bound that costs nothing
(`CHARS_PER_WORD` characters per position of the window: 2,048 for the bundled model's 64, whose
longest vocabulary word has 14), then by its number of words. A refusal is an `EngineError` whose
message the page shows on one line; the row stays as it was.

Messages shown to people are one line of at most `MESSAGE_CHARS` characters, and a value they
quote is shortened (`shown`), whatever the value's size or nesting.
"""

from __future__ import annotations

import reprlib
from collections.abc import Sequence
from dataclasses import dataclass

from engine.diffusion.model import DenoiserConfig
from engine.errors import EngineError

CHARS_PER_WORD = 32  # the character cap per position of the model's window (see the module docstring)
MESSAGE_CHARS = 300  # the longest message the page or the API shows
SHOWN_CHARS = 60  # the longest quotation of a user's value inside a message


@dataclass(frozen=True)
class Limits:
    """The most a text may hold for a model with a window of `seq_len` positions."""

    words: int  # the most words the model writes
    chars: int  # the most characters read from one text (or one list of texts)

    @classmethod
    def for_window(cls, seq_len: int) -> Limits:
        return cls(words=seq_len - 2, chars=CHARS_PER_WORD * seq_len)

    def check_size(self, size: int, name: str, error: type[EngineError]) -> None:
        if size > self.chars:
            raise error(f"{name} is too long: {size:,} characters, at most {self.chars:,} (the model writes at "
                        f"most {self.words} words)")

    def check_words(self, count: int, name: str, error: type[EngineError]) -> None:
        if count > self.words:
            raise error(f"{name} is too long: {count:,} words, the model writes at most {self.words}")

    def check_text(self, text: str, name: str, error: type[EngineError], words: bool = True) -> None:
        """Characters first, then (when `words`) words separated by spaces; the exact count of words
        (after punctuation is split off) is the caller's, once the text is known to be small."""
        self.check_size(len(text), name, error)
        if words:
            self.check_words(len(text.split()), name, error)

    def check_texts(self, texts: Sequence[str], name: str, error: type[EngineError]) -> None:
        """A list of texts counts as their characters plus one per entry (so a million empty
        entries count too)."""
        self.check_size(sum(map(len, texts)) + len(texts), name, error)


DEFAULT_LIMITS = Limits.for_window(DenoiserConfig().seq_len)  # the default model window (64 positions)


class _Short(reprlib.Repr):
    """reprlib's bounded repr, which also survives ints too long to print and deep nesting."""

    def __init__(self) -> None:
        super().__init__()
        self.maxstring = self.maxother = self.maxlong = SHOWN_CHARS // 2
        self.maxlevel, self.maxlist, self.maxtuple, self.maxdict, self.maxset = 2, 4, 4, 4, 4

    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > 2 * SHOWN_CHARS:  # repr() of a huge int is slow or refused outright
            return f"a {x.bit_length()}-bit number"
        return super().repr_int(x, level)


_SHORT = _Short()


def shown(value: object) -> str:
    """A value as a message quotes it: its repr, shortened to at most SHOWN_CHARS characters."""
    try:
        text = _SHORT.repr(value)
    except Exception:  # noqa: BLE001  (a value with a broken __repr__ is still shown as something)
        return f"a {type(value).__name__}"
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS - 1] + "…"


def one_line(text: str) -> str:
    """A message on one line of at most MESSAGE_CHARS characters."""
    text = " ".join(str(text)[:4 * MESSAGE_CHARS].split())
    return text if len(text) <= MESSAGE_CHARS else text[:MESSAGE_CHARS - 1] + "…"


def error_message(exc: EngineError) -> str:
    """An error's message as the page and the API show it: one line, never empty."""
    return one_line(str(exc)) or f"{type(exc).__name__}: the input was refused"
