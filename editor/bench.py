"""Measure the editor as a user feels it, through its real HTTP API, and print JSON.

    python -m editor.bench --json

Starts the app on a free local port, then: time from submitting Generate to the first streamed
frame, frames per second while streaming, and four users generating at once (all must finish).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import sys
import threading
import time

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

TEMPLATE = "The Eagle is a _ _ coffee shop near _ _ ."


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed_run(client, steps: int, samples: int, seed: int) -> dict:
    """Submit one Generate and time every streamed output."""
    from editor.cells import cells_from_text

    start = time.perf_counter()
    job = client.submit(TEMPLATE, {"cells": cells_from_text(TEMPLATE)}, 0, steps, samples, seed, api_name="/generate")
    stamps = [time.perf_counter() - start for _ in job]
    frames = len(stamps) - 1  # the last output is the ranked result, not a frame
    streaming = stamps[frames - 1] - stamps[0] if frames > 1 else float("nan")
    return {"first_frame_s": round(stamps[0], 3), "frames": frames, "total_s": round(stamps[-1], 3),
            "frames_per_s": round((frames - 1) / streaming, 1) if frames > 1 else None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m editor.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="model directory (default: the bundled model)")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--json", action="store_true", help="print JSON (the default output is also JSON)")
    args = parser.parse_args(argv)

    from gradio_client import Client

    from editor.layout import build
    from editor.serving import EVENT_CONCURRENCY, MAX_QUEUE
    from engine.pipeline import Pipeline

    demo, editor = build(Pipeline.load(args.model))
    demo.queue(default_concurrency_limit=EVENT_CONCURRENCY, max_size=MAX_QUEUE)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, share=False, ssr_mode=False,
                run_history=False, quiet=True)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False, analytics_enabled=False)
        timed_run(client, 10, 1, 0)  # warm-up
        single = [timed_run(client, args.steps, args.samples, seed) for seed in range(3)]
        results: list[dict] = [{} for _ in range(4)]

        def user(i: int) -> None:
            results[i] = timed_run(Client(f"http://127.0.0.1:{port}/", verbose=False, analytics_enabled=False),
                                   args.steps, args.samples, 10 + i)

        start = time.perf_counter()
        threads = [threading.Thread(target=user, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - start
    finally:
        with contextlib.redirect_stdout(sys.stderr):  # gradio announces the closing on stdout
            demo.close()
        editor.close()
    report = {
        "single_user": {"first_frame_s": min(r["first_frame_s"] for r in single),
                        "frames_per_s": min(r["frames_per_s"] for r in single),
                        "frames": single[0]["frames"], "runs": single},
        "four_users": {"all_finished": all(r.get("frames") == args.steps for r in results),
                       "wall_s": round(wall, 2), "runs": results},
        "steps": args.steps, "samples": args.samples,
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
