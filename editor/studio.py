"""The page's `gr.Blocks`, which also answers raw API calls that leave arguments out.

A call `POST /gradio_api/call/<api_name>` with `{"data": [...]}` may list fewer values than the
endpoint takes (gradio_client fills in the defaults itself; curl or another language does not).
Gradio hands such a list on as it is, and the event then fails inside Gradio with a traceback in
the server's log and `{"error": null}` for the caller. Here the missing trailing arguments take the
defaults the API page lists for them, the values gradio_client would send; an argument without a
default gets a one-line error that names it, as does a list longer than the endpoint's arguments.
"""

from __future__ import annotations

import copy
from typing import Any

import gradio as gr


class Studio(gr.Blocks):
    """gr.Blocks whose API endpoints fill in the arguments a raw call leaves out."""

    _parameters: dict[str, list[dict]] | None = None

    def validate_inputs(self, block_fn: Any, inputs: list[Any]) -> None:
        if len(inputs) < len(block_fn.inputs) and block_fn.api_name:
            inputs[:] = self.filled(block_fn, inputs)
        super().validate_inputs(block_fn, inputs)

    def parameters(self, api_name: str) -> list[dict] | None:
        """The endpoint's arguments as its API page lists them (name, default), or None for an event
        that is no API endpoint."""
        if self._parameters is None:
            endpoints = self.get_api_info(all_endpoints=True)["named_endpoints"]
            self._parameters = {name.removeprefix("/"): info["parameters"] for name, info in endpoints.items()}
        return self._parameters.get(api_name)

    def filled(self, block_fn: Any, given: list[Any]) -> list[Any]:
        """A raw call's values in the event's inputs, each argument left out at its default (the
        session's states, which no call sends, are read from the session as always)."""
        parameters = self.parameters(block_fn.api_name)
        if parameters is None:
            return given  # not an API endpoint: Gradio's own check applies
        name = f"/{block_fn.api_name}"
        names = ", ".join(p["parameter_name"] for p in parameters) or "nothing"
        if len(given) > len(parameters):
            raise gr.Error(f"{name} takes {len(parameters)} values ({names}), got {len(given)}",
                           print_exception=False)
        left_out = parameters[len(given):]
        missing = [p["parameter_name"] for p in left_out if not p["parameter_has_default"]]
        if missing:
            raise gr.Error(f"{name} needs a value for {', '.join(missing)} (its arguments, in order: {names})",
                           print_exception=False)
        values = iter([*given, *(copy.deepcopy(p["parameter_default"]) for p in left_out)])
        return [None if block.skip_api else next(values) for block in block_fn.inputs]
