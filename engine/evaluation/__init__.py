"""The evaluations `python -m engine.evaluate` runs: quality, control, vary and settle.

Each is one module: its options (a dataclass whose fields are its command-line flags, see
engine.cli) and a function from a loaded Pipeline and those options to a JSON-ready report. They
are callers of the pipeline like any other (Requests in, Results out) and sit above it; the
fluency judge and the metrics they score with are engine.scoring's, which the pipeline ranks with.
"""

from pathlib import Path

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "e2e"  # the E2E data beside the project
