"""File names of the on-disk format and every environment variable we read, in one place."""

from __future__ import annotations

import os
from pathlib import Path

# On-disk names (docs/DESIGN.md, "On-disk layout"). Names a user can choose cannot start with "." so the
# dot-names below never collide with a task, model, version or alias.
MANIFEST_NAME = "omr_manifest.json"
#: An attempt's staging token (layout.TOKEN_RE): time, then randomness.
TOKEN_PATTERN = r"omr1-[0-9]{10}-[0-9a-f]{12}"
META_NAME = "model_meta.json"
SHA256SUMS_NAME = "sha256sums.txt"
STAGING_DIR = ".omr-tmp"          # per model, local staging for atomic rename
REMOTE_DATA_DIR = ".omr-data"     # per version, object-store upload area
EVENTS_DIR = "events"             # under audit/
PROMOTIONS_LOG = "promotions.jsonl"
DIGEST_INDEX_DIR = "digests"      # per model: digest -> version pointers

# Files the omnibioai-model-registry 0.1.x package requires in a version.
OMNIBIOAI_REQUIRED_FILES = (
    "model.pt",
    "model_genes.txt",
    "label_map.json",
    "model_meta.json",
    "metrics.json",
    "feature_schema.json",
    "sha256sums.txt",
)

def _chunk_size() -> int:
    """Fast-mode chunk size for new registrations (OMR_CHUNK_SIZE bytes, default 64 MiB).

    Recorded in each manifest, so changing it never affects existing versions; tests use
    small chunks to exercise multi-chunk files cheaply.
    """
    raw = os.environ.get("OMR_CHUNK_SIZE", "").strip()
    if not raw:
        return 64 * 1024 * 1024
    if not raw.isdigit() or int(raw) < 4096:
        import sys

        sys.stderr.write(f"omrw: error: invalid OMR_CHUNK_SIZE {raw!r}: use an integer >= 4096\n")
        raise SystemExit(2)
    return int(raw)


CHUNK_SIZE = _chunk_size()         # fast-mode chunk hashing unit for large files
IO_BUFFER = 4 * 1024 * 1024

ENV_REGISTRY = "OMR_REGISTRY"
ENV_OMNIBIOAI_ROOT = "OMNIBIOAI_MODEL_REGISTRY_ROOT"
ENV_CACHE = "OMR_CACHE"
ENV_VERIFY = "OMR_VERIFY"          # default --verify of resolve: none|fast|strict
ENV_DEMOTE_TO = "OMR_DEMOTE_TO"    # stage policy for the previous production version
ENV_RUN_DIR = "OMR_RUN_DIR"        # where resolve/verify append run provenance records
ENV_ENGINE = "OMR_ENGINE"          # snakemake | nextflow | cli, recorded in provenance
ENV_DEBUG = "OMR_DEBUG"
ENV_ACTOR = "OMR_ACTOR"
ENV_TRUST_LEGACY = "OMR_TRUST_LEGACY"  # 1: strict verification accepts unanchored omnibioai versions
ENV_OFFLINE = "OMR_OFFLINE"        # 1: refuse every remote registry at once (air-gapped nodes)


def _data_home() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "omr-workflows"


def default_registry() -> str:
    """The registry URL from the documented chain, ending at the embedded local default."""
    for var in (ENV_REGISTRY, ENV_OMNIBIOAI_ROOT):
        value = os.environ.get(var, "").strip()
        if value:
            return value
    return str(_data_home() / "registry")


def cache_dir() -> Path:
    value = os.environ.get(ENV_CACHE, "").strip()
    if value:
        return Path(value)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "omr-workflows"


def default_verify() -> str:
    return os.environ.get(ENV_VERIFY, "").strip() or "none"


def default_demote_to() -> str:
    return os.environ.get(ENV_DEMOTE_TO, "").strip() or "archived"


def env_flag(name: str) -> bool:
    """A yes/no environment variable: anything but unset, empty, 0, false or no is yes."""
    return os.environ.get(name, "").strip() not in ("", "0", "false", "no")


def offline() -> bool:
    """`OMR_OFFLINE=1` (or `--offline`): refuse every remote registry at once, never wait on a network."""
    return env_flag(ENV_OFFLINE)


def debug_enabled() -> bool:
    return env_flag(ENV_DEBUG)


def trust_legacy() -> bool:
    """Whether strict verification may pass a legacy version no event anchors (explicit opt-in)."""
    return env_flag(ENV_TRUST_LEGACY)


def default_actor() -> str:
    actor = os.environ.get(ENV_ACTOR, "").strip()
    if actor:
        return actor
    import getpass
    import socket

    try:
        user = getpass.getuser()
    except Exception:
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


# ---------------------------------------------------------------------- the log (events.py holds the models)
STAGES = ("development", "staging", "production", "archived")
STAGE_ALIASES = {"staging": "staging", "production": "production"}
STAGE_ONLY = ("development", "archived")
ANCHOR_KINDS = ("register", "adopt", "import")
EVENT_KINDS = ("register", "adopt", "import", "promote", "stage", "request", "approve", "reject", "sign", "deprecate",
               "retire", "prune")
#: DSSE payload type of an event signature (docs/DESIGN.md, "Governance").
EVENT_PAYLOAD_TYPE = "application/vnd.omr.event.v1+json"
KEYID_PATTERN = r"^[0-9a-f]{64}$"
#: The state every event carries (readers need only the newest); left out when an event is shown.
STATE_FIELDS = frozenset({"aliases", "stages", "digests", "requests", "lifecycle"})
DIGEST_PATTERN = r"^sha256:[0-9a-f]{64}$"
HEX_PATTERN = r"^[0-9a-f]{64}$"
MAX_TEXT = 4096


def now_utc_iso() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat()
