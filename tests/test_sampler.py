import pytest
import torch

from engine.diffusion.checkpoint import load_denoiser, save_denoiser
from engine.diffusion.sampler import SampleOptions
from engine.errors import CheckpointError, ConfigError, TemplateError
from engine.pipeline import Pipeline
from engine.ranking import checks
from engine.request import Prompt, Request
from engine.text.template import length_template, parse_template


@pytest.fixture(scope="module")
def pipe(tiny_model):
    return Pipeline.from_pretrained(tiny_model, precision="fp32")


def generate(pipe, template=None, length=None, *, samples=1, options=None, seed=0):
    request = Request.one(template, length, samples=samples, seed=seed, sampling=options or SampleOptions())
    return pipe.run(request).trajectory


def test_save_load_round_trip_is_bit_exact(tiny_model, tmp_path):
    model, tok, record = load_denoiser(tiny_model)
    save_denoiser(tmp_path, model, tok, record)
    again, tok2, _ = load_denoiser(tmp_path)
    assert tok2.words == tok.words
    for (name, a), (_, b) in zip(model.state_dict().items(), again.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


def test_missing_or_broken_model_directory_is_a_clear_error(tmp_path, tiny_model):
    with pytest.raises(CheckpointError, match="model directory not found"):
        Pipeline.from_pretrained(tmp_path / "nowhere")
    with pytest.raises(CheckpointError, match="model config not found"):
        Pipeline.from_pretrained(tmp_path)
    (tmp_path / "denoiser.json").write_text((tiny_model / "denoiser.json").read_text())
    (tmp_path / "vocab.json").write_text((tiny_model / "vocab.json").read_text())
    (tmp_path / "denoiser.safetensors").write_bytes(b"not weights")
    with pytest.raises(CheckpointError, match="unreadable"):
        Pipeline.from_pretrained(tmp_path)


def test_locked_positions_come_out_exactly_as_written(pipe):
    result = generate(pipe, "The Eagle is a _ near _ _ .", samples=6, options=SampleOptions(steps=20), seed=3)
    specials = {pipe.tokenizer.pad_id, pipe.tokenizer.start_id, pipe.tokenizer.end_id, pipe.tokenizer.unk_id}
    assert not any(set(row[1:10].tolist()) & specials for row in result.tokens)  # free slots hold words
    assert all(row[10] == pipe.tokenizer.end_id for row in result.tokens)
    for words in result.words:
        assert len(words) == 9
        assert words[:4] == ["The", "Eagle", "is", "a"] and words[5] == "near" and words[8] == "."
        assert all(w not in ("PAD", "START", "END", "UNK") for w in words)


def test_length_gives_exactly_that_many_words(pipe):
    result = generate(pipe, length=5, samples=4, options=SampleOptions(steps=10), seed=0)
    assert [len(w) for w in result.words] == [5, 5, 5, 5]


def test_same_seed_same_output_other_seed_differs(pipe):
    opts = SampleOptions(steps=10)
    a = generate(pipe, samples=4, options=opts, seed=11)
    b = generate(pipe, samples=4, options=opts, seed=11)
    c = generate(pipe, samples=4, options=opts, seed=12)
    assert a.words == b.words and torch.equal(a.frames[0].latents, b.frames[0].latents)
    assert not torch.equal(a.frames[0].latents, c.frames[0].latents)


def test_frames_stream_one_per_step_with_falling_noise(pipe):
    *frames, result = pipe.stream(Request.one(samples=2, sampling=SampleOptions(steps=12)))
    assert result.trajectory.frames == frames
    assert len(frames) == 12 and frames[-1].final and not frames[0].final
    assert [f.index for f in frames] == list(range(12))
    levels = [f.alpha_bar for f in frames]
    assert levels == sorted(levels) and levels[0] < 0.01 < levels[-1]
    assert frames[0].tokens.shape == (2, pipe.seq_len) and frames[0].latents.shape[:2] == (2, pipe.seq_len)
    assert torch.all((frames[-1].confidence > 0) & (frames[-1].confidence <= 1))


def test_bf16_sampler_keeps_locks_too(tiny_model):
    fast = Pipeline.from_pretrained(tiny_model, precision="bf16")
    result = generate(fast, "Alimentum serves _ food .", samples=3, options=SampleOptions(steps=10))
    assert all(w[:2] == ["Alimentum", "serves"] and w[3:] == ["food", "."] for w in result.words)


def test_template_errors(pipe):
    with pytest.raises(TemplateError, match="empty"):
        parse_template("   ", pipe.tokenizer, pipe.seq_len)
    with pytest.raises(TemplateError, match="no blanks"):
        parse_template("The Eagle", pipe.tokenizer, pipe.seq_len)
    with pytest.raises(TemplateError, match=r"'Eagel' \(did you mean: Eagle"):
        parse_template("The Eagel _", pipe.tokenizer, pipe.seq_len)
    with pytest.raises(TemplateError, match="at most 14"):
        parse_template("_ " * 15, pipe.tokenizer, pipe.seq_len)
    with pytest.raises(TemplateError, match="length 0 is impossible"):
        length_template(0, pipe.seq_len)
    with pytest.raises(TemplateError, match="length 40 is impossible"):
        generate(pipe, length=40)
    with pytest.raises(TemplateError, match="conflicting controls"):
        generate(pipe, "a _", length=3)
    with pytest.raises(ConfigError, match="from 1 to 32"):
        Request.one(samples=0)
    with pytest.raises(ConfigError, match="steps must be from 1 to 2000"):
        generate(pipe, options=SampleOptions(steps=0))
    with pytest.raises(ConfigError, match="steps must be from 1 to 2000"):
        generate(pipe, options=SampleOptions(steps=5000))
    with pytest.raises(ConfigError, match="step rule must be one of ancestral, ddim"):
        SampleOptions(step_rule="euler")


def test_ellipsis_tries_several_lengths_and_keeps_the_best(pipe):
    result = pipe.run(Request.one("The Mill ... .", samples=2, sampling=SampleOptions(steps=6)))
    templates = result.trajectory.templates
    lengths = {sum(not lock for lock in t.locked) for t in templates}
    assert lengths == {1, 2, 3, 4, 5, 6, 8} and len(templates) == 14
    best = result.best
    assert len(best) == 2 and all(c.words[:2] == ["The", "Mill"] and c.words[-1] == "." for c in best)
    with pytest.raises(TemplateError, match="Mil'"):
        pipe.run(Request.one("The Mil ... ."))


def test_candidates_are_ranked_per_prompt_by_the_judge(pipe):
    request = Request(prompts=(Prompt(length=4), Prompt(length=5)), samples=1, candidates=3,
                      sampling=SampleOptions(steps=8))
    result = pipe.run(request)
    assert result.prompt_rows == [0, 0, 0, 1, 1, 1] and result.cost.rows == 6
    ppl = pipe.judge.sentence_perplexities(result.trajectory.words)
    for p, (best,) in enumerate(result.ranked):
        rows = range(3 * p, 3 * p + 3)
        assert best.row in rows and len(best.words) == 4 + p
        passing = [r for r in rows if all(checks(result.trajectory.templates[r], result.trajectory.words[r],
                                                 pipe.tokenizer).values())]
        if best.row in passing:
            assert ppl[best.row] == min(ppl[r] for r in passing)


def test_ddim_is_deterministic_given_the_first_noise(pipe):
    def run(seed, rule):
        request = Request.one(length=5, samples=2, seed=seed, sampling=SampleOptions(steps=10, step_rule=rule))
        return pipe.run(request).trajectory

    ddim, again = run(3, "ddim"), run(3, "ddim")
    assert ddim.words == again.words and all(len(w) == 5 for w in ddim.words)
    assert not torch.equal(ddim.frames[-1].latents, run(3, "ancestral").frames[-1].latents)
