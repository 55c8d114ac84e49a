"""The command-line tools, each through its `main(argv)` in this process (tests/commands.py); a real
`python -m` subprocess where the command line itself is tested (exit status 2, a one-line error)."""

import json
import shutil

import pytest

from engine.controls.guidance import GuidanceOptions, default_guidance
from engine.controls.targets import targets_from_fields
from engine.diffusion.sampler import SampleOptions
from engine.diffusion.steps import STEP_RULES
from engine.pipeline import Pipeline
from engine.request import Request
from tests.commands import call, spawn
from tests.conftest import TINY

T = TINY["model"].T  # the tiny models' schedule


@pytest.mark.slow
def test_generate_fills_blanks_with_the_bundled_model():
    proc = call("engine.generate", "--template", "The Eagle is a _ _ coffee shop near _ _ .", "--samples", "4",
                "--seed", "7", "--steps", "20", "--settle-steps", "0", "--json")  # 0: every step
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert len(out["samples"]) == 4 and out["denoiser_passes"] == 20 and out["seconds"] > 0
    for sample in out["samples"]:
        words = sample["tokens"]
        assert words[:4] == ["The", "Eagle", "is", "a"] and words[6:9] == ["coffee", "shop", "near"]
        assert words[11] == "." and len(words) == 12 and sample["text"] == " ".join(words)


def test_generate_length_and_plain_output(tiny_model):
    proc = call("engine.generate", "--model", str(tiny_model), "--length", "4", "--samples", "3", "--steps", "5")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 3 and all(len(line.split()) == 4 for line in lines)


@pytest.mark.parametrize("args, message", [
    (["--template", "The Eagle is a _ coffe shop ."], "'coffe' (did you mean: coffee"),
    (["--template", "_ " * 70], "remove 8"),
    (["--template", "   "], "template is empty"),
    (["--samples", "0"], "samples must be a whole number from 1 to 32"),
    (["--steps", "3000"], "steps must be from 1 to 2000 (the schedule's T), got 3000"),
    (["--model", "/nonexistent/model"], "model directory not found: /nonexistent/model"),
    (["--length", "100"], "length 100 is impossible"),
    (["--steps", "0"], "steps must be from 1 to 2000"),
    (["--pos", "NOUN", "--fluency", "nan"], "--fluency must be a finite number, got nan"),
    (["--weights", "pos=heavy"], "--weights: expected kind=number"),
])
def test_generate_errors_are_messages_not_tracebacks(args, message):
    proc = call("engine.generate", *args)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_evaluate_quality_prints_every_metric(tiny_model, corpus_files):
    train_file, valid_file = corpus_files
    proc = call("engine.evaluate", "quality", "--model", str(tiny_model), "--n", "4", "--steps", "5",
                "--train", str(train_file), "--valid", str(valid_file), "--candidates", "2", "--show", "2", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    for kind in ("free", "infill", "infill_best_of_2"):
        assert set(report[kind]) >= {"judge_ppl", "well_formed", "copied_from_train", "distinct_2", "locked_kept"}
    assert report["infill"]["locked_kept"] == 1.0 and report["real_valid"]["judge_ppl"] > 1
    assert len(report["samples"]["free"]) == 2
    for kind in ("free", "infill"):  # one request for 4 results per template: how many differ
        distinct = report["distinct_results"][kind]
        assert distinct["samples"] == 4 and distinct["requests"] == 1 and 1 <= distinct["mean_distinct"] <= 4
        assert distinct["all_distinct"] == (distinct["mean_distinct"] == 4)


def test_evaluate_settle_replays_every_stop_rule_from_full_runs(tiny_model, corpus_files):
    _, valid_file = corpus_files
    proc = call("engine.evaluate", "settle", "--model", str(tiny_model), "--n", "2", "--samples", "2", "--steps", "12",
                "--valid", str(valid_file), "--settle-grid-steps", "1,3", "--settle-grid-confidence", "0,1", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    cases = {"free", "infill_middle", "infill_start", "infill_end", "infill_scattered"}
    assert set(report["full"]) == cases and report["settings"]["steps"] == 12
    rules = {(r["settle_steps"], r["settle_confidence"]): r for r in report["rules"]}
    assert set(rules) == {(1, 0.0), (1, 1.0), (3, 0.0), (3, 1.0)}
    for k in (1, 3):  # no word of the tiny model is certain: c = 1 never stops, and changes nothing
        never = rules[k, 1.0]
        assert never["passes_saved"] == 0 and never["identical"] == 1
        assert never["cases"]["free"]["judge_ppl"] == report["full"]["free"]["judge_ppl"]
    eager, patient = rules[1, 0.0], rules[3, 0.0]  # no confidence bar: stops as soon as the words hold
    assert eager["passes_saved"] >= patient["passes_saved"] > 0
    rows = 5 * 2 * 2  # five cases, two requests of two rows
    for rule in (eager, patient):
        changed = sum(len(case["changed"]) for case in rule["cases"].values())
        assert round(1 - changed / rows, 4) == rule["identical"]
    bad = call("engine.evaluate", "settle", "--model", str(tiny_model), "--settle-grid-steps", "1,x", "--json")
    assert bad.returncode == 2 and "--settle-grid-steps takes whole numbers" in bad.stderr
    assert "Traceback" not in bad.stderr


@pytest.mark.slow
def test_bench_prints_speed_and_memory(tiny_model):
    proc = call("engine.bench", "--model", str(tiny_model), "--repeats", "1", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert [(r["steps"], r["batch"]) for r in report["runs"]] == [(200, 1), (200, 16), (50, 1), (50, 16)]
    assert all(r["denoiser_passes"] == r["steps"] and r["seconds_per_sample"] > 0 for r in report["runs"])
    assert report["peak_rss_mb"] > 0 and report["dtype"] in ("float32", "bfloat16") and report["precision_why"]
    forced = json.loads(call("engine.bench", "--model", str(tiny_model), "--repeats", "1", "--precision", "fp32",
                             "--steps", "5", "--models", str(tiny_model)).stdout)
    assert forced["precision"] == "fp32"
    rules = call("engine.bench", "--model", str(tiny_model), "--repeats", "1", "--step-rules", "--json")
    assert rules.returncode == 0, rules.stderr
    timed = {(r["step_rule"], r["steps"], r["batch"]) for r in json.loads(rules.stdout)["step_rules"]}
    assert timed == {(rule, steps, batch) for rule in STEP_RULES for steps in (10, 20, 50)
                     for batch in (1, 16)}


def test_bench_times_models_side_by_side(tiny_model):
    proc = call("engine.bench", "--models", str(tiny_model), str(tiny_model), "--steps", "3", "5", "--repeats", "1",
                "--precision", "fp32", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    rows = report["side_by_side"]
    assert report["precision"] == "fp32" and len({r["model"] for r in rows}) == 1
    assert [r["steps"] for r in rows] == [3] * 3 + [5] * 3  # three requests each (no classifier: none guided)
    assert all(r["seconds"] > 0 and 0 < r["denoiser_passes"] <= r["steps"] and r["judge_seconds"] > 0 for r in rows)
    bad = call("engine.bench", "--models", str(tiny_model), str(tiny_model), "--steps", "1", "2", "3")
    assert bad.returncode == 2 and "--steps takes one count or one per model (2), got 3" in bad.stderr


@pytest.mark.slow
def test_train_cli_reports_bad_data(tmp_path):
    proc = spawn("engine.train", "--data", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "o"))
    assert proc.returncode == 2 and "data file not found" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_bench_times_guided_samples_when_classifiers_exist(control_model):
    proc = call("engine.bench", "--model", str(control_model), "--repeats", "1", "--json")
    assert proc.returncode == 0, proc.stderr
    guided = {g["controls"]: g for g in json.loads(proc.stdout)["guided"]}
    assert set(guided) == {"pos", "tree", "spans", "semantic", "include", "pos+semantic"}
    for name, kinds in (("pos", ["pos"]), ("semantic", ["semantic"]), ("pos+semantic", ["pos", "semantic"])):
        setting = default_guidance(kinds)  # each at its kinds' default setting
        assert guided[name]["guidance"] == setting
        updates = GuidanceOptions(**setting).steps_guided(50, T) * setting["gradient_steps"]
        assert guided[name]["classifier_passes"] == len(kinds) * updates
        assert guided[name]["denoiser_passes"] == 50 + updates * (setting["reads"] == "x0_hat")


def test_evaluate_control_reports_success_fluency_cost_and_samples(control_model, tmp_path):
    targets = tmp_path / "pos.jsonl"
    targets.write_text('{"pos": ["PROPN", "AUX", "DET", "NOUN", "PUNCT"]}\n{"pos": ["PROPN", "VERB", "NOUN"]}\n'
                       '{"pos": ["NOUN"]}\n')
    args = ("engine.evaluate", "control", "--kind", "pos", "--targets", str(targets), "--n-targets", "2",
            "--samples-per-target", "2", "--steps", "6", "--model", str(control_model), "--json")
    guided, free = call(*args), call(*args, "--no-guidance")
    assert guided.returncode == 0 and free.returncode == 0, guided.stderr + free.stderr
    guided, free = json.loads(guided.stdout), json.loads(free.stdout)
    for report in (guided, free):
        assert set(report) >= {"success", "fluency_ppl", "seconds_per_sample", "passes_per_sample", "samples"}
        assert 0 <= report["success"] <= 1 and report["fluency_ppl"] > 1 and len(report["samples"]) == 4
    assert guided["samples"][0]["target"] == {"pos": ["PROPN", "AUX", "DET", "NOUN", "PUNCT"]}
    scores = [s["scores"]["pos"] for s in guided["samples"]]  # each sample's oracle score
    assert all(0 <= v <= 1 for v in scores) and abs(sum(scores) / 4 - guided["success"]) < 1e-3
    per_target = sorted([(scores[0] + scores[1]) / 2, (scores[2] + scores[3]) / 2])
    spread = guided["spread"]
    assert (spread["min"], spread["max"]) == (round(per_target[0], 4), round(per_target[1], 4))
    assert spread["min"] <= spread["q1"] <= spread["median"] <= spread["q3"] <= spread["max"]
    assert spread["fully_met"] == sum(v == 1.0 for v in per_target) / 2
    assert [len(s["text"].split()) for s in guided["samples"]] == [5, 5, 3, 3]  # the tags fix the length
    setting = default_guidance(["pos"])  # no flag given: the kind's measured setting, reported in full
    assert {name: guided["settings"][name] for name in setting} == setting
    updates = GuidanceOptions(**setting).steps_guided(6, T) * setting["gradient_steps"]
    assert guided["classifier_passes_per_sample"] == updates
    assert guided["passes_per_sample"] == 6 + updates * (1 + (setting["reads"] == "x0_hat"))
    assert free["classifier_passes_per_sample"] == 0 and free["passes_per_sample"] == 6


def test_evaluate_control_asks_each_target_on_a_template_from_its_sentence(control_model, tmp_path):
    targets, sentences = tmp_path / "semantic.jsonl", tmp_path / "compose.jsonl"
    targets.write_text('["food", ":", "Italian"]\n["eatType", ":", "pub"]\n["food", ":", "French"]\n')
    sentences.write_text('{"words_": ["Alimentum", "serves", "Italian", "food", "and", "is", "a", "pub", "."]}\n'
                         '{"words_": ["Strada", "is", "a", "pub", "near", "Burger", "King", "."]}\n'
                         '["no", "sentence"]\n')
    base = ("engine.evaluate", "control", "--kind", "semantic", "--targets", str(targets), "--steps", "4",
            "--model", str(control_model))
    proc = call(*base, "--template-from", str(sentences))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["n_used"] == 2 and [u["line"] for u in report["unusable"]] == [3]
    assert "has no sentence (words_) on line 3" in report["unusable"][0]["reason"]
    for sample, length, asked in zip(report["samples"], (9, 8), ("Italian", "pub"), strict=True):
        template = sample["template"].split()
        assert len(template) == length == len(sample["text"].split()) and template[-1] == "."
        assert 2 <= sum(w != "_" for w in template[:-1]) <= 4 and asked not in template
        kept = [(i, w) for i, w in enumerate(template) if w != "_"]
        assert all(sample["text"].split()[i] == w for i, w in kept)  # the template's words stay
    assert set(report["success_by_field"]) == {"food", "eatType"}
    proc = call(*base, "--template", "_ is a _ near _ _ .")
    assert proc.returncode == 0, proc.stderr
    samples = json.loads(proc.stdout)["samples"]
    assert len(samples) == 3 and all(s["text"].split()[1:3] == ["is", "a"] for s in samples)
    proc = call(*base, "--template", "_ .", "--template-from", str(sentences))
    assert proc.returncode == 2 and "choose one" in proc.stderr and "Traceback" not in proc.stderr


def test_evaluate_control_reports_each_unusable_line_and_goes_on(control_model, tmp_path):
    targets = tmp_path / "semantic.jsonl"
    targets.write_text('["food", ":", "Italian"]\n["food", ":", "Italian"\n["name", ":", "The", "Blue", "Lantern"]\n')
    proc = call("engine.evaluate", "control", "--kind", "semantic", "--targets", str(targets), "--steps", "4",
                "--model", str(control_model), "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["n_targets"] == 3 and report["n_used"] == 1 and report["coverage"] == round(1 / 3, 4)
    assert [u["line"] for u in report["unusable"]] == [2, 3]
    assert "not valid JSON" in report["unusable"][0]["reason"]
    assert "unknown value 'The Blue Lantern' for name" in report["unusable"][1]["reason"]
    used = report["samples"][0]["text"]
    assert report["success"] == round(("italian" in used.lower().split()) / 3, 4)  # unusable lines count as failures
    targets.write_text('["food", ":", "Italian"\n["flavour", ":", "sweet"]\n')
    proc = call("engine.evaluate", "control", "--kind", "semantic", "--targets", str(targets), "--model",
                str(control_model))
    assert proc.returncode == 2 and "none of its 2 targets can be used, e.g. line 1: not valid JSON" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_train_control_cli_saves_a_classifier_beside_the_model(tiny_model, labelled_csv, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    proc = call("engine.train_control", "--kind", "semantic", "--model", str(model), "--data", str(labelled_csv),
                "--valid", str(labelled_csv), "--max-steps", "4", "--eval-every", "2", "--hidden", "16",
               "--layers", "1", "--attention-heads", "2", "--ffn", "32")
    assert proc.returncode == 0, proc.stderr
    assert "train semantic" in proc.stderr and "held-out p(truth)" in proc.stderr
    config = json.loads((model / "control_semantic.json").read_text())
    assert config["training"]["steps"] == 4 and "food=Italian" in config["labels"]
    bad = spawn("engine.train_control", "--kind", "semantic", "--model", str(model), "--data", str(tmp_path / "no.csv"))
    assert bad.returncode == 2 and "data file not found" in bad.stderr


def test_generate_with_controls_keeps_their_length_and_reports_errors(control_model):
    proc = call("engine.generate", "--model", str(control_model), "--pos", "PROPN AUX DET NOUN PUNCT", "--semantic",
                "food=Italian", "--samples", "2", "--candidates", "2", "--steps", "6", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert [len(s["tokens"]) for s in out["samples"]] == [5, 5] and out["rows"] == 4
    assert all(set(s["control_scores"]) == {"pos", "semantic"} for s in out["samples"])
    bad = call("engine.generate", "--model", str(control_model), "--spans", "4 2 PP")
    assert bad.returncode == 2 and "spans: span [4, 2] is out of range" in bad.stderr


def test_one_request_gives_the_same_texts_and_costs_through_cli_evaluate_and_python(control_model, tmp_path):
    tags = "PROPN AUX DET NOUN PUNCT"
    cli = call("engine.generate", "--model", str(control_model), "--pos", tags, "--samples", "2", "--seed", "7",
               "--steps", "6", "--reads", "x0_hat", "--json")
    assert cli.returncode == 0, cli.stderr
    cli = json.loads(cli.stdout)
    targets = tmp_path / "pos.jsonl"
    targets.write_text(json.dumps({"pos": tags.split()}) + "\n")
    evaluated = call("engine.evaluate", "control", "--kind", "pos", "--targets", str(targets), "--samples-per-target",
                     "2", "--seed", "7", "--steps", "6", "--reads", "x0_hat", "--model", str(control_model))
    assert evaluated.returncode == 0, evaluated.stderr
    evaluated = json.loads(evaluated.stdout)
    result = Pipeline.from_pretrained(control_model).run(Request.one(
        targets=targets_from_fields({"pos": tags}), samples=2, seed=7,
        sampling=SampleOptions(steps=6, record_latents=False), guidance=GuidanceOptions(reads="x0_hat")))
    texts = [c.text for c in result.best]
    assert [s["text"] for s in cli["samples"]] == texts == [s["text"] for s in evaluated["samples"]]
    cost = result.cost
    assert (cli["denoiser_passes"], cli["classifier_passes"]) == (cost.denoiser_passes, cost.classifier_passes)
    setting = GuidanceOptions(reads="x0_hat").resolved(["pos"])  # the rest: the kind's own
    updates = setting.steps_guided(6, T) * setting.gradient_steps
    assert updates > 0
    assert evaluated["denoiser_passes_per_sample"] == cost.denoiser_passes == 6 + updates
    assert evaluated["classifier_passes_per_sample"] == cost.classifier_passes == updates
