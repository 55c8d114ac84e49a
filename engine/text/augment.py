"""More labelled sentences from the same data: slot-value substitution from the meaning representation.

Almost every `name` and `near` value of the E2E training set is written verbatim in its sentence
(all but 10 of 7,552 names and 2 of 6,028 places), and most `food` values are. Swapping such a
value for another value of the same slot, in the sentence and in its MR together, gives a new
sentence whose labels are still right, so the denoiser (and the classifiers whose labels come from
the MR) see each sentence frame with many names, places and cuisines instead of memorising the
few it came with.
"""

from __future__ import annotations

import random
import re

SWAPPED_SLOTS = ("name", "near", "food")  # slots whose values are proper names, free to exchange
SLOT = re.compile(r"([^,\[\]]+)\[([^\]]*)\]")  # field[value] in an MR


def swappable_value(field: str, value: str) -> bool:
    """A cuisine is swapped only with another one-word cuisine: "Fast food" reads wrong where
    "Italian" stood before "food" ("serves Fast food food")."""
    return bool(value) and (field != "food" or len(value.split()) == 1)


def mr_slots(mr: str) -> dict[str, str]:
    """The MR's field -> value, fields as written ("name[The Eagle], food[Italian]"). A field the MR
    repeats ("food[French], food[Italian]") is left out: one new value could not stand for both."""
    pairs = [(m.group(1).strip(), m.group(2).strip()) for m in SLOT.finditer(mr)]
    fields = [field for field, _ in pairs]
    return {field: value for field, value in pairs if fields.count(field) == 1}


def slot_values(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    """Every value each swapped slot takes in the data, sorted (so a seed gives the same copies)."""
    values: dict[str, set[str]] = {slot: set() for slot in SWAPPED_SLOTS}
    for mr, _ in pairs:
        for field, value in mr_slots(mr).items():
            if field in values and swappable_value(field, value):
                values[field].add(value)
    return {slot: sorted(found) for slot, found in values.items()}


def verbatim(value: str) -> re.Pattern:
    """The value as whole words (so "Bar" does not match inside "Barbecue")."""
    return re.compile(rf"(?<!\w){re.escape(value)}(?!\w)")


def substitute(mr: str, sentence: str, new_values: dict[str, str]) -> tuple[str, str]:
    """The MR and the sentence with each field's value replaced, all at once (so a new value that
    holds an old one is never replaced again). A field whose value is not in the sentence verbatim
    is left as it was, in both."""
    old = mr_slots(mr)
    swaps = {old[f]: v for f, v in new_values.items() if f in old and old[f] and verbatim(old[f]).search(sentence)}
    if not swaps:
        return mr, sentence
    values = "|".join(re.escape(v) for v in sorted(swaps, key=len, reverse=True))
    pattern = re.compile(rf"(?<!\w)(?:([Aa]n?) )?({values})(?!\w)")
    sentence = pattern.sub(lambda m: with_article(m.group(1), swaps[m.group(2)]), sentence)
    fields = {f for f, v in new_values.items() if f in old and old[f] in swaps}
    mr = SLOT.sub(lambda m: f"{m.group(1)}[{new_values[m.group(1).strip()]}]"
                  if m.group(1).strip() in fields else m.group(0), mr)
    return mr, sentence


def with_article(article: str | None, value: str) -> str:
    """The value after its article, "a" or "an" as the value's first letter asks (an Indian, a French)."""
    if article is None:
        return value
    fitting = "an" if value[:1].lower() in "aeiou" else "a"
    return f"{fitting.capitalize() if article[0] == 'A' else fitting} {value}"


def augment(pairs: list[tuple[str, str]], copies: int, seed: int = 0) -> list[tuple[str, str]]:
    """The rows, then up to `copies` relabelled copies of each: every swapped slot whose value is
    in the sentence verbatim gets another value of that slot. A row with no such slot gets none,
    and a copy equal to a row already made is dropped."""
    if copies <= 0:
        return list(pairs)
    rng = random.Random(seed)
    values = slot_values(pairs)
    seen = set(pairs)
    out = list(pairs)
    for mr, sentence in pairs:
        slots = mr_slots(mr)
        swappable = [f for f in SWAPPED_SLOTS if swappable_value(f, slots.get(f, "")) and len(values[f]) > 1
                     and verbatim(slots[f]).search(sentence)]
        if not swappable:
            continue
        for _ in range(copies):
            new = {f: rng.choice([v for v in values[f] if v != slots[f]]) for f in swappable}
            row = substitute(mr, sentence, new)
            if row not in seen:
                seen.add(row)
                out.append(row)
    return out
