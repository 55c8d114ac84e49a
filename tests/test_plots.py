"""The run's figures (editor.plots) on small hand-made runs: no model, no browser."""

from __future__ import annotations

from editor import plots


def run(steps: int, guided: bool) -> dict:
    """A stored run of one sample of three positions (START, a word, END), guided by pos when `guided`."""
    frames = [{"words": ["START", "pub", "END"], "confidence": [1.0, 0.2 + 0.8 * s / steps, 1.0], "top": []}
              for s in range(steps)]
    scores = {"pos": [0.1 * s for s in range(steps)]} if guided else {}
    sample = {"row": 0, "locked": [True, False, True], "frames": frames, "projection": [], "control_scores": scores}
    return {"id": steps, "record": {"steps": steps, "t": list(range(steps, 0, -1)), "alpha_bar": [0.5] * steps,
                                    "samples": [sample]}}


def line_colours(figure) -> list[str]:
    return [trace.line.color for trace in figure.data]


def distance(a: str, b: str) -> float:
    """How far apart two #rrggbb colours are (Euclidean, in RGB)."""
    rgb = [[int(c[i:i + 2], 16) for i in (1, 3, 5)] for c in (a, b)]
    return sum((x - y) ** 2 for x, y in zip(*rgb, strict=True)) ** 0.5


def test_the_step_line_is_in_no_scores_colour():
    """The line at the step shown (at the end of a finished run) is not red, the colour of the
    third score, which in a guided run is a guide's belief."""
    a, b = run(10, guided=True), run(6, guided=True)
    figure = plots.ab_figure(a, b, 9, 5)
    names = [trace.name for trace in figure.data]
    assert "pos: guide belief" in names
    shapes = figure.layout.shapes
    assert len(shapes) == 2 and {shape.x0 for shape in shapes} == {10, 6}  # each run's end
    belief = line_colours(figure)[names.index("pos: guide belief")]
    for shape in shapes:
        assert distance(shape.line.color, belief) > 100, (shape.line.color, belief)
        assert all(distance(shape.line.color, colour) > 100 for colour in line_colours(figure))
    scores = plots.scores(a["record"], a["record"]["samples"][0], 9)
    assert all(distance(scores.layout.shapes[0].line.color, colour) > 100 for colour in line_colours(scores))
