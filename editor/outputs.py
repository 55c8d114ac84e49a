"""What each handler updates, declared beside it, so that the page's events are built from it.

A handler returns (or yields) a dict keyed by the components it updates. `@updates("row", "msg")`
declares those components by their names on the handler's `view` (the page, or the teaching
panel); "settings" stands for every setting of the page. `editor.layout` makes each event's
outputs from the declaration (`components`), and the declared handler checks every dict it
returns against it: a key its event does not list is an error that names it, wherever the handler
is called from, instead of a failure inside Gradio at run time.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any


class UndeclaredUpdate(RuntimeError):
    """A handler updated a component its declaration (and so its event's outputs) leaves out."""


def components(view: Any, names: tuple[str, ...]) -> list[Any]:
    """The components `names` name on `view`, in order ("settings": each of the page's settings)."""
    found: list[Any] = []
    for name in names:
        part = getattr(view, name)
        found += list(part.values()) if isinstance(part, dict) else [part]
    return found


def outputs_of(handler: Callable) -> list[Any]:
    """A declared handler's (a bound method's) outputs: the components it updates, in order."""
    return components(handler.__self__.view, handler.updates)


def checked(owner: Any, name: str, names: tuple[str, ...], update: Any) -> Any:
    """`update` (a dict of updates) after checking that it keys only components declared in `names`."""
    if isinstance(update, dict):
        declared = {id(c) for c in components(owner.view, names)}
        extra = [key for key in update if id(key) not in declared]
        if extra:
            labels = ", ".join(getattr(key, "elem_id", None) or type(key).__name__ for key in extra)
            raise UndeclaredUpdate(f"{type(owner).__name__}.{name} updates {labels}, which it does not declare in "
                           f"@updates{names}")
    return update


def updates(*names: str) -> Callable[[Callable], Callable]:
    """Declare the components a handler method returns or yields (see the module's docstring)."""

    def declare(fn: Callable) -> Callable:
        if inspect.isgeneratorfunction(fn):
            @functools.wraps(fn)
            def handler(self: Any, *args: Any, **kwargs: Any) -> Any:
                for update in fn(self, *args, **kwargs):
                    yield checked(self, fn.__name__, names, update)
        else:
            @functools.wraps(fn)
            def handler(self: Any, *args: Any, **kwargs: Any) -> Any:
                return checked(self, fn.__name__, names, fn(self, *args, **kwargs))
        handler.updates = names  # type: ignore[attr-defined]
        return handler

    return declare
