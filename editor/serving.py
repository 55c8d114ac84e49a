"""How the app serves the editor: the deployer's knobs and their defaults (no heavy imports, so
that `python app.py --help` and a bad flag or port answer at once). `python app.py --help` lists
the flags; the rest are constants here. Everything the app wrote is removed when it stops."""

import os

# generations run at once, the others queue (--concurrency). Runs going at once share their denoiser
# passes (engine.diffusion.batching): a pass of many rows costs little more than a pass of one, so many
# may go at once. Run alone (--unbatched), one per CPU core this process may use: more only makes each slower.
MODEL_CONCURRENCY = 16
UNBATCHED_CONCURRENCY = max(1, len(os.sched_getaffinity(0)))


def concurrency(asked: int | None, unbatched: bool = False) -> int:
    """The generations run at once: `asked` (--concurrency), else the default for how runs are served."""
    return asked or (UNBATCHED_CONCURRENCY if unbatched else MODEL_CONCURRENCY)


EVENT_CONCURRENCY = 4  # editing, scrubbing and replaying events handled at once (constant)
MAX_QUEUE = 64  # events waiting in the queue; more are refused with "Queue is full" (--max-queue)
CACHE_AGE_S = 3600  # a run's download files are deleted after this, checked as runs finish (--cache-age)
KEEP_EXPORTS = 20  # at most this many runs' files stay (~5 MB a run with the bundled model) (constant)
CACHE_SWEEP_S = 600  # how often Gradio looks for expired copies (or every CACHE_AGE_S when that is shorter)
MAX_UPLOAD = "16mb"  # the largest run file "load a run" takes (an export is ~1 MB); larger are refused (constant)
