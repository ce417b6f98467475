"""The bundle format (docs/DESIGN.md, "Bundles"): the index, and the one place that names a member.

A bundle is one uncompressed POSIX tar. Its first member is `index.json` (`BundleIndex`),
which lists every other member, in order, with its size and sha256, so the sha256 of the
index bytes (the *bundle digest*) covers every byte of the bundle without hashing the tar.
Members are named only by the functions below, from names that pass the one name rule, so
an importer derives the exact set of names it expects and refuses anything else (a `../x`,
a symlink, a device, a member listed twice).

Not compressed: model weights barely compress, a seekable tar lets import read each member
in place, and zstd would be a dependency for little gain.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..events import DIGEST_PATTERN, HEX_PATTERN, MAX_TEXT, EventRef
from ..names import check_name, name_type

FORMAT = "omr-bundle/1"
INDEX_NAME = "index.json"
POLICY_NAME = "policy.json"
LOCK_NAME = "omr.lock.json"
MAX_INDEX_BYTES = 64 << 20
MAX_MEMBERS = 2_000_000
#: small members (events, manifests, signatures, policy, lock) are read into memory, bounded
MAX_SMALL_BYTES = 64 << 20

Name = name_type()


class Member(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=4096)
    size: int = Field(ge=0)
    sha256: str = Field(pattern=HEX_PATTERN)


class OriginChain(BaseModel):
    """An origin chain the source itself holds for the model (a version it imported), carried on."""

    model_config = ConfigDict(extra="forbid")
    chain: str = Field(pattern=HEX_PATTERN)
    head: EventRef


class BundleVersion(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: Name
    digest: str = Field(pattern=DIGEST_PATTERN)
    manifest_sha256: str = Field(pattern=HEX_PATTERN, description="sha256 of the source's omr_manifest.json")
    files: int = Field(ge=0)
    bytes: int = Field(ge=0)
    signatures: list[str] = Field(default_factory=list, max_length=64, description="key ids of its signatures")


class BundleModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    task: Name
    model: Name
    chain: str = Field(pattern=HEX_PATTERN, description="sha256 of event 1 of the source log: the chain's identity")
    head: EventRef = Field(description="the source log's newest event; the bundle holds events 1 to head.seq")
    versions: list[BundleVersion] = Field(min_length=1)
    aliases: dict[Name, Name] = Field(default_factory=dict,
                                      description="the source's aliases that point at a version in the bundle")
    origins: list[OriginChain] = Field(default_factory=list, max_length=1024)

    @model_validator(mode="after")
    def _consistent(self) -> "BundleModel":
        names = [v.version for v in self.versions]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.task}/{self.model}: a version is listed twice")
        for alias, version in self.aliases.items():
            if version not in names:
                raise ValueError(f"{self.task}/{self.model}: alias {alias} names {version}, which is not in the bundle")
        return self


class BundleIndex(BaseModel):
    """`index.json`, the first member: what the bundle holds and the sha256 of every other member."""

    model_config = ConfigDict(extra="forbid")
    format: Literal["omr-bundle/1"] = FORMAT
    created_at: str = Field(max_length=64)
    created_by: str = Field(max_length=MAX_TEXT)
    source: str = Field(max_length=MAX_TEXT, description="the registry the versions were exported from")
    models: list[BundleModel] = Field(min_length=1)
    policy: bool = Field(default=False, description="the source's signed policy is member policy.json")
    lock: bool = Field(default=False, description="the lock file the bundle was made from is member omr.lock.json")
    members: list[Member] = Field(max_length=MAX_MEMBERS, description="every member after the index, in tar order")

    @model_validator(mode="after")
    def _unique(self) -> "BundleIndex":
        keys = [(m.task, m.model) for m in self.models]
        if len(set(keys)) != len(keys):
            raise ValueError("a model is listed twice")
        names = [m.name for m in self.members]
        if len(set(names)) != len(names):
            raise ValueError("a member is listed twice")
        return self

    def to_bytes(self) -> bytes:
        return (self.model_dump_json(indent=1) + "\n").encode()


# ---------------------------------------------------------------------- member names
def _m(task: str, model: str) -> str:
    return f"models/{check_name(task, 'task')}/{check_name(model, 'model')}"


def event_member(task: str, model: str, seq: int) -> str:
    if not isinstance(seq, int) or not 1 <= seq < 10**10:
        raise ValueError(f"invalid event sequence number {seq!r}")
    return f"{_m(task, model)}/events/{seq:010d}.json"


def origin_member(task: str, model: str, chain: str, seq: int) -> str:
    return f"{_m(task, model)}/origins/{chain}/{seq:010d}.json"


def manifest_member(task: str, model: str, version: str) -> str:
    return f"{_m(task, model)}/versions/{check_name(version, 'version')}/omr_manifest.json"


def file_member(task: str, model: str, version: str, rel: str) -> str:
    """`rel` comes from a manifest whose model already refused absolute and `..` paths."""
    return f"{_m(task, model)}/versions/{check_name(version, 'version')}/files/{rel}"


def signature_member(task: str, model: str, version: str, key_id: str) -> str:
    return f"{_m(task, model)}/versions/{check_name(version, 'version')}/signatures/{key_id}.sig"


def index_schema() -> dict:
    return BundleIndex.model_json_schema()
