"""Start the DLM Studio editor on the bundled model: python app.py [--host H] [--port P] [--model DIR]"""

from __future__ import annotations

import argparse
import os
import sys

# Before gradio is imported: no analytics, no hub look-ups. The page then loads nothing from outside.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: this machine only)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--model", help="model directory (default: assets/model)")
    args = parser.parse_args(argv)

    from editor.layout import build_app
    from engine.errors import EngineError
    from engine.pipeline import Pipeline

    try:
        pipe = Pipeline.load(args.model)
    except EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    demo = build_app(pipe)
    demo.queue(default_concurrency_limit=4, max_size=64)
    demo.launch(server_name=args.host, server_port=args.port, share=False, ssr_mode=False, run_history=False,
                footer_links=["api"], show_error=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
