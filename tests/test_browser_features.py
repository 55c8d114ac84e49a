"""The editor's features for its three audiences, in headless Chromium against `python app.py`, used
the way a person would: keys pressed, sliders dragged, tabs and buttons clicked, files picked.

A writer edits the row from the keyboard, varies a sentence, goes back through the history; a
researcher pins a run beside the next (A/B), asks what the model weighed at a word, exports a run
and loads it back; a teacher dissolves a sentence into noise, denoises it from any t, and shows it
in large type. The page is checked at a projector's 1280x720 and at 1920x1080, and every request
it made must have gone to the local server.
"""

from __future__ import annotations

import json
import os
import struct
import time
from pathlib import Path

import pytest
from playwright.sync_api import Page

from editor.layout import EXAMPLES
from tests.browser import (
    EAGLE,
    EDIT_CELLS,
    RUN_TIMEOUT_MS,
    assert_every_request_was_local,
    drag_slider,
    every_step,
    expected_cells,
    generate,
    result_rows,
    set_slider,
    type_template,
    wait_new_results,
    wait_results,
    wait_row,
    wait_text,
)
from tests.server import ROOT

pytestmark = pytest.mark.slow  # headless Chromium against a real app server

SENTENCE = "The Eagle is a cheap coffee shop near the river ."


def text_box(page: Page) -> str:
    return page.locator("#template textarea").input_value()


def focused_index(page: Page) -> str | None:
    return page.evaluate("() => document.activeElement && document.activeElement.dataset.index || null")


def slider_value(page: Page, elem_id: str) -> float:
    return float(page.locator(f"#{elem_id} input[type=number]").input_value())


def pick_file(page: Page, button: str, path: Path) -> None:
    """Click an upload button and choose a file in the dialog it opens."""
    with page.expect_file_chooser() as chooser:
        page.click(button)
    chooser.value.set_files(str(path))


# --- a writer -------------------------------------------------------------------------------
def test_the_row_is_edited_from_the_keyboard_with_undo(open_page):
    page = open_page()
    page.on("dialog", lambda dialog: pytest.fail(f"the page opened a dialog: {dialog.message}"))
    type_template(page, "The Eagle is a _ _ .")
    assert page.locator("#token-row .row.editing").get_attribute("role") == "group"
    labels = page.evaluate(f"""() => Array.from(document.querySelectorAll('{EDIT_CELLS}'))
        .map(c => [c.getAttribute('role'), c.getAttribute('aria-label')])""")
    assert labels[:2] == [["button", "locked: The"], ["button", "locked: Eagle"]] and labels[4] == ["button", "blank"]

    page.locator(f'{EDIT_CELLS}[data-index="0"]').focus()
    for _ in range(4):
        page.keyboard.press("Tab")
    assert focused_index(page) == "4"
    page.keyboard.type("cheap")  # typing into a cell replaces its word and locks it
    page.keyboard.press("Tab")
    wait_text(page, "The Eagle is a cheap _ .")
    page.wait_for_function("() => document.activeElement.dataset.index === '5'")
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    assert focused_index(page) == "1"
    page.keyboard.press("Enter")  # unlocks "Eagle" (the word is remembered)
    page.wait_for_function(f"""() => document.querySelector('{EDIT_CELLS}[data-index="1"]')
        .getAttribute('aria-label') === 'unlocked: Eagle'""")
    assert text_box(page) == "The _ is a cheap _ ."
    page.keyboard.press("Enter")  # and locks it again
    wait_text(page, "The Eagle is a cheap _ .")
    page.keyboard.type("_")  # "_" makes the cell a blank
    page.keyboard.press("Enter")
    wait_text(page, "The _ is a cheap _ .")
    page.wait_for_function("() => document.activeElement.dataset.index === '1'")
    page.keyboard.press("Backspace")  # on an empty cell: deletes it
    wait_text(page, "The is a cheap _ .")
    page.keyboard.press("Control+z")
    wait_text(page, "The _ is a cheap _ .")
    page.keyboard.press("Control+z")
    wait_text(page, "The Eagle is a cheap _ .")
    page.keyboard.press("Control+Shift+z")
    wait_text(page, "The _ is a cheap _ .")
    page.locator(f'{EDIT_CELLS}[data-index="5"]').focus()
    page.keyboard.type("...")
    page.keyboard.press("Enter")
    wait_text(page, "The _ is a cheap ... .")
    wait_row(page, [["The", True], ["", False], ["is", True], ["a", True], ["cheap", True], ["...", False],
                    [".", True]])


def test_quick_successive_row_actions_each_take_effect_in_order(open_page):
    page = open_page()
    type_template(page, "The Eagle is a cheap pub .")
    for index in ("1", "2", "4", "5"):  # four locks undone faster than the server answers each
        page.locator(f'{EDIT_CELLS}[data-index="{index}"]').focus()
        page.keyboard.press("Enter")
    wait_text(page, "The _ _ a _ _ .")
    page.locator(f'{EDIT_CELLS}[data-index="4"]').focus()
    page.keyboard.type("dear")
    page.keyboard.press("Enter")  # an edit, then at once a toggle of another cell
    page.locator(f'{EDIT_CELLS}[data-index="1"]').focus()
    page.keyboard.press("Enter")
    wait_text(page, "The Eagle _ a dear _ .")
    type_template(page, "The Eagle is a cheap pub .")
    page.evaluate(f"""() => {{  // two deletes on the row as drawn, the second before the first is answered
        const cells = Array.from(document.querySelectorAll('{EDIT_CELLS}'));
        for (const i of [2, 5]) cells[i].dispatchEvent(new KeyboardEvent('keydown', {{key: 'Delete', bubbles: true}}));
    }}""")
    wait_text(page, "The Eagle a cheap .")  # "is" and "pub", not "is" and the cell that moved into 5
    page.get_by_text(EXAMPLES[1], exact=True).click()  # an example writes the text box, and the row follows
    wait_row(page, expected_cells(EXAMPLES[1]))
    assert page.locator("#message").inner_text().strip() == ""  # no stray error from an action sent twice


def test_focus_stays_where_the_user_moved_it_while_an_answer_was_on_its_way(open_page):
    page = open_page()
    type_template(page, "The Eagle is a cheap pub .")
    held = []  # the request of a row action, kept from the server until the user has moved on

    def hold(route) -> None:
        held.append(route)

    page.route("**/queue/join**", hold)

    def answer_after(move_on) -> None:
        while not held:
            page.wait_for_timeout(20)
        move_on()
        held.pop().continue_()
        page.unroute("**/queue/join**", hold)

    page.locator(f'{EDIT_CELLS}[data-index="1"]').focus()
    page.keyboard.press("Enter")
    answer_after(lambda: page.locator(f'{EDIT_CELLS}[data-index="2"]').focus())
    wait_text(page, "The _ is a cheap pub .")  # the answer redrew the row under the focused cell
    page.wait_for_function("() => document.activeElement.dataset.index === '2'")
    page.keyboard.press("Enter")
    wait_text(page, "The _ _ a cheap pub .")
    page.route("**/queue/join**", hold)
    page.locator(f'{EDIT_CELLS}[data-index="4"]').focus()
    page.keyboard.press("Enter")
    answer_after(lambda: page.locator("#template textarea").focus())  # the user went back to the text box
    wait_text(page, "The _ _ a _ pub .")
    page.wait_for_timeout(300)
    assert page.evaluate("() => document.activeElement.matches('#template textarea')")


def test_vary_rewords_the_unlocked_words_only(open_page):
    page = open_page()
    type_template(page, SENTENCE)
    words = SENTENCE.split()
    free = [4, 5, 6, 8, 9]  # "cheap coffee shop" and "the river"
    for i in free:
        page.locator(f'{EDIT_CELLS}[data-index="{i}"]').focus()
        page.keyboard.press("Enter")
        page.wait_for_function(f"""() => document.querySelector('{EDIT_CELLS}[data-index="{i}"]')
            .getAttribute('aria-pressed') === 'false'""")
    page.locator("#vary-strength input[type=range]").focus()
    for _ in range(4):
        page.keyboard.press("ArrowRight")  # 0.6 -> 0.8
    page.wait_for_function("() => document.querySelector('#vary-strength input[type=number]').value === '0.8'")
    page.click("#vary")
    rows = wait_results(page)
    assert len(rows) == 4 and "40 steps" in page.locator("#message").inner_text()  # 0.8 of the 50 steps
    changed = 0
    for _rank, text, _ppl, checks in (row[:4] for row in rows):
        out = text.split()
        assert len(out) == len(words) and "✓ locked words kept" in checks, text
        assert all(out[i] == w for i, w in enumerate(words) if i not in free), text
        changed += out != words
    assert changed >= 1, f"no result changed a word at strength 0.8: {rows}"


def test_history_restores_an_earlier_run_with_its_settings(open_page):
    page = open_page()
    every_step(page)  # a whole trajectory
    page.locator("#seed input").fill("3")
    first = generate(page, EAGLE, steps=20)
    page.locator("#seed input").fill("4")
    second_template = "Blue Spice is a _ _ near _ _ ."
    type_template(page, second_template)
    set_slider(page, "steps", 30)
    page.click("#generate")
    second = wait_new_results(page, first)
    assert second[0][1].startswith("Blue Spice") and "30 steps" in page.locator("#message").inner_text()
    page.click("#tab-history-button")
    entries = page.locator("#history label")
    assert entries.count() == 2
    assert "seed 4" in entries.nth(0).inner_text() and "seed 3" in entries.nth(1).inner_text()  # newest first
    entries.nth(1).click()
    assert wait_new_results(page, second) == first
    wait_text(page, EAGLE)
    page.click("#tab-settings-button")
    assert page.locator("#seed input").input_value() == "3" and slider_value(page, "steps") == 20
    assert page.locator("#scrub input[type=range]").get_attribute("max") == "20"


# --- a researcher ---------------------------------------------------------------------------
def test_ab_pins_a_run_and_scrubs_both_on_one_slider(open_page):
    page = open_page()
    every_step(page)  # a whole trajectory
    first = generate(page, EAGLE, steps=20)
    page.click("#pin")
    page.locator("#pinned-row .row.animating").wait_for()
    assert "A (pinned)" in page.locator("#pinned-row").inner_text()
    set_slider(page, "steps", 40)
    page.locator("#template textarea").type(" ")  # back to the editable row
    page.click("#generate")
    wait_new_results(page, first)
    page.wait_for_function("() => document.querySelectorAll('#ab-table [role=gridcell][data-row=\"1\"]').length")
    a, b = result_rows(page, "#ab-table")
    assert a[0] == "A (pinned)" and b[0] == "B (this run)"
    assert a[1] == first[0][1], "A shows the pinned run's best result"
    assert "steps 20 → 40" in b[7] and float(a[5]) > 0 and float(b[5]) > 0 and "denoiser" in b[6]
    page.locator("#ab-plot .js-plotly-plot").wait_for()
    drag_slider(page, "scrub", 0.5)
    page.wait_for_function("() => document.querySelector('#token-row .row.animating').dataset.step !== '39'")
    step_b = int(page.locator("#token-row .row.animating").get_attribute("data-step"))
    page.wait_for_function("() => document.querySelector('#pinned-row .row.animating').dataset.step !== '19'")
    step_a = int(page.locator("#pinned-row .row.animating").get_attribute("data-step"))
    assert 5 < step_b < 35 and abs(step_a - round(step_b / 39 * 19)) <= 1, (step_a, step_b)
    page.click("#unpin")
    page.locator("#ab-table").wait_for(state="hidden")


def test_clicking_a_word_shows_what_the_model_weighed(open_page):
    page = open_page()
    every_step(page)  # a whole trajectory
    generate(page, EAGLE, steps=20)
    drag_slider(page, "scrub", 0.25)
    page.wait_for_function("() => document.querySelector('#token-row .row.animating').dataset.step !== '19'")
    step = int(page.locator("#token-row .row.animating").get_attribute("data-step"))
    page.locator('#token-row .row.animating .cell[data-position="5"]').click()
    page.locator("#alternatives .js-plotly-plot").wait_for()
    title = page.locator("#alternatives .gtitle").text_content()
    assert f"position 5, step {step + 1} / 20" in title, title
    words = page.locator("#alternatives .ytick text").all_text_contents()
    assert len(words) == 5 and len(set(words)) == 5, words


def test_an_exported_run_loads_back_into_a_fresh_page(open_page, tmp_path):
    page = open_page()
    every_step(page)  # a whole trajectory
    page.locator("#seed input").fill("5")
    rows = generate(page, EAGLE, steps=20)
    with page.expect_download() as download:
        page.click("#export-json")
    exported = json.loads(Path(download.value.path()).read_text())
    assert exported["format"] == "dlm-studio-run" and exported["settings"]["seed"] == 5
    assert len(exported["provenance"]["model"]["weights_sha256"]["denoiser.safetensors"]) == 64
    assert exported["provenance"]["request"]["sampling"]["steps"] == 20
    assert {"torch", "gradio", "dlm-studio"} <= set(exported["provenance"]["versions"])
    run_file = tmp_path / "run.json"
    run_file.write_text(json.dumps(exported))

    fresh = open_page()
    type_template(fresh, "The Mill is a _ .")
    fresh.click("#tab-history-button")
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({**exported, "record": {**exported["record"], "steps": 21}}))
    pick_file(fresh, "#load-run", broken)
    fresh.locator("#message .msg.error").wait_for()
    assert "damaged at record" in fresh.locator("#message").inner_text()
    assert text_box(fresh) == "The Mill is a _ ."  # the user's text stays
    pick_file(fresh, "#load-run", run_file)
    assert wait_results(fresh) == rows
    wait_text(fresh, EAGLE)
    assert fresh.locator("#scrub input[type=range]").get_attribute("max") == "20"
    assert "loaded" in fresh.locator("#history label").first.inner_text()
    fresh.click("#tab-settings-button")
    assert fresh.locator("#seed input").input_value() == "5"


# --- a teacher ------------------------------------------------------------------------------
def teach_t(page: Page) -> int:
    return int(page.locator("#teach-row .status b.t").inner_text())


def test_forward_process_dissolves_a_sentence_and_denoises_from_the_chosen_t(open_page):
    page = open_page()
    page.click("#tab-settings-button")
    page.locator("#speed input[type=range]").focus()
    page.keyboard.press("End")  # fastest playback
    page.click("#tab-teach-button")
    page.locator("#teach-text textarea").fill(SENTENCE)
    page.click("#teach-noise")
    page.locator("#teach-row .row[data-mode=noising]").wait_for()
    assert teach_t(page) == 0 and "clean sentence" in page.locator("#teach-row .caption").inner_text()
    assert page.locator("#teach-row .cell .w").all_inner_texts() == SENTENCE.split()
    drag_slider(page, "teach-t", 0.5)
    page.wait_for_function("() => document.querySelector('#teach-row .row').dataset.step !== '0'")
    t = teach_t(page)
    assert 600 < t < 1400, t
    distances = [float(d.split("=")[1]) for d in page.locator("#teach-row .cell .d").all_inner_texts()]
    assert len(distances) == len(SENTENCE.split()) and min(distances) > 0
    page.locator("#teach-plot .js-plotly-plot").wait_for()
    page.click("#teach-play")
    page.wait_for_function("() => document.querySelector('#teach-row .row').dataset.step === '50'", timeout=30_000)
    assert "Pure noise" in page.locator("#teach-row .caption").inner_text()
    drag_slider(page, "teach-t", 0.3)
    page.wait_for_function("() => document.querySelector('#teach-row .row').dataset.step !== '50'")
    t = teach_t(page)
    page.click("#teach-denoise")
    page.locator("#teach-message .msg.info").wait_for(timeout=RUN_TIMEOUT_MS)
    done = page.locator("#teach-message").inner_text()
    assert f"denoised from t = {t}" in done, done
    assert len(done.split(": ", 1)[1].split()) == len(SENTENCE.split())  # a variation keeps the length

    page.click("#tab-settings-button")
    page.locator("#present input").check()
    page.wait_for_function("() => document.body.classList.contains('present')")
    page.click("#tab-teach-button")
    size = page.evaluate("() => parseFloat(getComputedStyle(document.querySelector('#teach-row .cell')).fontSize)")
    assert size >= 28, size


# --- the page -------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080)])
def test_layout_has_no_dead_space_at_projector_and_desktop_sizes(open_page, tmp_path, size):
    """The row, its buttons and the results fit the first screen beside the side panel; screenshots
    go to the test's folder (with UPDATE_SCREENSHOT=1 into docs/)."""
    width, height = size
    page = open_page(viewport={"width": width, "height": height})
    generate(page, EAGLE)
    for plot in ("#heatmap", "#projection", "#scores"):
        page.wait_for_selector(f"{plot} .js-plotly-plot .main-svg")
    time.sleep(0.5)
    boxes = {name: page.locator(selector).bounding_box() for name, selector in
             [("row", "#token-row"), ("generate", "#generate"), ("results", "#results"),
              ("side", "#side-tabs"), ("main", "#main-tabs")]}
    assert boxes["row"]["y"] + boxes["row"]["height"] < height and boxes["results"]["y"] < height, boxes
    assert boxes["side"]["x"] > boxes["main"]["x"] + boxes["main"]["width"] - 1, "the controls sit beside"
    name = f"screenshot_{width}x{height}.png"
    path = ROOT / "docs" / name if os.environ.get("UPDATE_SCREENSHOT") == "1" else tmp_path / name
    page.screenshot(path=str(path))
    data = Path(path).read_bytes()
    assert struct.unpack(">II", data[16:24]) == (width, height)


def unreadable_columns(page: Page, table: str) -> list[str]:
    """The header and first-row cells of a table that reach past its right edge, are narrower than a
    short word, or cut their own text off."""
    return page.evaluate("""(table) => {
        const right = document.querySelector(table).getBoundingClientRect().right;
        const cells = Array.from(document.querySelectorAll(
            `${table} [role=columnheader], ${table} [role=gridcell][data-row="0"]`));
        return cells.filter(c => { const box = c.getBoundingClientRect();
                                   return box.right > right + 1 || box.width < 36
                                          || c.scrollWidth > c.clientWidth + 1; })
                    .map(c => `${c.innerText.trim().slice(0, 30)} (${Math.round(c.getBoundingClientRect().width)} px)`);
    }""", table)


@pytest.mark.parametrize("size", [(1440, 900), (1280, 720)])
def test_every_results_column_is_readable_after_generate_and_vary(open_page, size):
    """The results table's columns, the checks with the control scores among them, all fit beside
    the side panel: after a guided Generate and after Vary."""
    width, height = size
    page = open_page(viewport={"width": width, "height": height})
    page.click("#tab-guidance-button")
    page.locator("#ctl-include textarea").fill("city centre")
    page.click("#tab-settings-button")
    rows = generate(page, EAGLE, steps=20)
    assert "include" in rows[0][3], rows[0]
    assert unreadable_columns(page, "#results") == []
    page.click("#use")
    page.locator("#token-row .row.editing").wait_for()
    for i in (4, 5):  # the words the run wrote in the template's blanks may change
        page.locator(f'{EDIT_CELLS}[data-index="{i}"]').focus()
        page.keyboard.press("Enter")
        page.wait_for_function(f"""() => document.querySelector('{EDIT_CELLS}[data-index="{i}"]')
            .getAttribute('aria-pressed') === 'false'""")
    page.click("#vary")
    wait_new_results(page, rows)
    assert unreadable_columns(page, "#results") == []


def test_every_request_went_to_the_local_server(open_page, app_url):
    assert_every_request_was_local(open_page)
