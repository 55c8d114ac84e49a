"""`editor.bench`: simulated users press Generate, against the editor served in this process
(`--scenario users`) or `python app.py` in its own (`--scenario class`), and every run is reported finished."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from editor.bench import percentile
from tests.commands import call
from tests.server import ROOT


def test_four_users_at_once_each_get_every_step(tiny_model):
    proc = call("editor.bench", "--steps", "3", "--samples", "1", "--model", str(tiny_model), "--fp32")
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert report["steps"] == 3 and report["precision"] == "fp32" and report["four_users"]["all_finished"]
    single = report["single_user"]
    assert single["frames"] == 3 and [r["frames"] for r in single["runs"]] == [3, 3, 3]
    assert all(0 < r["first_frame_s"] <= r["total_s"] for r in single["runs"])
    assert percentile([3.0, 1.0, 2.0, 4.0], 50) == 2.0 and percentile([3.0, 1.0, 2.0, 4.0], 95) == 4.0


@pytest.mark.slow  # python -m editor.bench starts a real app server
def test_the_class_scenario_reports_every_students_run(tiny_model):
    path = "page"  # the events the page's Generate sends (the api path calls /generate, tested in test_api)
    proc = subprocess.run([sys.executable, "-m", "editor.bench", "--scenario", "class", "--students", "2",
                           "--presses", "1", "--within", "1", "--steps", "10", "--samples", "1", "--path", path,
                           "--model", str(tiny_model), "--json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert report["path"] == path and report["runs"] == 2 and report["finished"] == 2 and report["nothing_dropped"]
    assert 0 < report["first_frame_s"]["median"] <= report["result_s"]["median"]
