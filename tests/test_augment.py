"""Slot-value substitution (engine.text.augment) and the trainers that read its rows."""

import json
import shutil

import pytest

from engine.controls.semantic import parse_mr
from engine.errors import EngineError
from engine.text.augment import augment, slot_values, substitute
from engine.train import TrainConfig, train
from engine.train_control import ControlTrainConfig, train_control
from tests.conftest import TINY, TINY_CLASSIFIER, labelled_corpus

ROWS = [
    ("name[The Eagle], eatType[pub], food[Italian], near[Burger King]",
     "The Eagle is an Italian pub near Burger King . The Eagle is cheap ."),
    ("name[Zizzi], food[English], near[The Sorrento]", "Zizzi serves English food near The Sorrento ."),
    ("name[Aromi], food[Fast food], area[riverside]", "Aromi is a fast food place by the riverside ."),
    ("name[Blue Spice], food[Indian]", "A restaurant called Bluespice serves food ."),
]


def test_a_swap_rewrites_the_sentence_and_its_mr_together():
    mr, sentence = substitute(*ROWS[0], {"name": "Blue Spice", "food": "English", "near": "The Sorrento"})
    assert sentence == "Blue Spice is an English pub near The Sorrento . Blue Spice is cheap ."
    assert mr == "name[Blue Spice], eatType[pub], food[English], near[The Sorrento]"
    mr, sentence = substitute(*ROWS[0], {"food": "French"})
    assert sentence.startswith("The Eagle is a French pub")  # the article follows the new word


def test_a_value_not_written_verbatim_changes_nothing():
    assert substitute(*ROWS[2], {"food": "Italian"}) == ROWS[2]  # "fast food", not "Fast food"
    assert substitute(*ROWS[3], {"name": "Zizzi"}) == ROWS[3]  # "Bluespice", not "Blue Spice"
    swapped = substitute(*ROWS[1], {"name": "The Eagle", "near": "Zizzi"})  # a new value holding an old one
    assert swapped[1] == "The Eagle serves English food near Zizzi ."


def test_a_field_the_mr_repeats_is_never_swapped():
    row = ("name[The Golden Curry], name[The Wrestlers], food[French], food[Italian], near[Avalon]",
           "The Golden Curry serves French and Italian dishes near Avalon .")
    copies = augment([row, *ROWS], 3, seed=0)
    mine = [c for c in copies[len(ROWS) + 1:] if "dishes" in c[1]]
    assert mine and all(c[1].startswith("The Golden Curry serves French and Italian dishes near ") for c in mine)
    assert all(c[0].startswith("name[The Golden Curry], name[The Wrestlers], food[French], food[Italian]")
               for c in mine)


def test_every_copy_is_labelled_as_its_sentence_says():
    rows = labelled_corpus()
    more = augment(rows, 3, seed=1)
    assert more[:len(rows)] == rows and len(set(more)) == len(more) > 2 * len(rows)
    values = slot_values(rows)
    for mr, sentence in more[len(rows):]:
        for target in parse_mr(mr):
            if target.field in ("name", "near", "food"):
                assert target.value in values[target.field] and target.value in sentence, (mr, sentence)
    assert augment(rows, 3, seed=1) == more and augment(rows, 0) == rows
    assert "Fast food" not in slot_values(ROWS)["food"]  # never swapped in before "food"


def test_the_trainer_takes_the_augmented_rows(tmp_path, labelled_csv):
    plain = train(TrainConfig(data=str(labelled_csv), out=str(tmp_path / "a"), max_steps=2, **TINY))
    more = train(TrainConfig(data=str(labelled_csv), out=str(tmp_path / "b"), max_steps=2, augment=2, **TINY))
    assert more["train_sentences"] > 2 * plain["train_sentences"]
    assert json.loads((tmp_path / "b" / "denoiser.json").read_text())["training"]["config"]["augment"] == 2


def test_augmenting_text_without_meanings_is_refused_by_name(tmp_path, corpus_files):
    with pytest.raises(EngineError, match="'mr'"):
        train(TrainConfig(data=str(corpus_files[0]), out=str(tmp_path / "c"), max_steps=1, augment=1, **TINY))


def test_the_meaning_classifier_trains_on_the_augmented_rows(tmp_path, control_model, labelled_csv, capsys):
    model = shutil.copytree(control_model, tmp_path / "m")
    settings = {**TINY_CLASSIFIER, "quiet": False}
    for copies in (0, 2):
        train_control(ControlTrainConfig(kind="semantic", model=str(model), data=str(labelled_csv), max_steps=2,
                                         augment=copies, **settings))
    counts = [int(line.split("labelling ")[1].split()[0]) for line in capsys.readouterr().err.splitlines()
              if "labelling" in line]
    assert len(counts) == 2 and counts[1] > 2 * counts[0]
