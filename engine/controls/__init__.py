"""Controls: what a sample must satisfy, steered by classifier gradients and judged by oracles.

The registry below is the only place that lists the kinds; a kind is one module ending in a
`ControlKind` record (see `base`). Adding a kind: write its module, add it here.
"""

from engine.controls import length, pos, semantic, spans, tree
from engine.controls.base import ControlKind

KINDS: dict[str, ControlKind] = {kind.name: kind for kind in (
    pos.KIND,
    tree.KIND,
    spans.KIND,
    semantic.KIND,
    length.KIND,
)}
STEERED = tuple(name for name, kind in KINDS.items() if kind.steered)  # the kinds with a classifier
COMPOSED = ("pos", "semantic")  # Diffusion-LM's composition task: parts of speech and semantic content together
