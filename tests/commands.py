"""The commands (`python -m engine.<name>`, `editor.bench`) run two ways in the tests.

`call` runs a command's `main(argv)` in this process with its output captured: no interpreter start
and no second import of torch, transformers and spaCy (seconds each time), so most command tests use it.
`spawn` runs the real `python -m` subprocess; each entry point keeps at least one test through it, where
the command line itself is what is tested: that the module runs, exits with status 2 on bad input and
prints one line, never a traceback.
"""

from __future__ import annotations

import importlib
import io
import os
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def spawn(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """`python -m *args` in a subprocess, its output captured."""
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          check=False, env={**os.environ, "PYTHONPATH": str(ROOT)})


def call(module: str, *args: str) -> subprocess.CompletedProcess:
    """`module.main(args)` in this process, read back as `spawn` reads a subprocess: its exit status (argparse's
    SystemExit included: 2 for a bad flag, 0 for --help) and what it printed on stdout and stderr."""
    main = importlib.import_module(module).main
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            status = main(list(args))
        except SystemExit as exc:
            if isinstance(exc.code, str):  # as the interpreter does: the message on stderr, status 1
                print(exc.code, file=sys.stderr)
            status = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    return subprocess.CompletedProcess([module, *args], status, out.getvalue(), err.getvalue())
