"""What made a run, so that an exported run says how to make it again: the model (its name and a
SHA-256 of every weights file in its folder), the request as the engine read it, and the versions
of the packages that computed it. Nothing of the machine it ran on beyond the device: an export
names the model's folder, never its path on disk, and the hashes say which weights those were."""

from __future__ import annotations

import dataclasses
import hashlib
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("dlm-studio", "torch", "transformers", "tokenizers", "safetensors", "spacy", "numpy")


def model_name(directory: Path, bundled: Path) -> str:
    """A model folder as an export names it: the repository's own path for the bundled model
    (`bundled`), else the folder's name, not its path on this machine."""
    directory = Path(directory)
    if directory.resolve() == Path(bundled).resolve():
        return "assets/model (bundled)"
    return directory.resolve().name


def weights_digests(directory: Path) -> dict[str, str]:
    """{file name: SHA-256} of every safetensors file in a model folder."""
    digests = {}
    for path in sorted(Path(directory).glob("*.safetensors")):
        digest = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        digests[path.name] = digest.hexdigest()
    return digests


def versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """The installed version of each package (and Python's); "not installed" where it is missing."""
    found = {"python": platform.python_version()}
    for name in packages:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def request_dict(request: Any) -> dict:
    """A Request as plain JSON values, each target with the name of its kind."""
    data = dataclasses.asdict(request)
    for prompt, plain in zip(request.prompts, data["prompts"], strict=True):
        plain["targets"] = [{"kind": target.kind, **dataclasses.asdict(target)} for target in prompt.targets]
        if not isinstance(prompt.template, str | None):
            plain["template"] = repr(prompt.template)
    return data
