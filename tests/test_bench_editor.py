"""`editor.bench --scenario class`: simulated students press Generate the way the page does,
against `python app.py` in its own process, and every run is reported finished."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.server import ROOT

pytestmark = pytest.mark.slow  # python -m editor.bench starts a real app server


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
