"""The import layering of engine/, editor/ and app.py (docs/layout.md, "Layers"): every module
sits in one layer, and imports only from its own layer or those below it. The engine never imports
gradio or the editor; the editor never imports torch (it does no tensor maths). Read from the
source with `ast`, nothing imported, so a new upward import fails here however it is reached."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# lowest first; a module belongs to the layer of the longest name that is it or a package above it
LAYERS = (
    ("base", ("engine", "engine.errors", "engine.options", "engine.precision", "engine.cli", "engine.provenance")),
    ("text", ("engine.text",)),
    ("diffusion", ("engine.diffusion",)),
    ("controls", ("engine.controls",)),
    ("scoring", ("engine.scoring",)),
    ("autoregressive", ("engine.autoregressive",)),
    ("request", ("engine.request",)),
    ("loading", ("engine.loading", "engine.ranking")),
    ("pipeline", ("engine.pipeline", "engine.views")),
    ("evaluation", ("engine.evaluation",)),
    ("commands", ("engine.generate", "engine.evaluate", "engine.bench", "engine.bench_train", "engine.train",
                  "engine.train_control", "engine.make_targets")),
    ("editor", ("editor",)),
    ("app", ("app",)),
)
FORBIDDEN = {"engine": ("gradio", "editor", "app"), "editor": ("torch",)}  # whatever their layers


def layer_of(module: str) -> int | None:
    """The index in LAYERS of the module's layer, None if no layer holds it."""
    best, found = -1, None
    for index, (_, names) in enumerate(LAYERS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and len(name) > best:
                best, found = len(name), index
    return found


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def sources() -> dict[str, ast.Module]:
    paths = [*sorted((ROOT / "engine").rglob("*.py")), *sorted((ROOT / "editor").rglob("*.py")), ROOT / "app.py"]
    return {module_name(path): ast.parse(path.read_text(encoding="utf-8"), str(path)) for path in paths}


def imports(tree: ast.Module, known: set[str]) -> set[str]:
    """Every module an import statement anywhere in `tree` names (inside functions and TYPE_CHECKING
    blocks too): `from a import b` names a.b when that is a module of the project, else a."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0 and node.module, "imports are absolute"
            for alias in node.names:
                found.add(f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in known else node.module)
    return found


def upward(trees: dict[str, ast.Module]) -> list[str]:
    """Each import of a module in a higher layer than the importer's, as 'importer -> imported'."""
    known, found = set(trees), []
    for module, tree in trees.items():
        for name in sorted(imports(tree, known)):
            here, there = layer_of(module), layer_of(name)
            if there is not None and here is not None and there > here:
                found.append(f"{module} ({LAYERS[here][0]}) -> {name} ({LAYERS[there][0]})")
    return found


def forbidden(trees: dict[str, ast.Module]) -> list[str]:
    known, found = set(trees), []
    for module, tree in trees.items():
        banned = FORBIDDEN.get(module.split(".")[0], ())
        found += [f"{module} -> {name}" for name in sorted(imports(tree, known)) if name.split(".")[0] in banned]
    return found


@pytest.fixture(scope="module")
def trees() -> dict[str, ast.Module]:
    return sources()


def test_every_module_has_a_layer(trees):
    assert [module for module in trees if layer_of(module) is None] == []
    assert {"engine.pipeline", "engine.loading", "engine.evaluation.quality", "editor.layout", "app"} <= set(trees)


def test_imports_point_down_the_layers(trees):
    assert upward(trees) == []


def test_the_engine_never_imports_the_ui_and_the_editor_never_imports_torch(trees):
    assert forbidden(trees) == []


def test_an_upward_or_forbidden_import_is_caught(trees):
    def added(module: str, line: str) -> dict[str, ast.Module]:
        return {**trees, module: ast.parse(ast.unparse(trees[module]) + "\n" + line)}

    assert upward(added("engine.diffusion.sampler", "from engine.pipeline import Pipeline")) == [
        "engine.diffusion.sampler (diffusion) -> engine.pipeline (pipeline)"]
    assert upward(added("engine.scoring.judge", "def late():\n    import engine.evaluation.quality")) == [
        "engine.scoring.judge (scoring) -> engine.evaluation.quality (evaluation)"]
    assert upward(added("engine.text.template", "from engine import request")) == [
        "engine.text.template (text) -> engine.request (request)"]  # a module named through its package
    assert upward(added("engine.pipeline", "from engine.request import Request")) == []  # downward is fine
    assert forbidden(added("engine.views", "import gradio as gr")) == ["engine.views -> gradio"]
    assert forbidden(added("editor.render", "from torch import nn")) == ["editor.render -> torch"]
