"""`editor.bench`: a timed run counts what Generate streams; `--scenario class`: simulated students press
Generate the way the page does, against `python app.py` in its own process, and every run is reported finished."""

from __future__ import annotations

import json
import time

import pytest

from editor.bench import TEMPLATE, percentile, timed_run
from editor.cells import cells_from_text
from tests.commands import spawn


class StreamingClient:
    """Stands in for gradio_client: records what was submitted and streams `outputs` outputs, 10 ms apart."""

    def __init__(self, outputs: int):
        self.outputs, self.submitted = outputs, []

    def submit(self, *args, api_name: str):
        self.submitted.append((args, api_name))
        for i in range(self.outputs):
            time.sleep(0.01)
            yield i


def test_a_timed_run_submits_the_pages_generate_and_counts_frames_not_the_result():
    client = StreamingClient(outputs=6)  # five frames, then the ranked result
    timed = timed_run(client, 5, 2, 7)
    ((template, row, length, steps, samples, seed), api_name), = client.submitted
    assert api_name == "/generate" and (template, length, steps, samples, seed) == (TEMPLATE, 0, 5, 2, 7)
    assert row == {"cells": cells_from_text(TEMPLATE)}
    assert timed["frames"] == 5 and 0 < timed["first_frame_s"] < timed["total_s"]
    assert 0 < timed["frames_per_s"] <= 100  # four intervals of at least 10 ms between the five frames
    assert percentile([3.0, 1.0, 2.0, 4.0], 50) == 2.0 and percentile([3.0, 1.0, 2.0, 4.0], 95) == 4.0


@pytest.mark.slow  # python -m editor.bench starts a real app server
def test_the_class_scenario_reports_every_students_run(tiny_model):
    path = "page"  # the events the page's Generate sends (the api path calls /generate, tested in test_api)
    proc = spawn("editor.bench", "--scenario", "class", "--students", "2", "--presses", "1", "--within", "1",
                 "--steps", "10", "--samples", "1", "--path", path, "--model", str(tiny_model), "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert report["path"] == path and report["runs"] == 2 and report["finished"] == 2 and report["nothing_dropped"]
    assert 0 < report["first_frame_s"]["median"] <= report["result_s"]["median"]
