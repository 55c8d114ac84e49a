from engine.scoring.metrics import (
    copied_fraction,
    distinct_n,
    has_repeated_trigram,
    locked_kept,
    repeated_names,
    well_formed,
)
from engine.text.template import template_from_ids
from engine.text.tokenizer import Tokenizer

TOK = Tokenizer.build(["a b c d e"])


def ids(*words):
    return TOK.encode_words(list(words))


def test_well_formed_needs_end_no_unk_no_repeated_trigram():
    s, e = TOK.start_id, TOK.end_id
    assert well_formed([s, *ids("a", "b", "c"), e], TOK)
    assert not well_formed([s, *ids("a", "b", "c")], TOK)  # no END
    assert not well_formed([s, TOK.unk_id, e], TOK)
    assert not well_formed([s, *ids("a", "b", "c", "a", "b", "c"), e], TOK)
    assert not well_formed([s, *ids("a"), TOK.pad_id, *ids("b"), e], TOK)  # PAD inside the sentence
    assert not well_formed([s, *ids("a"), e, *ids("b")], TOK)  # words after END
    assert well_formed([s, *ids("a"), e, TOK.pad_id, TOK.pad_id], TOK)
    assert has_repeated_trigram(["x", "y", "z", "x", "y", "z"]) and not has_repeated_trigram(["x", "y", "x", "y"])


def test_distinct_and_copied():
    assert distinct_n([["a", "b", "a", "b"]], 2) == 2 / 3
    assert copied_fraction([["a", "b"], ["c"]], {("a", "b")}) == 0.5


def test_locked_kept_counts_only_locked_words():
    a, b = TOK.index["a"], TOK.index["b"]
    template = template_from_ids([a, None, b], 8)
    assert locked_kept([template], [["a", "x", "b"]], TOK) == 1.0
    assert locked_kept([template], [["a", "x", "c"]], TOK) == 0.5
    assert locked_kept([template], [["a"]], TOK) == 0.5
    assert locked_kept([template_from_ids([None, None], 8)], [["x", "y"]], TOK) is None


def test_repeated_names_counts_a_locked_name_written_again_in_the_fill():
    tok = Tokenizer.build(["Alimentum is a place by the river . The Aromi the"])
    index = tok.index
    template = template_from_ids([None, index["is"], index["a"], None, index["by"], index["Aromi"], None], 16)
    assert repeated_names([template], [["The", "is", "a", "Aromi", "by", "Aromi", "."]], tok) == 1.0
    assert repeated_names([template], [["Alimentum", "is", "a", "place", "by", "Aromi", "."]], tok) == 0.0
    # "The" is a common word (lower case in the vocabulary): written twice it is no name repeated
    middle = template_from_ids([None, index["The"], None], 16)
    assert repeated_names([middle], [["place", "The", "The"]], tok) == 0.0
