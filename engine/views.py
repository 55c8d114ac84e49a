"""Plain-Python views of a run (lists, floats, strings) for UIs, JSON export and plots.

The editor never touches tensors: it receives these dictionaries.
"""

from __future__ import annotations

import torch

from engine.autoregressive.writer import Written
from engine.diffusion.forward import Noising
from engine.diffusion.sampler import Frame, Trajectory
from engine.request import Result
from engine.text.tokenizer import Tokenizer


def frame_view(frame: Frame, tokenizer: Tokenizer, row: int, steps: int) -> dict:
    """One sample's state at one step: the nearest word and its confidence at every position."""
    ids = frame.tokens[row].tolist()
    return {
        "step": frame.index, "steps": steps, "t": frame.t, "alpha_bar": round(frame.alpha_bar, 5),
        "stopped": frame.stopped,  # the run ends here, its words settled, before its last planned step
        "words": [tokenizer.words[i] for i in ids],
        "confidence": [round(c, 3) for c in frame.confidence[row].tolist()],
        "locked": frame.locked[row].tolist(),
    }


def project_latents(trajectory: Trajectory, row: int) -> list[list[list[float]]]:
    """[step][position] = (x, y): each position's latent x_t over the run, projected on the two
    principal axes of all of that sample's latents (noise at the start, near a word at the end)."""
    if trajectory.frames[0].latents is None:
        return []
    return projected(torch.stack([f.latents[row] for f in trajectory.frames]))


def projected(latents: torch.Tensor) -> list[list[list[float]]]:
    """[S, L, D] latents as [step][position] = (x, y) on the two principal axes of them all."""
    flat = latents.reshape(-1, latents.shape[-1]).double()
    centred = flat - flat.mean(0)
    _, _, v = torch.linalg.svd(centred, full_matrices=False)
    coords = (centred @ v[:2].T).reshape(latents.shape[0], latents.shape[1], 2)
    return [[[round(x, 3), round(y, 3)] for x, y in step] for step in coords.tolist()]


def alternatives(frame: Frame, tokenizer: Tokenizer, row: int, positions: int) -> list[list[list]]:
    """[position] = [[word, probability], ...]: the words the denoiser weighed at each of the first
    `positions` positions, most likely first; a locked position (or one past the network's window)
    holds only its word. Empty when the run recorded no alternatives."""
    if frame.alternatives is None:
        return []
    ids, probs = (t[row].tolist() for t in frame.alternatives)
    locked = frame.locked[row].tolist()
    return [[[tokenizer.words[frame.tokens[row, p].item()], 1.0]] if locked[p] or p >= len(ids) else
            [[tokenizer.words[i], round(q, 4)] for i, q in zip(ids[p], probs[p], strict=True)]
            for p in range(positions)]


def run_view(result: Result, tokenizer: Tokenizer, planned: int | None = None) -> dict:
    """Every step of the first prompt's ranked samples: words, confidences, noise level, latent
    projection, classifier beliefs; and the run's cost. `planned`: the steps the run was asked
    for (a run that settled stopped before them; `stopped` says so)."""
    trajectory = result.trajectory
    rows = [c.row for c in result.best]
    steps = len(trajectory.frames)
    return {
        "steps": steps,
        "planned_steps": planned or steps,
        "stopped": trajectory.stopped_at is not None,
        **result.cost.to_dict(),
        "t": [f.t for f in trajectory.frames],
        "alpha_bar": [round(f.alpha_bar, 5) for f in trajectory.frames],
        "samples": [{
            "row": row,
            "locked": trajectory.locked_mask[row].tolist(),
            # what the model weighed, for the best sample only (the one the page shows), at every position
            "frames": [{"words": view["words"], "confidence": view["confidence"],
                        "top": alternatives(f, tokenizer, row, len(view["words"]) if rank == 0 else 0)}
                       for f in trajectory.frames for view in [frame_view(f, tokenizer, row, steps)]],
            "projection": project_latents(trajectory, row),
            # per control, the classifier's per-claim probability of its target at each step (None
            # at steps guidance did not run: before it first ran, or outside its part of the
            # schedule); END/PAD positions count as claims, so it starts high
            "control_scores": {name: [round(float(f.scores[name][row]), 4) if name in f.scores else None
                                      for f in trajectory.frames]
                               for name in dict.fromkeys(n for f in trajectory.frames for n in f.scores)},
        } for rank, row in enumerate(rows)],
    }


def noising_view(noising: Noising, tokenizer: Tokenizer) -> dict:
    """The forward process in the shape of `run_view` (one sample, a "step" per time, clean first),
    each frame with the nearest word, its probability, the true word's probability and the
    latent's distance from the true word vector at every position."""
    return {
        "steps": len(noising.times),
        "forward": True,
        "t": noising.times,
        "alpha_bar": [round(a, 5) for a in noising.alpha_bar],
        "true_words": [tokenizer.words[i] for i in noising.template.ids[:noising.tokens.shape[1]]],
        "samples": [{
            "row": 0,
            "locked": list(noising.template.locked[:noising.tokens.shape[1]]),
            "frames": [{"words": [tokenizer.words[i] for i in tokens],
                        "confidence": [round(c, 3) for c in confidence],
                        "true_probability": [round(p, 3) for p in true_probability],
                        "distance": [round(d, 3) for d in distance]}
                       for tokens, confidence, true_probability, distance in zip(
                           noising.tokens.tolist(), noising.confidence.tolist(),
                           noising.true_probability.tolist(), noising.distance.tolist(), strict=True)],
            "projection": projected(noising.latents),
            "control_scores": {},
        }],
    }


def written_view(state: Written, tokenizer: Tokenizer, row: int, prefix: int) -> dict:
    """One left-to-right row after a step: its words so far, how many came from the prompt
    (`prefix`, START not counted), whether it has ended, and the discriminators' beliefs."""
    return {
        "step": state.index,
        "words": tokenizer.decode_words(state.tokens[row]),
        "prefix": prefix,
        "finished": state.finished[row],
        "beliefs": {name: per_row[row] for name, per_row in state.beliefs.items() if per_row[row] is not None},
    }
