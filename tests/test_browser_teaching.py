"""The forward-process tab and presentation mode as a teacher uses them, in headless Chromium
against `python app.py`: the t slider and the status line on one scale, typed times in and out of
range, Play at the pace asked, noise read as words, and a projector's 1280x720 in large type.
"""

from __future__ import annotations

import itertools
import json

import pytest
from playwright.sync_api import Page

from tests.browser import EAGLE, assert_every_request_was_local, set_slider, type_template, wait_results
from tests.server import ROOT

pytestmark = pytest.mark.slow  # headless Chromium against a real app server

T = json.loads((ROOT / "assets/model/denoiser.json").read_text())["config"]["T"]  # the app's schedule
POINTS = 50  # times the tab shows between 0 and T (editor.teach.POINTS)
SENTENCE = "The Eagle is a cheap coffee shop near the river ."
SPECIAL = {"PAD", "UNK", "START", "END"}


def noise_it(page: Page, sentence: str = SENTENCE) -> None:
    page.click("#tab-teach-button")
    page.locator("#teach-text textarea").fill(sentence)
    page.click("#teach-noise")
    page.locator("#teach-row .row[data-mode=noising]").wait_for()
    page.wait_for_function("() => !document.querySelector('#teach-t input[type=range]').disabled")


def shown_t(page: Page) -> int:
    """The t the status line under the row gives."""
    return int(page.locator("#teach-row .status b.t").inner_text())


def slider_t(page: Page) -> float:
    return float(page.locator("#teach-t input[type=number]").input_value())


def type_t(page: Page, value: int) -> None:
    """Type a time into the slider's number box and leave it (Gradio sends a typed value on blur)."""
    box = page.locator("#teach-t input[type=number]")
    box.fill(str(value))
    box.blur()


def wait_shown_t(page: Page, values: set[int]) -> int:
    page.wait_for_function("(vs) => { const b = document.querySelector('#teach-row .status b.t');"
                           " return b && vs.includes(parseInt(b.innerText, 10)); }", arg=sorted(values))
    return shown_t(page)


def wait_slider(page: Page, value: int) -> None:
    page.wait_for_function("(v) => document.querySelector('#teach-t input[type=number]').value === String(v)",
                           arg=value)


# --- the forward-process tab ----------------------------------------------------------------
def test_the_t_slider_and_the_status_line_speak_the_same_scale(open_page):
    page = open_page()
    noise_it(page)
    rng = page.locator("#teach-t input[type=range]")
    assert (rng.get_attribute("min"), rng.get_attribute("max")) == ("0", str(T)), "the slider runs over the schedule"
    assert shown_t(page) == 0 and f"/ {T}" in page.locator("#teach-row .status").inner_text()
    box = rng.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] / 2)
    t = wait_shown_t(page, set(range(1, T + 1)))
    assert 600 < t < 1400 and slider_t(page) == t, (t, slider_t(page))
    type_t(page, 800)  # a time the tab shows
    assert wait_shown_t(page, {800}) == 800
    wait_slider(page, 800)
    type_t(page, 500)  # between two shown times: the nearer one, and the slider says which
    step = T // POINTS
    t = wait_shown_t(page, {500 // step * step, (500 // step + 1) * step})
    wait_slider(page, t)


def test_a_time_out_of_range_is_refused_with_a_message_and_the_view_stays(open_page):
    page = open_page()
    noise_it(page)
    type_t(page, 800)
    wait_shown_t(page, {800})
    row = page.locator("#teach-row .row").inner_html()
    for bad in (T * 10, -T // POINTS):
        type_t(page, bad)
        page.locator("#teach-message .msg.error").wait_for()
        text = page.locator("#teach-message").inner_text()
        assert f"from 0 to {T}" in text and str(bad) in text, text
        wait_slider(page, 800)  # the slider goes back to the time shown
        assert shown_t(page) == 800 and page.locator("#teach-row .row").inner_html() == row
        assert page.locator(".toast-body").count() == 0, "no bare Gradio error beside the tab's own message"
        type_t(page, 800)  # a good time clears the message
        page.wait_for_function("() => !document.querySelector('#teach-message .msg.error')")


def test_play_draws_the_steps_at_the_pace_asked(open_page):
    page = open_page()
    page.click("#tab-settings-button")
    set_slider(page, "speed", 10)
    noise_it(page)
    page.evaluate("""() => {  // each step the row draws and when, after the one shown before Play
        window.__frames = [[document.querySelector('#teach-row .row').dataset.step, null]];
        new MutationObserver(() => {
            const row = document.querySelector('#teach-row .row');
            const step = row && row.dataset.step;
            const last = window.__frames[window.__frames.length - 1];
            if (step && (!last || last[0] !== step)) window.__frames.push([step, performance.now()]);
        }).observe(document.querySelector('#teach-row'), {subtree: true, childList: true, attributes: true});
    }""")
    page.click("#teach-play")
    page.wait_for_function(f"() => document.querySelector('#teach-row .row').dataset.step === '{POINTS}'",
                           timeout=60_000)
    frames = page.evaluate("() => window.__frames")[1:]
    assert [int(step) for step, _ in frames] == list(range(1, POINTS + 1)), "every step drawn, in order"
    gaps = sorted(b[1] - a[1] for a, b in itertools.pairwise(frames))
    assert 80 <= gaps[len(gaps) // 2] <= 120, f"median gap {gaps[len(gaps) // 2]:.0f} ms at 10 steps a second"
    span = frames[-1][1] - frames[0][1]  # a stall on a busy machine may bunch a few frames, never all
    assert span >= 0.5 * 100 * (POINTS - 1), f"{POINTS} frames in {span:.0f} ms at 10 steps a second"
    page.wait_for_function(f"() => (document.querySelector('#teach-plot .gtitle') || {{}}).textContent"
                           f"?.includes('t = {T}:')")  # the latent plot follows Play to its end


def test_noise_reads_as_words_never_as_special_tokens(open_page):
    page = open_page()
    noise_it(page)
    rng = page.locator("#teach-t input[type=range]").bounding_box()
    for fraction in (0.5, 0.8, 1.0):  # the far right: pure noise
        before = page.locator("#teach-row .row").get_attribute("data-step")
        page.mouse.click(rng["x"] + min(rng["width"] * fraction, rng["width"] - 2), rng["y"] + rng["height"] / 2)
        page.wait_for_function("(s) => document.querySelector('#teach-row .row').dataset.step !== s", arg=before)
        t = shown_t(page)
        words = page.locator("#teach-row .cell .w").all_inner_texts()
        assert len(words) == len(SENTENCE.split()), words
        assert not SPECIAL & set(words), f"t = {t}: special tokens shown as words: {words}"
    assert t == T and "Pure noise" in page.locator("#teach-row .caption").inner_text()
    page.wait_for_function(f"() => (document.querySelector('#teach-plot .gtitle') || {{}}).textContent"
                           f"?.includes('t = {T}:')")
    labels = page.locator("#teach-plot .textpoint text").all_text_contents()
    assert labels and not SPECIAL & set(labels), f"the latent plot labels noise with special tokens: {labels}"


# --- presentation mode on a projector -------------------------------------------------------
def one_line_and_caption_in_view(page: Page, row: str) -> dict:
    return page.evaluate("""(row) => {
        const cells = Array.from(document.querySelectorAll(row + ' .row .cell'));
        const caption = document.querySelector(row + ' .caption').getBoundingClientRect();
        return {tops: [...new Set(cells.map(c => Math.round(c.getBoundingClientRect().top)))],
                size: parseFloat(getComputedStyle(cells[0]).fontSize), captionBottom: caption.bottom,
                height: window.innerHeight};
    }""", row)


def test_presentation_mode_keeps_the_row_on_one_line_and_the_caption_in_view(open_page):
    page = open_page(viewport={"width": 1280, "height": 720})
    page.locator("#present input").check()
    page.wait_for_function("() => document.body.classList.contains('present')")
    noise_it(page)
    shown = one_line_and_caption_in_view(page, "#teach-row")
    assert len(shown["tops"]) == 1, f"the row wraps onto {len(shown['tops'])} lines: {shown}"
    assert shown["size"] >= 20 and shown["captionBottom"] <= shown["height"], shown
    page.click("#tab-write-button")
    type_template(page, EAGLE)
    page.click("#generate")
    wait_results(page)
    page.evaluate("() => window.scrollTo(0, 0)")
    shown = one_line_and_caption_in_view(page, "#token-row")
    assert len(shown["tops"]) == 1, f"the row wraps onto {len(shown['tops'])} lines: {shown}"
    assert shown["size"] >= 20 and shown["captionBottom"] <= shown["height"], shown


def test_every_request_went_to_the_local_server(open_page, app_url):
    assert_every_request_was_local(open_page)
