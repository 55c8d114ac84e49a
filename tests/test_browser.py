"""End-to-end tests of the editor page in headless Chromium (Playwright), against `python app.py`.

Every page the tests open records the URLs it requests; the last test checks that all of them went
to the local server (the page must load nothing from outside).
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
import time
from pathlib import Path

import pytest
from playwright.sync_api import Page
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.browser import (
    EAGLE,
    EDIT_CELLS,
    RUN_TIMEOUT_MS,
    STEP_RECORDER,
    VIEWPORT,
    assert_every_request_was_local,
    assert_locked_kept,
    click_cell,
    current_step,
    every_step,
    expected_cells,
    locked_count,
    result_rows,
    row_cells,
    set_slider,
    type_template,
    wait_results,
    wait_row,
)
from tests.server import ROOT

pytestmark = pytest.mark.slow  # headless Chromium against a real app server


# --- tests ---------------------------------------------------------------------------------
def test_lock_cells_generate_stream_and_keep_locked_words(open_page):
    page = open_page()
    every_step(page)  # a whole trajectory
    type_template(page, EAGLE)
    assert locked_count(page) == 8
    box = page.locator("#template textarea")

    click_cell(page, 6)  # "coffee"
    page.wait_for_function("(sel) => document.querySelectorAll(sel).length === 7",
                           arg="#token-row .row.editing .cell.locked")
    assert locked_count(page) == 7
    assert box.input_value() == "The Eagle is a _ _ _ shop near _ _ ."
    click_cell(page, 6)  # lock it again: the word was remembered
    page.wait_for_function("(sel) => document.querySelectorAll(sel).length === 8",
                           arg="#token-row .row.editing .cell.locked")
    assert box.input_value() == EAGLE

    click_cell(page, 8)  # unlock "near": the model may rewrite it
    template = "The Eagle is a _ _ coffee shop _ _ _ ."
    want = expected_cells(EAGLE)
    want[8] = ["near", False]  # an unlocked word is remembered (clicking it locks it again)
    wait_row(page, want)
    assert locked_count(page) == 7
    assert box.input_value() == template

    page.evaluate(STEP_RECORDER)
    page.click("#generate")
    rows = wait_results(page)
    steps = page.evaluate("window.__steps")
    assert len(set(steps)) >= 20, f"only {len(set(steps))} distinct steps streamed: {steps}"
    assert [int(s) for s in steps] == sorted(int(s) for s in steps), f"steps out of order: {steps}"
    assert steps[-1] == "49"
    assert all("/ 50" in s for s in page.evaluate("window.__status"))
    assert len(rows) == 4  # the samples slider's default
    assert_locked_kept(rows, template)
    assert "4 samples, 50 steps" in page.locator("#message").inner_text()


def test_guidance_panel_steers_and_scores_each_control(open_page):
    page = open_page()
    page.click("#tab-guidance-button")
    tags = "PROPN AUX DET ADJ NOUN ADP DET NOUN PUNCT"
    page.locator("#ctl-pos textarea").fill(tags)
    pick_semantic(page, "food=Italian")
    page.click("#generate")
    rows = wait_results(page)
    assert len(rows) == 4
    for rank, text, _ppl, checks in (row[:4] for row in rows):
        assert len(text.split()) == len(tags.split()), f"result #{rank} {text!r}: the tags fix the length"
        assert "pos " in checks and "semantic " in checks, f"result #{rank}: checks say {checks!r}"
    assert "guide passes" in page.locator("#message").inner_text()
    page.wait_for_function("() => document.querySelector('#scores').textContent.includes('pos: guide belief')")


def test_meaning_at_the_pages_defaults_gets_the_measured_setting(open_page):
    """A user who asks for a meaning and presses Generate, touching nothing else, gets the semantic
    control's measured setting (strength 2.0 over the whole schedule): on the bundled model all four
    results of this template say "Italian" (at the sliders' strength 0.3, one of four did)."""
    page = open_page()
    template = "_ _ _ is a _ _ near _ _ ."
    type_template(page, template)
    pick_semantic(page, "food=Italian")
    switch = page.locator("#ctl-measured input")
    assert switch.is_checked() and page.locator("#ctl-strength").is_hidden()  # no slider to set
    page.click("#generate")
    rows = wait_results(page)
    assert len(rows) == 4
    assert_locked_kept(rows, template)
    italian = [text for _rank, text, *_ in rows if "Italian" in text.split()]
    assert len(italian) >= 3, f"{len(italian)} of 4 results say Italian: {[row[1] for row in rows]}"
    assert "guide passes" in page.locator("#message").inner_text()
    # switched off, the sliders show and steer: strength 0 turns the gradient off
    switch.uncheck()
    page.locator("#ctl-strength input[type=number]").wait_for(state="visible")
    assert page.locator("#ctl-fluency").is_visible() and page.locator("#ctl-reads").is_visible()
    set_slider(page, "ctl-strength", 0)
    page.click("#generate")
    page.wait_for_function("""() => { const info = document.querySelector('#message .msg.info');
                                      return info && !info.innerText.includes('guide passes'); }""",
                           timeout=RUN_TIMEOUT_MS)  # the run's summary: denoiser passes alone
    assert len(wait_results(page)) == 4


# Records (diffusion step, left-to-right words written) each time either changes.
COMPARE_RECORDER = """() => {
  window.__both = [];
  const record = () => {
    const row = document.querySelector('#token-row .row.animating');
    const written = document.querySelector('#ar-row .row[data-mode=written]');
    const now = [row ? row.getAttribute('data-step') : null,
                 written ? written.querySelectorAll('.cell.free:not(.end)').length : null];
    const last = window.__both[window.__both.length - 1];
    if (!last || last[0] !== now[0] || last[1] !== now[1]) window.__both.push(now);
  };
  new MutationObserver(record).observe(document.body, {subtree: true, childList: true, attributes: true});
}"""


def pick_semantic(page: Page, value: str) -> None:
    page.click("#tab-guidance-button")
    semantic = page.locator("#ctl-semantic input")
    semantic.click()
    semantic.fill(value[:-3])
    page.locator("#ctl-semantic ul[role=listbox] li", has_text=value).first.click()
    page.keyboard.press("Escape")


def test_compare_with_left_to_right_streams_both_ways_and_tables_them(open_page):
    page = open_page()
    template = "The Eagle is a _ _ _ near _ _ ."
    type_template(page, template)
    pick_semantic(page, "food=Italian")
    page.click("#tab-settings-button")
    page.locator("#compare input").check()
    page.evaluate(COMPARE_RECORDER)
    page.click("#generate")
    wait_results(page)
    page.wait_for_function("""() => document.querySelectorAll(
        '#compare-table [role=gridcell][data-row="1"]').length > 0""", timeout=RUN_TIMEOUT_MS)
    rows = result_rows(page, "#compare-table")
    assert [row[0] for row in rows] == ["diffusion", "FUDGE"], rows
    diffusion, fudge = rows
    assert_locked_kept([["1", diffusion[1], diffusion[3], diffusion[4]]], template)
    assert fudge[1].startswith("The Eagle is a") and len(fudge[1].split()) == len(template.split())
    assert "semantic" in diffusion[2] and "semantic" in fudge[2] and "locked words kept" in fudge[4]
    assert float(diffusion[5]) > 0 and float(fudge[5]) > 0
    both = page.evaluate("window.__both")
    mid_run = [words for step, words in both if step is not None and int(step) < 49 and words is not None]
    assert len(set(mid_run)) >= 3, f"the left-to-right side did not stream during the diffusion run: {both}"
    assert page.locator("#ar-row .row[data-mode=written] .cell.locked").count() == 4  # The Eagle is a
    assert "not guaranteed" in page.locator("#ar-row .status").inner_text()


def test_scrub_slider_shows_recorded_steps(open_page):
    page = open_page()
    every_step(page)  # a whole trajectory
    type_template(page, EAGLE)
    page.click("#generate")
    wait_results(page)
    assert current_step(page) == "49"
    scrub = page.locator("#scrub input[type=range]")
    number = page.locator("#scrub input[type=number]")
    assert scrub.is_enabled()
    assert scrub.get_attribute("max") == "50"
    box = scrub.bounding_box()

    seen = []
    for fraction in (0.25, 0.7):
        before = current_step(page)
        page.mouse.move(box["x"] + box["width"] * fraction, box["y"] + box["height"] / 2)
        page.mouse.down()
        page.mouse.up()  # the server answers `release`
        page.wait_for_function("(before) => { const r = document.querySelector('#token-row .row.animating');"
                               "  return r && r.getAttribute('data-step') !== before; }", arg=before)
        value = int(number.input_value())
        page.wait_for_function("(v) => document.querySelector('#token-row .row.animating')"
                               ".getAttribute('data-step') === String(v)", arg=value - 1)
        assert page.locator("#token-row .status").inner_text().startswith(f"step {value} / 50")
        seen.append((value, page.locator("#token-row .row.animating").inner_html()))
    (v1, html1), (v2, html2) = seen
    assert 1 < v1 < v2 < 50, seen
    assert html1 != html2

    page.locator("#token-row .status a.to-edit").click()  # back to editing the template
    wait_row(page, expected_cells(EAGLE))


def test_unknown_word_shows_error_and_keeps_text_and_row(open_page):
    page = open_page()
    template = "The Eagle is a _ coffe shop ."
    type_template(page, template)
    page.click("#generate")
    error = page.locator("#message .msg.error")
    error.wait_for()
    text = error.inner_text()
    assert "'coffe'" in text and "did you mean" in text and "coffee" in text, text
    assert page.locator("#template textarea").input_value() == template
    time.sleep(0.5)  # nothing else may arrive
    assert row_cells(page) == expected_cells(template)
    assert page.locator("#token-row .row.animating").count() == 0
    assert result_rows(page) == []
    assert page.locator("#message .msg.info").count() == 0


def test_stop_halts_a_long_run(open_page):
    page = open_page()
    type_template(page, EAGLE)
    set_slider(page, "steps", 200)
    page.evaluate(STEP_RECORDER)
    started = time.monotonic()
    page.click("#generate")
    page.wait_for_function("window.__steps.length >= 5", timeout=RUN_TIMEOUT_MS)
    page.click("#stop")
    time.sleep(0.5)  # frames already on the wire may still land
    stopped_at = current_step(page)
    assert stopped_at is not None
    time.sleep(1.5)
    assert current_step(page) == stopped_at, "frames kept coming after Stop"
    assert int(stopped_at) < 199
    assert all("/ 200" in s for s in page.evaluate("window.__status"))
    # A 200-step run takes about 200/30 s; wait past that: the stopped run must never deliver results.
    time.sleep(max(0.0, started + 8.0 - time.monotonic()))
    assert current_step(page) == stopped_at
    assert page.locator("#message .msg.info").count() == 0
    assert result_rows(page) == []

    # The page is usable again: a short run completes.
    set_slider(page, "steps", 10)
    page.locator("#template textarea").type(" ")  # back to an editable row (the text box still holds EAGLE)
    wait_row(page, expected_cells(EAGLE))
    page.click("#generate")
    rows = wait_results(page)
    assert_locked_kept(rows, EAGLE)
    assert "10 steps" in page.locator("#message").inner_text()


CONCURRENT = [EAGLE, "_ _ _ is a pub in the city centre .", "There is a cheap _ called _ _ near the river .",
              "Blue Spice is a _ _ near _ _ ."]


def test_four_pages_generate_at_once(open_page):
    pages = [open_page() for _ in CONCURRENT]
    for page, template in zip(pages, CONCURRENT, strict=True):
        every_step(page)  # a whole trajectory on each
        type_template(page, template)
        page.evaluate(STEP_RECORDER)
    for page in pages:
        page.click("#generate")
    for page, template in zip(pages, CONCURRENT, strict=True):
        rows = wait_results(page, timeout=90_000)
        assert len(rows) == 4
        assert_locked_kept(rows, template)  # each page got its own template's results
        steps = page.evaluate("window.__steps")
        assert len(set(steps)) >= 20, f"{template!r}: only {len(set(steps))} distinct steps: {steps}"
        assert steps[-1] == "49"


def test_screenshot_of_a_finished_run(open_page, tmp_path):
    """Saves the screenshot into the test's own folder; with UPDATE_SCREENSHOT=1 into docs/ (the README's)."""
    page = open_page()
    every_step(page)  # a whole trajectory
    type_template(page, EAGLE)
    page.click("#generate")
    rows = wait_results(page)
    for plot in ("#heatmap", "#projection", "#scores"):
        page.wait_for_selector(f"{plot} .js-plotly-plot .main-svg")
    time.sleep(0.5)  # let the plots finish their layout
    path = ROOT / "docs" / "screenshot.png" if os.environ.get("UPDATE_SCREENSHOT") == "1" else tmp_path / "shot.png"
    page.screenshot(path=str(path), full_page=True)
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert width == VIEWPORT["width"] and height >= VIEWPORT["height"] // 2, (width, height)

    # The exported trajectory is this run's: 50 steps, best sample first.
    with page.expect_download() as download:
        page.click("#export-json")
    record = json.loads(Path(download.value.path()).read_text())["record"]
    assert record["steps"] == 50
    final = [w for w in record["samples"][0]["frames"][-1]["words"] if w not in ("START", "END", "PAD")]
    assert " ".join(final) == rows[0][1]

    # "Use this" copies the chosen (first) result into the row, every word locked.
    page.click("#use")
    wait_row(page, [[w, True] for w in rows[0][1].split()])
    assert page.locator("#template textarea").input_value() == rows[0][1]
    assert "copied into the row" in page.locator("#message .msg.info").inner_text()


def test_double_click_types_a_word(open_page):
    """Double-click a blank at a person's speed and type into it: the cell holds that word, locked
    (the first click of a double-click must not also toggle the cell)."""
    page = open_page()
    type_template(page, EAGLE)
    page.on("dialog", lambda dialog: pytest.fail(f"the page opened a dialog: {dialog.message}"))
    box = page.locator(f'{EDIT_CELLS}[data-index="4"]').bounding_box()
    page.mouse.move(box["x"] + 8, box["y"] + box["height"] / 2)
    page.mouse.down(click_count=1)
    page.mouse.up(click_count=1)
    time.sleep(0.15)  # a person's double-click
    page.mouse.down(click_count=2)
    page.mouse.up(click_count=2)
    page.locator("#token-row .cell input.cell-input").wait_for()
    page.keyboard.type("family")
    page.keyboard.press("Enter")
    want = expected_cells(EAGLE)
    want[4] = ["family", True]
    with contextlib.suppress(PlaywrightTimeoutError):
        wait_row(page, want, timeout=5_000)
    message = page.locator("#message").inner_text()
    assert row_cells(page) == want, f"the typed word did not land; message: {message!r}"
    assert page.locator("#template textarea").input_value() == "The Eagle is a family _ coffee shop near _ _ ."


def test_every_request_went_to_the_local_server(open_page, app_url):
    assert_every_request_was_local(open_page)
