"""DLM Studio's engine: a continuous diffusion language model, with no UI code.

    request.py, pipeline.py   Request in, Result out: the one path every caller goes through
    loading.py, ranking.py    reading a model folder (and the networks that steer controls); ranking a run's rows
    errors.py, cli.py, views.py   user errors, command-line plumbing, plain views of a run
    diffusion/   the diffusion core: schedule, step rules, denoiser network, sampling loop, checkpoints, losses
    controls/    classifier guidance: the registry of kinds, one module per kind, classifier, guidance, targets
    text/        tokenizer, templates, spaCy syntax oracles, data files
    autoregressive/   left-to-right writing on the judge's LM (plain sampling and FUDGE)
    scoring/     the fluency judge and the metrics (the ranking's and the evaluations')
    evaluation/  what `engine.evaluate` measures: quality, control, vary, settle
    generate, evaluate, bench, train, train_control, make_targets   the commands (python -m engine.<name>)
"""
