"""engine.evaluate's subcommands: each one's own flags come from its evaluation's options dataclass
(engine.evaluation), with the names and defaults they always had, and a bad value is refused before
any model loads. (What each evaluation measures is run end to end in test_cli.py.)"""

from __future__ import annotations

import pytest

from engine.cli import options_from
from engine.evaluate import EVALUATIONS, build_parser, main
from engine.evaluation import DATA
from engine.evaluation.control import ControlOptions
from engine.evaluation.quality import QualityOptions
from engine.evaluation.settling import SettleOptions
from engine.evaluation.variation import VaryOptions

VALID, TRAIN = str(DATA / "valid.csv"), str(DATA / "train.csv")


def parsed(*argv: str):
    args = build_parser().parse_args(list(argv))
    return options_from(EVALUATIONS[args.command][0], args)


def test_the_flags_keep_their_names_and_defaults():
    assert parsed("quality") == QualityOptions(n=64, batch=64, candidates=4, train=TRAIN, valid=VALID, show=0,
                                               method="diffusion")
    assert parsed("vary") == VaryOptions(n=30, samples=4, strengths="0.1,0.2,0.3,0.4,0.5,0.6,0.8,1", valid=VALID,
                                         show=0)
    assert parsed("settle") == SettleOptions(n=40, samples=4, settle_grid_steps="1,2,3,5,8",
                                             settle_grid_confidence="0,0.5,0.8,0.9,0.95", valid=VALID)
    assert parsed("control", "--kind", "pos", "--targets", "t.jsonl") == ControlOptions(
        kind="pos", targets="t.jsonl", n_targets=50, template_from=None, samples_per_target=1, candidates=None,
        template=None, steer_meaning=None, guidance=True, batch=32, method="diffusion")
    given = parsed("control", "--kind", "semantic", "--targets", "t.jsonl", "--n-targets", "7", "--template-from",
                   "pos.jsonl", "--samples-per-target", "2", "--candidates", "3", "--steer-meaning", "words",
                   "--no-guidance", "--batch", "8", "--method", "fudge")
    assert given == ControlOptions(kind="semantic", targets="t.jsonl", n_targets=7, template_from="pos.jsonl",
                                   samples_per_target=2, candidates=3, steer_meaning="words", guidance=False,
                                   batch=8, method="fudge")


@pytest.mark.parametrize("argv, message", [
    (["quality", "--n", "0"], "--n, --batch and --candidates must be at least 1"),
    (["vary", "--strengths", "0.2,x"], "--strengths takes numbers separated by commas"),
    (["settle", "--settle-grid-confidence", "2"], "each c of --settle-grid-confidence from 0 to 1"),
    (["control", "--kind", "pos", "--targets", "t.jsonl", "--template", "_ _ .", "--template-from", "f"],
     "--template and --template-from both give the template"),
])
def test_a_bad_option_is_refused_before_the_model_loads(argv, message, tmp_path, capsys):
    assert main([*argv, "--model", str(tmp_path / "no model here")]) == 2
    err = capsys.readouterr().err
    assert message in err and "model directory not found" not in err


def test_a_required_control_flag_is_still_required(capsys):
    with pytest.raises(SystemExit) as stop:
        build_parser().parse_args(["control", "--kind", "pos"])
    assert stop.value.code == 2 and "--targets" in capsys.readouterr().err
