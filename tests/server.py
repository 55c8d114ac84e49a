"""Start the real editor (`python app.py --port P`) in a subprocess, for the browser and API tests.

The API and browser tests share one server, the session-scoped `app_url` fixture below (conftest
provides it; starting the app imports gradio and torch and loads the bundled model, seconds each
time); tests/test_hardening_editor.py starts servers of its own with `start_app`. Each server gets a
temporary folder of its own as TMPDIR (so Gradio's cache and the editor's exports land there) and its
log; the fixture checks that the app removed its exports when it was stopped with SIGTERM, then
removes the folder.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 90
APPS: dict[str, App] = {}  # the running app of each `app_url` (its log and files), by its URL


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


@dataclass
class App:
    proc: subprocess.Popen
    url: str
    tmp: Path  # the app's TMPDIR: Gradio's cache (tmp/gradio) and the editor's exports in it, and the log

    @property
    def log(self) -> Path:
        return self.tmp / "app.log"

    def exports(self) -> list[Path]:
        """The editor's export folders on disk (dlm-studio-*, inside Gradio's cache)."""
        return sorted(self.tmp.rglob("dlm-studio-*"))

    def files(self) -> list[Path]:
        """Every file the app left in its TMPDIR, but the log."""
        return sorted(p for p in self.tmp.rglob("*") if p.is_file() and p != self.log)


def start_app(*flags: str) -> App:
    """The server (`python app.py --port P *flags`), answering 200 at its URL; raises if it does not come up."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    tmp = Path(tempfile.mkdtemp(prefix="dlm-studio-test-"))
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1",
           "TMPDIR": str(tmp)}
    env.pop("GRADIO_TEMP_DIR", None)  # the cache goes to TMPDIR/gradio
    with (tmp / "app.log").open("wb") as log:
        app = App(subprocess.Popen([sys.executable, "app.py", "--port", str(port), *flags], cwd=ROOT, env=env,
                                   stdout=log, stderr=subprocess.STDOUT), url, tmp)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if app.proc.poll() is not None:
            text = app.log.read_text()
            shutil.rmtree(tmp, ignore_errors=True)
            raise RuntimeError(f"app.py exited with {app.proc.returncode} before answering:\n{text}")
        if answers(url):
            return app
        time.sleep(0.5)
    stop_app(app)
    text = app.log.read_text()
    shutil.rmtree(tmp, ignore_errors=True)
    raise RuntimeError(f"app.py did not answer on {url} within {START_TIMEOUT_S} s:\n{text}")


def stop_app(app: App) -> int | None:
    """SIGTERM (as a service manager stops it), then SIGKILL if it hangs; its exit status."""
    proc = app.proc
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
            return None
    return proc.returncode


@pytest.fixture(scope="session")
def app_url() -> Iterator[str]:
    """URL of an editor started on a free port for the session; the process is stopped after the last
    test, and its temporary folder removed once the app is shown to have removed its exports itself."""
    app = start_app()
    APPS[app.url] = app
    try:
        yield app.url
    finally:
        APPS.pop(app.url, None)
        status = stop_app(app)
        left = app.exports()
        shutil.rmtree(app.tmp, ignore_errors=True)
        assert status == 0 and not left, f"app.py exited with {status} on SIGTERM, leaving {left}"
