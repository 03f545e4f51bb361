"""Errors that reach the user as one clear line (the CLI exits 2 for config errors)."""


class MaelabError(Exception):
    """A problem with the user's input; the message names the problem and the fix."""


class ConfigError(MaelabError):
    """A bad configuration key or value."""


class DataError(MaelabError):
    """A missing, empty or corrupt dataset or image."""


class CheckpointError(MaelabError):
    """A checkpoint that cannot be read or does not match the model."""
