"""The editor's and the app's limits: text no longer than the model can use (refused by size before it
is parsed), inputs of the wrong type refused by name, exact seeds, bounded disk, clean exits and
one-line errors from `python app.py`."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"  # before gradio_client (and huggingface_hub) are imported

import gradio as gr
import pytest
from gradio.utils import get_upload_folder
from gradio_client import Client

from editor import cells as cells_module
from editor import plots, runs
from editor.cells import apply_action, cells_from_text, parse_cells
from editor.form import EXACT_FLOAT, Form, GuidanceForm, whole_number
from editor.handlers import KEEP_EXPORTS
from editor.layout import build
from editor.limits import CHARS_PER_WORD, DEFAULT_LIMITS, MESSAGE_CHARS, Limits, error_message, one_line, shown
from engine.controls import KINDS, STEERED
from engine.controls.targets import build_controls, targets_from_fields
from engine.errors import CellActionError, ConfigError, EngineError, TargetError, TemplateError
from engine.pipeline import Pipeline
from engine.precision import choose_precision
from engine.request import MAX_SEED, Request
from engine.views import run_view
from tests.server import ROOT, start_app, stop_app

MANY = next(name for name in STEERED if KINDS[name].many)  # a kind that takes a list (semantic)
ONE = [name for name in STEERED if not KINDS[name].many]  # kinds that take one text (pos, tree, spans)


def assert_one_line(text: str) -> None:
    assert text and "\n" not in text and len(text) <= MESSAGE_CHARS, text


def no_split(*args, **kwargs):
    raise AssertionError("the text was split into words")


# --- 1. the row holds no more than the model writes ------------------------------------------
def test_limits_come_from_the_models_window(editor):
    assert editor.limits == Limits(words=editor.pipe.seq_len - 2, chars=CHARS_PER_WORD * editor.pipe.seq_len)
    assert (DEFAULT_LIMITS.words, DEFAULT_LIMITS.chars) == (62, 2048)  # the bundled model's window of 64


def test_set_text_refuses_a_huge_paste_by_size_before_splitting_it(editor, monkeypatch):
    page = editor.page
    row = editor.set_text("The Eagle is a _ .", None)[page.row]
    monkeypatch.setattr(cells_module, "split_words", no_split)
    started = time.perf_counter()
    out = editor.set_text("The Eagle is a pub . " * 20_000, row)  # 420,000 characters
    assert time.perf_counter() - started < 0.5
    assert set(out) == {page.msg}, "the row stays as it was"
    assert "the text is too long: 420,000 characters, at most 512" in out[page.msg]
    words = editor.set_text("a " * (editor.limits.words + 1), row)  # short, but more words than the model writes
    assert set(words) == {page.msg} and "the text is too long: 15 words, the model writes at most 14" in words[page.msg]


def test_text_of_as_many_words_as_the_model_writes_is_fine(editor):
    page, n = editor.page, editor.limits.words
    out = editor.set_text(" ".join(["pub"] * (n - 1) + ["_"]), None)
    assert len(out[page.row]["cells"]) == n and out[page.msg] == ""
    split = editor.set_text("a " * (n - 1) + "pub.", None)  # n chunks, n + 1 words once "." is split off
    assert set(split) == {page.msg} and f"{n + 1} words" in split[page.msg]


def test_cell_actions_refuse_huge_words_long_rows_and_odd_values(editor, monkeypatch):
    page, limits = editor.page, editor.limits
    row = {"cells": cells_from_text("The Eagle _")}
    monkeypatch.setattr(cells_module, "split_words", no_split)
    out = editor.cell_action({**row, "action": {"kind": "edit", "index": 2, "word": "pub" * 300_000}})
    assert out[page.row]["cells"] == row["cells"] and out[page.text] == "The Eagle _"
    assert "the word is too long: 900,000 characters, at most 512" in out[page.msg]
    monkeypatch.undo()
    full = {"cells": [{"word": "", "locked": False}] * limits.words}
    for action in ({"kind": "insert", "index": 0}, {"kind": "insert", "index": -1},
                   {"kind": "edit", "index": 0, "word": "The Eagle"}):
        out = editor.cell_action({**full, "action": action})
        assert out[page.row]["cells"] == full["cells"], action
        assert f"the row is too long: {limits.words + 1} words, the model writes at most {limits.words}" in out[
            page.msg]
    huge = {"cells": [{"word": "pub", "locked": True}] * 28_571, "action": {"kind": "toggle", "index": 0}}
    started = time.perf_counter()
    out = editor.cell_action(huge)
    assert time.perf_counter() - started < 0.5 and set(out) == {page.msg}
    assert "the row is too long: 28,571 words" in out[page.msg]
    for action, message in [({"kind": "toggle", "index": True}, "there is no cell True"),
                            ({"kind": "edit", "index": 0, "word": 7}, "a cell's word must be text, got 7"),
                            ({"kind": "edit", "index": 0, "word": ["pub"]}, "a cell's word must be text"),
                            ({"kind": ["toggle"], "index": 0}, "unknown action ['toggle']"),
                            ({"kind": "x" * 10**6, "index": 0}, "unknown action 'xxxxxxxx"),
                            ({"kind": "toggle", "index": 10**5000}, "there is no cell a 16610-bit number")]:
        with pytest.raises(CellActionError, match=re.escape(message)) as caught:
            apply_action(row["cells"], action, limits)
        assert_one_line(error_message(caught.value))


def test_rows_with_long_words_are_refused_by_characters():
    limits = Limits(words=4, chars=20)
    with pytest.raises(CellActionError, match="the row is too long: 5 words, the model writes at most 4"):
        parse_cells({"cells": [{"word": "a", "locked": True}] * 5}, limits)
    with pytest.raises(CellActionError, match="the row is too long: 21 characters, at most 20"):
        parse_cells({"cells": [{"word": "x" * 20, "locked": True}]}, limits)
    with pytest.raises(TemplateError, match="the text is too long: 21 characters"):
        cells_from_text("x" * 21, limits)


def test_generate_refuses_long_text_and_keeps_the_row(editor, monkeypatch):
    page = editor.page
    row = {"cells": cells_from_text("The Mill is a _ .")}
    monkeypatch.setattr(cells_module, "split_words", no_split)
    outputs = list(editor.generate("The Mill is a pub . " * 25_000, row, steps=5, samples=1))
    assert len(outputs) == 1 and set(outputs[0]) == {page.msg}
    assert "the text is too long: 500,000 characters" in outputs[0][page.msg]


def test_write_refuses_long_text_and_guidance_by_size_before_parsing(editor):
    for kwargs, message in [
        ({"text": "The pub is cheap . " * 26_300}, "the text is too long: 499,700 characters, at most 512"),
        ({"text": None, "tree": "The pub is cheap . " * 52_600}, "tree is too long: 999,400 characters, at most 512"),
        ({"text": None, "pos": "NOUN " * 10**5}, "pos is too long: 500,000 characters"),
        ({"text": None, "spans": "0 1 NP " * 10**5}, "spans is too long"),
        ({"text": None, MANY: ["food=Italian"] * 10**5}, f"{MANY} is too long: 1,300,000 characters"),
        ({"text": None, MANY: [""] * 10**6}, f"{MANY} is too long: 1,000,000 characters"),
    ]:
        started = time.perf_counter()
        out = editor.write(**kwargs)
        assert time.perf_counter() - started < 1.0, kwargs.keys()
        assert set(out) == {"error"} and message in out["error"], out
        assert_one_line(out["error"])


def test_messages_are_one_short_line():
    assert one_line("a\nb\r\n  c") == "a b c"
    assert len(one_line("x" * 10**6)) == MESSAGE_CHARS and one_line("x" * 10**6).endswith("…")
    nested: list = []
    for _ in range(10_000):
        nested = [nested]
    for value in (nested, 10**5000, "y" * 10**6, {"a": [1] * 10**5}, float("nan"), b"\x00" * 100):
        assert len(shown(value)) <= 60, shown(value)
    assert error_message(EngineError("")) and error_message(TargetError("a\nb")) == "a b"


def test_scrubbing_to_a_step_that_is_not_a_number_changes_nothing(editor):
    for step in (float("nan"), float("inf"), -float("inf"), True, "3", None):
        assert editor.replay.scrub(step, {"record": {"steps": 3}}, None) == {editor.page.row: gr.skip()}


# --- 3. /write: wrong types refused by name, exact seeds ----------------------------------------
@pytest.mark.parametrize("values, message", [
    ({"pos": ["NOUN", "VERB"]}, "pos must be text like"),
    ({"tree": 5}, "tree must be text like"),
    ({"spans": 3.5}, "spans must be text like"),
    ({"tree": {"a": 1}}, "tree must be text like"),
    ({MANY: 5}, f"{MANY} must be a list of texts like"),
    ({MANY: [1, 2]}, f"{MANY} must be a list of texts like"),
    ({MANY: [["food=Italian"]]}, f"{MANY} must be a list of texts like"),
    ({"weights": {"colour": 1}}, "unknown control 'colour' in the weights"),
    ({"weights": {"pos": float("nan")}}, "pos weight must be a finite number, got nan"),
    ({"weights": {"pos": float("inf")}}, "pos weight must be a finite number, got inf"),
    ({"weights": {"pos": True}}, "pos weight must be a number, got True"),
    ({"strength": float("inf")}, "guidance strength must be a finite number, got inf"),
    ({"strength": "-inf"}, "guidance strength must be a finite number, got -inf"),
    ({"strength": float("nan")}, "guidance strength must be a finite number, got nan"),
    ({"strength": False}, "guidance strength must be a number, got False"),
    ({"fluency": [0.1]}, "fluency must be a number, got [0.1]"),
    ({"fluency": float("-inf")}, "fluency must be a finite number"),
    ({"reads": 5}, "guidance reads must be one of x_t, x0_hat, got 5"),
    ({"reads": "x" * 10**6}, "guidance reads must be one of x_t, x0_hat, got 'xxxxxxxxxxx"),
    ({"steps": True}, "steps must be a whole number, got True"),
    ({"samples": False}, "samples must be a whole number, got False"),
    ({"length": [3]}, "length must be a whole number, got [3]"),
    ({"seed": True}, "seed must be a whole number, got True"),
    ({"seed": float("inf")}, "seed must be a whole number, got inf"),
    ({"seed": 2.0**53 + 2}, "seed must be a whole number written with digits: 9.0072e+15 is a float"),
    ({"seed": "1" * 100}, "seed must be a whole number, got '111111111"),
    ({"seed": 10**40}, "seed must be a whole number of at most 30 digits"),
    ({"seed": MAX_SEED + 1}, f"seed must be a whole number from 0 to {MAX_SEED}, got {MAX_SEED + 1}"),
    ({"seed": -1}, f"seed must be a whole number from 0 to {MAX_SEED}"),
    ({"text": 5}, "the text must be a template (text with _ blanks), got 5"),
])
def test_form_refuses_wrong_types_by_name(values, message):
    values = dict(values)
    text = values.pop("text", "The Mill is a _ .")
    with pytest.raises(EngineError) as caught:
        Form.from_values(text, values).request()
    assert message in str(caught.value)
    assert_one_line(error_message(caught.value))


def test_write_refuses_a_list_for_pos_instead_of_running_unguided(editor):
    out = editor.write("_ _", pos=["NOUN", "VERB"], steps=5, samples=1)
    assert set(out) == {"error"} and out["error"].startswith("pos must be text like"), out
    assert "tree must be text" in editor.write(None, tree=5)["error"]
    assert "steps must be a whole number, got True" in editor.write("_ _", steps=True)["error"]


def test_kinds_take_text_and_a_many_kind_a_list_or_one_text():
    fields = {name: KINDS[name].placeholder for name in ONE} | {MANY: ["food=Italian", "area=riverside"]}
    form = GuidanceForm.from_values(fields)
    assert {t.kind for t in form.targets()} == set(STEERED)
    assert len(GuidanceForm.from_values({MANY: "food=Italian"}).targets()) == 1
    assert GuidanceForm.from_values({name: None for name in STEERED} | {MANY: []}).targets() == ()


def test_seeds_are_read_exactly():
    big = 2**53
    seeds = [Form("The Mill is a _ .", {"seed": s}).request().seed for s in (big, big + 1, str(big + 1), " 12 ", 7.0,
                                                                       "7.0", "1e3", float(big), MAX_SEED)]
    assert seeds == [big, big + 1, big + 1, 12, 7, 7, 1000, big, MAX_SEED]
    assert Form("The Mill is a _ .", {"seed": big}).request().seed != \
        Form("The Mill is a _ .", {"seed": big + 1}).request().seed
    assert whole_number(None, "seed", 3) == 3 and EXACT_FLOAT == big


def test_seeds_above_2_to_the_53_give_different_requests_through_write(editor, monkeypatch):
    seen: list[Request] = []

    def run(request: Request) -> None:
        seen.append(request)
        raise ConfigError("stop here")

    monkeypatch.setattr(editor.pipe, "run", run)
    for seed in (2**53, 2**53 + 1, str(2**53 + 1)):
        assert editor.write("The Mill is a _ .", seed=seed) == {"error": "stop here"}
    assert [r.seed for r in seen] == [2**53, 2**53 + 1, 2**53 + 1]


def test_a_sample_with_no_words_scored_by_the_spans_oracle_is_no_crash(control_model):
    """Found by tests/test_fuzz_editor.py: a sample with no words made spaCy fail (E031) in the oracle."""
    pipe = Pipeline.from_pretrained(control_model, precision="fp32")
    (spans,) = build_controls([targets_from_fields({"spans": "4 6 PP"})], pipe.networks.control_source, {})
    assert spans.evaluate([[]]) == [0.0]  # no words: the span is not there, and nothing fails
    ed = build(pipe)[1]
    ed.close()
    out = ed.write(None, steps=1, samples=4, seed=0, spans="4 6 PP", strength=0.3)  # one step: some samples empty
    assert "error" not in out, out
    assert all("spans" in r["control_scores"] for r in out["results"])


# --- 2. disk: exports bounded, in Gradio's cache (served without a copy), removed on close ----------
@pytest.mark.slow
def test_exports_keep_the_last_runs_only(tiny_model, monkeypatch):
    ed = build(Pipeline.from_pretrained(tiny_model, precision="fp32"))[1]
    try:
        assert ed.export_dir.parent == Path(get_upload_folder())  # Gradio serves the files without a copy
        result = ed.pipe.run(Request.one("The Mill is a _ .", samples=1))
        record = runs.stored(run_view(result, ed.pipe.tokenizer), [c.to_dict() for c in result.best], number=1,
                             cells=[], text="The Mill is a _ .", settings={}, summary="", provenance={})
        monkeypatch.setattr(plots, "figures_html", lambda record: "<html></html>")  # plotly.js is 4.6 MB a copy
        paths = [ed.exports(record)[0] for _ in range(KEEP_EXPORTS + 3)]
        assert len(list(ed.export_dir.iterdir())) == KEEP_EXPORTS
        assert all(os.path.exists(p) for p in paths[3:]) and not any(os.path.exists(p) for p in paths[:3])
        hour_ago = time.time() - ed.keep_exports_s - 1
        for folder in ed.export_dir.iterdir():
            os.utime(folder, (hour_ago, hour_ago))
        newest = ed.exports(record)[0]
        assert [p.name for p in ed.export_dir.iterdir()] == [Path(newest).parent.name], "runs past their age go"
    finally:
        ed.close()
    assert not ed.export_dir.exists()


# --- 4, 5. python app.py: one-line errors, one line when it starts ------------------------------
def app_command(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "app.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          check=False, env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"})


def assert_one_line_error(proc: subprocess.CompletedProcess, message: str) -> None:
    assert proc.returncode == 2, proc
    assert proc.stdout == "" and "Traceback" not in proc.stderr and "GRADIO_SERVER_PORT" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: ") and message in proc.stderr, proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("args, message", [
    (["--port", "0"], "argument --port: must be from 1 to 65535, got 0"),
    (["--port", "70000"], "argument --port: must be from 1 to 65535, got 70000"),
    (["--port", "seven"], "argument --port: must be a whole number from 1 to 65535, got 'seven'"),
    (["--max-queue", "0"], "argument --max-queue: expected a whole number from 1"),
    (["--colour", "red"], "unrecognized arguments: --colour red"),
    (["--host", "no-such-host.invalid"], "unknown host 'no-such-host.invalid'"),
])
def test_bad_flags_are_one_line_and_exit_2(args, message):
    assert_one_line_error(app_command(*args), message)


@pytest.mark.slow
def test_a_port_in_use_is_one_line_and_exit_2():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        proc = app_command("--port", str(port))
    assert_one_line_error(proc, f"error: port {port} is in use on 127.0.0.1 (pick another with --port)")


@pytest.mark.slow
def test_a_missing_or_broken_model_is_one_line_and_exit_2(tmp_path):
    assert_one_line_error(app_command("--port", "7999", "--model", str(tmp_path / "none")), "model directory not found")
    (tmp_path / "denoiser.json").write_text("{")
    assert_one_line_error(app_command("--port", "7999", "--model", str(tmp_path)), "is not valid JSON")


@pytest.mark.slow
def test_help_lists_the_deployers_flags():
    proc = app_command("--help")
    assert proc.returncode == 0
    for flag in ("--host", "--port", "--model", "--concurrency", "--max-queue", "--cache-age", "--precision"):
        assert flag in proc.stdout


@pytest.mark.slow
def test_app_serves_quietly_bounds_uploads_and_cleans_up_on_sigterm():
    app = start_app("--cache-age", "60")
    started = f"DLM Studio: {app.url} (cpu, {choose_precision('auto')[0]})\n"  # the precision this CPU runs fastest
    try:
        deadline = time.monotonic() + 10  # the server answers a moment before the app prints its line
        while not app.log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert app.log.read_text() == started  # no share hint, no Gradio banner
        client = Client(app.url, verbose=False, analytics_enabled=False, download_files=False)
        text = "The Eagle is a _ _ ."
        row, _ = client.predict(text, api_name="/set_text")
        for seed in range(2):
            outputs = client.submit(text, row, 0, 10, 1, seed, api_name="/generate").result()
        json_file = next(o for o in outputs if isinstance(o, dict) and o.get("orig_name") == "trajectory.json")
        exports = app.exports()
        assert len(exports) == 1 and len(list(exports[0].iterdir())) == 2, "one folder a run"
        assert sorted(p.name for p in app.files()) == ["plots.html"] * 2 + ["trajectory.json"] * 2, \
            "Gradio serves the exports without copying them"
        with urllib.request.urlopen(json_file["url"], timeout=10) as response:
            assert response.status == 200 and b"\"steps\": 10" in response.read()
        assert upload_status(app.url, 17 * 1024 * 1024) == 413  # MAX_UPLOAD: 16 MB, for "load a run"
        assert upload_status(app.url, 1024) == 200
        message = client.predict("The pub is cheap . " * 26_300, api_name="/set_text")[1]
        assert "the text is too long: 499,700 characters, at most 2,048" in message
    finally:
        status = stop_app(app)
        left, files, log = app.exports(), app.files(), app.log.read_text()
        shutil.rmtree(app.tmp, ignore_errors=True)
    assert status == 0 and log == started, log  # SIGTERM: a clean exit, nothing printed
    assert not left and not files, files  # the exports by the editor, the upload by Gradio's cache expiry


def upload_status(url: str, size: int) -> int:
    boundary = "dlmstudio"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"x.txt\"\r\n"
            f"Content-Type: text/plain\r\n\r\n").encode() + b"x" * size + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(url + "gradio_api/upload", data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
