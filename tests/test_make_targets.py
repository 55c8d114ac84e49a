"""`engine.make_targets`: one target file per kind (and compose.jsonl) from an E2E-style CSV, each one
read back by the reader the evaluator uses."""

import json

import pytest

from engine.controls import KINDS
from engine.controls.targets import COMPOSE, read_targets
from tests.commands import call, spawn


def test_every_kind_gets_a_file_the_evaluator_reads(labelled_csv, tmp_path):
    out = tmp_path / "targets"
    proc = call("engine.make_targets", "--data", str(labelled_csv), "--out", str(out), "--n", "5", "--seed", "3")
    assert proc.returncode == 0, proc.stderr
    counts = json.loads(proc.stdout)
    assert set(counts) == {kind.file_name for kind in KINDS.values()} | {"compose.jsonl"}
    assert counts["compose.jsonl"] == counts["pos.jsonl"] == counts["length.txt"] == 5
    for name, kind in KINDS.items():
        assert len(read_targets(name, out / kind.file_name)) == counts[kind.file_name], name
    composed = read_targets(COMPOSE, out / "compose.jsonl")
    assert [tuple(t.kind for t in line.targets) for line in composed] == [("pos", "semantic")] * 5
    lengths = [line.targets[0].words for line in read_targets("length", out / "length.txt")]
    assert lengths == [len(line.targets[0].tags) for line in read_targets("pos", out / "pos.jsonl")]
    again = tmp_path / "again"
    assert call("engine.make_targets", "--data", str(labelled_csv), "--out", str(again), "--n", "5",
                "--seed", "3").returncode == 0
    assert all((again / name).read_text() == (out / name).read_text() for name in counts)  # seeded: the same files


@pytest.mark.slow
def test_the_command_says_in_one_line_what_is_missing(tmp_path):
    proc = spawn("engine.make_targets", "--data", str(tmp_path / "none.csv"), "--out", str(tmp_path / "t"))
    assert proc.returncode == 2 and proc.stdout == "" and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("error: ") and "none.csv" in proc.stderr and "Traceback" not in proc.stderr
