import torch

from engine.diffusion.schedule import alpha_bar, posterior, q_sample, strided_timesteps


def test_alpha_bar_is_the_sqrt_schedule_and_strictly_decreasing():
    t = torch.arange(0, 2001)
    ab = alpha_bar(t)
    assert ab[0] == 1.0
    assert torch.all(ab[1:] < ab[:-1])
    assert torch.isclose(ab[1000], torch.tensor(1 - (0.5 + 1e-4) ** 0.5), atol=1e-6)
    assert 0 < ab[-1] < 1e-3


def test_q_sample_has_the_right_mean_and_variance():
    g = torch.Generator().manual_seed(0)
    x0 = torch.full((20000, 1, 4), 2.0)
    t = torch.full((20000,), 300)
    xt = q_sample(x0, t, torch.randn(x0.shape, generator=g))
    ab = alpha_bar(torch.tensor(300))
    assert torch.isclose(xt.mean(), 2.0 * ab.sqrt(), atol=0.02)
    assert torch.isclose(xt.var(), 1 - ab, atol=0.02)


def test_posterior_interpolates_between_x0_and_xt():
    x0, xt = torch.zeros(1, 1, 2), torch.ones(1, 1, 2)
    t = torch.tensor([1000])
    mean_near, var_near = posterior(x0, xt, t, torch.tensor([999]))
    mean_far, var_far = posterior(x0, xt, t, torch.tensor([10]))
    # one step back stays close to x_t; jumping to near-clean moves almost all the way to x0
    assert mean_near[0, 0, 0] > 0.9 and mean_far[0, 0, 0] < 0.2
    assert 0 < var_near.item() < var_far.item() < 1


def test_strided_timesteps_cover_the_schedule_downwards():
    times = strided_timesteps(50)
    assert len(times) == 50 and times[0] == 2000 and times[-1] >= 1
    assert all(a > b for a, b in zip(times, times[1:], strict=False))
    assert strided_timesteps(2000) == list(range(2000, 0, -1))
