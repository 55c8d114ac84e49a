"""DLM Studio's engine: a continuous diffusion language model, with no UI code.

    request.py, pipeline.py   Request in, Result out: the one path every caller goes through
    errors.py, cli.py, views.py   user errors, command-line plumbing, plain views of a run
    diffusion/   the diffusion core: schedule, step rules, denoiser network, sampling loop, checkpoints, losses
    controls/    classifier guidance: the registry of kinds, one module per kind, classifier, guidance, targets
    text/        tokenizer, templates, spaCy syntax oracles, data files
    scoring/     the fluency judge, metrics, and what `engine.evaluate` measures
    generate, evaluate, bench, train, train_control, make_targets   the commands (python -m engine.<name>)
"""
