"""Measure the editor as a user feels it, through its real HTTP API or its page, and print JSON.

    python -m editor.bench --json
    python -m editor.bench --scenario page --json
    python -m editor.bench --scenario class --students 30 --presses 2 --within 60 --json

Scenario "users" (through gradio_client, the app in this process): the time from submitting
Generate to the first streamed frame, frames a second while streaming, and four users generating
at once (all must finish). Scenario "page": the page itself in headless Chromium (Debian's
/usr/bin/chromium, through Playwright), Generate pressed three times at the page's defaults (50
steps, 4 samples), timing the first frame, the frames a second and the finished run as the
browser shows them. Scenario "class": each of `--students` simulated students (a gradio_client of their
own) presses Generate `--presses` times at random moments within `--within` seconds, sending the
events the page sends (`--path page`) or calling /generate (`--path api`); the report
gives the median and 95th-percentile wait to the first frame and to the result, the queue
positions shown, and whether every run finished (nothing dropped). "page" and "class" run
`python app.py` in a process of its own.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import socket
import statistics
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from editor.serving import MODEL_CONCURRENCY, UNBATCHED_CONCURRENCY, concurrency  # noqa: E402  (light)
from engine.cli import add_model_options  # noqa: E402  (light: no torch)

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


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) of values, by the nearest rank."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))]


def student_run(url: str, at: float, *, steps: int, samples: int, seed: int, path: str = "page",
                every_step: bool = False) -> dict:
    """One press of Generate at the moment `at` (perf_counter): the waits to its first frame and to
    its result, and the queue positions it was shown while waiting. Path "page": the events the
    page's Generate sends (the run streamed into the row, then its results, then the history list);
    "api": the /generate endpoint, which streams with every output of a finished run."""
    from gradio_client import Client

    from editor.cells import cells_from_text

    # 60 clients connect at once to a busy 2-core server: connecting is not what is timed, so wait for it
    client = Client(url, verbose=False, analytics_enabled=False, download_files=False,
                    httpx_kwargs={"timeout": 300})
    # every input the page sends: /generate's, with its defaults (the page's own event has no API page)
    parameters = client.view_api(print_info=False, return_format="dict")["named_endpoints"]["/generate"]["parameters"]
    given = {"text": TEMPLATE, "row": {"cells": cells_from_text(TEMPLATE)}, "length": 0, "steps": steps,
             "samples": samples, "seed": seed, "every_step": every_step}
    inputs = [given.get(p["parameter_name"], p["parameter_default"]) for p in parameters]
    time.sleep(max(0.0, at - time.perf_counter()))
    pressed = time.perf_counter()
    job = client.submit(*inputs, api_name="/generate_page" if path == "page" else "/generate")
    first, ranks = None, []
    while not job.done():
        status = job.status()
        if status.rank is not None:
            ranks.append(status.rank + 1)  # the page counts from 1
        if first is None and job.outputs():
            first = time.perf_counter() - pressed
        time.sleep(0.1)
    outputs = job.outputs()
    finished = bool(outputs) and job.status().success is not False and "info" in str(outputs[-1][1])
    if path == "page" and finished:
        shown = client.predict(api_name="/show_run")  # the results, plots and exports of the run
        finished = bool(shown[0]["data"])
        client.predict(api_name="/runs")
    return {"first_frame_s": first if first is not None else time.perf_counter() - pressed,
            "result_s": time.perf_counter() - pressed, "max_queue_position": max(ranks, default=0),
            "finished": finished}


def class_scenario(url: str, args: argparse.Namespace) -> dict:
    """Every student's presses at seeded random moments within the window, all at once."""
    moments = random.Random(0)
    presses = sorted(moments.uniform(0, args.within) for _ in range(args.students * args.presses))
    results: list[dict] = [{} for _ in presses]
    start = time.perf_counter() + 2.0  # every client connects first

    def press(i: int) -> None:
        results[i] = student_run(url, start + presses[i], steps=args.steps, samples=args.samples, seed=100 + i,
                                 path=args.path, every_step=args.every_step)

    threads = [threading.Thread(target=press, args=(i,)) for i in range(len(presses))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    first = [r["first_frame_s"] for r in results]
    done = [r["result_s"] for r in results]
    queued = [r["max_queue_position"] for r in results]
    return {"path": args.path, "every_step": args.every_step,
            "students": args.students, "presses_each": args.presses, "within_s": args.within,
            "runs": len(results), "finished": sum(r["finished"] for r in results),
            "nothing_dropped": all(r["finished"] for r in results),
            "first_frame_s": {"median": round(statistics.median(first), 2), "p95": round(percentile(first, 95), 2),
                              "max": round(max(first), 2)},
            "result_s": {"median": round(statistics.median(done), 2), "p95": round(percentile(done, 95), 2),
                         "max": round(max(done), 2)},
            "queue_position_shown": {"median": statistics.median(queued), "max": max(queued),
                                     "runs_that_queued": sum(q > 0 for q in queued)},
            "wall_s": round(time.perf_counter() - start, 1)}


PAGE_RECORDER = """() => { window.__frames = []; new MutationObserver(() => {
  const row = document.querySelector('#token-row .row.animating');
  const last = window.__frames[window.__frames.length - 1];
  if (row && (!last || last[0] !== row.dataset.step)) window.__frames.push([row.dataset.step, performance.now()]);
}).observe(document.body, {subtree: true, childList: true, attributes: true}); }"""


def page_scenario(url: str, runs: int = 3) -> dict:
    """Generate pressed in the page `runs` times: the first frame, the frames a second, and when the
    row shows the finished run with its summary (the results table follows it)."""
    from playwright.sync_api import sync_playwright

    measured = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        box = page.locator("#template textarea")
        box.fill(TEMPLATE[:-1])
        box.type(TEMPLATE[-1])
        page.wait_for_selector("#token-row .row.editing")
        for _ in range(runs):
            page.evaluate(PAGE_RECORDER)
            pressed = page.evaluate("performance.now()")
            page.click("#generate")
            page.wait_for_function("() => document.querySelector('#message .msg.info')", timeout=120_000)
            done = page.evaluate("performance.now()")
            frames = page.evaluate("window.__frames")
            span = (frames[-1][1] - frames[0][1]) / 1000
            measured.append({"first_frame_s": round((frames[0][1] - pressed) / 1000, 3), "frames": len(frames),
                             "frames_per_s": round((len(frames) - 1) / span, 1) if span > 0 else None,
                             "finished_s": round((done - pressed) / 1000, 2)})
            page.locator("#token-row .status a.to-edit").click()
            page.wait_for_selector("#token-row .row.editing")
        browser.close()
    return {"page": measured}


def served(args: argparse.Namespace, scenario, unbatched: bool = False) -> dict:
    """`scenario(url)` against `python app.py` in a process of its own (as a class would use it:
    the clients are not in the server's process), with a queue long enough for every press;
    `unbatched`: each run's denoiser passes alone (app.py --unbatched, as before batching)."""
    import subprocess

    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    runs_at_once = concurrency(args.concurrency, unbatched)
    command = [sys.executable, "app.py", "--port", str(port), "--concurrency", str(runs_at_once),
               "--max-queue", str(max(64, args.students * args.presses))] + ["--unbatched"] * unbatched
    if args.model:
        command += ["--model", args.model]
    command += ["--device", args.device, "--precision", args.precision]
    root = Path(__file__).resolve().parent.parent
    server = subprocess.Popen(command, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        started = server.stdout.readline() or ""
        if not started.startswith("DLM Studio:"):
            raise SystemExit(f"app.py did not start: {server.stdout.read()}")
        from gradio_client import Client

        timed_run(Client(url, verbose=False, analytics_enabled=False), 10, 1, 0)  # warm-up
        return scenario(url) | {"precision": started.rstrip().rstrip(")").rsplit(", ", 1)[-1],
                                "batched": not unbatched, "concurrency": runs_at_once}
    finally:
        server.terminate()
        server.wait(timeout=30)


def served_scenario(args: argparse.Namespace) -> dict:
    """The "class" or "page" scenario against app.py; with --compare, the class four ways."""
    scenario = (lambda url: class_scenario(url, args)) if args.scenario == "class" else page_scenario
    if args.compare and args.scenario == "class":
        report = {}
        for unbatched in (True, False):
            for every_step in (True, False):
                args.every_step = every_step
                name = f"{'alone' if unbatched else 'batched'}, {'every step' if every_step else 'settled'}"
                report[name] = served(args, scenario, unbatched=unbatched)
    else:
        report = served(args, scenario)
    return report | {"steps": args.steps, "samples": args.samples, "cpu_cores": os.cpu_count()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m editor.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_options(parser)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--json", action="store_true", help="print JSON (the default output is also JSON)")
    parser.add_argument("--scenario", choices=("users", "class", "page"), default="users")
    parser.add_argument("--students", type=int, default=30, help="class: simulated students")
    parser.add_argument("--presses", type=int, default=2, help="class: Generate presses per student")
    parser.add_argument("--within", type=float, default=60.0, help="class: seconds the presses fall in")
    parser.add_argument("--path", choices=("page", "api"), default="page",
                        help="class: press Generate as the page does (default), or call the /generate API")
    parser.add_argument("--concurrency", type=int, default=None,
                        help=f"runs at once (as app.py's; default {MODEL_CONCURRENCY}, "
                             f"unbatched {UNBATCHED_CONCURRENCY})")
    parser.add_argument("--every-step", action="store_true",
                        help="class: every press asks for every step (the page's \"run every step\")")
    parser.add_argument("--compare", action="store_true",
                        help="class: the scenario four ways in one session, each on a fresh app.py: runs alone "
                             "(--unbatched) or batched, every step or stopping once settled")
    args = parser.parse_args(argv)
    if args.scenario in ("class", "page"):
        print(json.dumps(served_scenario(args), indent=2))
        return 0

    from gradio_client import Client

    from editor.layout import build
    from editor.serving import EVENT_CONCURRENCY, MAX_QUEUE
    from engine.pipeline import Pipeline

    demo, editor = build(Pipeline.from_pretrained(args.model, device=args.device, precision=args.precision),
                         concurrency=concurrency(args.concurrency))
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
        "steps": args.steps, "samples": args.samples, "precision": editor.pipe.precision,
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
