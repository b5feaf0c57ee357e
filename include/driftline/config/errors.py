"""ConfigError: the one error a dataset config raises (a BadConfig: fail now, no retry)."""

from driftline.errors import BadConfig


class ConfigError(BadConfig):
    """A dataset config that cannot be used; the message names the file and the key."""
