"""The command-line tools: real subprocesses, so a traceback would show up in stderr."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          check=False)


def test_generate_fills_blanks_with_the_bundled_model():
    proc = run("engine.generate", "--template", "The Eagle is a _ _ coffee shop near _ _ .", "--samples", "4",
               "--seed", "7", "--steps", "20", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert len(out["samples"]) == 4 and out["network_passes"] == 20 and out["seconds"] > 0
    for sample in out["samples"]:
        words = sample["tokens"]
        assert words[:4] == ["The", "Eagle", "is", "a"] and words[6:9] == ["coffee", "shop", "near"]
        assert words[11] == "." and len(words) == 12 and sample["text"] == " ".join(words)


def test_generate_length_and_plain_output(tiny_model):
    proc = run("engine.generate", "--model", str(tiny_model), "--length", "4", "--samples", "3", "--steps", "5")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 3 and all(len(line.split()) == 4 for line in lines)


@pytest.mark.parametrize("args, message", [
    (["--template", "The Eagle is a _ coffe shop ."], "'coffe' (did you mean: coffee"),
    (["--template", "_ " * 70], "remove 8"),
    (["--template", "   "], "template is empty"),
    (["--samples", "0"], "samples must be between 1 and 32"),
    (["--steps", "3000"], "at most the schedule's T = 2000"),
    (["--template", "The ... pub .", "--candidates", "2"], "does not combine"),
    (["--model", "/nonexistent/model"], "model directory not found: /nonexistent/model"),
    (["--length", "100"], "length 100 is impossible"),
    (["--steps", "0"], "steps must be at least 1"),
])
def test_generate_errors_are_messages_not_tracebacks(args, message):
    proc = run("engine.generate", *args)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_evaluate_quality_prints_every_metric(tiny_model, corpus_files):
    train_file, valid_file = corpus_files
    proc = run("engine.evaluate", "quality", "--model", str(tiny_model), "--n", "4", "--steps", "5",
               "--train", str(train_file), "--valid", str(valid_file), "--candidates", "2", "--show", "2", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    for kind in ("free", "infill", "infill_best_of_2"):
        assert set(report[kind]) >= {"judge_ppl", "well_formed", "copied_from_train", "distinct_2", "locked_kept"}
    assert report["infill"]["locked_kept"] == 1.0 and report["real_valid"]["judge_ppl"] > 1
    assert len(report["samples"]["free"]) == 2


def test_bench_prints_speed_and_memory(tiny_model):
    proc = run("engine.bench", "--model", str(tiny_model), "--repeats", "1", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert [(r["steps"], r["batch"]) for r in report["runs"]] == [(200, 1), (200, 16), (50, 1), (50, 16)]
    assert all(r["network_passes"] == r["steps"] and r["seconds_per_sample"] > 0 for r in report["runs"])
    assert report["peak_rss_mb"] > 0


def test_train_cli_reports_bad_data(tmp_path):
    proc = run("engine.train", "--data", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "o"))
    assert proc.returncode == 2 and "data file not found" in proc.stderr and "Traceback" not in proc.stderr
