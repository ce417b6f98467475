"""How a trusted policy vouched for a resolved version (the `trust` of `resolve --json`).

Its own small module so that `registry.py` can name it in `ResolveResult` without importing
the governance machinery (policy, signing, hooks) on the resolve path of registries that use none.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, Field

ENV_TRUST = "OMR_TRUST"
TRUST_FILE_NAME = "omr-trust.json"


def trust_file(explicit: str | None = None, start: str | os.PathLike | None = None) -> str | None:
    """Which trust-root file applies, before the lock file's section: --trust, $OMR_TRUST,
    `omr-trust.json` in the pipeline's folder, `~/.config/omr/trust.json`; "none" turns them
    all off. Finding none costs two stats and imports nothing (the resolve path stays light)."""
    for source in (explicit, os.environ.get(ENV_TRUST)):
        if source:
            return source
    local = Path(start or os.getcwd()) / TRUST_FILE_NAME
    if local.is_file():
        return str(local)
    config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "omr" / "trust.json"
    return str(config) if config.is_file() else None


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
