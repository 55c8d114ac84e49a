"""Each handler declares the components it updates; the page's events are built from those
declarations, and a handler that returns a component it did not declare fails where it runs."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import pytest

from editor.handlers import Editor
from editor.outputs import UndeclaredUpdate, outputs_of, updates
from editor.replay import Replay
from editor.teach import Teach


def handler_events(demo: gr.Blocks) -> list:
    """The page's events whose function is a handler method (not a lambda or a JS-only event)."""
    return [fn for fn in demo.fns.values() if isinstance(getattr(fn.fn, "__self__", None), Editor | Replay | Teach)]


def test_every_events_outputs_are_its_handlers_declaration(editor_app):
    demo, _ = editor_app
    events = handler_events(demo)
    assert len(events) >= 20  # Write tab, replay, history and the forward-process tab
    for event in events:
        handler = event.fn
        assert hasattr(handler, "updates"), f"{handler.__qualname__} declares no updates"
        assert [id(c) for c in event.outputs] == [id(c) for c in outputs_of(handler)], handler.__qualname__


def test_the_restore_event_updates_every_setting_the_page_shows(editor_app):
    demo, ed = editor_app
    restore = next(fn for fn in demo.fns.values() if fn.api_name == "restore_run")
    outputs = {id(c) for c in restore.outputs}
    assert all(id(c) in outputs for c in ed.page.settings.values())


@dataclass
class View:
    row: object
    msg: object
    other: object


class Handlers:
    def __init__(self) -> None:
        self.view = View(gr.State(1), gr.State(2), gr.State(3))

    @updates("row", "msg")
    def fine(self) -> dict:
        return {self.view.row: 1, self.view.msg: "ok"}

    @updates("row")
    def strays(self, early: bool) -> dict:
        return {self.view.row: 1} if early else {self.view.row: 1, self.view.other: 2}

    @updates("row")
    def streams(self):
        yield {self.view.row: 1}
        yield {self.view.msg: "a key it never declared"}


def test_a_handler_that_updates_what_it_did_not_declare_fails_naming_it():
    handlers = Handlers()
    assert outputs_of(handlers.fine) == [handlers.view.row, handlers.view.msg]
    assert handlers.fine() == {handlers.view.row: 1, handlers.view.msg: "ok"}
    assert handlers.strays(early=True) == {handlers.view.row: 1}
    with pytest.raises(UndeclaredUpdate, match=r"Handlers.strays updates State, which it does not declare"):
        handlers.strays(early=False)
    stream = handlers.streams()
    assert next(stream) == {handlers.view.row: 1}
    with pytest.raises(UndeclaredUpdate, match="Handlers.streams"):
        next(stream)


@pytest.fixture(scope="module")
def editor_app(tiny_model):
    from editor.layout import build
    from engine.pipeline import Pipeline

    demo, ed = build(Pipeline.from_pretrained(tiny_model, precision="fp32"))
    yield demo, ed
    ed.close()
