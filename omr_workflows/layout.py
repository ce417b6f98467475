"""The storage key layout (docs/DESIGN.md section "On-disk layout"): the one place that formats a key.

Every key is a relative POSIX path under the registry root. Each function checks the names it
is given, so a name read from a lock file, a report, a pointer or an event can never turn into
a key outside its model (`check_name` refuses `/`, `..` and everything but `[A-Za-z0-9._-]`).

Staging tokens have one exact grammar (`TOKEN_RE`); gc only ever touches names that match
it, so an artifact folder called `2024` or `.omr-tmp` inside a version is never mistaken for
debris.
"""

from __future__ import annotations

import re
import time

from .constants import (
    DIGEST_INDEX_DIR,
    EVENTS_DIR,
    MANIFEST_NAME,
    META_NAME,
    PROMOTIONS_LOG,
    REMOTE_DATA_DIR,
    SHA256SUMS_NAME,
    STAGING_DIR,
    TOKEN_PATTERN,
)
from .names import check_name

#: `omr1-<unix seconds, 10 digits>-<12 hex>`: made by `new_token`, matched by gc.
TOKEN_RE = re.compile(TOKEN_PATTERN)
#: `<version>.<token>`: a local staging folder under `.omr-tmp/`.
STAGING_RE = re.compile(r"(?P<version>[A-Za-z0-9][A-Za-z0-9._-]{0,127})\.(?P<token>" + TOKEN_RE.pattern + r")")
#: `<version>.<token>.lease`: the heartbeat file of one staging attempt (local and object stores).
LEASE_RE = re.compile(STAGING_RE.pattern + r"\.lease")
#: `.<name>.<token>.tmp`: a single-object write in progress (local filesystems).
TMP_RE = re.compile(r"\.(?P<name>[^/]+)\.(?P<token>" + TOKEN_RE.pattern + r")\.tmp")
HEX64_RE = re.compile(r"[0-9a-f]{64}")
EVENT_NAME_RE = re.compile(r"(?P<seq>[0-9]{10})\.json")


def new_token() -> str:
    import secrets  # writers only: ~4 ms of a resolve's start-up

    return f"omr1-{int(time.time()):010d}-{secrets.token_hex(6)}"


def is_token(text: str) -> bool:
    return TOKEN_RE.fullmatch(text) is not None


# ---------------------------------------------------------------------- models and versions
def tasks_key() -> str:
    return "tasks"


def models_key(task: str) -> str:
    return f"tasks/{check_name(task, 'task')}/models"


def model_key(task: str, model: str) -> str:
    return f"tasks/{check_name(task, 'task')}/models/{check_name(model, 'model')}"


def versions_key(task: str, model: str) -> str:
    return f"{model_key(task, model)}/versions"


def version_key(task: str, model: str, version: str) -> str:
    return f"{versions_key(task, model)}/{check_name(version, 'version')}"


def manifest_key(vkey: str) -> str:
    return f"{vkey}/{MANIFEST_NAME}"


def sums_key(vkey: str) -> str:
    return f"{vkey}/{SHA256SUMS_NAME}"


def data_key(vkey: str, data_dir: str) -> str:
    """Where a version's files live: the version folder itself, or its object-store upload area."""
    return f"{vkey}/{data_dir}" if data_dir else vkey


def meta_key(base: str) -> str:
    return f"{base}/{META_NAME}"


def remote_data_dir(token: str) -> str:
    return f"{REMOTE_DATA_DIR}/{token}"


def remote_data_root(vkey: str) -> str:
    return f"{vkey}/{REMOTE_DATA_DIR}"


# ---------------------------------------------------------------------- log and derived files
def audit_key(mkey: str) -> str:
    return f"{mkey}/audit"


def events_key(mkey: str) -> str:
    return f"{mkey}/audit/{EVENTS_DIR}"


def event_key(mkey: str, seq: int) -> str:
    if not isinstance(seq, int) or isinstance(seq, bool) or not 1 <= seq < 10**10:
        raise ValueError(f"invalid event sequence number {seq!r}")
    return f"{events_key(mkey)}/{seq:010d}.json"


def head_key(mkey: str) -> str:
    return f"{mkey}/audit/head.json"


def promotions_log_key(mkey: str) -> str:
    return f"{mkey}/audit/{PROMOTIONS_LOG}"


def aliases_key(mkey: str) -> str:
    return f"{mkey}/aliases"


def alias_key(mkey: str, alias: str) -> str:
    return f"{mkey}/aliases/{check_name(alias, 'alias')}.json"


def anchors_key(mkey: str) -> str:
    return f"{mkey}/audit/anchors"


def anchor_key(mkey: str, version: str) -> str:
    """Derived: version -> the event that anchors it (rebuilt by `omrw audit --repair`)."""
    return f"{anchors_key(mkey)}/{check_name(version, 'version')}.json"


def digest_index_key(mkey: str, digest: str) -> str:
    hexd = digest.split(":", 1)[1] if digest.startswith("sha256:") else digest
    if not HEX64_RE.fullmatch(hexd):
        raise ValueError(f"invalid package digest {digest!r}")
    return f"{mkey}/{DIGEST_INDEX_DIR}/{hexd}.json"


def origins_key(mkey: str) -> str:
    return f"{mkey}/audit/origins"


def origin_event_key(mkey: str, chain: str, seq: int) -> str:
    """An imported version's source chain, event `seq` (write-once, the source's bytes as they were)."""
    if not HEX64_RE.fullmatch(chain or ""):
        raise ValueError(f"invalid chain id {chain!r}")
    return f"{origins_key(mkey)}/{chain}/{event_key(mkey, seq).rsplit('/', 1)[1]}"


# ---------------------------------------------------------------------- governance
#: `<keyid>.sig`: one model-signing bundle of a version, by the key it names (write-once).
SIGNATURE_NAME_RE = re.compile(r"(?P<keyid>[0-9a-f]{64})\.sig")


def policy_key() -> str:
    """The registry's policy: a DSSE envelope signed by a key the consumer pins (docs/DESIGN.md, "Governance")."""
    return "policy/policy.json"


def signatures_key(mkey: str, version: str) -> str:
    return f"{mkey}/signatures/{check_name(version, 'version')}"


def signature_key(mkey: str, version: str, key_id: str) -> str:
    if not HEX64_RE.fullmatch(key_id or ""):
        raise ValueError(f"invalid key id {key_id!r}")
    return f"{signatures_key(mkey, version)}/{key_id}.sig"


def hook_log_key(mkey: str, seq: int) -> str:
    """What the hooks of event `seq` did (written once, by the writer of the event)."""
    return f"{mkey}/audit/hooks/{event_key(mkey, seq).rsplit('/', 1)[1]}"


# ---------------------------------------------------------------------- staging and leases
def staging_root(mkey: str) -> str:
    return f"{mkey}/{STAGING_DIR}"


def staging_key(mkey: str, version: str, token: str) -> str:
    return f"{staging_root(mkey)}/{check_name(version, 'version')}.{token}"


def lease_key(mkey: str, version: str, token: str) -> str:
    return f"{staging_key(mkey, version, token)}.lease"
