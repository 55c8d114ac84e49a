"""A device audit that runs on a CPU: would this code run with its networks on a GPU?

On a GPU, a tensor that engine code makes without naming a device (`torch.tensor(ids)`,
`torch.zeros(n)`) lands on the CPU and meets the networks' CUDA tensors, and the run fails.
Here the networks stay on the CPU, and inside `audit()` every such tensor made by a call from
`engine/` is made on PyTorch's "meta" device instead, a device with shapes and no data. Any
operation that then mixes devices is recorded (most would fail outright, as on a GPU; a few, such
as indexing with a meta index, would silently read nothing). Library code (torch's optimisers,
transformers) keeps its own choices: they are made to run on GPUs and are not audited.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

import engine

ENGINE = str(Path(engine.__file__).resolve().parent)
FACTORIES = {torch.tensor, torch.as_tensor, torch.zeros, torch.ones, torch.full, torch.empty, torch.arange,
             torch.linspace, torch.randn, torch.rand, torch.randint, torch.eye}
PLUMBING = ("/torch/overrides.py", "/torch/utils/", __file__)  # frames between the factory and its caller


def called_from_engine() -> bool:
    frame = sys._getframe(2)
    while frame is not None and any(part in frame.f_code.co_filename for part in PLUMBING):
        frame = frame.f_back
    return frame is not None and frame.f_code.co_filename.startswith(ENGINE)


class HostTensorsToMeta(TorchFunctionMode):
    """Makes on "meta" every tensor that engine code asks for without a device."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        from_data = func is torch.as_tensor and isinstance(args[0], torch.Tensor)  # keeps its tensor's device
        if func in FACTORIES and kwargs.get("device") is None and not from_data and called_from_engine():
            kwargs = {**kwargs, "device": "meta"}
        return func(*args, **kwargs)


class MixedDevices(TorchDispatchMode):
    """Records every operation whose tensor arguments (0-d ones aside, as CUDA allows) sit on more than one device."""

    def __init__(self):
        super().__init__()
        self.mixed: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        devices = {a.device.type for a in tree_leaves((args, kwargs)) if isinstance(a, torch.Tensor) and a.dim() > 0}
        if len(devices) > 1:
            where = [line for line in traceback.format_stack() if ENGINE in line][-1:]
            self.mixed.append(f"{func} on {sorted(devices)} at {''.join(where).strip()}")
        return func(*args, **kwargs)


@contextmanager
def audit() -> Iterator[list[str]]:
    """Yields the list of mixed-device operations seen inside (empty: the code follows its networks' device)."""
    mixed = MixedDevices()
    with HostTensorsToMeta(), mixed:
        yield mixed.mixed
