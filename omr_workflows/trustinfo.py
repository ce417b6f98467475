"""Which trust root applies (`trust_file`), found without importing anything heavy.

`TrustInfo`, how a trusted policy vouched for a resolved version, lives with `ResolveResult`
in `results.py`; the governance machinery (policy, signing, hooks) is never imported on the
resolve path of registries that use none.
"""

from __future__ import annotations

import os
from pathlib import Path

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
