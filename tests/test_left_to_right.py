"""Left-to-right writing (engine.autoregressive): plain sampling and FUDGE control on a tiny LM
with tiny future discriminators trained here, through the one pipeline, the evaluation and the
editor's comparison."""

from __future__ import annotations

import json

import pytest

from engine.autoregressive.discriminator import load_discriminator, prefix_rows
from engine.autoregressive.writer import WriteOptions
from engine.controls import FUTURE
from engine.controls.targets import targets_from_fields
from engine.errors import CheckpointError, ConfigError
from engine.pipeline import Pipeline
from engine.request import Prompt, Request, Writing
from engine.train_control import ControlTrainConfig
from tests.commands import call

ITALIAN = targets_from_fields({"semantic": ["food=Italian"]})


@pytest.fixture(scope="module")
def pipe(fudge_model) -> Pipeline:
    return Pipeline.from_pretrained(fudge_model)


def test_prefix_rows_cover_every_prefix_and_the_whole_row():
    import torch

    lengths = torch.tensor([3] * 4000)
    known = prefix_rows(torch.zeros((4000, 16), dtype=torch.long), lengths, torch.Generator().manual_seed(0))
    assert set(known.tolist()) == {1, 2, 3, 4, 16}  # START only ... all words, or the whole row with END


@pytest.mark.slow
@pytest.mark.parametrize("method", ["ar", "fudge"])
def test_left_to_right_keeps_the_prefix_and_the_templates_length(pipe, method):
    result = pipe.run(Request.one("The Eagle is a _ _ _ .", samples=6, seed=3, method=method,
                                  targets=ITALIAN if method == "fudge" else ()))
    assert isinstance(result, Writing) and len(result.best) == 6
    for candidate in result.best:
        assert candidate.words[:4] == ["The", "Eagle", "is", "a"]
        assert len(candidate.words) == 8 and candidate.checks["exactly 8 words"]
    assert result.cost.lm_passes == 5  # four words to write, then END forced
    assert (result.cost.discriminator_passes > 0) == (method == "fudge")


@pytest.mark.slow
def test_free_left_to_right_text_ends_by_itself_within_the_row(pipe):
    result = pipe.run(Request.one(samples=8, seed=1, method="ar"))
    states = result.written
    assert all(states[-1].finished)
    lengths = [len(c.words) for c in result.best]
    assert all(1 <= n <= pipe.seq_len - 2 for n in lengths) and len(set(lengths)) > 1
    assert [len(s.tokens[0]) for s in states[:3]] == [2, 3, 4]  # one word per step


@pytest.mark.slow
def test_fudge_meets_its_target_more_often_than_plain_sampling(pipe):
    def success(method: str) -> float:
        scores = [c.control_scores["semantic"] for seed in range(2)
                  for c in pipe.run(Request(prompts=(Prompt(targets=ITALIAN),), samples=16, seed=seed,
                                            method=method)).best]
        return sum(scores) / len(scores)

    plain, steered = success("ar"), success("fudge")
    assert steered >= plain + 0.1, (plain, steered)


@pytest.mark.slow
def test_words_after_a_blank_are_checked_not_promised(pipe):
    result = pipe.run(Request.one("_ _ is a pub near Burger King .", samples=4, seed=0, method="ar"))
    kept = [c.checks["locked words kept"] for c in result.best]
    locked_words_there = [c.words[2:] == ["is", "a", "pub", "near", "Burger", "King", "."] for c in result.best]
    assert kept == locked_words_there


@pytest.mark.slow
def test_an_ellipsis_prompt_is_written_from_its_prefix_with_no_length(pipe):
    result = pipe.run(Request.one("The Mill ... .", samples=3, seed=0, method="ar"))
    assert all(c.words[:2] == ["The", "Mill"] for c in result.best)


@pytest.mark.slow
def test_fudge_beliefs_are_probabilities_of_the_chosen_prefix(pipe):
    states = list(pipe.stream(Request(prompts=(Prompt(targets=ITALIAN),), samples=2, seed=0, method="fudge")))[:-1]
    beliefs = [p for s in states for p in s.beliefs.get("semantic", []) if p is not None]
    assert beliefs and all(0 < p <= 1 for p in beliefs)


@pytest.mark.slow
def test_a_control_fudge_cannot_steer_is_a_clear_error(pipe, fudge_model):
    include = targets_from_fields({"include": "pub"})
    with pytest.raises(ConfigError, match="no discriminator for include controls: it steers pos, tree, spans, "):
        pipe.run(Request(prompts=(Prompt(targets=include),), samples=1, method="fudge"))
    judged = pipe.run(Request(prompts=(Prompt(targets=include),), samples=2, method="ar"))  # only judged: fine
    assert all("include" in c.control_scores for c in judged.best)


@pytest.mark.slow
def test_a_missing_discriminator_names_the_command_that_trains_it(tmp_path, fudge_model, pipe):
    with pytest.raises(CheckpointError, match="--method fudge --kind pos"):
        load_discriminator(tmp_path, "pos", pipe.tokenizer)
    with pytest.raises(ConfigError, match="--method must be one of diffusion, fudge"):
        ControlTrainConfig(kind="pos", model=str(fudge_model), data="x.csv", method="gpt")
    with pytest.raises(ConfigError, match="--kind must be one of pos, tree, spans, semantic for --method diffusion"):
        ControlTrainConfig(kind="length", model=str(fudge_model), data="x.csv")


def test_write_options_are_checked():
    with pytest.raises(ConfigError, match="top-k"):
        WriteOptions(top_k=0)
    with pytest.raises(ConfigError, match="temperature"):
        WriteOptions(lm_temperature=0.0)
    with pytest.raises(ConfigError, match="condition lambda"):
        WriteOptions(condition_lambda=-1.0)
    with pytest.raises(ConfigError, match="method must be one of diffusion, fudge, ar"):
        Request(method="gpt")


@pytest.mark.slow
def test_evaluate_control_with_each_method_on_the_same_targets(fudge_model, tmp_path):
    targets = tmp_path / "semantic.jsonl"
    targets.write_text('["food", ":", "Italian"]\n["eatType", ":", "pub"]\n')
    reports = {}
    for method in ("diffusion", "fudge", "ar"):
        proc = call("engine.evaluate", "control", "--kind", "semantic", "--targets", str(targets), "--steps", "4",
                    "--samples-per-target", "2", "--model", str(fudge_model), "--method", method, "--json")
        assert proc.returncode == 0, proc.stderr
        reports[method] = json.loads(proc.stdout)
    assert {m: r["method"] for m, r in reports.items()} == {m: m for m in reports}
    for report in reports.values():
        assert len(report["samples"]) == 4 and 0 <= report["success"] <= 1 and report["fluency_ppl"] > 1
        assert report["seconds_per_sample"] > 0
    assert reports["fudge"]["discriminator_passes_per_sample"] > 0
    assert reports["ar"]["discriminator_passes_per_sample"] == 0
    assert reports["fudge"]["lm_passes_per_sample"] > 0 and reports["diffusion"]["denoiser_passes_per_sample"] == 4
    assert reports["fudge"]["settings"]["top_k"] == WriteOptions().top_k


@pytest.mark.slow
def test_fluency_can_be_scored_by_a_judge_trained_apart(fudge_model, tiny_model, tmp_path):
    targets = tmp_path / "semantic.jsonl"
    targets.write_text('["food", ":", "Italian"]\n')
    args = ("engine.evaluate", "control", "--kind", "semantic", "--targets", str(targets), "--samples-per-target",
            "4", "--model", str(fudge_model), "--method", "fudge", "--json")
    own, other = call(*args), call(*args, "--fluency-judge", str(tiny_model))
    assert own.returncode == 0 and other.returncode == 0, own.stderr + other.stderr
    own, other = json.loads(own.stdout), json.loads(other.stdout)
    assert [s["text"] for s in own["samples"]] == [s["text"] for s in other["samples"]]  # the same text, judged apart
    assert other["fluency_judge"] == str(tiny_model) and own["fluency_judge"] == str(fudge_model)
    assert other["fluency_ppl"] != own["fluency_ppl"]
    saved = tmp_path / "own.json"
    saved.write_text(json.dumps(own))
    rescored = call("engine.evaluate", "rescore", "--judge", str(tiny_model), str(saved))
    assert rescored.returncode == 0, rescored.stderr
    assert json.loads(rescored.stdout)["fluency_ppl"] == {str(saved): other["fluency_ppl"]}  # the same figure later
    empty = tmp_path / "empty.json"
    empty.write_text("{}")
    refused = call("engine.evaluate", "rescore", "--judge", str(tiny_model), str(empty))
    assert refused.returncode == 2 and "holds no samples" in refused.stderr


@pytest.mark.slow
def test_evaluate_quality_left_only_infilling(fudge_model, corpus_files):
    _, valid = corpus_files
    proc = call("engine.evaluate", "quality", "--n", "4", "--method", "ar", "--model", str(fudge_model),
                "--valid", str(valid), "--train", str(corpus_files[0]), "--candidates", "1", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["settings"]["method"] == "ar"
    infill = report["infill"]
    assert 0 <= infill["locked_kept"] <= 1 and infill["joined_judge_ppl"] > 1 and infill["judge_ppl"] > 1
    assert report["free"]["locked_kept"] is None  # free text locks nothing


@pytest.fixture(scope="module")
def compare_editor(pipe):
    from editor.layout import build

    return build(pipe)[1]


@pytest.mark.slow
def test_editor_compare_writes_both_ways_side_by_side(compare_editor):
    page = compare_editor.page
    updates = list(compare_editor.generate("Alimentum is a _ _ .", None, compare=True, steps=6, samples=1, seed=0,
                                           semantic=["food=Italian"]))
    streamed = [u[page.ar_row]["html"] for u in updates[:-1] if page.ar_row in u]
    assert len(streamed) >= 3 and 'data-mode="written"' in streamed[0]
    assert streamed[0].count('class="cell locked"') == 3  # "Alimentum is a", before the first blank
    counts = [html.count('class="cell free"') for html in streamed]
    assert counts == sorted(counts) and counts[-1] > counts[0]  # a word at a time
    assert "a word locked after a blank is not guaranteed" in streamed[0]
    table = updates[-1][page.compare]
    assert [row[0] for row in table] == ["diffusion", "FUDGE"]
    for _, text, scores, ppl, checks, seconds in table:
        assert text.startswith("Alimentum is a") and "semantic" in scores and ppl > 1 and seconds > 0
        assert "locked words kept" in checks


@pytest.mark.slow
def test_editor_compare_off_leaves_the_left_to_right_panel_idle(compare_editor):
    page = compare_editor.page
    updates = list(compare_editor.generate("Alimentum is a _ _ .", None, steps=4, samples=1, seed=0))
    assert all(page.ar_row not in u for u in updates[:-1]) and updates[-1][page.compare] == []
    assert "the same prompt and controls" in updates[-1][page.ar_row]["html"]


@pytest.mark.slow
def test_editor_compare_says_what_fudge_cannot_steer_and_diffusion_runs_on(compare_editor):
    page = compare_editor.page
    updates = list(compare_editor.generate("Alimentum is a _ _ .", None, compare=True, steps=4, samples=1, seed=0,
                                           include="pub"))
    last = updates[-1]
    assert "cannot write this: FUDGE has no discriminator for include controls" in last[page.ar_row]["html"]
    assert [row[0] for row in last[page.compare]] == ["diffusion"] and page.results in last


@pytest.mark.slow
def test_editor_compare_must_be_a_switch(compare_editor):
    updates = list(compare_editor.generate("Alimentum is a _ _ .", None, compare="yes", steps=4))
    assert "compare must be true or false" in updates[-1][compare_editor.page.msg]


@pytest.mark.slow
def test_bench_times_both_methods_and_names_what_it_could_not_run(fudge_model):
    proc = call("engine.bench", "--model", str(fudge_model), "--methods", "--repeats", "1", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)["methods"]
    timed = {(r["control"], r["method"]) for r in rows if "method" in r}
    assert {("pos", "diffusion"), ("pos", "fudge"), ("semantic", "fudge")} <= timed
    assert all(r["median_seconds"] > 0 and r["best_seconds"] <= r["median_seconds"] for r in rows if "method" in r)
    fudge_pos = next(r for r in rows if (r["control"], r.get("method")) == ("pos", "fudge"))
    assert fudge_pos["passes_last_round"]["discriminator"] > 0
    assert not [r for r in rows if "refused" in r]
    assert {r["control"] for r in rows} == set(FUTURE)  # every kind FUDGE steers, both ways


@pytest.mark.slow
def test_generate_cli_writes_left_to_right(fudge_model):
    proc = call("engine.generate", "--template", "The Mill is a _ _ .", "--method", "fudge", "--semantic",
                "food=Italian", "--samples", "2", "--top-k", "5", "--model", str(fudge_model), "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["method"] == "fudge" and out["discriminator_passes"] > 0 and "steps" not in out
    assert all(s["tokens"][:4] == ["The", "Mill", "is", "a"] and len(s["tokens"]) == 7 for s in out["samples"])
