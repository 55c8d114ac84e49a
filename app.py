"""Start the DLM Studio editor on the bundled model (http://127.0.0.1:7860/ by default).

Every problem with the flags, the port or the model folder is one line on stderr and exit status 2.
The app stops cleanly on Ctrl+C and on SIGTERM, and removes its files when it does.
"""

from __future__ import annotations

import argparse
import errno
import os
import signal
import socket
import sys
import time

# Before gradio is imported: no analytics, no hub look-ups. The page then loads nothing from outside.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from editor.serving import (
    CACHE_AGE_S,
    EVENT_CONCURRENCY,
    MAX_QUEUE,
    MAX_UPLOAD,
    MODEL_CONCURRENCY,
    UNBATCHED_CONCURRENCY,
    concurrency,
)
from engine.cli import OneLineParser, add_model_options  # noqa: E402  (light: no torch, no gradio)


def port_number(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to 65535, got {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"must be from 1 to 65535, got {port}")
    return port


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1, got {text!r}")
    return value


def parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python app.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=port_number, default=7860, help="port to serve on, 1 to 65535 (default: 7860)")
    add_model_options(p)
    p.add_argument("--concurrency", type=positive, default=None, metavar="N",
                   help=f"generations run at once, the others queue (default: {MODEL_CONCURRENCY}, their denoiser "
                        f"passes batched together; with --unbatched one per CPU core, here {UNBATCHED_CONCURRENCY})")
    p.add_argument("--unbatched", action="store_true",
                   help="run each generation's denoiser passes alone, not batched with the runs going at the same "
                        "time (slower for a class; for comparison)")
    p.add_argument("--max-queue", type=positive, default=MAX_QUEUE, metavar="N",
                   help=f"events waiting in the queue before new ones are refused (default: {MAX_QUEUE})")
    p.add_argument("--cache-age", type=positive, default=CACHE_AGE_S, metavar="SECONDS",
                   help=f"how long the download files of a run stay on disk (default: {CACHE_AGE_S}); "
                        "all are removed when the app stops")
    return p


def port_problem(host: str, port: int) -> str | None:
    """Why the app could not listen on (host, port), or None: a trial bind before anything loads."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
    except (socket.gaierror, UnicodeError):
        return f"unknown host {host!r} (--host takes an address of this machine, e.g. 127.0.0.1 or 0.0.0.0)"
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server's own socket: TIME_WAIT is fine
        try:
            sock.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return f"port {port} is in use on {host} (pick another with --port)"
            if exc.errno == errno.EACCES:
                return f"port {port} on {host} needs more privileges (pick one above 1023 with --port)"
            return f"cannot listen on {host} port {port}: {exc.strerror or exc}"
    return None


def url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def stop(signum: int, frame: object) -> None:
    """SIGTERM: leave through the same clean-up as Ctrl+C (the `finally` in main, then atexit)."""
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    problem = port_problem(args.host, args.port)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2

    from editor.layout import PAGE_CSS, build
    from engine.errors import EngineError
    from engine.pipeline import Pipeline

    try:
        pipe = Pipeline.from_pretrained(args.model, device=args.device, precision=args.precision,
                                        shared=not args.unbatched)
    except EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, stop)
    demo, editor = build(pipe, concurrency=concurrency(args.concurrency, args.unbatched), cache_age_s=args.cache_age)
    try:
        demo.queue(default_concurrency_limit=EVENT_CONCURRENCY, max_size=args.max_queue)
        try:
            demo.launch(server_name=args.host, server_port=args.port, share=False, ssr_mode=False,
                        run_history=False, footer_links=["api"], show_error=False, quiet=True,
                        max_file_size=MAX_UPLOAD, prevent_thread_lock=True, css=PAGE_CSS)
        except OSError:  # the port was taken between the check and the launch
            print(f"error: port {args.port} is in use on {args.host} (pick another with --port)", file=sys.stderr)
            return 2
        print(f"DLM Studio: {url(args.host, args.port)} ({pipe.device}, {pipe.precision})", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
    finally:
        demo.close(verbose=False)  # stops the server; Gradio then deletes the files it cached for this app
        editor.close()


if __name__ == "__main__":
    sys.exit(main())
