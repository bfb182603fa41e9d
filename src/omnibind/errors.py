"""Errors raised for bad user input: each names the file or field and what was expected."""

from __future__ import annotations

from pathlib import Path


class OmniBindError(Exception):
    """Base class of every error omnibind raises on purpose."""


class InputError(OmniBindError, ValueError):
    """An input (file, text, tensor, option) is not what omnibind expects.

    The message always names the offending input and what was expected, so a user can fix it.
    """

    def __init__(self, source: str | Path | None, problem: str, expected: str | None = None) -> None:
        where = f"{source}: " if source is not None else ""
        hint = f" (expected {expected})" if expected else ""
        super().__init__(f"{where}{problem}{hint}")
        self.source = None if source is None else str(source)
        self.problem = problem
        self.expected = expected


class CheckpointError(OmniBindError, ValueError):
    """A checkpoint folder or file is missing, incomplete or inconsistent."""


class UploadError(InputError):
    """An InputError with the HTTP status the search service answers it with (413, 415, 422)."""

    def __init__(self, status_code: int, source: str, problem: str, expected: str | None = None) -> None:
        super().__init__(source, problem, expected)
        self.status_code = status_code
