"""The editor's API through gradio_client, against `python app.py` started for this module."""

from __future__ import annotations

import html
import inspect
import os
import re

os.environ["HF_HUB_OFFLINE"] = "1"  # before gradio_client (and huggingface_hub) are imported

import pytest
from gradio_client import Client

from tests.server import app_url  # noqa: F401  (a fixture)

EAGLE = "The Eagle is a _ _ coffee shop near _ _ ."


@pytest.fixture(scope="module")
def client(app_url) -> Client:  # noqa: F811
    kwargs = {"verbose": False}
    if "analytics_enabled" in inspect.signature(Client).parameters:
        kwargs["analytics_enabled"] = False
    return Client(app_url, **kwargs)


def assert_keeps(words: list[str], template: str) -> None:
    want = template.split()
    assert len(words) == len(want), (words, template)
    for i, w in enumerate(want):
        if w != "_":
            assert words[i] == w, f"position {i}: {words[i]!r} instead of the locked {w!r} in {words}"


def test_write_keeps_locked_words(client):
    out = client.predict(EAGLE, 0, 30, 3, 7, api_name="/write")
    assert "error" not in out, out
    assert len(out["results"]) == 3
    assert out["network_passes"] == 30
    assert out["seconds"] > 0
    for result in out["results"]:
        assert result["text"] == " ".join(result["words"])
        assert_keeps(result["words"], EAGLE)
        assert result["checks"]["locked words kept"] is True
        assert result["checks"]["exactly 12 words"] is True
        assert result["judge_ppl"] > 0
    ppl = [r["judge_ppl"] for r in out["results"]]
    assert ppl == sorted(ppl), "results are ranked best (lowest judge perplexity) first"


def test_write_is_reproducible_for_a_seed(client):
    a = client.predict(EAGLE, 0, 20, 2, 3, api_name="/write")
    b = client.predict(EAGLE, 0, 20, 2, 3, api_name="/write")
    assert [r["text"] for r in a["results"]] == [r["text"] for r in b["results"]]


def test_write_ellipsis_blank_keeps_both_ends(client):
    out = client.predict("Blue Spice serves ... food .", 0, 20, 3, 0, api_name="/write")
    assert len(out["results"]) == 3  # the best 3 of the lengths tried
    for result in out["results"]:
        words = result["words"]
        assert words[:3] == ["Blue", "Spice", "serves"] and words[-2:] == ["food", "."], words


def test_write_unknown_word_is_an_error_with_suggestion(client):
    out = client.predict("The Eagle is a _ coffe shop .", api_name="/write")
    assert set(out) == {"error"}
    assert "'coffe'" in out["error"] and "coffee" in out["error"], out["error"]


def test_write_conflicting_controls_is_an_error(client):
    out = client.predict("The Eagle is a _ .", 5, api_name="/write")
    assert "conflicting controls" in out.get("error", ""), out


def test_write_with_controls_scores_them(client):
    out = client.predict("The Eagle is a _ _ _ .", 0, 30, 2, 1, pos="", tree="", spans="3 5 NP",
                         semantic=["food=Italian"], strength=0.3, api_name="/write")
    assert "error" not in out, out
    assert out["classifier_passes"] == 29 * 3 * 2  # two steered controls, 3 steps at each of 29 steps
    for result in out["results"]:
        assert_keeps(result["words"], "The Eagle is a _ _ _ .")
        assert set(result["control_scores"]) == {"spans", "semantic"}
    bad = client.predict("_ _ _", pos="NOUN VERB", api_name="/write")
    assert "conflicting controls: pos asks for 2 words" in bad["error"]


def test_set_text_makes_cells(client):
    row, message = client.predict("The Eagle is a _ ... .", api_name="/set_text")
    assert message == ""
    assert row["cells"] == [{"word": "The", "locked": True}, {"word": "Eagle", "locked": True},
                            {"word": "is", "locked": True}, {"word": "a", "locked": True},
                            {"word": "", "locked": False}, {"word": "...", "locked": False},
                            {"word": ".", "locked": True}]
    assert row["html"].count('class="cell locked"') == 5
    assert 'class="row editing"' in row["html"]


def test_cell_action_edits_the_row(client):
    row, _ = client.predict(EAGLE, api_name="/set_text")

    def act(value: dict, **action) -> tuple[dict, str, str]:
        return client.predict({**value, "action": action}, api_name="/cell_action")

    row, text, message = act(row, kind="toggle", index=6)
    assert (text, message) == ("The Eagle is a _ _ _ shop near _ _ .", "")
    assert row["cells"][6] == {"word": "coffee", "locked": False}
    row, text, message = act(row, kind="toggle", index=6)
    assert text == EAGLE
    row, text, message = act(row, kind="edit", index=4, word="family")
    assert text == "The Eagle is a family _ coffee shop near _ _ ." and message == ""
    row, text, _ = act(row, kind="delete", index=5)
    assert text == "The Eagle is a family coffee shop near _ _ ."
    row, text, _ = act(row, kind="insert", index=-1)
    assert text == "The Eagle is a family coffee shop near _ _ . _"
    row, text, message = act(row, kind="toggle", index=99)
    assert "there is no cell 99" in message and 'class="msg error"' in message
    assert text == "The Eagle is a family coffee shop near _ _ . _"  # unchanged
    _, _, message = act(row, kind="toggle", index=8)  # a blank: nothing to lock
    assert "no word to lock" in message


def test_generate_streams_frames_then_results(client):
    row, _ = client.predict(EAGLE, api_name="/set_text")
    job = client.submit(EAGLE, row, 0, 30, 2, 5, api_name="/generate")
    streamed = list(job)  # blocks until the run ends
    outputs = job.outputs()
    assert job.status().success
    assert len(outputs) == len(streamed) >= 2
    steps = [int(re.search(r'data-step="(\d+)"', out[0]["html"]).group(1)) for out in outputs]
    frames, final = outputs[:-1], outputs[-1]
    assert len(set(steps[:-1])) >= 20, f"only {len(set(steps[:-1]))} distinct intermediate steps: {steps}"
    assert steps == sorted(steps) and steps[-1] == 29
    for out in frames:
        assert 'class="row animating"' in out[0]["html"]
        assert out[2] == {"__type__": "update"}, "frames leave the results table alone"
    row_out, message, table = final[0], final[1], final[2]
    assert "2 samples, 30 steps" in message
    assert row_out["cells"] == row["cells"]
    assert len(table["data"]) == 2
    for _rank, text, _ppl, checks in table["data"]:
        assert_keeps(text.split(), EAGLE)
        assert "✓ locked words kept" in checks
    assert final[3]["maximum"] == 30 and final[3]["interactive"] is True

    # The run is kept in this client's session: scrub shows a recorded step.
    scrubbed = client.predict(10, row_out, api_name="/scrub")
    assert 'data-step="9"' in scrubbed[0]["html"]


def test_generate_unknown_word_reports_error(client):
    template = "The Eagle is a _ coffe shop ."
    row, _ = client.predict(template, api_name="/set_text")
    job = client.submit(template, row, 0, 20, 2, 0, api_name="/generate")
    job.result()
    outs = job.outputs()
    assert len(outs) == 1
    row_out, message = outs[0][0], outs[0][1]
    assert 'class="msg error"' in message
    assert "'coffe'" in html.unescape(message) and "coffee" in message
    assert row_out["cells"] == row["cells"]
