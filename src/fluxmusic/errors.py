"""The library's user-error types: what the command line reports as one line instead of a traceback.

Every error that a user's input can cause (a bad value, a malformed file, missing weights) is an
instance of :class:`FluxmusicError`, through one of the two kinds below or a more specific subclass
(``CheckpointError``, ``ManifestError``, ``AudioFileError``, ``SettingsError``, ...). They are also
``ValueError`` / ``FileNotFoundError`` subclasses, so callers that catch those keep working. Any other
exception reaching the command line is a bug and keeps its traceback.
"""

from __future__ import annotations

__all__ = ["FluxmusicError", "InputError", "MissingFilesError", "WriteError"]


class FluxmusicError(Exception):
    """Base of every error caused by the user's input rather than by a bug."""


class InputError(FluxmusicError, ValueError):
    """A bad value: an argument, a config entry, a file's content. The message names it and the fix."""


class MissingFilesError(FluxmusicError, FileNotFoundError):
    """Files the user pointed at (or a model needs) are missing; the message names each."""


class WriteError(FluxmusicError, OSError):
    """A file could not be written (disk full, read-only, permissions); names the path and what is free.

    Nothing half-written is left behind: the writer removes its temporary file before raising.
    """
