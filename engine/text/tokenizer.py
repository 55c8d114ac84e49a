"""Word-level vocabulary over spaCy's English tokenizer, saved as JSON beside the model.

Sequences have a fixed length: START w1 ... wn END PAD ... PAD. Words keep their case, so that a
locked "The Eagle" comes out exactly as written.
"""

from __future__ import annotations

import difflib
import json
from collections import Counter
from collections.abc import Callable, Iterable
from functools import lru_cache
from pathlib import Path

from engine.errors import CheckpointError, EngineError, TemplateError

PAD, UNK, START, END = "PAD", "UNK", "START", "END"
SPECIALS = (PAD, UNK, START, END)
MAX_WORDS = 256  # longer than any window a model here has: text past it is refused before parsing
CHARS_PER_WORD = 40  # the character budget per word allowed, checked before any splitting or parsing


@lru_cache(maxsize=1)
def _spacy_tokenizer():
    import spacy  # imported on first use: pre-tokenised corpora train without spaCy installed

    return spacy.blank("en").tokenizer


def split_words(text: str) -> list[str]:
    """Split text into words the way the vocabulary was built (spaCy's rules, no whitespace tokens)."""
    return [tok.text for tok in _spacy_tokenizer()(text) if not tok.is_space]


def bounded_words(text: str, what: str, max_words: int = MAX_WORDS, error: type[EngineError] = TemplateError
                  ) -> list[str]:
    """The words of a user's text, refused by size first (characters, then words) so that no
    input costs more than a model's window can use."""
    if len(text) > max_words * CHARS_PER_WORD:
        raise error(f"{what} is {len(text)} characters long: at most {max_words * CHARS_PER_WORD} "
                    f"(up to {max_words} words)")
    words = split_words(text)
    if len(words) > max_words:
        raise error(f"{what} has {len(words)} words: at most {max_words}")
    return words


class Tokenizer:
    """Maps words to ids and back; ids 0-3 are PAD, UNK, START, END."""

    def __init__(self, words: list[str]):
        if list(words[: len(SPECIALS)]) != list(SPECIALS):
            raise CheckpointError(f"vocabulary must begin with {list(SPECIALS)}, got {words[:4]}")
        self.words = list(words)
        self.index = {w: i for i, w in enumerate(self.words)}
        if len(self.index) != len(self.words):
            raise CheckpointError("vocabulary has repeated words")

    pad_id, unk_id, start_id, end_id = 0, 1, 2, 3

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return word in self.index

    @classmethod
    def build(cls, sentences: Iterable[str], min_count: int = 1,
              split: Callable[[str], list[str]] = split_words) -> Tokenizer:
        """Vocabulary of every word seen at least `min_count` times, most frequent first."""
        counts = Counter(w for s in sentences for w in split(s))
        kept = sorted((w for w, c in counts.items() if c >= min_count and w not in SPECIALS),
                      key=lambda w: (-counts[w], w))
        return cls(list(SPECIALS) + kept)

    def encode_words(self, words: list[str]) -> list[int]:
        return [self.index.get(w, self.unk_id) for w in words]

    def encode(self, text: str, seq_len: int, split: Callable[[str], list[str]] = split_words) -> list[int] | None:
        """START words END PAD... of exactly seq_len ids, or None when the sentence does not fit."""
        ids = [self.start_id, *self.encode_words(split(text)), self.end_id]
        if len(ids) > seq_len:
            return None
        return ids + [self.pad_id] * (seq_len - len(ids))

    def decode_words(self, ids: Iterable[int]) -> list[str]:
        """The words between START and the first END (PAD and START dropped)."""
        words = []
        for raw in ids:
            i = int(raw)
            if i == self.end_id:
                break
            if i not in (self.pad_id, self.start_id):
                words.append(self.words[i])
        return words

    def decode(self, ids: Iterable[int]) -> str:
        return " ".join(self.decode_words(ids))

    def unknown_words_message(self, words: list[str]) -> str:
        """Names each unknown word with the closest known ones."""
        parts = []
        for w in dict.fromkeys(words):
            close = difflib.get_close_matches(w, self.words[len(SPECIALS):], n=3, cutoff=0.6)
            if not close:
                known = self.words[len(SPECIALS):]
                close = difflib.get_close_matches(w.lower(), [v.lower() for v in known], n=3, cutoff=0.6)
                close = [v for v in known if v.lower() in close][:3]
            hint = f" (did you mean: {', '.join(close)}?)" if close else " (no close word in the vocabulary)"
            parts.append(f"'{w}'{hint}")
        return "not in the model's vocabulary: " + "; ".join(parts)

    def check_known(self, words: list[str]) -> None:
        unknown = [w for w in words if w not in self.index or w in SPECIALS]
        if unknown:
            raise TemplateError(self.unknown_words_message(unknown))

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps({"words": self.words}, ensure_ascii=False, indent=0))

    @classmethod
    def load(cls, path: Path) -> Tokenizer:
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"vocabulary file not found: {path}")
        try:
            data = json.loads(path.read_text())
            return cls(data["words"])
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
            raise CheckpointError(f"vocabulary file {path} is malformed: {exc}") from exc
