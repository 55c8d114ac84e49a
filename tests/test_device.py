"""`--device`: the engine runs wherever its networks are. Checked on the CPU by the device audit
(tests/device_audit.py): every path a request can take, every control, FUDGE and the forward
process, with no tensor left behind on another device; and "cuda" on a machine without one is a
clear one-line error from every command that takes the flag."""

from __future__ import annotations

import pytest
import torch

from engine.controls import FUTURE, KINDS, TRAINED
from engine.controls.targets import targets_from_fields
from engine.diffusion.sampler import SampleOptions
from engine.errors import ConfigError
from engine.pipeline import Pipeline
from engine.precision import check_device
from engine.request import Request
from tests.commands import spawn
from tests.device_audit import ENGINE, audit
from tests.test_hardening import one_line_error
from tests.test_hardening_editor import app_command, assert_one_line_error

TARGETS = {"pos": "PROPN AUX DET NOUN PUNCT", "tree": "The Mill is a pub .", "spans": "0 1 NP",
           "semantic": ["food=Italian"], "include": "Italian", "length": "5"}
STEPS = SampleOptions(steps=5)


def one(**fields) -> Request:
    return Request.one(samples=2, seed=3, sampling=STEPS, **fields)


def test_the_audit_catches_a_tensor_engine_code_makes_without_a_device():
    source = ("import torch\n"
              "def shifted(x):\n    return x + torch.ones(x.shape)\n"
              "def picked(x):\n    return x[torch.tensor([0])]\n"
              "def placed(x):\n    return x + torch.ones(x.shape, device=x.device)\n")
    code: dict = {}
    exec(compile(source, f"{ENGINE}/forgetful.py", "exec"), code)  # as if written in engine/
    x = torch.ones(3)
    with audit() as mixed, pytest.raises(RuntimeError, match="meta"):
        code["shifted"](x)
    with audit() as mixed:
        code["picked"](x)  # indexing with a meta index reads nothing instead of failing: recorded
    assert mixed and "index" in mixed[0]
    with audit() as mixed:
        assert code["placed"](x).tolist() == [2.0, 2.0, 2.0]
    assert mixed == []


@pytest.mark.slow
def test_every_diffusion_path_follows_the_models_device(control_model):
    pipe = Pipeline.from_pretrained(control_model)
    for kind in TRAINED:
        pipe.classifier(kind)  # loading is not audited: the path a request takes is
    together = targets_from_fields({k: TARGETS[k] for k in ("pos", "semantic", "include")})
    requests = {"free": one(), "blanks": one(template="The Eagle is a _ _ ."),
                "ellipsis": one(template="The Mill ... ."), "vary": one(vary="The Eagle is a pub ."),
                "all controls": one(targets=together)}
    requests |= {kind: one(targets=targets_from_fields({kind: TARGETS[kind]})) for kind in KINDS}
    for name, request in requests.items():
        with audit() as mixed:
            result = pipe.run(request)
        assert mixed == [], name
        assert result.best and all(c.words for c in result.best), name
        frame = result.trajectory.frames[-1]
        assert frame.tokens.device.type == "cpu" and frame.latents.device.type == "cpu"  # what views read
    with audit() as mixed:
        noising = pipe.forward("The Eagle is a pub .", seed=2, points=6)
    assert mixed == [] and noising.latents.device.type == "cpu"


@pytest.mark.slow
def test_left_to_right_writing_follows_the_lms_device(fudge_model):
    pipe = Pipeline.from_pretrained(fudge_model)
    for kind in FUTURE:
        pipe.networks.discriminator(kind)
    requests = {"ar": one(template="The Eagle is a _ _ .", method="ar"),
                "fudge": one(method="fudge", targets=targets_from_fields({k: TARGETS[k]
                                                                          for k in ("pos", "semantic", "length")}))}
    requests |= {f"fudge {kind}": one(method="fudge", targets=targets_from_fields({kind: TARGETS[kind]}))
                 for kind in ("tree", "spans")}
    for name, request in requests.items():
        with audit() as mixed:
            writing = pipe.run(request)
        assert mixed == [] and writing.best, name


def test_device_names_are_checked():
    assert check_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match="unknown device 'gpu0'"):
        check_device("gpu0")
    with pytest.raises(ConfigError, match="runs on cpu or cuda"):
        check_device("meta")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="sees no CUDA GPU on this machine; run on the CPU"):
            check_device("cuda")
    else:
        assert check_device("cuda").type == "cuda"
        with pytest.raises(ConfigError, match="numbered from 0"):
            check_device(f"cuda:{torch.cuda.device_count()}")


@pytest.mark.slow
def test_the_commands_take_the_device_and_say_when_there_is_no_gpu(tiny_model):
    generate = spawn("engine.generate", "--model", str(tiny_model), "--device", "cuda", "--steps", "3",
                     "--samples", "1")
    if torch.cuda.is_available():
        assert generate.returncode == 0, generate.stderr
    else:
        one_line_error(generate, "device 'cuda': PyTorch", "sees no CUDA GPU on this machine")
        assert_one_line_error(app_command("--port", "7998", "--device", "cuda"), "sees no CUDA GPU on this machine")
    one_line_error(spawn("engine.bench", "--model", str(tiny_model), "--device", "cuda:x"), "unknown device 'cuda:x'")
    assert "--device" in app_command("--help").stdout
