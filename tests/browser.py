"""Playwright in Debian's headless Chromium, for the browser tests: the `browser` and `open_page`
fixtures (conftest imports them), and helpers that read and drive the editor page the way a person
would. Every page opened records the URLs it requests in REQUESTS: each browser test module ends by
checking that all of them went to the local server.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1400, "height": 1000}
EAGLE = "The Eagle is a _ _ coffee shop near _ _ ."
RUN_TIMEOUT_MS = 60_000

REQUESTS: list[str] = []  # every URL any page opened by `open_page` requested

# Records each data-step the token row shows (in order, without repeats) and the status lines.
STEP_RECORDER = """() => {
  window.__steps = []; window.__status = [];
  const record = () => {
    const row = document.querySelector('#token-row .row.animating');
    if (!row) return;
    const step = row.getAttribute('data-step');
    if (window.__steps[window.__steps.length - 1] !== step) {
      window.__steps.push(step);
      const status = document.querySelector('#token-row .status');
      window.__status.push(status ? status.innerText : '');
    }
  };
  new MutationObserver(record).observe(document.body,
    {subtree: true, childList: true, attributes: true, attributeFilter: ['data-step']});
}"""

EDIT_CELLS = "#token-row .row.editing .cell[data-index]:not(.add)"


# --- fixtures ------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def browser() -> Browser:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def open_page(browser, app_url):  # noqa: F811
    """open_page() -> a fresh page (own context, so own Gradio session) showing the app, ready to type;
    open_page(viewport={"width": 1280, "height": 720}) at another window size."""
    contexts, errors = [], []

    def _open(viewport: dict | None = None) -> Page:
        context = browser.new_context(viewport=viewport or VIEWPORT)
        contexts.append(context)
        context.on("request", lambda request: REQUESTS.append(request.url))
        page = context.new_page()
        page.on("websocket", lambda ws: REQUESTS.append(ws.url))
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.set_default_timeout(20_000)
        page.goto(app_url)
        page.wait_for_selector("#template textarea")
        page.wait_for_selector("#generate")
        return page

    yield _open
    for context in contexts:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


# --- helpers -------------------------------------------------------------------------------
def expected_cells(template: str) -> list[list]:
    """[word, locked] per cell for a template of space-separated words (punctuation already spaced)."""
    return [["", False] if w == "_" else ["...", False] if w == "..." else [w, True] for w in template.split()]


def row_cells(page: Page) -> list[list]:
    return page.evaluate("""(sel) => Array.from(document.querySelectorAll(sel)).map(
        c => [c.dataset.word, c.classList.contains('locked')])""", EDIT_CELLS)


def wait_row(page: Page, cells: list[list], timeout: float | None = None) -> None:
    """Wait until the editable token row shows exactly these cells."""
    page.wait_for_function("""([sel, want]) => {
        const got = Array.from(document.querySelectorAll(sel)).map(
            c => [c.dataset.word, c.classList.contains('locked')]);
        return JSON.stringify(got) === JSON.stringify(want);
    }""", arg=[EDIT_CELLS, cells], timeout=timeout)


def type_template(page: Page, template: str) -> None:
    """Fill the text box and type its last character, as a person ends typing; wait for the row."""
    box = page.locator("#template textarea")
    box.fill(template[:-1])
    box.press("End")
    box.type(template[-1])
    wait_row(page, expected_cells(template))


def click_cell(page: Page, index: int) -> None:
    """Click a cell's word. The mouse leaves the row first: a hovered cell grows by its +/x buttons and shifts
    the cells after it, so a point measured while another cell is hovered can land on a x button."""
    page.mouse.move(0, 0)
    page.locator(f'{EDIT_CELLS}[data-index="{index}"] span.w').click()


def locked_count(page: Page) -> int:
    return page.locator("#token-row .row.editing .cell.locked").count()


def set_slider(page: Page, elem_id: str, value: int) -> None:
    number = page.locator(f"#{elem_id} input[type=number]")
    number.fill(str(value))
    number.press("Enter")
    page.wait_for_function("([sel, v]) => document.querySelector(sel).value === String(v)",
                           arg=[f"#{elem_id} input[type=range]", value])


def current_step(page: Page) -> str | None:
    return page.evaluate("""() => { const r = document.querySelector('#token-row .row.animating');
                                    return r ? r.getAttribute('data-step') : null; }""")


def wait_results(page: Page, timeout: float = RUN_TIMEOUT_MS) -> list[list[str]]:
    """Wait for a finished run (info message and a filled results table); the table's rows as cell texts."""
    page.wait_for_function("""() => document.querySelector('#message .msg.info')
        && Array.from(document.querySelectorAll('#results [role=gridcell][data-row]')).some(c => c.innerText.trim())""",
                           timeout=timeout)
    return result_rows(page)


def result_rows(page: Page, table: str = "#results") -> list[list[str]]:
    """A table's rows as cell texts (Gradio's virtual table: gridcells with data-row, data-col)."""
    grid = page.evaluate("""(table) => {
        const grid = document.querySelector(table + ' [role=grid]');
        const cells = Array.from(document.querySelectorAll(table + ' [role=gridcell][data-row]'));
        return {rowcount: grid ? parseInt(grid.getAttribute('aria-rowcount'), 10) : 0,
                cells: cells.map(c => [parseInt(c.dataset.row, 10), parseInt(c.dataset.col, 10), c.innerText.trim()])};
    }""", table)
    rows: dict[int, dict[int, str]] = {}
    for r, c, text in grid["cells"]:
        rows.setdefault(r, {})[c] = text
    table = [[cols[c] for c in sorted(cols)] for _, cols in sorted(rows.items())]
    table = [row for row in table if any(row)]  # the empty table shows one blank row
    if table:
        assert len(table) == grid["rowcount"] - 1, f"{len(table)} rows rendered of {grid['rowcount'] - 1}"
    return table


def assert_locked_kept(rows: list[list[str]], template: str) -> None:
    """Every result has the template's length and each locked word at its position."""
    want = template.split()
    assert rows, "no results"
    for row in rows:
        rank, text, _ppl, checks = row[:4]
        words = text.split()
        assert len(words) == len(want), f"result #{rank} {text!r} does not have the template's length ({template!r})"
        for i, w in enumerate(want):
            if w != "_":
                assert words[i] == w, f"result #{rank} {text!r}: position {i} is {words[i]!r}, locked {w!r}"
        assert "✓ locked words kept" in checks, f"result #{rank}: checks say {checks!r}"


def assert_every_request_was_local(open_page) -> None:
    """Load the page and do one edit (so the check stands on its own), then: every URL any page of
    the session requested went to 127.0.0.1."""
    page = open_page()
    type_template(page, "Blue Spice is a _ .")
    page.close()
    assert any("/gradio_api/queue/join" in url for url in REQUESTS), REQUESTS[:20]
    outside = sorted({url for url in REQUESTS
                      if urlsplit(url).scheme not in ("data", "blob") and urlsplit(url).hostname != "127.0.0.1"})
    assert not outside, f"requests that left 127.0.0.1: {outside}"


def every_step(page: Page) -> None:
    """Tick "run every step" (the default run stops once its words settle): for tests of a whole trajectory."""
    box = page.locator("#every-step input[type=checkbox]")
    box.check()
    assert box.is_checked()


def generate(page: Page, template: str, steps: int | None = None) -> list[list[str]]:
    type_template(page, template)
    if steps is not None:
        set_slider(page, "steps", steps)
    page.click("#generate")
    return wait_results(page)


def wait_new_results(page: Page, before: list[list[str]]) -> list[list[str]]:
    """The results table once it shows other results than `before` (after a finished run); a
    message of an error instead fails the test with it."""
    page.wait_for_function("""(before) => {
        if (document.querySelector('#message .msg.error')) return true;
        const cells = Array.from(document.querySelectorAll('#results [role=gridcell][data-row]'));
        const text = cells.map(c => c.innerText.trim()).join('|');
        return document.querySelector('#message .msg.info') && text.length > 0 && text !== before;
    }""", arg="|".join(c for row in before for c in row), timeout=RUN_TIMEOUT_MS)
    assert page.locator("#message .msg.error").count() == 0, page.locator("#message").inner_text()
    return result_rows(page)


def wait_text(page: Page, text: str) -> None:
    try:
        page.wait_for_function("(t) => document.querySelector('#template textarea').value === t", arg=text)
    except PlaywrightTimeoutError:
        shown = page.locator("#template textarea").input_value()
        raise AssertionError(f"the text box says {shown!r}, not {text!r}") from None


def drag_slider(page: Page, elem_id: str, fraction: float) -> None:
    """Press the mouse on a slider's track at `fraction` of its width and let go."""
    box = page.locator(f"#{elem_id} input[type=range]").bounding_box()
    page.mouse.move(box["x"] + box["width"] * fraction, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.up()
