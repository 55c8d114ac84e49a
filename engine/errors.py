"""Every error a user can cause, in one place. Each carries a message meant for people: the CLIs
print it on one line and exit 2 (see `engine.cli`), the editor shows it above the row."""


class EngineError(Exception):
    """A problem with the user's input or files, with a message meant for people."""


class TemplateError(EngineError):
    """A template that cannot be sampled: unknown words, wrong length, nothing to fill."""


class CheckpointError(EngineError):
    """A model directory that is missing, incomplete or inconsistent."""


class TargetError(EngineError):
    """A control target that cannot be used: malformed, unknown label, out of range."""


class ConfigError(EngineError):
    """An option or configuration value out of its range (steps, samples, learning rate, ...)."""


class CellActionError(EngineError):
    """An edit of the editor's token row that cannot apply (stale index, empty word)."""
