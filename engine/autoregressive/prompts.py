"""What a left-to-right writer can take from a prompt (its template or length): the locked words
before the first blank (its prefix) and, when the prompt fixes it, the number of words. Everything
after the first blank is out of its reach; the template is kept only to check afterwards whether
those words came out.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import TemplateError
from engine.text.template import (
    Template,
    expand_ellipsis,
    fixed_length,
    free_template,
    has_ellipsis,
    length_template,
    parse_template,
)
from engine.text.tokenizer import Tokenizer


@dataclass(frozen=True)
class Opening:
    prefix: list[int]  # START and the locked words before the first blank
    length: int | None  # the words the row must end with (None: the LM decides)
    template: Template | str  # to check the words against: a Template, or text with a `...` blank


def opening(template: str | Template | None, length: int | None, tokenizer: Tokenizer, seq_len: int) -> Opening:
    """A prompt's opening from its `template` (text or a Template) or, without one, its `length`
    (None: free text); `Prompt.check_one_length` has ruled out both at once."""
    if template is None:
        fixed = free_template(seq_len) if length is None else length_template(length, seq_len)
        return Opening([tokenizer.start_id], length, fixed)
    shape = template
    if isinstance(template, str):
        text = expand_ellipsis(template, 1) if has_ellipsis(template) else template
        shape = parse_template(text, tokenizer, seq_len)
    prefix = [tokenizer.start_id]
    for word, locked in zip(shape.ids[1:], shape.locked[1:], strict=False):
        if not locked or word == tokenizer.end_id:
            break
        prefix.append(word)
    if isinstance(template, str) and has_ellipsis(template):
        return Opening(prefix, None, template)
    return Opening(prefix, fixed_length(shape), shape)


def checked_template(opening: Opening, words: list[str], tokenizer: Tokenizer, seq_len: int) -> Template:
    """The template finished words are checked against: for a `...` blank, the one whose blank has
    as many words as were written in its place (if none can be, the shortest)."""
    if isinstance(opening.template, Template):
        return opening.template
    shortest = parse_template(expand_ellipsis(opening.template, 1), tokenizer, seq_len)
    end = shortest.ids.index(tokenizer.end_id)
    n = len(words) - sum(shortest.locked[1:end])  # the words written beside the locked ones
    if n <= 1:
        return shortest
    try:
        return parse_template(expand_ellipsis(opening.template, n), tokenizer, seq_len)
    except TemplateError:  # more words than the template leaves room for
        return shortest
