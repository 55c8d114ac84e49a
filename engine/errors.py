"""Errors a user can cause. The CLIs print their message and exit non-zero; no traceback."""


class EngineError(Exception):
    """A problem with the user's input or files, with a message meant for people."""


class TemplateError(EngineError):
    """A template that cannot be sampled: unknown words, wrong length, nothing to fill."""


class CheckpointError(EngineError):
    """A model directory that is missing, incomplete or inconsistent."""
