"""The diffusion core: noise schedule, step rules, the denoiser network, the sampling loop,
checkpoints and training objectives."""
