"""GNU coreutils' `sha256sum` format: writing `sha256sums.txt` and reading it as `sha256sum -c` does.

Its own module (no pydantic): verification plans the `sha256sums.txt` check, and legacy
versions are read, without building the manifest model.
"""

from __future__ import annotations

import re

from .constants import SHA256SUMS_NAME
from .errors import IntegrityError, InvalidInputError
from .names import check_relpath

# GNU coreutils' sha256sum format (digest.c): `<64 hex> <' '|'*'><name>`, or
# `SHA256 (<name>) = <64 hex>` (--tag). A name holding a backslash, LF or CR is written
# escaped (`\\`, `\n`, `\r`) on a line that starts with one backslash. All characters
# after the type indicator belong to the name, leading spaces and '*' included.
_SUMS_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r"}
_SUMS_UNESCAPES = {"\\": "\\", "n": "\n", "r": "\r"}
_HEX64 = re.compile(r"[0-9A-Fa-f]{64}")


def sha256sums_line(sha256: str, path: str) -> str:
    """One line as GNU `sha256sum` writes it (text mode), escaping the name when needed."""
    if any(c in path for c in _SUMS_ESCAPES):
        return "\\" + sha256 + "  " + "".join(_SUMS_ESCAPES.get(c, c) for c in path) + "\n"
    return f"{sha256}  {path}\n"


def sha256sums_text(entries: list[FileEntry]) -> str:
    """`<hex>  <relpath>` lines valid for plain `sha256sum -c`, sorted by path."""
    return "".join(sha256sums_line(e.sha256, e.path) for e in sorted(entries, key=lambda e: e.path))


def _unescape_sums_name(name: str) -> str | None:
    out, i = [], 0
    while i < len(name):
        c = name[i]
        if c == "\\":
            if i + 1 == len(name) or name[i + 1] not in _SUMS_UNESCAPES:
                return None
            out.append(_SUMS_UNESCAPES[name[i + 1]])
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def _split_sums_line(line: str, reversed_state: list) -> tuple[str, str] | None:
    """(hex, name) of one line the way `sha256sum -c` splits it, or None if malformed.

    `reversed_state[0]` carries GNU's per-file choice between the standard format and the
    indicator-less `<hex> <name>` one: it refuses to mix them, so that a file name with a
    leading space cannot change meaning half-way through a file.
    """
    i = 0
    while i < len(line) and line[i] in " \t":
        i += 1
    escaped = line.startswith("\\", i)
    if escaped:
        i += 1
    if line.startswith("SHA256", i):
        j = i + 6
        if line.startswith(" ", j):
            j += 1
        if not line.startswith("(", j):
            return None
        body = line[j + 1:]
        close = body.rfind(")")
        if close < 0:
            return None
        name, tail = body[:close], body[close + 1:]
        tail = tail[1:] if tail.startswith(" ") else tail
        if not tail.startswith("="):
            return None
        tail = tail[1:]
        tail = tail[1:] if tail.startswith(" ") else tail
        if not _HEX64.fullmatch(tail):
            return None
        hexd = tail
    else:
        hexd = line[i:i + 64]
        rest = line[i + 65:]
        if not _HEX64.fullmatch(hexd) or line[i + 64:i + 65] not in (" ", "\t"):
            return None
        if len(rest) == 1 or rest[:1] not in (" ", "*"):
            if reversed_state[0] is False:
                return None
            reversed_state[0] = True
            name = rest
        elif reversed_state[0] is not True:
            reversed_state[0] = False
            name = rest[1:]
        else:
            name = rest
    if escaped:
        name = _unescape_sums_name(name)
    if not name or "\0" in name:
        return None
    return hexd.lower(), name


def parse_sha256sums(text: str, where: str = SHA256SUMS_NAME) -> dict[str, str]:
    """Parse what GNU `sha256sum` writes (and `sha256sum -c` reads) into {path: hex}.

    Lines are split on LF only, one trailing CR dropped, `#` comment and blank lines skipped;
    escaped names are unescaped; then every name must pass `names.check_relpath`. Raises
    IntegrityError for a malformed line or a path listed twice with different digests, InvalidInputError for an
    unsafe path (naming `where` and the line number).
    """
    out: dict[str, str] = {}
    reversed_state: list = [None]
    for lineno, line in enumerate(text.split("\n"), 1):
        if line.endswith("\r"):
            line = line[:-1]
        if not line.strip(" \t") or line.startswith("#"):
            continue
        split = _split_sums_line(line, reversed_state)
        if split is None:
            raise IntegrityError(f"{where}:{lineno}: malformed line {line[:200]!r}", obj=where)
        hexd, path = split
        try:
            check_relpath(path, f"path in {where}")
        except InvalidInputError as e:
            raise InvalidInputError(f"{where}:{lineno}: {e}") from None
        if out.get(path, hexd) != hexd:
            raise IntegrityError(f"{where}:{lineno}: {path!r} is listed twice with different digests", obj=where)
        out[path] = hexd
    return out
