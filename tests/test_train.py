import json
import os
import socket
import subprocess
import sys
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import nn

from engine.diffusion.checkpoint import load_denoiser, load_weights, raw_weights_file
from engine.diffusion.losses import diffusion_loss, given_positions
from engine.diffusion.model import Denoiser, DenoiserConfig, FastDropout
from engine.errors import ConfigError, EngineError
from engine.precision import choose_precision
from engine.text.data import encode_corpus, read_sentences
from engine.text.tokenizer import Tokenizer
from engine.train import TrainConfig, train, validate
from tests.commands import spawn
from tests.conftest import TINY, corpus

ROOT = Path(__file__).resolve().parent.parent


def _loss_falls(objective: str) -> tuple[float, float]:
    torch.manual_seed(0)
    sentences = corpus()
    tok = Tokenizer.build(sentences)
    rows, _ = encode_corpus(sentences, tok, 16)
    model = Denoiser(DenoiserConfig(vocab_size=len(tok), seq_len=16, embed_dim=8, hidden=32, layers=1,
                                    attention_heads=2, ffn=64, dropout=0.0, objective=objective))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    t = torch.full((len(rows),), 200)

    def held_out_loss():
        model.eval()
        with torch.no_grad():
            return float(diffusion_loss(model, rows, torch.Generator().manual_seed(1), t=t))

    before = held_out_loss()
    model.train()
    for _ in range(40):
        loss = diffusion_loss(model, rows[torch.randint(0, len(rows), (16,), generator=g)], g)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return before, held_out_loss()


def test_cross_entropy_loss_falls_within_a_few_dozen_steps():
    before, after = _loss_falls("ce")
    assert after < 0.6 * before


def test_paper_objective_loss_falls_too():
    before, after = _loss_falls("mse")
    assert after < 0.8 * before


def test_training_writes_a_loadable_checkpoint_and_resumes(tmp_path, corpus_files):
    train_file, valid_file = corpus_files
    out = tmp_path / "m"
    record = train(TrainConfig(data=str(train_file), valid=str(valid_file), out=str(out), max_steps=6, **TINY))
    assert record["steps"] == 6 and record["valid_loss"] > 0
    model, tok, saved = load_denoiser(out)
    assert saved["steps"] == 6 and model.config.seq_len == 16 and len(tok) > 10
    assert json.loads((out / "train_state.json").read_text())["step"] == 6
    resumed = train(TrainConfig(data=str(train_file), valid=str(valid_file), out=str(out), max_steps=9,
                                resume=True, **TINY))
    assert resumed["steps"] == 9


def test_resumed_training_equals_uninterrupted_training(tmp_path, corpus_files):
    train_file, _ = corpus_files
    settings = {**TINY, "eval_every": 1000}
    train(TrainConfig(data=str(train_file), out=str(tmp_path / "whole"), max_steps=8, **settings))
    train(TrainConfig(data=str(train_file), out=str(tmp_path / "split"), max_steps=5, **settings))
    train(TrainConfig(data=str(train_file), out=str(tmp_path / "split"), max_steps=8, resume=True, **settings))
    whole, _, _ = load_denoiser(tmp_path / "whole")
    split, _, _ = load_denoiser(tmp_path / "split")
    for (name, a), (_, b) in zip(whole.state_dict().items(), split.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


@pytest.mark.slow
def test_data_parallel_training_with_two_gloo_processes(tmp_path, corpus_files):
    train_file, _ = corpus_files
    out = tmp_path / "ddp"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", port,
           "-m", "engine.train", "--data", str(train_file), "--out", str(out), "--max-steps", "4",
           "--seq-len", "16", "--embed-dim", "8", "--hidden", "32", "--layers", "1", "--attention-heads", "2",
           "--ffn", "64", "--batch-size", "8", "--precision", "fp32", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=150, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    meta = json.loads((out / "denoiser.json").read_text())
    assert meta["training"]["world_size"] == 2 and meta["training"]["steps"] == 4


def test_text_file_and_csv_data(tmp_path):
    (tmp_path / "a.txt").write_text("one two .\n\nthree four .\n")
    assert read_sentences(tmp_path / "a.txt") == ["one two .", "three four ."]
    (tmp_path / "b.csv").write_text("mr,text\nx,y\n")
    with pytest.raises(EngineError, match=r"needs the column\(s\) 'ref'"):
        read_sentences(tmp_path / "b.csv")


def test_given_positions_hold_start_and_the_known_length():
    tokens = torch.tensor([[2, 10, 11, 12, 13, 14, 3, 0, 0]] * 400)
    given = given_positions(tokens, 0.75, torch.Generator().manual_seed(0))
    assert given[:, 0].all()
    conditioned = given[:, 6]  # END: given exactly in the conditioned rows, with the PAD after it
    assert torch.equal(given[:, 7:], conditioned[:, None].expand(-1, 2))
    assert not given[~conditioned, 1:].any()
    assert 0.65 < conditioned.float().mean() < 0.85
    words = given[conditioned, 1:6]
    assert words.any() and not words.all()  # some words given, some left to fill


def test_fine_tuning_on_given_words_keeps_the_word_vectors(tmp_path, corpus_files, tiny_model):
    train_file, _ = corpus_files
    out = tmp_path / "tuned"
    train(TrainConfig(data=str(train_file), out=str(out), max_steps=5, conditioned=0.75, init=str(tiny_model),
                      freeze_embeddings=True, **TINY))
    before, tok_before, _ = load_denoiser(tiny_model)
    after, tok_after, _ = load_denoiser(out)
    assert tok_before.words == tok_after.words
    assert torch.equal(before.word_vectors, after.word_vectors)
    assert not torch.equal(before.output.weight, after.output.weight)


def test_ema_weights_are_the_model_and_the_raw_ones_resume(tmp_path, corpus_files):
    train_file, valid_file = corpus_files
    settings = {**TINY, "eval_every": 1000, "ema": 0.9, "valid": str(valid_file)}
    record = train(TrainConfig(data=str(train_file), out=str(tmp_path / "whole"), max_steps=8, **settings))
    train(TrainConfig(data=str(train_file), out=str(tmp_path / "split"), max_steps=5, **settings))
    train(TrainConfig(data=str(train_file), out=str(tmp_path / "split"), max_steps=8, resume=True, **settings))
    raw_file = raw_weights_file("denoiser.safetensors")
    shipped, _, _ = load_denoiser(tmp_path / "whole")
    raw = Denoiser(shipped.config)
    load_weights(raw, tmp_path / "whole" / raw_file)
    assert not torch.equal(shipped.output.weight, raw.output.weight)  # the average is not the last step
    resumed, _, _ = load_denoiser(tmp_path / "split")
    resumed_raw = Denoiser(shipped.config)
    load_weights(resumed_raw, tmp_path / "split" / raw_file)
    for a, b in ((shipped, resumed), (raw, resumed_raw)):
        for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
            assert torch.equal(x, y), name
    # the saved average validates as the loaded one does: its integer position ids were not averaged
    validated = validate(TrainConfig(data="-", out="-", model=shipped.config), shipped,
                         encode_corpus(read_sentences(valid_file), Tokenizer.load(tmp_path / "whole" / "vocab.json"),
                                       16)[0], nullcontext)
    assert validated == pytest.approx(record["valid_loss"], abs=1e-4)
    with pytest.raises(ConfigError, match="--ema must be a rate"):
        TrainConfig(data="x", out="y", ema=1.0)
    with pytest.raises(ConfigError, match="trained with --ema 0.9, not 0.0: resume it with the same --ema"):
        train(TrainConfig(data=str(train_file), out=str(tmp_path / "split"), max_steps=9, resume=True,
                          **{**settings, "ema": 0.0}))
    train(TrainConfig(data=str(train_file), out=str(tmp_path / "split"), max_steps=2, **{**settings, "ema": 0.0}))
    assert not (tmp_path / "split" / raw_file).exists()  # a run without an average leaves no raw weights behind


def test_the_precision_is_chosen_per_machine_and_recorded(tmp_path, corpus_files, monkeypatch):
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    assert choose_precision("auto") == ("fp32", "no native bf16 on this CPU (AVX2 kernels: it would be emulated)")
    assert choose_precision("bf16")[0] == "bf16"
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device: (8, 0) if device.index == 1 else (7, 0))
    assert choose_precision("auto", "cuda:1")[0] == "bf16"  # Ampere or later
    assert choose_precision("auto", "cuda:0") == ("fp32", "a CUDA device of compute capability 7.0 (bf16 needs "
                                                  "8.0, Ampere, or later)")
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)
    assert choose_precision("auto")[0] == "bf16"
    record = train(TrainConfig(data=str(corpus_files[0]), out=str(tmp_path / "m"), max_steps=1,
                               **{**TINY, "precision": "auto"}))
    assert record["precision"] == "bf16"
    with pytest.raises(ConfigError, match="precision must be one of auto, bf16, fp32"):
        choose_precision("fp16")


def test_fast_dropout_keeps_the_rate_and_the_mean():
    torch.manual_seed(0)
    drop = FastDropout(0.2)
    x = torch.ones(400, 1000)
    y = drop(x)
    assert abs(float((y == 0).float().mean()) - 0.2) < 0.005 and abs(float(y.mean()) - 1.0) < 0.01
    assert not torch.equal(drop(x), y)  # a new mask each call
    assert torch.equal(drop.eval()(x), x)
    network = Denoiser(replace(TINY["model"], vocab_size=5))
    bert_dropouts = {type(m) for m in network.modules() if isinstance(m, nn.Dropout)}
    assert bert_dropouts == {FastDropout}


def test_the_training_speed_bench_times_each_precision_and_dropout(tiny_model, corpus_files, capsys):
    from engine import bench_train
    assert bench_train.main(["--model", str(tiny_model), "--data", str(corpus_files[0]), "--rounds", "1",
                             "--batch-size", "4"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [(s["precision"], s["dropout"]) for s in report["settings"]] == [
        ("fp32", "trainer"), ("fp32", "torch"), ("bf16", "trainer"), ("bf16", "torch")]
    assert all(s["seconds_per_step"] > 0 and s["flop_floor_seconds"] > 0 for s in report["settings"])
    assert report["machine"]["auto_precision"] in ("fp32", "bf16") and report["step_gflop"] > 0


@pytest.mark.slow
def test_the_training_speed_bench_says_in_one_line_what_is_missing(tmp_path):
    proc = spawn("engine.bench_train", "--data", str(tmp_path / "none.csv"), "--rounds", "1")
    assert proc.returncode == 2 and proc.stdout == "" and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("error: ") and "none.csv" in proc.stderr and "Traceback" not in proc.stderr
