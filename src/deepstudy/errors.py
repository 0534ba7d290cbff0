"""Errors a user can fix.  The CLI prints their message as one line and exits with code 2;
anything else is a bug and keeps its traceback."""


class UserError(Exception):
    """A mistake in what the user asked for: bad option, missing data, unreadable file."""


class ConfigError(UserError):
    """An unknown recipe, option or value."""


class DataError(UserError):
    """Data that is missing, truncated or fails its checksum."""


class RunDirError(UserError):
    """A folder that is not a (complete) run directory, or a damaged checkpoint."""


def shown(text: str) -> str:
    """Text as it can be printed: bytes that were not UTF-8 (Python keeps them in file names and
    command-line arguments as lone surrogates) shown as \\x escapes instead of breaking the output."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
