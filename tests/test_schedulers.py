"""The schedulers (engine.diffusion.steps): closed-form cases, a multistep solver's history, and runs."""

from __future__ import annotations

import math

import pytest
import torch

from engine.diffusion.sampler import SampleOptions
from engine.diffusion.schedule import alpha_bar, posterior, posterior_variance, strided_timesteps
from engine.diffusion.steps import STEP_RULES, DDIMScheduler
from engine.errors import ConfigError
from engine.options import spec_of
from engine.pipeline import Pipeline
from engine.request import Request

T = 2000


def scheduler(name: str, steps: int, **kwargs) -> object:
    s = STEP_RULES[name](T, **kwargs)
    s.set_timesteps(strided_timesteps(steps, T))
    return s


def signal_noise_lambda(t: int) -> tuple[float, float, float]:
    ab = float(alpha_bar(t, T))
    alpha, sigma = math.sqrt(ab), math.sqrt(1 - ab)
    return alpha, sigma, math.log(alpha / sigma) if sigma else math.inf


def test_the_registry_names_the_step_rules_sample_options_accept():
    assert set(STEP_RULES) == {"ancestral", "ddim", "dpm++2m"}
    assert spec_of(SampleOptions.__dataclass_fields__["step_rule"]).choices == tuple(STEP_RULES)
    assert SampleOptions(step_rule="dpm++2m").step_rule == "dpm++2m"
    with pytest.raises(ConfigError, match="ancestral, ddim, dpm\\+\\+2m"):
        SampleOptions(step_rule="euler")


@pytest.mark.parametrize("name", list(STEP_RULES))
def test_with_a_constant_estimate_every_rule_lands_on_it_at_t0(name):
    """x0_hat never changes: the deterministic rules follow the exact path alpha_t x0 + sigma_t eps
    at every time, and every rule's last step (to t = 0) lands on x0."""
    g = torch.Generator().manual_seed(0)
    x0, x = torch.randn(2, 3, 4, generator=g), torch.randn(2, 3, 4, generator=g)
    s = scheduler(name, 10)
    alpha, sigma, _ = signal_noise_lambda(s.timesteps[0])
    eps = (x - alpha * x0) / sigma
    for i, t in enumerate(s.timesteps):
        x = s.step(x0, t, x, g).x_prev
        t_prev = s.timesteps[i + 1] if i + 1 < len(s.timesteps) else 0
        if name != "ancestral":
            alpha, sigma, _ = signal_noise_lambda(t_prev)
            assert torch.allclose(x, alpha * x0 + sigma * eps, atol=1e-5), (name, t_prev)
    assert torch.allclose(x, x0, atol=1e-6)


def test_the_first_order_step_of_dpm_solver_is_ddim():
    g = torch.Generator().manual_seed(1)
    x0_hat, x = torch.randn(2, 5, 8, generator=g), torch.randn(2, 5, 8, generator=g)
    dpm, ddim = scheduler("dpm++2m", 20), scheduler("ddim", 20)
    assert torch.allclose(dpm.step(x0_hat, T, x).x_prev, ddim.step(x0_hat, T, x).x_prev, atol=1e-6)


def test_dpm_solver_second_step_uses_the_first_steps_estimate_and_a_new_run_forgets_it():
    """The paper's 2M update with r = h_last / h: D = (1 + 1/2r) x0_hat - 1/2r x0_hat_last,
    x_prev = sigma_prev / sigma_t x - alpha_prev (e^-h - 1) D."""
    g = torch.Generator().manual_seed(2)
    first, second, x = (torch.randn(1, 4, 6, generator=g) for _ in range(3))
    s = scheduler("dpm++2m", 10)
    t0, t1, t2 = s.timesteps[:3]
    x1 = s.step(first, t0, x).x_prev
    x2 = s.step(second, t1, x1).x_prev
    (_, _, lam0), (_, s1, lam1), (a2, s2, lam2) = (signal_noise_lambda(t) for t in (t0, t1, t2))
    r = (lam1 - lam0) / (lam2 - lam1)
    D = (1 + 1 / (2 * r)) * second - 1 / (2 * r) * first
    expected = s2 / s1 * x1 - a2 * math.expm1(-(lam2 - lam1)) * D
    assert torch.allclose(x2, expected, atol=1e-5)
    assert not torch.allclose(x2, DDIMScheduler(T).update(second, x1, t1, t2, generator=None).x_prev, atol=1e-3)
    s.set_timesteps(s.timesteps)  # a new run: its first step is first order again
    assert torch.allclose(s.step(second, t0, x).x_prev, scheduler("ddim", 10).step(second, t0, x).x_prev, atol=1e-6)


def test_dpm_solver_follows_a_moving_estimate_closer_than_ddim():
    """x0_hat = a + b lambda_t has the exact ODE solution x_t = sigma_t / sigma_s x_s +
    sigma_t [e^lambda (a + b (lambda - 1))] from lambda_s to lambda_t: the second-order solver is
    much closer to it than the first-order one. The run starts at T / 2 (as a variation does): from
    T, the first step, first order in both, spans lambda -5.8 to -1.8 and its error dominates."""
    a, b = torch.full((1, 1, 1), 0.5), torch.full((1, 1, 1), -0.2)
    x_start = torch.full((1, 1, 1), 1.3)

    def solve(name: str) -> tuple[torch.Tensor, list[int]]:
        s, x = STEP_RULES[name](T), x_start
        s.set_timesteps(strided_timesteps(20, T, start=T // 2))
        for t in s.timesteps[:-1]:
            x = s.step(a + b * signal_noise_lambda(t)[2], t, x).x_prev
        return x, s.timesteps

    def primitive(lam: float) -> torch.Tensor:
        return math.exp(lam) * (a + b * (lam - 1))

    _, times = solve("ddim")
    _, sigma_s, lam_s = signal_noise_lambda(times[0])
    _, sigma_t, lam_t = signal_noise_lambda(times[-1])
    exact = sigma_t / sigma_s * x_start + sigma_t * (primitive(lam_t) - primitive(lam_s))
    error_ddim = (solve("ddim")[0] - exact).abs().item()
    error_dpm = (solve("dpm++2m")[0] - exact).abs().item()
    assert error_dpm < error_ddim / 10, (error_dpm, error_ddim)


def test_ancestral_draws_one_noise_of_the_latents_shape_per_step_from_the_runs_generator():
    x0_hat, x = torch.randn(2, 3, 4), torch.randn(2, 3, 4)
    s = scheduler("ancestral", 10, noise_scale=0.5)
    t, t_prev = s.timesteps[:2]
    out = s.step(x0_hat, t, x, torch.Generator().manual_seed(7))
    mean, variance = posterior(x0_hat, x, t, t_prev, T)
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(7))
    assert torch.equal(out.mean, mean) and torch.equal(out.x_prev, mean + 0.5 * variance.sqrt() * noise)


def test_the_trust_region_variance_is_the_ancestral_posteriors_for_the_steps_times():
    x0, x = torch.randn(1, 2, 3), torch.randn(1, 2, 3)
    for t, t_prev in ((2000, 1960), (500, 40), (40, 0)):
        assert torch.equal(posterior(x0, x, t, t_prev, T)[1].flatten(), posterior_variance(t, t_prev, T).flatten())
    assert posterior_variance(40, 0, T) == 0


def test_schedulers_of_interleaved_runs_keep_their_own_history():
    g = torch.Generator().manual_seed(3)
    estimates = [torch.randn(1, 2, 3, generator=g) for _ in range(5)]
    x = torch.randn(1, 2, 3, generator=g)

    def alone() -> torch.Tensor:
        s, y = scheduler("dpm++2m", 5), x
        for t, e in zip(s.timesteps, estimates, strict=True):
            y = s.step(e, t, y).x_prev
        return y

    one, other = scheduler("dpm++2m", 5), scheduler("dpm++2m", 5)
    y_one, y_other = x, x
    for t, e in zip(one.timesteps, estimates, strict=True):
        y_one = one.step(e, t, y_one).x_prev
        y_other = other.step(-e, t, y_other).x_prev
    assert torch.equal(y_one, alone())


def test_a_step_out_of_the_runs_order_is_refused():
    s = scheduler("ddim", 5)
    x = torch.zeros(1, 1, 1)
    with pytest.raises(ValueError, match="next time this run visits is 2000"):
        s.step(x, 1600, x)
    for t in s.timesteps:
        s.step(x, t, x)
    with pytest.raises(ValueError, match="the run is over"):
        s.step(x, 400, x)


@pytest.fixture(scope="module")
def pipe(tiny_model):
    return Pipeline.from_pretrained(tiny_model, precision="fp32")


def test_a_dpm_solver_run_writes_valid_text_the_same_for_the_same_seed(pipe):
    def run(rule: str, seed: int):
        sampling = SampleOptions(steps=10, step_rule=rule, settle_steps=0)
        return pipe.run(Request.one(length=6, samples=3, seed=seed, sampling=sampling)).trajectory

    result = run("dpm++2m", 4)
    specials = {"PAD", "START", "END", "UNK"}
    assert [len(w) for w in result.words] == [6, 6, 6]
    assert all(w not in specials and w in pipe.tokenizer.words for words in result.words for w in words)
    assert len(result.frames) == 10 and torch.isfinite(result.frames[-1].latents).all()
    assert run("dpm++2m", 4).words == result.words
    assert not torch.equal(result.frames[-1].latents, run("ddim", 4).frames[-1].latents)
