"""`omrw gc`: remove what is provably dead, nothing else (docs/DESIGN.md, "Staging and gc").

Provably dead means:
* a staging folder `.omr-tmp/<version>.<token>` (local) or an upload area
  `versions/<v>/.omr-data/<token>` (object stores) whose lease heartbeat is older than the
  lease's ttl and than `older_than`. No lease, or a lease that cannot be read: not provably
  dead, kept. On object stores an area is kept whenever the version's commit object names
  it or cannot be read;
* a lease file whose staging folder is gone and whose heartbeat is dead;
* a single-object temp file `.<name>.<token>.tmp` whose mtime is older than both the lease
  ttl and `older_than` (its writer holds it for milliseconds; if a stalled writer lost it,
  its rename or link fails and nothing is half-written).
Only names of the exact token grammar in `layout` are candidates; nothing under a local
`versions/` folder is ever looked at, and a symlink anywhere is never followed (storage
refuses). A failure to remove one candidate is reported and does not stop the others.
"""

from __future__ import annotations

import time

from . import layout
from ._faults import crash_point
from .constants import MANIFEST_NAME
from .errors import NotFoundError, OmrError
from .manifest import parse_manifest
from .storage.base import lease_is_dead, lease_ttl


def _lease(storage, key: str) -> bytes | None:
    try:
        return storage.read_bytes(key)
    except (NotFoundError, OmrError, OSError):
        return None


def _tmp_dirs(mkey: str) -> list[str]:
    return [mkey, layout.aliases_key(mkey), layout.audit_key(mkey), layout.events_key(mkey),
            layout.anchors_key(mkey), f"{mkey}/digests", layout.staging_root(mkey)]


def candidates(reg, older_than: float, now: float | None = None) -> list[str]:
    """Keys gc would remove now (pure decision over what storage shows)."""
    storage = reg.storage
    now = time.time() if now is None else now
    ttl = lease_ttl()
    out: list[str] = []
    for task in reg.tasks():
        for model in reg.models(task):
            mkey = layout.model_key(task, model)
            sroot = layout.staging_root(mkey)
            names = storage.listdir(sroot)
            for name in names:
                m = layout.STAGING_RE.fullmatch(name)
                if m and storage.is_local:
                    lease = _lease(storage, layout.lease_key(mkey, m["version"], m["token"]))
                    if lease_is_dead(lease, now, older_than):
                        out.append(f"{sroot}/{name}")
            for name in names:
                m = layout.LEASE_RE.fullmatch(name)
                if not m:
                    continue
                key = f"{sroot}/{name}"
                if not lease_is_dead(_lease(storage, key), now, older_than):
                    continue
                if not storage.is_local:
                    area = _dead_remote_area(storage, mkey, m["version"], m["token"])
                    if area is None:
                        continue  # the commit object cannot be read: keep everything of this version
                    if area:
                        out.append(area)
                out.append(key)
            if storage.is_local:
                for base in _tmp_dirs(mkey):
                    for name in storage.listdir(base):
                        if layout.TMP_RE.fullmatch(name):
                            key = f"{base}/{name}"
                            try:
                                age = now - storage.mtime(key)
                            except (OmrError, OSError):
                                continue
                            if age > max(ttl, older_than):
                                out.append(key)
    return out


def _dead_remote_area(storage, mkey: str, version: str, token: str) -> str | None:
    """The upload area of a dead attempt to remove ('' when there is none), or None to keep it."""
    vkey = f"{mkey}/versions/{version}"
    area = f"{vkey}/{layout.remote_data_dir(token)}"
    try:
        raw = storage.read_bytes(f"{vkey}/{MANIFEST_NAME}")
    except NotFoundError:
        raw = None
    except (OmrError, OSError):
        return None
    if raw is not None:
        try:
            manifest = parse_manifest(raw, f"{vkey}/{MANIFEST_NAME}")
        except OmrError:
            return None  # a manifest that cannot be read: remove nothing of this version
        if manifest.data_dir == layout.remote_data_dir(token):
            return ""  # the winner, killed before it dropped its lease: the lease goes, the area is the version
    return area if storage.listdir(area) else ""


def collect(reg, older_than: float = 3600.0, dry_run: bool = False) -> list[str]:
    """Remove every candidate; returns the keys removed (or that would be, with `dry_run`)."""
    if older_than < 0:
        from .errors import InvalidInputError

        raise InvalidInputError(f"invalid --older-than {older_than}: must be >= 0")
    found = candidates(reg, older_than)
    if dry_run:
        return found
    removed = []
    for key in found:
        try:
            reg.storage.remove_tree(key)
        except (OmrError, OSError):
            continue  # changed under us (or refused): never fatal, the next gc looks again
        crash_point("gc-remove")
        removed.append(key)
    return removed
