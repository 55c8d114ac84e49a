"""Which device and floating-point precision to run on, per machine.

bfloat16 halves the memory traffic of the network, but only a CPU with native bf16 instructions
(AVX-512 BF16 or AMX) runs it fast: elsewhere (AVX2 laptops) PyTorch emulates it, about 8x slower
than float32 for training. `torch.backends.cpu.get_cpu_capability()` is the kernel set PyTorch
actually dispatches to (it honours ATEN_CPU_CAPABILITY), so a machine limited to AVX2 reads as one.
"""

from __future__ import annotations

import torch

from engine.errors import ConfigError
from engine.options import PRECISIONS


def native_bf16(device: str | torch.device = "cpu") -> tuple[bool, str]:
    """Whether bf16 runs natively on `device`, and why (a phrase for the log)."""
    if str(device).startswith("cuda"):
        major, minor = torch.cuda.get_device_capability(torch.device(device))
        if major >= 8:
            return True, f"a CUDA device of compute capability {major}.{minor}"
        return False, f"a CUDA device of compute capability {major}.{minor} (bf16 needs 8.0, Ampere, or later)"
    capability = torch.backends.cpu.get_cpu_capability()
    if torch.cpu._is_amx_tile_supported() and capability.startswith("AVX512"):
        return True, f"AMX on this CPU ({capability} kernels)"
    if torch.cpu._is_avx512_bf16_supported() and capability.startswith("AVX512"):
        return True, f"AVX-512 BF16 on this CPU ({capability} kernels)"
    return False, f"no native bf16 on this CPU ({capability} kernels: it would be emulated)"


def choose_precision(requested: str, device: str | torch.device = "cpu") -> tuple[str, str]:
    """("bf16" or "fp32", why): `auto` takes bf16 where it is native, fp32 elsewhere."""
    if requested not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {requested!r}")
    if requested != "auto":
        return requested, "asked for"
    native, why = native_bf16(device)
    return ("bf16" if native else "fp32"), why


def check_device(name: str) -> torch.device:
    """The torch device `name` names, if this machine can run on it."""
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise ConfigError(f"unknown device {name!r}: use cpu or cuda (cuda:N for the N-th GPU)") from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r}: PyTorch {torch.__version__} sees no CUDA GPU on this machine; "
                              "run on the CPU (--device cpu)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s), "
                              f"numbered from 0")
    elif device.type != "cpu":
        raise ConfigError(f"device {name!r}: the engine runs on cpu or cuda")
    return device
