"""Controls steer on templates, as the editor uses them, not only at free length; the evaluation
that keeps measuring it (`evaluate control --template-from`); distinct results ranked first."""

import random

import pytest

from engine.controls.include import IncludeTarget
from engine.controls.semantic import SemanticControl, SemanticTarget
from engine.controls.targets import build_controls, targets_from_fields
from engine.diffusion.sampler import SampleOptions
from engine.errors import TargetError
from engine.evaluation.control import blanked, sentences_by_line
from engine.pipeline import Pipeline
from engine.ranking import distinct_first
from engine.request import Candidate, Request
from engine.text.tokenizer import Tokenizer


@pytest.fixture(scope="module")
def pipe():
    return Pipeline.from_pretrained(precision="fp32")


@pytest.mark.slow
@pytest.mark.parametrize("template", ["_ _ _ is a _ _ near _ _ .", "_ _ _ _ _ _ _ _ _ _ _ _ ."])
def test_meaning_steers_a_template_with_the_bundled_model(pipe, template):
    """food=Italian on a template: before the meaning control read the value's words, 0 of 16 rows
    said Italian while the classifier believed it (0.87)."""
    request = Request.one(template, targets=targets_from_fields({"semantic": ["food=Italian"]}), samples=2, seed=1,
                          sampling=SampleOptions(record_latents=False))
    result = pipe.run(request)
    rows = result.trajectory.words
    assert sum("Italian" in words for words in rows) >= len(rows) // 2
    assert all("Italian" in c.words for c in result.best)
    assert all(c.checks["locked words kept"] for c in result.best)


def test_each_value_steers_by_its_way_and_a_discriminator_reads_every_value(pipe):
    classifier = pipe.classifier("semantic")
    rows = [(SemanticTarget("food", "Italian", steer="words"), SemanticTarget("area", "riverside", steer="classifier")),
            (SemanticTarget("near", "Burger King", steer="both"),), None]
    control = build_controls([r or () for r in rows], pipe.networks.control_source, {})[0]
    assert isinstance(control, SemanticControl)
    labels = control.labels["values"]
    names = classifier.config.labels
    assert labels[0, names.index("food=Italian")] == -100 and labels[0, names.index("area=riverside")] == 1
    assert labels[1, names.index("near=Burger King")] == 1
    assert [len(part.targets) for part in control.word_parts] == [3]  # one value per row at most
    assert control.word_parts[0].targets == [IncludeTarget((("Italian",),)), IncludeTarget((("Burger", "King"),)),
                                             None]
    assert control.claims().tolist() == [2.0, 3.0, 0.0]  # a classifier label, and a word each
    alone = SemanticControl(classifier, list(rows))  # no word posterior (left to right): the classifier reads all
    assert alone.word_parts == [] and alone.labels["values"][0, names.index("food=Italian")] == 1


def test_a_template_from_a_sentence_keeps_two_to_four_words_never_the_asked_ones():
    tokenizer = Tokenizer.build(["The Eagle is a cheap Italian coffee shop near the river ."])
    words = "The Eagle is a cheap Italian coffee shop near the river .".split()
    targets = targets_from_fields({"semantic": ["food=Italian"], "include": "coffee shop"})
    for seed in range(30):
        template = blanked(words, targets, tokenizer, random.Random(seed)).split()
        assert len(template) == len(words) and template[-1] == "."
        kept = [w for w in template[:-1] if w != "_"]
        assert 2 <= len(kept) <= 4
        assert not {"Italian", "coffee", "shop"} & set(kept)
        assert all(t in ("_", w) for t, w in zip(template, words, strict=True))


def test_template_sentences_are_read_by_line_as_published(tmp_path):
    path = tmp_path / "compose.jsonl"
    path.write_text('{"pos": ["START", "PROPN", "PUNCT", "\\n", "END"], '
                    '"words_": ["START", "Eagle", ".", "\\n", "END"], "attr": ["name", ":", "Eagle"]}\n'
                    '["food", ":", "Italian"]\n'
                    '{"words_": ["A", "pub", "."], "spans": [[0, 1, "NP"]]}\n', encoding="utf-8")
    assert sentences_by_line(path) == {1: ["Eagle", "."], 3: ["A", "pub", "."]}


def candidate(text: str, row: int) -> Candidate:
    return Candidate(text.split(), row, 5.0, {}, {})


def test_repeats_of_a_higher_ranked_text_go_last():
    ranked = [candidate("a b", 0), candidate("a b", 1), candidate("c d", 2), candidate("c d", 3), candidate("e", 4)]
    assert [c.row for c in distinct_first(ranked)] == [0, 2, 4, 1, 3]


def test_a_request_shows_its_distinct_texts_first(pipe):
    result = pipe.run(Request.one("The Eagle is a _ _ .", samples=4, candidates=4, seed=3,
                                  sampling=SampleOptions(steps=10, record_latents=False)))
    texts = [c.text for c in result.best]
    distinct_drawn = len(set(result.trajectory.texts))
    assert len(set(texts)) == min(4, distinct_drawn)


@pytest.mark.parametrize("written", ["Italian", "food=", "=Italian", "food:Italian", "food = "])
def test_a_meaning_not_written_field_equals_value_says_so(written):
    with pytest.raises(TargetError, match=r"a meaning is written field=value, such as food=Italian"):
        targets_from_fields({"semantic": [written]})
    assert targets_from_fields({"semantic": ["customer rating = high"]})[0].label == "customer rating=high"
