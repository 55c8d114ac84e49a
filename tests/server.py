"""Start the real editor (`python app.py --port P`) in a subprocess, for the browser and API tests.

Imported by tests/test_browser.py and tests/test_api.py, which each get their own server through the
module-scoped `app_url` fixture below (import it into the test module to use it).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 90


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


def start_app() -> tuple[subprocess.Popen, str, Path]:
    """The server process, its URL (answering 200) and its log file; raises if it does not come up."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    log_path = Path(tempfile.mkstemp(prefix="dlm-studio-app-", suffix=".log")[1])
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=ROOT, env=env,
                                stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"app.py exited with {proc.returncode} before answering:\n{log_path.read_text()}")
        if answers(url):
            return proc, url, log_path
        time.sleep(0.5)
    stop_app(proc)
    raise RuntimeError(f"app.py did not answer on {url} within {START_TIMEOUT_S} s:\n{log_path.read_text()}")


def stop_app(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def app_url() -> Iterator[str]:
    """URL of a freshly started editor on a free port; the process is stopped after the module."""
    proc, url, log_path = start_app()
    try:
        yield url
    finally:
        stop_app(proc)
        log_path.unlink(missing_ok=True)
