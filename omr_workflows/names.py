"""The name rule for tasks, models, versions and aliases (docs/DESIGN.md, "References and names"), and safe relative paths.

Names become path components, so the rule is what keeps every write inside the registry
root. Manifest paths get the same treatment: relative POSIX, no `..`, no absolute parts,
no backslashes.
"""

from __future__ import annotations

import re

from .constants import MANIFEST_NAME, TOKEN_PATTERN
from .errors import InvalidInputError

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
KINDS = ("task", "model", "version", "alias")


def check_name(value: object, kind: str = "name") -> str:
    """Return `value` if it is a valid name, else raise InvalidInputError saying why."""
    if not isinstance(value, str):
        raise InvalidInputError(f"invalid {kind} {value!r}: must be a string")
    if value == "":
        raise InvalidInputError(f"invalid {kind} '': must not be empty")
    if len(value) > 128:
        raise InvalidInputError(f"invalid {kind} '{value[:20]}...': {len(value)} characters, at most 128 allowed")
    if "/" in value or "\\" in value:
        raise InvalidInputError(f"invalid {kind} {value!r}: must not contain '/' or '\\'")
    if ".." in value:
        raise InvalidInputError(f"invalid {kind} {value!r}: must not contain '..'")
    if not NAME_RE.fullmatch(value):
        raise InvalidInputError(
            f"invalid {kind} {value!r}: use letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return value


def check_relpath(value: str, what: str = "path") -> str:
    """Return a safe relative POSIX path or raise InvalidInputError (used for manifest entries)."""
    if not isinstance(value, str) or value == "":
        raise InvalidInputError(f"unsafe {what} {value!r}: must be a non-empty relative path")
    if "\\" in value:
        raise InvalidInputError(f"unsafe {what} {value!r}: backslashes are not allowed")
    if value.startswith("/") or re.match(r"^[A-Za-z]:", value):
        raise InvalidInputError(f"unsafe {what} {value!r}: absolute paths are not allowed")
    if "\x00" in value or "\n" in value:
        raise InvalidInputError(f"unsafe {what} {value!r}: control characters are not allowed")
    parts = value.split("/")
    for part in parts:
        if part in ("", ".", ".."):
            raise InvalidInputError(f"unsafe {what} {value!r}: '..', '.' and empty parts are not allowed")
    return value


DATA_DIR_RE = re.compile(r"\.omr-data/" + TOKEN_PATTERN)


def check_manifest_path(value: str) -> str:
    """A path a manifest may list: a safe relative path, never the manifest itself."""
    check_relpath(value, "manifest path")
    if value == MANIFEST_NAME:
        raise ValueError(f"manifest must not list itself ({value})")
    return value


def check_data_dir(value: str) -> str:
    """`data_dir` of a manifest: '' or the object-store upload area of one attempt."""
    if value:
        check_relpath(value, "manifest data_dir")
        if not DATA_DIR_RE.fullmatch(value):
            raise ValueError(f"data_dir {value!r} is not an omrw upload area (.omr-data/<token>)")
    return value


def _pydantic_name(value: str) -> str:
    return check_name(value, "name")


def name_schema(fmt: str = "omr-name") -> dict:
    """What the JSON Schema says of a checked string: `format` names the check, so
    `fastread` runs the same function the model's validator runs."""
    return {"format": fmt}


def name_type():
    """`Annotated[str, ...]` that applies the name rule inside pydantic models read from files."""
    from typing import Annotated

    from pydantic import AfterValidator, Field

    return Annotated[str, AfterValidator(_pydantic_name), Field(json_schema_extra=name_schema())]
