"""`ResolveResult`: what `Registry.resolve` returns and `omrw resolve --json` prints (DESIGN 6).

Its own module so that the read path (`Registry.resolve_fields`) builds no pydantic model;
the model is the one definition of the shape, and a test keeps the plain dict equal to it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class TrustInfo(BaseModel):
    """What `resolve --json` and run records carry when a trust root is configured."""

    policy_digest: str
    policy_serial: int
    policy_signed_by: str | None = None
    registered_by: str | None = Field(default=None, description="signer of the event that registered the version")
    signed_by: list[str] = Field(default_factory=list, description="signers of valid model signatures")
    requested_by: str | None = None
    approved_by: list[str] = Field(default_factory=list)
    alias_event_seq: int | None = None
    protected: bool = False


class ResolveResult(BaseModel):
    """What `omrw resolve --json` prints (DESIGN 6)."""

    ref: str
    task: str
    model: str
    version: str
    selector: str
    selector_kind: Literal["alias", "version", "digest"]
    digest: str
    uri: str = Field(description="omr://TASK/MODEL@VERSION, the immutable form of the reference")
    path: str = Field(description="local folder of the version (cached copy for remote registries)")
    file: str | None = None
    file_path: str | None = None
    registry: str
    verified: Literal["none", "fast", "strict"] = "none"
    legacy: bool = Field(default=False, description="written by omnibioai-model-registry (no omr manifest)")
    anchored: bool = Field(default=True, description="an intact audit chain holds the event that registered it")
    anchor_seq: int | None = Field(default=None, description="the register/adopt event of the version")
    alias_updated_at: str | None = None
    alias_event_seq: int | None = None
    trust: TrustInfo | None = Field(default=None, description="how a trusted policy vouched for it (with a trust root)")
    deprecated: str | None = Field(default=None, description="why, when and by whom the version was deprecated")
