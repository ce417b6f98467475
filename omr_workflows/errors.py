"""Every error omr-workflows raises, with the exit code the CLI maps it to (docs/DESIGN.md, "Overview").

Each class also inherits the matching built-in so callers can catch `LookupError`,
`ValueError` or `OSError` without importing us. Messages name the object and the cause
and, where there is one, the command to run next.
"""

from __future__ import annotations


class OmrError(Exception):
    """Base class. `exit_code` is what `omrw` exits with."""

    exit_code = 5

    def __init__(self, message: str, *, obj: str | None = None):
        super().__init__(message)
        self.obj = obj


class IntegrityError(OmrError):
    """Bytes, a manifest or the audit chain do not match what was recorded."""

    exit_code = 1

    def __init__(self, message: str, *, obj: str | None = None, problems: list | None = None):
        super().__init__(message, obj=obj)
        self.problems = problems or []


class TrustError(IntegrityError):
    """The trusted policy does not vouch for what was asked (unsigned, unapproved, rewritten, or the
    policy itself is not signed by the trust root). Never downgraded to a warning."""


class DigestMismatchError(IntegrityError):
    """A version's manifest gives another package digest than the event that registered it."""


class InvalidInputError(OmrError, ValueError):
    """A name, reference, option or input file is malformed or unsafe."""

    exit_code = 2


class NotFoundError(OmrError, LookupError):
    """A task, model, version, alias or file does not exist."""

    exit_code = 3


class RetiredError(NotFoundError):
    """The version was retired (and maybe pruned): its record stays, its bytes are not served."""


class ConflictError(OmrError):
    """The write would change something immutable (version exists, lock drift)."""

    exit_code = 4


class StorageError(OmrError, OSError):
    """The storage backend failed (I/O, permissions, network, missing extra)."""

    exit_code = 5


def validation_detail(exc: Exception) -> str:
    """The first field and message of a pydantic ValidationError on one line (for one-line errors)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    if len(lines) > 2:
        return f"{lines[1]}: {lines[2]}"
    return lines[0] if lines else type(exc).__name__
