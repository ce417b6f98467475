"""The file formats of the log: events, head, alias pointers and anchors (pydantic, the one definition).

What each field means and which files are truth and which derived caches: docs/DESIGN.md,
"The log". Every name in them goes through the one name rule (`Name`).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .manifest import canonical_json
from .names import name_type

Name = name_type()
STAGES = ("development", "staging", "production", "archived")
STAGE_ALIASES = {"staging": "staging", "production": "production"}
STAGE_ONLY = ("development", "archived")
ANCHOR_KINDS = ("register", "adopt")
DIGEST_PATTERN = r"^sha256:[0-9a-f]{64}$"
HEX_PATTERN = r"^[0-9a-f]{64}$"
MAX_TEXT = 4096


def now_utc_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


class AliasState(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: Name
    seq: int = Field(ge=1, description="event that last moved this alias")


class Event(BaseModel):
    """One audit event; its file is the canonical JSON of this model."""

    model_config = ConfigDict(extra="forbid")

    seq: int = Field(ge=1, lt=10**10)
    kind: Literal["register", "adopt", "promote", "stage"]
    task: Name
    model_name: Name
    version: Name
    alias: Name | None = None
    from_version: Name | None = Field(default=None, description="what the alias pointed to before")
    digest: str | None = Field(default=None, pattern=DIGEST_PATTERN, description="package digest of `version`")
    meta_sha256: str | None = Field(default=None, pattern=HEX_PATTERN,
                                    description="sha256 of model_meta.json (register, adopt)")
    manifest_sha256: str | None = Field(default=None, pattern=HEX_PATTERN,
                                        description="sha256 of omr_manifest.json bytes (register, adopt)")
    rollback: bool = False
    stage_moves: dict[Name, Literal["development", "staging", "production", "archived"]] = Field(
        default_factory=dict, description="version -> new stage")
    actor: str = Field(max_length=MAX_TEXT)
    reason: str | None = Field(default=None, max_length=MAX_TEXT)
    ts_utc: str = Field(max_length=64)
    prev: str = Field(pattern=r"^([0-9a-f]{64})?$", description="sha256 hex of the previous event file, '' for the first")
    aliases: dict[Name, AliasState] = Field(default_factory=dict, description="alias state after this event")
    stages: dict[Name, Literal["staging", "production", "archived"]] = Field(
        default_factory=dict, description="non-development stages after this event")
    digests: dict[Name, str] = Field(default_factory=dict, description="version -> package digest, for aliased versions")

    def to_bytes(self) -> bytes:
        return canonical_json(self.model_dump(mode="json")) + b"\n"


class AliasPointer(BaseModel):
    """`aliases/<alias>.json`; keys of omnibioai-model-registry 0.1.x plus ours."""

    model_config = ConfigDict(extra="allow")

    task: str
    model_name: str
    alias: str
    version: Name
    updated_at: str | None = None
    actor: str | None = None
    reason: str | None = None
    digest: str | None = None
    event_seq: int | None = None
    event_sha256: str | None = None


class Head(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seq: int = Field(ge=1, lt=10**10)
    sha256: str = Field(pattern=HEX_PATTERN)


class AnchorPointer(BaseModel):
    """`audit/anchors/<version>.json`: which event made the version exist (derived, checked)."""

    model_config = ConfigDict(extra="forbid")
    version: Name
    digest: str = Field(pattern=DIGEST_PATTERN)
    seq: int = Field(ge=1, lt=10**10)
    event_sha256: str = Field(pattern=HEX_PATTERN)
