"""Controls: what a sample must satisfy, steered by gradients (of a trained classifier, or of the
denoiser's own word posterior) and judged by oracles.

The registry below is the only place that lists the kinds; a kind is one module ending in a
`ControlKind` record (see `base`). Adding a kind: write its module, add it here.
"""

from engine.controls import include, length, pos, semantic, spans, tree
from engine.controls.base import ControlKind

KINDS: dict[str, ControlKind] = {kind.name: kind for kind in (
    pos.KIND,
    tree.KIND,
    spans.KIND,
    semantic.KIND,
    include.KIND,
    length.KIND,
)}
STEERED = tuple(name for name, kind in KINDS.items() if kind.steers)  # the kinds guidance steers (a panel input each)
TRAINED = tuple(name for name, kind in KINDS.items() if kind.trained)  # the kinds steered by a trained classifier
FUTURE = tuple(name for name, kind in KINDS.items() if kind.future_network)  # the kinds FUDGE can steer
COMPOSED = tuple(name for name, kind in KINDS.items() if kind.composed)  # Diffusion-LM's composition task
MEANING = next(name for name, kind in KINDS.items() if kind.from_mr)  # the kind E2E meaning representations label
