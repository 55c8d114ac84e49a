"""A new user's first walk through the editor page, in headless Chromium against `python app.py`:
quick clicks on the row, pasting into the text box, Vary on a finished run and on a copied result,
the finished row's status line, and the history's numbering in a fresh session.
"""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import Page

from tests.browser import (
    EAGLE,
    EDIT_CELLS,
    RUN_TIMEOUT_MS,
    STEP_RECORDER,
    assert_every_request_was_local,
    click_cell,
    drag_slider,
    every_step,
    expected_cells,
    generate,
    result_rows,
    row_cells,
    set_slider,
    type_template,
    wait_new_results,
    wait_results,
    wait_row,
    wait_text,
)

pytestmark = pytest.mark.slow  # headless Chromium against a real app server

LETTERS = "a b c d e f g h i j"


def message(page: Page) -> str:
    return page.locator("#message").inner_text()


def double_click(page: Page, index: int) -> None:
    """Double-click a cell at a person's speed."""
    page.mouse.move(0, 0)
    box = page.locator(f'{EDIT_CELLS}[data-index="{index}"] span.w').bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down(click_count=1)
    page.mouse.up(click_count=1)
    time.sleep(0.15)
    page.mouse.down(click_count=2)
    page.mouse.up(click_count=2)


def test_quick_clicks_on_several_cells_each_toggle_their_lock(open_page):
    page = open_page()
    type_template(page, LETTERS)
    for index in range(1, 8):  # a click every ~200 ms, quicker than one click waits to rule out a double-click
        click_cell(page, index)
        time.sleep(0.2)
    want = [[w, i not in range(1, 8)] for i, w in enumerate(LETTERS.split())]
    wait_row(page, want)
    wait_text(page, "a _ _ _ _ _ _ _ i j")

    double_click(page, 8)  # a double-click types into its cell, and toggles nothing
    page.locator("#token-row .cell input.cell-input").wait_for()
    time.sleep(0.5)  # past the wait for a second click: a toggle of cell 8 would redraw the row and end the typing
    page.keyboard.type("x")
    page.keyboard.press("Enter")
    want[8] = ["ix", True]  # typing goes on from the cell's word
    wait_row(page, want)
    wait_text(page, "a _ _ _ _ _ _ _ ix j")
    click_cell(page, 1)  # then a click on another cell and at once a double-click on the next
    double_click(page, 2)
    page.locator("#token-row .cell input.cell-input").wait_for()
    page.wait_for_function(f"""() => document.querySelector('{EDIT_CELLS}[data-index="1"]')
        .getAttribute('aria-pressed') === 'true'""")
    page.locator("#token-row .cell input.cell-input").wait_for()  # typing again once the row is drawn
    page.keyboard.type("y")
    page.keyboard.press("Enter")
    want[1] = ["b", True]
    want[2] = ["cy", True]
    wait_row(page, want)
    wait_text(page, "a b cy _ _ _ _ _ ix j")
    assert "error" not in page.locator("#message").inner_html()


def test_pasting_filling_or_deleting_in_the_text_box_updates_the_row(open_page):
    page = open_page()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    box = page.locator("#template textarea")
    box.fill("The Eagle is a _ .")  # no key typed
    wait_row(page, expected_cells("The Eagle is a _ ."))

    pasted = "Blue Spice is a _ _ near _ ."
    page.evaluate("(text) => navigator.clipboard.writeText(text)", pasted)
    box.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Control+V")  # a real paste
    wait_text(page, pasted)
    wait_row(page, expected_cells(pasted))

    box.press("End")
    for _ in range(2):
        box.press("Backspace")  # deletes " ."
    wait_row(page, expected_cells("Blue Spice is a _ _ near _"))
    assert "type a sentence" not in page.locator("#token-row").inner_text()


def test_vary_right_after_generate_rewords_the_finished_sentence(open_page):
    page = open_page()
    first = generate(page, EAGLE, steps=20)
    best = first[0][1].split()

    page.click("#tab-settings-button")
    set_slider(page, "vary-strength", 0.1)  # barely noised: the variations stay near the sentence shown
    page.click("#vary")
    rows = wait_new_results(page, first)
    template = EAGLE.split()
    blanks = [i for i, w in enumerate(template) if w == "_"]
    changed = 0
    for _rank, text, _ppl, checks in (row[:4] for row in rows):
        words = text.split()
        assert len(words) == len(template) and "✓ locked words kept" in checks, text
        assert all(words[i] == w for i, w in enumerate(template) if w != "_"), text
        changed += sum(words[i] != best[i] for i in blanks)
    assert changed <= len(blanks) * len(rows) // 2, f"the variations are not of {first[0][1]!r}: {rows}"


def test_vary_after_use_this_changes_only_the_unlocked_words(open_page):
    page = open_page()
    first = generate(page, EAGLE, steps=20)
    page.click("#use")
    sentence = first[0][1]
    words = sentence.split()
    wait_row(page, [[w, True] for w in words])

    page.click("#vary")  # every word locked: nothing is left to vary, and nothing runs
    page.locator("#message .msg.error").wait_for()
    assert "every word is locked" in message(page), message(page)
    time.sleep(1.0)
    assert row_cells(page) == [[w, True] for w in words] and result_rows(page) == first

    free = [4, 5, 9, 10]  # the words the model wrote into the template's blanks
    for i in free:
        click_cell(page, i)
        page.wait_for_function(f"""() => document.querySelector('{EDIT_CELLS}[data-index="{i}"]')
            .getAttribute('aria-pressed') === 'false'""")
    page.click("#vary")  # at the default strength, 0.6
    rows = wait_new_results(page, first)
    for _rank, text, _ppl, checks in (row[:4] for row in rows):
        out = text.split()
        assert len(out) == len(words) and "✓ locked words kept" in checks, text
        assert all(out[i] == w for i, w in enumerate(words) if i not in free), f"{text!r} from {sentence!r}"


def test_a_run_stops_once_its_words_settle_and_says_where(open_page):
    page = open_page()
    type_template(page, EAGLE)
    page.evaluate(STEP_RECORDER)
    page.click("#generate")
    wait_results(page)
    streamed = page.evaluate("window.__status")
    settled = len(streamed)
    assert 1 < settled < 50, streamed  # the bundled model settles this template well before 50 steps
    assert streamed[-1].startswith(f"done · settled at step {settled} / 50"), streamed
    assert all(s.startswith(f"step {i + 1} / 50 · t = ") for i, s in enumerate(streamed[:-1])), streamed
    assert f"settled after {settled} of 50 steps, {settled} denoiser passes" in page.locator("#message").inner_text()


def test_a_finished_row_says_it_is_done_and_earlier_steps_keep_their_noise_level(open_page):
    page = open_page()
    every_step(page)
    type_template(page, EAGLE)
    set_slider(page, "steps", 10)
    page.evaluate(STEP_RECORDER)
    page.click("#generate")
    wait_results(page)
    status = page.locator("#token-row .status").inner_text()
    assert status.startswith("done · 10 / 10 steps") and "noise" not in status, status
    streamed = page.evaluate("window.__status")
    assert streamed[-1].startswith("done · 10 / 10 steps"), streamed
    assert all(s.startswith(f"step {i + 1} / 10 · t = ") and "noise level" in s for i, s in enumerate(streamed[:-1]))

    drag_slider(page, "scrub", 0.01)  # back to the first step
    page.wait_for_function("() => document.querySelector('#token-row .row.animating').dataset.step === '0'")
    early = page.locator("#token-row .status").inner_text()
    assert early.startswith("step 1 / 10 · t = ") and "noise level" in early, early


def test_a_fresh_sessions_history_numbers_its_runs_from_one(open_page):
    for _ in range(2):  # another session's runs come first: each session counts its own
        page = open_page()
        type_template(page, "Blue Spice is a _ .")
        set_slider(page, "steps", 10)
        page.click("#generate")
        wait_results(page)
        page.click("#tab-history-button")
        page.locator("#history label").first.wait_for()
        labels = page.locator("#history label").all_inner_texts()
        assert len(labels) == 1 and labels[0].startswith("#1 "), labels
    page.click("#generate")
    page.wait_for_function("() => document.querySelectorAll('#history label').length === 2",
                           timeout=RUN_TIMEOUT_MS)
    labels = page.locator("#history label").all_inner_texts()
    assert labels[0].startswith("#2 ") and labels[1].startswith("#1 "), labels


def test_every_request_went_to_the_local_server(open_page, app_url):
    assert_every_request_was_local(open_page)
