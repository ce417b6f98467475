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


from .sums import parse_sha256sums, sha256sums_line, sha256sums_text  # noqa: E402,F401  (their owner)


SIDECAR_NAMES = (META_NAME, SHA256SUMS_NAME)
