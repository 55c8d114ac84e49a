"""Length-aware windows: a model trained on rows cut shortly after END runs a short text on few
positions, and every caller still sees whole rows."""

import shutil
from dataclasses import replace

import pytest
import torch

from engine.controls.targets import targets_from_fields
from engine.diffusion.losses import FULL_WINDOWS, WINDOW_PAD, diffusion_loss, training_windows
from engine.diffusion.model import Denoiser, DenoiserConfig
from engine.diffusion.sampler import SampleOptions
from engine.errors import TemplateError
from engine.pipeline import SAMPLE_PAD, Pipeline
from engine.request import Prompt, Request
from engine.text.template import free_template, length_template
from engine.train import TrainConfig, train
from tests.conftest import TINY


@pytest.fixture(scope="module")
def windowed(tmp_path_factory, corpus_files, control_model) -> Pipeline:
    """The tiny model fine-tuned on windows and given words, beside the tiny classifiers."""
    train_file, _ = corpus_files
    out = tmp_path_factory.mktemp("windowed")
    shutil.copytree(control_model, out, dirs_exist_ok=True)
    config = {**TINY, "model": replace(TINY["model"], windows=True)}
    train(TrainConfig(data=str(train_file), out=str(out), max_steps=40, conditioned=0.75, init=str(control_model),
                      freeze_embeddings=True, **config))
    return Pipeline.from_pretrained(out, precision="fp32")


def test_training_windows_keep_end_and_a_little_pad():
    tokens = torch.zeros((2000, 20), dtype=torch.long)
    ends = torch.randint(2, 19, (2000,), generator=torch.Generator().manual_seed(1))
    tokens[torch.arange(2000), ends] = 3
    windows = training_windows(tokens, torch.Generator().manual_seed(0))
    full = windows == 20
    cut = ~full
    assert (windows[cut] >= ends[cut] + 1).all() and (windows[cut] <= ends[cut] + 1 + WINDOW_PAD).all()
    assert FULL_WINDOWS / 2 < full.float().mean() < FULL_WINDOWS * 2 + 0.05
    assert len(set((windows[cut] - ends[cut]).tolist())) == WINDOW_PAD + 1  # every pad count is trained


def test_windowed_loss_ignores_what_lies_past_each_window():
    model = Denoiser(DenoiserConfig(vocab_size=30, seq_len=12, embed_dim=8, hidden=32, layers=1, attention_heads=2,
                                    ffn=64, dropout=0.0, windows=True)).eval()
    tokens = torch.tensor([[2, 10, 11, 3, 0, 0, 0, 0, 0, 0, 0, 0],
                           [2, 10, 11, 12, 13, 14, 15, 16, 3, 0, 0, 0]])
    windows = torch.tensor([5, 10])
    changed = tokens.clone()
    changed[0, 5:10] = 20  # inside the batch's longest window, past row 0's own

    def loss(rows):
        return diffusion_loss(model, rows, torch.Generator().manual_seed(0), t=torch.tensor([500, 500]),
                              windows=windows)

    assert torch.allclose(loss(tokens), loss(changed))
    whole = diffusion_loss(model, changed, torch.Generator().manual_seed(0), t=torch.tensor([500, 500]))
    assert not torch.allclose(loss(changed), whole)


def test_a_template_runs_on_the_positions_it_needs(windowed):
    pipe = windowed
    plan = pipe.plan(Request.one("The Eagle is a _ near _ .", samples=2))
    assert [t.window for t in plan.templates] == [8 + 2 + SAMPLE_PAD] * 2
    result = pipe.run(Request.one("The Eagle is a _ near _ .", samples=2, seed=3,
                                  sampling=SampleOptions(steps=10)))
    assert result.trajectory.tokens.shape == (2, pipe.seq_len)  # whole rows for every caller
    for words in result.trajectory.words:
        assert len(words) == 8 and words[:4] == ["The", "Eagle", "is", "a"] and words[5] == "near"
        assert words[7] == "." and not {words[4], words[6]} & {"PAD", "START", "END", "UNK"}
    frame = result.trajectory.frames[0]
    assert frame.latents.shape[:2] == (2, pipe.seq_len) and frame.locked.shape == (2, pipe.seq_len)


def test_free_text_keeps_the_whole_row_and_a_length_hint_cuts_it(windowed):
    pipe = windowed
    assert [t.window for t in pipe.plan(Request(prompts=(Prompt(),), samples=3)).templates] == [None] * 3
    plan = pipe.plan(Request.one(length=4, samples=2))
    assert [t.window for t in plan.templates] == [4 + 2 + SAMPLE_PAD] * 2
    result = pipe.run(Request.one(length=4, samples=2, seed=4, sampling=SampleOptions(steps=10)))
    assert [len(w) for w in result.trajectory.words] == [4, 4]
    assert (result.trajectory.tokens[:, 4 + 2:] == pipe.tokenizer.pad_id).all()  # END, then PAD to the end


def test_steered_rows_run_on_windows_while_classifiers_read_whole_rows(windowed, tiny_model, monkeypatch):
    from engine.controls.base import ClassifierControl

    request = Request.one("_ _ _ _ _ .", targets=targets_from_fields({"semantic": ["food=Italian"]}), samples=2,
                          candidates=1, sampling=SampleOptions(steps=5, record_latents=False))
    assert [t.window for t in windowed.plan(request).templates] == [6 + 2 + SAMPLE_PAD] * 2
    read_lengths = []
    log_prob = ClassifierControl.log_prob

    def recording(self, x, t):
        read_lengths.append(x.shape[1])
        return log_prob(self, x, t)

    monkeypatch.setattr(ClassifierControl, "log_prob", recording)
    result = windowed.run(request)
    assert read_lengths and set(read_lengths) == {windowed.seq_len}  # the window widened by the held PAD
    assert result.cost.classifier_passes > 0
    assert (result.trajectory.tokens[:, 6 + 2:] == windowed.tokenizer.pad_id).all()
    plain = Pipeline.from_pretrained(tiny_model, precision="fp32")
    assert [t.window for t in plain.plan(Request.one("_ _ _ .", samples=2)).templates] == [None, None]


def test_a_window_must_hold_the_template():
    with pytest.raises(TemplateError, match="cannot hold 5 words"):
        length_template(5, 16).with_window(6)
    assert free_template(16).with_window(40).window == 16
