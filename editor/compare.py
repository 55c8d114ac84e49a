"""The left-to-right side of "compare with left-to-right": the page's request, written by the
autoregressive LM with FUDGE control, one word each time the diffusion side takes a step, so a
class watches both ways of writing at once. Its failure (a control FUDGE cannot steer) is a line
in its own panel: the diffusion run goes on.
"""

from __future__ import annotations

from dataclasses import replace

from editor.limits import error_message
from editor.render import message, written_row
from engine.autoregressive.writer import Written
from engine.errors import EngineError
from engine.pipeline import Pipeline
from engine.request import Candidate, Request, Result, Writing
from engine.views import written_view

IDLE = ('<div class="empty">left to right: the same prompt and controls written by the judge\'s autoregressive '
        'LM with FUDGE, from the words before the first blank; it appears with the next Generate</div>')


class LeftToRight:
    """The same request, written left to right; `advance()` writes one more word."""

    def __init__(self, pipe: Pipeline, request: Request):
        self.pipe = pipe
        self.method = "FUDGE" if any(p.targets for p in request.prompts) else "left to right, no control"
        self.result: Writing | None = None
        self.failed = False
        self.prefix = 0  # the prompt's words before its first blank
        self.html = ""
        try:
            self.steps = pipe.stream(replace(request, method="fudge"))
            self.show(next(self.steps))  # plans it: a control FUDGE cannot steer fails here
        except EngineError as exc:
            self.failed = True
            self.html = message(f"left to right cannot write this: {error_message(exc)}")

    @property
    def done(self) -> bool:
        return self.failed or self.result is not None

    def advance(self) -> str:
        """Write one more word (nothing once done); the panel's HTML."""
        if not self.done:
            try:
                self.show(next(self.steps))
            except EngineError as exc:
                self.failed = True
                self.html = message(f"left to right stopped: {error_message(exc)}")
        return self.html

    def show(self, item: Written | Writing, row: int = 0) -> None:
        """The panel shows row 0 as it is written, then the best row once all are done."""
        if isinstance(item, Writing):
            self.result = item
            self.show(item.written[-1], item.best[0].row)
            return
        if item.index == 0:
            self.prefix = len(item.tokens[0]) - 2  # less START and the first word written
        self.html = written_row(written_view(item, self.pipe.tokenizer, row, self.prefix), self.method)


def comparison_rows(diffusion: Result, left: LeftToRight) -> list[list]:
    """The compare table: each method's best result with its oracle scores, the judge's perplexity,
    its independent checks and its model time."""
    rows = [method_row("diffusion", diffusion.best[0], diffusion.cost.seconds)]
    if left.result is not None:
        rows.append(method_row(left.method, left.result.best[0], left.result.cost.seconds))
    return rows


def method_row(method: str, best: Candidate, seconds: float) -> list:
    scores = " · ".join(f"{name} {score:.0%}" for name, score in best.control_scores.items()) or "–"
    checks = " · ".join(("✓ " if ok else "✗ ") + name for name, ok in best.checks.items())
    return [method, best.text, scores, round(best.judge_ppl, 2) if best.judge_ppl else None, checks,
            round(seconds, 2)]
