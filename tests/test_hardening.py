"""Bad input to the engine and its commands: bounded by size before any parsing, and always a
one-line message (exit status 2 from the commands), never a traceback."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from engine.controls.targets import MAX_FILE_BYTES, read_targets, targets_from_fields
from engine.diffusion.sampler import SampleOptions
from engine.errors import CheckpointError, ConfigError, TargetError, TemplateError
from engine.pipeline import Pipeline
from engine.request import MAX_SEED, Request
from engine.text.template import parse_template
from tests.commands import ROOT, call, spawn


def one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def pipe(control_model):
    return Pipeline.from_pretrained(control_model, precision="fp32")


def test_huge_exemplars_and_templates_are_refused_by_size_before_parsing(pipe):
    start = time.perf_counter()
    with pytest.raises(TargetError, match="tree: .* characters long: at most"):
        targets_from_fields({"tree": "The pub is cheap . " * 52600})
    with pytest.raises(TargetError, match="pos: the value is 1000000 characters long"):
        targets_from_fields({"pos": "N" * 1_000_000})
    with pytest.raises(TemplateError, match="characters long: the model holds at most 14 words"):
        parse_template("_ " * 500_000, pipe.tokenizer, pipe.seq_len)
    assert time.perf_counter() - start < 2


def test_target_files_are_bounded_per_line_and_per_file(tmp_path):
    line = tmp_path / "tree.txt"
    line.write_text("The pub is cheap . " * 52600 + "\n")
    with pytest.raises(TargetError, match=r"tree.txt, line 1: longer than 16,384 bytes"):
        read_targets("tree", line)
    big = tmp_path / "big.jsonl"
    with big.open("wb") as f:
        f.truncate(MAX_FILE_BYTES + 1)  # sparse: no disk used
    with pytest.raises(TargetError, match="big.jsonl is .* bytes: target files hold at most"):
        read_targets("pos", big)
    binary = tmp_path / "b.bin"
    binary.write_bytes(b'["food", ":", "Italian"]\n\xff\xfe\x00garbage\n')
    with pytest.raises(TargetError, match=r"b.bin, line 2: not UTF-8 text"):
        read_targets("semantic", binary)


def test_wrong_types_for_targets_are_refused():
    with pytest.raises(TargetError, match="pos: expected text, got list"):
        targets_from_fields({"pos": ["NOUN"]})
    with pytest.raises(TargetError, match="tree: expected text, got int"):
        targets_from_fields({"tree": 5})
    with pytest.raises(TargetError, match="unknown control 'colour'"):
        targets_from_fields({"colour": "red"})


def test_rows_and_seeds_are_bounded(pipe):
    with pytest.raises(ConfigError, match=r"at most 256 rows, got 400 \(8 samples, 50 candidates, 1 prompts\)"):
        Request.one(samples=8, candidates=50)
    with pytest.raises(ConfigError, match=f"seed must be a whole number from 0 to {MAX_SEED}"):
        Request.one(seed=MAX_SEED + 1)
    with pytest.raises(ConfigError, match="seed must be"):
        Request.one(seed=-1)
    options = SampleOptions(steps=3)
    a, b = (pipe.run(Request.one(length=3, samples=1, seed=seed, sampling=options)).trajectory
            for seed in (2**53, 2**53 + 1))
    assert not torch.equal(a.frames[0].latents, b.frames[0].latents)


@pytest.mark.parametrize("option, value", [("temperature", float("nan")), ("noise_scale", float("inf")),
                                           ("locked_noise", float("nan"))])
def test_nan_and_infinity_are_refused_by_sample_options(option, value):
    with pytest.raises(ConfigError):
        SampleOptions(**{option: value})


@pytest.mark.parametrize("key, value, message", [
    ("hidden", "big", "model hidden must be a whole number >= 1, got 'big'"),
    ("seq_len", -5, "model seq_len must be a whole number >= 1, got -5"),
    ("attention_heads", 3, "must be a multiple of attention_heads"),
])
def test_hand_edited_model_configs_are_clear_errors(tiny_model, tmp_path, key, value, message):
    for name in ("denoiser.json", "denoiser.safetensors", "vocab.json"):
        (tmp_path / name).write_bytes((tiny_model / name).read_bytes())
    meta = json.loads((tmp_path / "denoiser.json").read_text())
    meta["config"][key] = value
    (tmp_path / "denoiser.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=message):
        Pipeline.from_pretrained(tmp_path)


@pytest.mark.slow
def test_commands_give_one_line_errors(tiny_model, tmp_path):
    binary = tmp_path / "b.bin"
    binary.write_bytes(b"\x80\xff\xfe" * 100 + bytes(range(256)))
    one_line_error(spawn("engine.evaluate", "control", "--kind", "pos", "--targets", str(binary), "--model",
                         str(tiny_model)), "b.bin: none of its 2 targets can be used, e.g. line 1: not UTF-8 text")
    one_line_error(call("engine.generate", "--model", str(tiny_model), "--temperature", "nan"),
                   "--temperature must be a finite number")
    one_line_error(call("engine.generate", "--model", str(tiny_model), "--noise-scale", "inf"),
                   "--noise-scale must be a finite number")
    one_line_error(call("engine.generate", "--model", str(tiny_model), "--samples", "8", "--candidates", "50"),
                   "at most 256 rows")
    one_line_error(spawn("engine.generate", "--steps", "abc"), "argument --steps: invalid int value")


def test_evaluate_names_the_line_the_model_cannot_use(control_model, tmp_path):
    cases = [("semantic", '["food", ":", "Italian"]\n["food", ":", "Thai"]\n', 2, "unknown value 'Thai'"),
             ("length", "5\n1000\n", 2, "length asks for 1000 words: impossible")]
    for kind, text, line, message in cases:
        path = tmp_path / f"{kind}.txt"
        path.write_text(text)
        proc = call("engine.evaluate", "control", "--kind", kind, "--targets", str(path), "--model",
                    str(control_model), "--steps", "2", "--json")
        assert proc.returncode == 0, proc.stderr
        (unusable,) = json.loads(proc.stdout)["unusable"]
        assert unusable["line"] == line and message in unusable["reason"]
    path = tmp_path / "spans.txt"
    path.write_text('{"spans": [[20, 30, "NP"]]}\n')
    one_line_error(call("engine.evaluate", "control", "--kind", "spans", "--targets", str(path), "--model",
                        str(control_model), "--steps", "2"), str(path),
                   "none of its 1 targets can be used, e.g. line 1: span [20, 30] is out of range")


@pytest.mark.slow
def test_training_errors_are_one_line(corpus_files, tmp_path):
    train_file, _ = corpus_files
    tiny = ("--seq-len", "16", "--embed-dim", "8", "--hidden", "32", "--layers", "1", "--attention-heads", "2",
            "--ffn", "64", "--batch-size", "8", "--precision", "fp32", "--quiet")
    missing_ref = tmp_path / "rows.csv"
    missing_ref.write_text('mr,ref\n"name[A]","A is a pub ."\n"name[B]"\n')
    one_line_error(spawn("engine.train", "--data", str(missing_ref), "--out", str(tmp_path / "o"), *tiny),
                   "rows.csv, line 3: the row has no ref field")
    binary = tmp_path / "data.txt"
    binary.write_bytes(b"\xff\xfe" + bytes(range(256)))
    one_line_error(call("engine.train", "--data", str(binary), "--out", str(tmp_path / "o"), *tiny),
                   "data.txt is not UTF-8 text")
    one_line_error(call("engine.train", "--data", str(train_file), "--out", str(tmp_path / "o"), "--device", "bogus"),
                   "unknown device 'bogus': use cpu or cuda (cuda:N for the N-th GPU)")  # as every command says
    cuda = call("engine.train", "--data", str(train_file), "--out", str(tmp_path / "o"), "--device", "cuda",
                "--max-steps", "1", *tiny)
    if torch.cuda.is_available():
        assert cuda.returncode == 0, cuda.stderr
    else:
        one_line_error(cuda, "device 'cuda': PyTorch", "sees no CUDA GPU on this machine")
    a_file = tmp_path / "taken"
    a_file.write_text("not a directory")
    one_line_error(call("engine.train", "--data", str(train_file), "--out", str(a_file), *tiny),
                   "is a file, not a directory")
    one_line_error(call("engine.train", "--data", str(train_file), "--out", str(tmp_path / "o"), "--lr", "nan"),
                   "--lr must be a finite number")
    out = tmp_path / "run"
    assert call("engine.train", "--data", str(train_file), "--out", str(out), "--max-steps", "2", *tiny).returncode == 0
    (out / "train_state.json").write_text('{"step": 2, "param_groups": []}')
    one_line_error(call("engine.train", "--data", str(train_file), "--out", str(out), "--max-steps", "4", "--resume",
                        *tiny), "training state in", "is damaged")
    help_text = spawn("engine.train", "--help").stdout
    assert "(0: no time" in help_text and "--save-every SAVE_EVERY" in help_text


@pytest.mark.slow
def test_ctrl_c_saves_a_checkpoint_and_says_how_to_resume(corpus_files, tmp_path):
    train_file, _ = corpus_files
    out = tmp_path / "interrupted"
    cmd = [sys.executable, "-m", "engine.train", "--data", str(train_file), "--out", str(out), "--seq-len", "16",
           "--embed-dim", "8", "--hidden", "32", "--layers", "1", "--attention-heads", "2", "--ffn", "64",
           "--batch-size", "8", "--precision", "fp32", "--save-every", "100000", "--eval-every", "100000"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    deadline = time.monotonic() + 120
    while "train:" not in (line := proc.stderr.readline()) and time.monotonic() < deadline:
        assert line or proc.poll() is None, "training exited before it started"
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 2
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("error: interrupted at step ") and str(out) in last and "--resume" in last
    steps = int(last.split("step ")[1].split(":")[0])
    assert json.loads((out / "train_state.json").read_text())["step"] == steps > 0
    assert "Traceback" not in stderr


@pytest.mark.slow
def test_the_engine_imports_from_any_directory(tmp_path):
    proc = subprocess.run([sys.executable, "-c", "from engine.pipeline import Pipeline; print(Pipeline.__name__)"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0 and proc.stdout.strip() == "Pipeline", proc.stderr
