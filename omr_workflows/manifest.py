"""The version manifest: the pydantic definition, its canonical bytes and the package digest.

A manifest lists every file of a version with size, sha256 and xxh3-128 (plus per-chunk
xxh3-128 for files larger than `chunk_size`). It is split in two parts:

* `content`: the artifact files. The package digest is `sha256:` + sha256 of the canonical
  JSON of this part (sorted keys, no whitespace), so the same bytes give the same digest
  wherever and whenever they are registered.
* `sidecars`: `model_meta.json` and `sha256sums.txt`, which carry provenance (creator,
  time, environment). They are verified like any file but kept out of the package digest,
  so provenance never changes what a lock pins. The register audit event records the
  sha256 of `model_meta.json` so strict verification still detects an edit to it.

`sha256sums.txt` lists every file except itself and the manifest (the manifest is covered
by the package digest recorded in the audit log, aliases and locks).
"""

from __future__ import annotations

import json
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .constants import CHUNK_SIZE, MANIFEST_NAME, META_NAME, SHA256SUMS_NAME
from .errors import IntegrityError, InvalidInputError
from .canonical import canonical_json, content_digest_of, sha256_hex
from .fastread import ManifestDoc
from .names import check_data_dir, check_manifest_path, check_relpath, name_schema

SCHEMA_ID = "omr-manifest/1"
HEX64 = r"^[0-9a-f]{64}$"
HEX32 = r"^[0-9a-f]{32}$"


class FileEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(description="relative POSIX path inside the version", json_schema_extra=name_schema("omr-manifest-path"))
    size: int = Field(ge=0, lt=2**63)
    sha256: str = Field(pattern=HEX64)
    xxh3: str = Field(pattern=HEX32, description="xxh3-128 of the whole file")
    chunks: list[str] = Field(default_factory=list, description="xxh3-128 per chunk_size bytes; empty if one chunk")

    @field_validator("path")
    @classmethod
    def _safe(cls, v: str) -> str:
        check_manifest_path(v)
        return v


class Content(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    chunk_size: int = Field(default=CHUNK_SIZE, gt=0, lt=2**63)
    files: list[FileEntry]


class Manifest(BaseModel):
    """`omr_manifest.json`: the commit object of a version."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_: Literal["omr-manifest/1"] = Field(default=SCHEMA_ID, alias="schema")
    task: str
    model: str
    version: str
    created_at: str
    data_dir: str = Field(
        default="",
        description="where the files live relative to the version folder: '' on local "
        "filesystems, '.omr-data/<token>' on object stores (the upload area that won)",
        json_schema_extra=name_schema("omr-data-dir"),
    )
    content: Content
    sidecars: list[FileEntry] = Field(default_factory=list)

    @field_validator("data_dir")
    @classmethod
    def _safe_dir(cls, v: str) -> str:
        check_data_dir(v)
        return v

    all_files = ManifestDoc.all_files
    entry = ManifestDoc.entry

    @property
    def digest(self) -> str:
        return content_digest(self.content)

    def to_bytes(self) -> bytes:
        return (self.model_dump_json(by_alias=True, indent=1) + "\n").encode()


def content_digest(content: Content) -> str:
    return content_digest_of(content.model_dump(mode="json"))


def parse_manifest(data: bytes, where: str = MANIFEST_NAME) -> ManifestDoc:
    """Parse manifest bytes (`fastread.read_manifest` owns it; kept here for callers)."""
    from .fastread import read_manifest

    return read_manifest(data, where)


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


SIDECAR_NAMES = (META_NAME, SHA256SUMS_NAME)
