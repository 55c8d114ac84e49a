"""Plotly figures of one run, built from engine.views's plain data (no tensors here)."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

COLOURS = ["#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"]  # one per score, in both A and B
# the line at the step shown (the end of a finished run): dark grey and dashed, unlike every score's colour
STEP_LINE = {"line_color": "#3b3b3b", "line_dash": "dash", "line_width": 2}


def visible_positions(sample: dict) -> list[int]:
    """Positions worth plotting: after START, up to and including the final END (the whole row when
    the model wrote no END)."""
    final = sample["frames"][-1]["words"]
    end = final.index("END") if "END" in final else len(final) - 1
    return list(range(1, end + 1))


def heatmap(record: dict, sample: dict, step: int | None = None) -> go.Figure:
    """Step x position confidence, each cell labelled with the word the model would pick then."""
    positions = visible_positions(sample)
    z = [[f["confidence"][p] for p in positions] for f in sample["frames"]]
    text = [[f["words"][p] for p in positions] for f in sample["frames"]]
    fig = go.Figure(go.Heatmap(z=z, text=text, x=positions, y=list(range(1, record["steps"] + 1)),
                               colorscale="Tealgrn", zmin=0, zmax=1, colorbar={"title": "confidence"},
                               hovertemplate="step %{y}, position %{x}: %{text} (%{z:.2f})<extra></extra>"))
    fig.update_layout(title="Confidence per step and position", xaxis_title="position",
                      yaxis_title="denoising step", yaxis_autorange="reversed", margin={"t": 40, "l": 50, "r": 10})
    if step is not None:
        fig.add_hline(y=step + 1, line_color="#c0392b", line_width=2)
    return fig


def projection(sample: dict, step: int | None = None) -> go.Figure:
    """Each position's latent from noise (faint) to its word (labelled), on two principal axes."""
    fig = go.Figure()
    coords = sample["projection"]
    final = sample["frames"][-1]["words"]
    last = len(coords) - 1 if step is None else step
    for p in visible_positions(sample):
        xs = [c[p][0] for c in coords[: last + 1]]
        ys = [c[p][1] for c in coords[: last + 1]]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line={"width": 1}, opacity=0.45, showlegend=False,
                                 hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=[xs[-1]], y=[ys[-1]], mode="markers+text", text=[final[p]],
                                 textposition="top center", marker={"size": 6}, showlegend=False,
                                 hovertemplate=f"position {p}: {final[p]}<extra></extra>"))
    fig.update_layout(title="Latent trajectories (2-D projection)", xaxis_title="PC 1", yaxis_title="PC 2",
                      margin={"t": 40, "l": 50, "r": 10})
    return fig


def step_scores(sample: dict) -> dict[str, list[float | None]]:
    """Per-step scores: mean confidence of free positions; share of positions already at their final
    word; and in a guided run, each control's belief in its target (per claim) by what steers it."""
    positions = [p for p in visible_positions(sample) if not sample["locked"][p]] or visible_positions(sample)
    final = sample["frames"][-1]["words"]
    confidence = [sum(f["confidence"][p] for p in positions) / len(positions) for f in sample["frames"]]
    settled = [sum(f["words"][p] == final[p] for p in positions) / len(positions) for f in sample["frames"]]
    scores = {"mean confidence (free positions)": confidence, "settled (word = final word)": settled}
    for name, values in sample.get("control_scores", {}).items():
        scores[f"{name}: guide belief"] = values
    return scores


def scores(record: dict, sample: dict, step: int | None = None) -> go.Figure:
    fig = go.Figure()
    steps = list(range(1, record["steps"] + 1))
    for i, (name, values) in enumerate(step_scores(sample).items()):
        fig.add_trace(go.Scatter(x=steps, y=values, mode="lines", name=name, line={"color": COLOURS[i % len(COLOURS)]}))
    fig.update_layout(title="Scores per step", xaxis_title="denoising step", yaxis_range=[0, 1.02],
                      legend={"orientation": "h", "y": -0.25}, margin={"t": 40, "l": 50, "r": 10})
    if step is not None:
        fig.add_vline(x=step + 1, **STEP_LINE)
    return fig


def all_figures(record: dict, sample_index: int = 0, step: int | None = None) -> tuple[go.Figure, ...]:
    sample = record["samples"][sample_index]
    return heatmap(record, sample, step), projection(sample, step), scores(record, sample, step)


def figures_html(record: dict, sample_index: int = 0) -> str:
    """A standalone HTML page with the three figures (plotly.js inlined: it opens offline)."""
    figs = all_figures(record, sample_index)
    body = "".join(fig.to_html(full_html=False, include_plotlyjs=(i == 0)) for i, fig in enumerate(figs))
    head = "<meta charset='utf-8'><title>DLM Studio run</title>"
    return f"<!doctype html><html><head>{head}</head><body>{body}</body></html>"


def alternatives(record: dict, sample_index: int, step: int, position: int) -> go.Figure:
    """What the model weighed at one position and step: its most likely words as bars, and in a
    guided run each control's belief in its target at that step (for the whole row)."""
    sample = record["samples"][sample_index]
    frame = sample["frames"][step]
    top = frame["top"][position] if position < len(frame.get("top", [])) else []
    words = [w for w, _ in top] or [frame["words"][position]]
    probs = [p for _, p in top] or [frame["confidence"][position]]
    fig = go.Figure(go.Bar(x=probs[::-1], y=words[::-1], orientation="h", marker_color="#3a7ca5", name="denoiser",
                           text=[f"{p:.0%}" for p in probs[::-1]], textposition="auto",
                           hovertemplate="%{y}: %{x:.3f}<extra>denoiser</extra>"))
    beliefs = {name: values[step] for name, values in sample.get("control_scores", {}).items()
               if values[step] is not None}
    if beliefs:
        fig.add_trace(go.Bar(x=list(beliefs.values()), y=[f"guide: {name}" for name in beliefs], orientation="h",
                             marker_color="#c0792b", name="classifier belief in the target (whole row)",
                             hovertemplate="%{y}: %{x:.3f}<extra></extra>"))
    locked = sample["locked"][position]
    fig.update_layout(title=f"position {position}{' (locked)' if locked else ''}, step {step + 1} / "
                            f"{record['steps']}, t = {record['t'][step]}: what the model weighed",
                      xaxis_title="probability", xaxis_range=[0, 1], height=260, showlegend=bool(beliefs),
                      legend={"orientation": "h", "y": -0.35}, margin={"t": 40, "l": 110, "r": 10, "b": 40})
    return fig


def noising_plot(record: dict, index: int) -> go.Figure:
    """The forward process on the latent plot: each word's latent from its clean vector (labelled
    with the true word) to where the noise has taken it at this time (labelled with the nearest word)."""
    sample = record["samples"][0]
    coords, true_words = sample["projection"], record["true_words"]
    now = sample["frames"][index]["words"]
    fig = go.Figure()
    for p, locked in enumerate(sample["locked"]):
        if locked:
            continue
        xs = [c[p][0] for c in coords[: index + 1]]
        ys = [c[p][1] for c in coords[: index + 1]]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line={"width": 1}, opacity=0.5, showlegend=False,
                                 hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=[xs[0]], y=[ys[0]], mode="markers+text", text=[true_words[p]],
                                 textposition="bottom center", marker={"size": 7, "color": "#1f4e79"},
                                 showlegend=False, hovertemplate=f"{true_words[p]} (clean)<extra></extra>"))
        fig.add_trace(go.Scatter(x=[xs[-1]], y=[ys[-1]], mode="markers+text", text=[now[p]],
                                 textposition="top center", marker={"size": 7, "color": "#c0392b"},
                                 showlegend=False, hovertemplate=f"nearest word now: {now[p]}<extra></extra>"))
    fig.update_layout(title=f"Latents at t = {record['t'][index]}: blue = clean word, red = where the noise took it",
                      xaxis_title="PC 1", yaxis_title="PC 2", margin={"t": 40, "l": 50, "r": 10})
    return fig


def ab_figure(a: dict, b: dict, step_a: int, step_b: int) -> go.Figure:
    """Pinned run A beside run B: each one's per-step scores (confidence, settled, guide beliefs),
    with a line at the step each one is shown at (STEP_LINE, in no score's colour)."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("A (pinned)", "B (this run)"), shared_yaxes=True)
    for col, (run, step) in enumerate(((a, step_a), (b, step_b)), start=1):
        record = run["record"]
        steps = list(range(1, record["steps"] + 1))
        for i, (name, values) in enumerate(step_scores(record["samples"][0]).items()):
            fig.add_trace(go.Scatter(x=steps, y=values, mode="lines", name=name, legendgroup=name,
                                     showlegend=col == 1, line={"color": COLOURS[i % len(COLOURS)]}), row=1, col=col)
        fig.add_vline(x=step + 1, **STEP_LINE, row=1, col=col)
    fig.update_layout(title="A / B: scores per step", yaxis_range=[0, 1.02], legend={"orientation": "h", "y": -0.25},
                      margin={"t": 60, "l": 50, "r": 10}, height=340)
    return fig
