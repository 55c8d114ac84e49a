import pytest

from engine.errors import CheckpointError, TemplateError
from engine.text.tokenizer import Tokenizer, split_words


@pytest.fixture
def tok():
    return Tokenizer.build(["The Eagle is a coffee shop near the river .", "Alimentum serves Italian food ."])


def test_round_trip_keeps_words_and_case(tok):
    ids = tok.encode("The Eagle serves Italian food .", 12)
    assert len(ids) == 12 and ids[0] == tok.start_id
    assert tok.decode(ids) == "The Eagle serves Italian food ."


def test_split_words_uses_spacy_rules():
    assert split_words("a shop.   It's cheap") == ["a", "shop", ".", "It", "'s", "cheap"]


def test_too_long_sentence_does_not_fit(tok):
    assert tok.encode("The Eagle is a coffee shop near the river .", 5) is None


def test_unknown_word_is_named_with_suggestions(tok):
    with pytest.raises(TemplateError) as err:
        tok.check_known(["The", "Eagel", "coffe"])
    msg = str(err.value)
    assert "'Eagel'" in msg and "Eagle" in msg and "'coffe'" in msg and "coffee" in msg


def test_unknown_words_encode_as_unk_outside_templates(tok):
    assert tok.encode_words(["zebra"]) == [tok.unk_id]


def test_save_load_round_trip_and_malformed_file(tok, tmp_path):
    tok.save(tmp_path / "vocab.json")
    assert Tokenizer.load(tmp_path / "vocab.json").words == tok.words
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="malformed"):
        Tokenizer.load(tmp_path / "bad.json")
