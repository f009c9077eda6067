"""Typed errors. The text of each is the one line a user sees: what, which value, why."""


class VidfleetError(Exception):
    """Base of every error vidfleet raises on purpose."""


class ConfigError(VidfleetError, ValueError):
    """A job config or a setting is invalid: names the key, what was expected and what was given."""

    kind = "config"


class InputError(VidfleetError):
    """An input (path, URL) cannot be used."""


class VideoError(VidfleetError):
    """A video cannot be opened or decoded."""

    kind = "video"


class VideoOpenError(VideoError):
    kind = "unreadable"


class EmptyVideoError(VideoError):
    kind = "empty"


class ModelError(VidfleetError):
    """The model cannot be found, loaded or run."""
