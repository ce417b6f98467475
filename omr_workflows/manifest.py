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
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .constants import CHUNK_SIZE, MANIFEST_NAME, META_NAME, SHA256SUMS_NAME
from .errors import IntegrityError, InvalidInputError, validation_detail
from .hashing import sha256_hex
from .names import check_relpath

SCHEMA_ID = "omr-manifest/1"
HEX64 = r"^[0-9a-f]{64}$"
HEX32 = r"^[0-9a-f]{32}$"


class FileEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(description="relative POSIX path inside the version")
    size: int = Field(ge=0)
    sha256: str = Field(pattern=HEX64)
    xxh3: str = Field(pattern=HEX32, description="xxh3-128 of the whole file")
    chunks: list[str] = Field(default_factory=list, description="xxh3-128 per chunk_size bytes; empty if one chunk")

    @field_validator("path")
    @classmethod
    def _safe(cls, v: str) -> str:
        check_relpath(v, "manifest path")
        if v in (MANIFEST_NAME,):
            raise ValueError(f"manifest must not list itself ({v})")
        return v


class Content(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    chunk_size: int = Field(default=CHUNK_SIZE, gt=0)
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
    )
    content: Content
    sidecars: list[FileEntry] = Field(default_factory=list)

    @field_validator("data_dir")
    @classmethod
    def _safe_dir(cls, v: str) -> str:
        if v:
            check_relpath(v, "manifest data_dir")
        return v

    def all_files(self) -> list[FileEntry]:
        return list(self.content.files) + list(self.sidecars)

    def entry(self, path: str) -> FileEntry | None:
        for e in self.all_files():
            if e.path == path:
                return e
        return None

    @property
    def digest(self) -> str:
        return content_digest(self.content)

    def to_bytes(self) -> bytes:
        return (self.model_dump_json(by_alias=True, indent=1) + "\n").encode()


def canonical_json(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def content_digest(content: Content) -> str:
    return "sha256:" + sha256_hex(canonical_json(content.model_dump(mode="json")))


def parse_manifest(data: bytes, where: str = MANIFEST_NAME) -> Manifest:
    """Parse manifest bytes; damage is an integrity failure naming the file."""
    try:
        return Manifest.model_validate_json(data)
    except Exception as e:
        detail = validation_detail(e)
        if "unsafe" in str(e):
            raise InvalidInputError(f"{where}: unsafe path in manifest: {detail}") from None
        raise IntegrityError(f"{where}: manifest is damaged or invalid ({detail})", obj=where) from None


def sha256sums_text(entries: list[FileEntry]) -> str:
    """`<hex>  <relpath>` lines valid for plain `sha256sum -c`, sorted by path."""
    return "".join(f"{e.sha256}  {e.path}\n" for e in sorted(entries, key=lambda e: e.path))


def parse_sha256sums(text: str, where: str = SHA256SUMS_NAME) -> dict[str, str]:
    """Parse sha256sums lines into {path: hex}; unsafe paths are refused."""
    out: dict[str, str] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        parts = line.split(None, 1)
        if len(parts) != 2:
            raise IntegrityError(f"{where}:{lineno}: malformed line {line!r}", obj=where)
        hexd, path = parts[0].lower(), parts[1].lstrip("*")
        try:
            check_relpath(path, f"path in {where}")
        except InvalidInputError as e:
            raise InvalidInputError(f"{where}:{lineno}: {e}") from None
        out[path] = hexd
    return out


SIDECAR_NAMES = (META_NAME, SHA256SUMS_NAME)
