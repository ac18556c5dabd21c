"""Errors a user can cause. The CLI prints their message on one line and exits with code 2."""

__all__ = [
    "VadError", "ConfigError", "DataError", "CorruptMediaError", "DataLayoutError", "TrackingError", "DiskFullError",
]


class VadError(Exception):
    """Base class for errors caused by input, configuration or environment (not bugs)."""


class ConfigError(VadError, ValueError):
    """A parameter file or option holds an unknown key or an invalid value."""


class DataError(VadError, ValueError):
    """Input data is unreadable, too short or inconsistent with its labels."""


class CorruptMediaError(DataError):
    """A video or image cannot be decoded (missing, empty, truncated or corrupt)."""


class DataLayoutError(VadError, FileNotFoundError):
    """A dataset folder is missing or does not match the expected layout."""


class TrackingError(VadError, RuntimeError):
    """MLflow cannot be reached or refuses an operation."""


class DiskFullError(VadError, OSError):
    """The disk filled while an output was written; the previous output is intact, the partial one removed."""
