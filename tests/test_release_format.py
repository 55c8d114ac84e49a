"""The Diffusion-LM release's control target files are read as published, and the syntax rules
derive the labels its span targets use."""

from pathlib import Path

import pytest

from engine.controls.pos import PosTarget
from engine.controls.semantic import SemanticTarget
from engine.controls.targets import read_targets, scan_targets
from engine.errors import TargetError
from engine.text.syntax import constituent_spans, has_constituent, parse

RELEASE = Path(__file__).parent / "data" / "release_format"


def test_semantic_fields_spelled_the_release_way():
    targets = [line.targets[0] for line in read_targets("semantic", RELEASE / "target_attribute.json")]
    assert [t.field for t in targets] == ["name", "eatType", "priceRange", "familyFriendly", "customer rating",
                                          "near", "food", "area"]
    assert targets[0] == SemanticTarget("name", "The Blue Lantern")  # a name the training data never uses
    assert targets[2].value == "less than £ 20"


def test_pos_targets_drop_the_tagged_newline_entry():
    lines = read_targets("pos", RELEASE / "target_pos.json")
    first = lines[0].targets[0]
    assert first == PosTarget(("NOUN", "AUX", "NOUN", "ADJ", "CCONJ", "AUX", "VERB", "ADP", "DET", "NOUN", "PUNCT"),
                              ("Alimentum", "is", "child", "friendly", "and", "is", "located", "by", "the", "river",
                               "."))
    composed = read_targets("compose", RELEASE / "target_compose_pos_attr.json")
    kinds = [tuple(t.kind for t in line.targets) for line in composed]
    assert kinds == [("pos", "semantic")] * len(composed)
    assert composed[0].targets[0].tags[-1] == "PUNCT" and "SPACE" not in composed[0].targets[0].tags


def test_span_targets_end_on_the_newline_entry_and_take_every_label():
    spans = {line.line: line.targets[0] for line in read_targets("spans", RELEASE / "target_spans.json")}
    assert spans[1].spans == ((12, 15, "QP"),)
    assert spans[4].spans == ((6, 10, "S"),)  # written [6, 11]: 11 is the newline entry after "high"
    assert spans[5].spans == ((0, 1, "S::ADJP"),)


def test_unknown_labels_and_positions_past_the_newline_are_still_errors(tmp_path):
    path = tmp_path / "spans.json"
    path.write_text('{"words_": ["START", "a", "pub", "\\n", "END"], "spans": [[0, 3, "NP"]]}\n'
                    '{"spans": [[0, 1, "NP::XP"]]}\n{"spans": [[0, 1, "NP"]]}\n')
    lines, unusable = scan_targets("spans", path)
    assert [line.line for line in lines] == [3]
    assert [u.line for u in unusable] == [1, 2]
    assert "out of range (the sentence has 2 words" in unusable[0].reason
    assert "unknown span label 'NP::XP'" in unusable[1].reason
    with pytest.raises(TargetError, match=r"spans.json, line 1: span \[0, 3\] is out of range"):
        read_targets("spans", path)


def test_scanning_goes_past_long_and_binary_lines(tmp_path):
    path = tmp_path / "semantic.json"
    path.write_bytes(b'["food", ":", "Italian"]\n' + b"x" * 20_000 + b"\n\xff\xfe\n" + b'["area", ":", "riverside"]\n')
    lines, unusable = scan_targets("semantic", path)
    assert [line.line for line in lines] == [1, 4]
    assert [(u.line, u.reason.split(" (")[0]) for u in unusable] == [(2, "longer than 16,384 bytes"),
                                                                    (3, "not UTF-8 text")]
    lines, unusable = scan_targets("semantic", path, limit=2)
    assert len(lines) + len(unusable) == 2


@pytest.mark.parametrize(("sentence", "span"), [
    ("The Mill is a pub where a meal costs more than £ 30 .", (9, 12, "QP")),
    ("The Mill is a pub where a meal costs more than £ 30 .", (5, 5, "WHADVP")),
    ("Which coffee shop is family friendly ?", (0, 2, "WHNP")),
    ("Which coffee shop is family friendly ?", (1, 2, "NML")),
    ("It is a pub that serves cheap food .", (4, 4, "WHNP")),
    ("The Eagle , near Burger King .", (0, 5, "FRAG")),
])
def test_syntax_rules_derive_the_release_labels(sentence, span):
    (tree,) = parse([sentence.split()])
    assert span in constituent_spans(tree), (tree, sorted(constituent_spans(tree)))


def test_a_chain_is_met_by_either_label_and_edge_punctuation_is_ignored():
    (tree,) = parse(["The Eagle is cheap .".split()])
    spans = constituent_spans(tree)
    assert has_constituent(tree, spans, 2, 3, "VP::ADJP") and has_constituent(tree, spans, 3, 3, "S::ADJP")
    assert has_constituent(tree, spans, 0, 4, "S")  # runs to the end, full stop included
    assert not has_constituent(tree, spans, 0, 1, "PP::ADVP")
