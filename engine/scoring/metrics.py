"""Quality measures of generated word sequences (no model needed, except the judge's perplexity)."""

from __future__ import annotations

from engine.text.template import Template
from engine.text.tokenizer import UNK, Tokenizer


def has_repeated_trigram(words: list[str]) -> bool:
    grams = [tuple(words[i:i + 3]) for i in range(len(words) - 2)]
    return len(grams) != len(set(grams))


def well_formed(tokens: list[int], tokenizer: Tokenizer) -> bool:
    """START, then words (no UNK, PAD or START among them), END, then only PAD; no repeated 3-gram."""
    if not tokens or tokens[0] != tokenizer.start_id or tokenizer.end_id not in tokens:
        return False
    end = tokens.index(tokenizer.end_id)
    body, tail = tokens[1:end], tokens[end + 1:]
    specials = {tokenizer.pad_id, tokenizer.start_id, tokenizer.unk_id}
    words = tokenizer.decode_words(tokens)
    return (not specials & set(body) and all(t == tokenizer.pad_id for t in tail)
            and UNK not in words and not has_repeated_trigram(words))


def distinct_n(samples: list[list[str]], n: int = 2) -> float:
    """Distinct n-grams over all n-grams across the samples (diversity)."""
    grams = [tuple(w[i:i + n]) for w in samples for i in range(len(w) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def copied_fraction(samples: list[list[str]], train: set[tuple[str, ...]]) -> float:
    """Fraction of samples identical to a training sentence (memorisation)."""
    return sum(tuple(w) in train for w in samples) / len(samples) if samples else 0.0


def locked_kept(templates: list[Template], outputs: list[list[str]], tokenizer: Tokenizer) -> float | None:
    """Fraction of locked word positions whose output word is the written word (positions 1..n);
    None when no word was locked."""
    kept = total = 0
    for template, words in zip(templates, outputs, strict=True):
        for position, (wid, locked) in enumerate(zip(template.ids, template.locked, strict=True)):
            if not locked or wid in (tokenizer.start_id, tokenizer.end_id, tokenizer.pad_id):
                continue
            total += 1
            kept += position - 1 < len(words) and words[position - 1] == tokenizer.words[wid]
    return kept / total if total else None


def repeated_names(templates: list[Template], outputs: list[list[str]], tokenizer: Tokenizer) -> float:
    """Share of outputs whose filled words repeat a locked name, as in "Alimentum is ... Alimentum
    Aromi": a name is a capitalised locked word that does not start a sentence and is not a
    capitalised common word (its lower-case form is not in the vocabulary, unlike "The" or "It")."""
    repeated = 0
    for template, words in zip(templates, outputs, strict=True):
        held = [i + 1 < len(template.locked) and template.locked[i + 1] for i in range(len(words))]
        names = {w for i, w in enumerate(words)
                 if held[i] and w[:1].isupper() and w.lower() not in tokenizer
                 and i > 0 and words[i - 1] not in (".", "!", "?")}
        repeated += any(w in names for w, h in zip(words, held, strict=True) if not h)
    return repeated / len(outputs) if outputs else 0.0
