"""The guidance part of the controls panel: which targets the user asked for, and how hard to steer.

The page sends plain values (text, a list of field=value labels, numbers); `ControlValues` holds
them in one order, and `build_panel` makes the inputs in that order. Turning them into targets
and controls is the engine's job (engine.controls.targets, Pipeline.controls).
"""

from __future__ import annotations

from typing import NamedTuple

import gradio as gr

from engine.controls.guidance import READS, GuidanceOptions

STEERED_KINDS = ("pos", "tree", "spans", "semantic")
DEFAULT = GuidanceOptions()


class ControlValues(NamedTuple):
    """What the panel (or the API) asks of the samples. Empty text asks for nothing."""

    pos: str = ""
    tree: str = ""
    spans: str = ""
    semantic: tuple[str, ...] = ()
    strength: float = DEFAULT.strength
    fluency: float = DEFAULT.fluency
    weight_pos: float = 1.0
    weight_tree: float = 1.0
    weight_spans: float = 1.0
    weight_semantic: float = 1.0
    reads: str = DEFAULT.reads  # what the classifiers read: "x_t" (fast) or "x0_hat" (stronger, slower)

    def weights(self) -> dict[str, object]:
        return {kind: getattr(self, f"weight_{kind}") for kind in STEERED_KINDS}


def build_panel(kinds: list[str], semantic_labels: list[str]) -> list[gr.components.Component]:
    """The inputs, in ControlValues order; kinds without a trained classifier are hidden."""
    with gr.Accordion("Guidance: steer with classifiers", open=True):
        pos = gr.Textbox("", label="parts of speech (one Universal POS tag per word)", elem_id="ctl-pos",
                         placeholder="PROPN AUX DET ADJ NOUN ADP DET NOUN PUNCT", visible="pos" in kinds)
        tree = gr.Textbox("", label="syntax: a sentence whose parse tree to follow", elem_id="ctl-tree",
                          placeholder="The Mill is a pub near the river .", visible="tree" in kinds)
        spans = gr.Textbox("", label="constituents: i j LABEL, separated by ; (word positions from 0)",
                           elem_id="ctl-spans", placeholder="4 6 PP", visible="spans" in kinds)
        semantic = gr.Dropdown(choices=semantic_labels, multiselect=True, label="meaning: field = value",
                               elem_id="ctl-semantic", visible="semantic" in kinds)
        strength = gr.Slider(0, 1, value=DEFAULT.strength, step=0.01, label="guidance strength (0 = off)",
                             elem_id="ctl-strength")
        fluency = gr.Slider(0, 1, value=DEFAULT.fluency, step=0.005,
                            label="fluency λ (keeps each step near the model's own proposal)", elem_id="ctl-fluency")
        reads = gr.Radio(list(READS), value=DEFAULT.reads, elem_id="ctl-reads",
                         label="classifiers read: x_t (fast) or the denoiser's x0_hat (stronger, ~2.5x slower)")
        with gr.Accordion("weights when combining controls", open=False):
            weights = [gr.Slider(0, 5, value=1.0, step=0.1, label=kind, elem_id=f"ctl-weight-{kind}",
                                 visible=kind in kinds) for kind in STEERED_KINDS]
    return [pos, tree, spans, semantic, strength, fluency, *weights, reads]
