"""Register and adopt: how a version comes into existence (docs/DESIGN.md, "Commit points").

Register copies and hashes every byte once into a leased staging area, publishes it with one
rename (local) or put-if-absent commit object (object stores), then appends its event: the
commit point. A failure after publishing but before the event unpublishes the version, so a
retry is not refused; a kill in that window leaves it unanchored (never served), and a retry
with the same bytes records it once no live lease says another attempt is still committing.
Adopt records a version found on storage without an event, after verifying it strictly.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable

from pydantic import BaseModel, Field

from . import audit, layout, transitions
from ._faults import crash_point
from .artifacts import build_meta, check_shipped_sums, scan_artifacts
from .constants import MANIFEST_NAME, META_NAME, SHA256SUMS_NAME, default_actor
from .errors import ConflictError, IntegrityError, InvalidInputError, OmrError
from .events import Event, now_utc_iso
from .hashing import FileHashes, copy_and_hash, hash_bytes, sha256_hex
from .manifest import Content, FileEntry, Manifest, sha256sums_text
from .names import check_name
from .refs import Ref, parse_ref


class RegisterResult(BaseModel):
    ok: bool = True
    task: str
    model_name: str
    version: str
    digest: str
    uri: str
    package_path: str
    registry: str
    files: int
    bytes: int
    aliases: list[str]
    hashes: dict[str, str] = Field(description="path -> sha256 (omnibioai-model-registry compatible)")
    completed_interrupted: bool = Field(default=False, description="an interrupted register of the same bytes "
                                        "was found published without its event; this register recorded it")


def register(
    reg,
    task: str,
    model: str,
    version: str,
    artifacts: str | os.PathLike,
    metadata: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
    aliases: Iterable[str] = (),
    set_latest: bool = True,
    actor: str | None = None,
    reason: str | None = None,
    provenance: dict[str, Any] | None = None,
    sign: bool = False,
    card: str | os.PathLike | None = None,
) -> RegisterResult:
    """Copy `artifacts` into a new immutable version, hashing every byte once.

    Commit point: the register event. A failure after the version was published but
    before its event is recorded unpublishes it, so a retry is not refused; a kill in
    that window leaves it unanchored (never served), and a retry with the same bytes
    records it.
    Raises InvalidInputError (bad names, unsafe artifacts), ConflictError (the version
    exists, whoever won the race), IntegrityError (a sha256sums.txt shipped with the
    artifacts does not match them), StorageError; ConflictError too when the registry's
    policy refuses this writer. With `sign`, `reg.signer` also signs the version (a
    model-signing bundle from the sha256 computed while copying: no second pass).
    """
    check_name(task, "task")
    check_name(model, "model")
    check_name(version, "version")
    aliases = [check_name(a, "alias") for a in aliases]
    actor = actor or default_actor()
    mkey = layout.model_key(task, model)
    vkey = layout.version_key(task, model, version)
    ref = f"{task}/{model}@{version}"
    _policy_allows(reg, task, model, sign)
    sources, shipped_meta, shipped_sums = scan_artifacts(Path(artifacts))
    card_bytes = _read_card(card, sources) if card else None
    meta = build_meta(task, model, version, shipped_meta, metadata, params, actor, provenance)
    last, _ = audit.tail(reg.storage, mkey)  # refuses early when head and tail disagree
    if _on_storage(reg, vkey) and reg._anchor(mkey, version, last.seq if last else 0, None) is not None:
        raise _exists(ref)
    completed = False
    stage = reg.storage.stage(mkey, version)
    try:
        entries: list[FileEntry] = []
        for src in sources:
            with open(src.path, "rb", buffering=0) as fin, stage.open_write(src.rel) as fout:
                h = copy_and_hash(fin, fout.write)
            if h.size != src.size:
                raise IntegrityError(f"artifact {src.rel} changed size while being registered")
            entries.append(_entry(src.rel, h))
            crash_point("copy")
        if card_bytes is not None:
            entries.append(_write_small(stage, CARD_NAME, card_bytes))
        if shipped_sums is not None:
            check_shipped_sums(shipped_sums, entries)
        content = Content(files=sorted(entries, key=lambda e: e.path))
        meta_bytes = (json.dumps(meta.model_dump(mode="json", exclude_none=True), indent=2) + "\n").encode()
        meta_entry = _write_small(stage, META_NAME, meta_bytes)
        sums_bytes = sha256sums_text(list(content.files) + [meta_entry]).encode()
        sums_entry = _write_small(stage, SHA256SUMS_NAME, sums_bytes)
        crash_point("sidecars")
        manifest = Manifest(
            task=task, model=model, version=version, created_at=meta.created_at,
            data_dir=stage.data_dir, content=content, sidecars=[meta_entry, sums_entry],
        )
        manifest_bytes = manifest.to_bytes()
        try:
            stage.publish(vkey, MANIFEST_NAME, manifest_bytes)
        except ConflictError:
            found = _interrupted(reg, task, model, version, manifest.digest, stage.token)
            if found is None:
                raise _exists(ref, "another register won the race") from None
            manifest, manifest_bytes = found
            completed = True
            stage.abort()
    except BaseException:
        stage.abort()
        raise
    digest = manifest.digest
    own_meta = manifest.entry(META_NAME)
    latest = ["latest"] if set_latest else []

    def build(last_event):
        return transitions.register_fields(
            last_event, task=task, model=model, version=version, digest=digest,
            meta_sha256=own_meta.sha256 if own_meta else None, manifest_sha256=sha256_hex(manifest_bytes),
            set_latest=set_latest, actor=actor, reason=reason, ts=now_utc_iso())

    event, event_sha = anchor_published(reg, mkey, vkey, version, manifest, stage, build, completed)
    reg.committed(mkey, event, event_sha, latest)
    if sign:
        from .governance import write_signature

        write_signature(reg, reg.version(task, model, version), reg.signer)
    # Other aliases are ordinary promotions, so the stage policy and audit apply to them.
    for alias in aliases:
        if alias not in latest:
            reg.promote(Ref(task, model, version), alias, reason=reason or "register --alias", actor=actor)
    local = reg.storage.local_path(vkey)
    return RegisterResult(
        task=task, model_name=model, version=version, digest=digest, uri=f"omr://{ref}",
        package_path=str(local) if local else f"{reg.url}/{vkey}", registry=reg.url,
        files=len(manifest.all_files()), bytes=sum(e.size for e in manifest.all_files()),
        aliases=latest + [a for a in aliases if a not in latest],
        hashes={e.path: e.sha256 for e in manifest.all_files()}, completed_interrupted=completed,
    )

def anchor_published(reg, mkey: str, vkey: str, version: str, manifest: Manifest, stage, build,
                     completed: bool) -> tuple[Event, str]:
    """Append the event that anchors a just-published version (register, import): the commit point.

    If it cannot be written, the version is taken back (unless an interrupted attempt's version
    is being completed, or the log may already vouch for it), so a retry is not refused. The
    stage's lease is dropped either way: after the event, or after the version is gone.
    """
    try:
        return audit.append(reg.storage, mkey, build, signer=reg.signer)
    except (OmrError, OSError):
        if not completed and not _logged(reg, mkey, version):
            _unpublish(reg, vkey, manifest)
        raise
    finally:
        stage.release()


def _on_storage(reg, vkey: str) -> bool:
    if reg.storage.is_local:
        return reg.storage.isdir(vkey) and bool(reg.storage.listdir(vkey))
    return reg.storage.exists(layout.manifest_key(vkey))

def _logged(reg, mkey: str, version: str) -> bool:
    try:
        return audit.find_anchor(reg.storage, mkey, version) is not None
    except OmrError:
        return True  # cannot tell: never unpublish what the log might vouch for

def _unpublish(reg, vkey: str, manifest: Manifest) -> None:
    """Take back a version whose event could not be written (nothing could have used it).

    The sha256sums.txt goes first so the folder never looks like an omnibioai version.
    """
    try:
        if reg.storage.is_local:
            reg.storage.remove_tree(layout.sums_key(vkey))
        reg.storage.remove_tree(layout.manifest_key(vkey))
        reg.storage.remove_tree(layout.data_key(vkey, manifest.data_dir) if manifest.data_dir else vkey)
    except (OmrError, OSError):
        pass  # left unanchored: never served; `omrw audit` names it

def _interrupted(reg, task: str, model: str, version: str, digest: str, own_token: str) -> tuple[Manifest, bytes] | None:
    """An unanchored, complete version of exactly these bytes (a register killed after publishing)."""
    try:
        v = reg.version(task, model, version, require_anchor=False)
    except OmrError:
        return None
    if v.anchored or v.manifest is None or v.digest != digest or _live_attempt(reg, task, model, version, own_token):
        return None
    from .verify.check import check_version

    if check_version(reg, task, model, version, "strict", allow_unanchored=True):
        return None
    raw = reg.storage.read_bytes(layout.manifest_key(v.key))
    return v.manifest, raw

def _live_attempt(reg, task: str, model: str, version: str, own_token: str) -> bool:
    """Whether another register of `version` still holds a live lease (it may be committing)."""
    import time

    from .storage.base import lease_is_dead

    mkey = layout.model_key(task, model)
    root = layout.staging_root(mkey)
    for name in reg.storage.listdir(root):
        m = layout.LEASE_RE.fullmatch(name)
        if m and m["version"] == version and m["token"] != own_token:
            try:
                lease = reg.storage.read_bytes(f"{root}/{name}")
            except (OmrError, OSError):
                return True
            if not lease_is_dead(lease, time.time(), 0.0):
                return True
    return False

def adopt(reg, ref: str | Ref, reason: str, actor: str | None = None) -> Event:
    """Record a version found on storage without an event, after verifying it strictly.

    For versions copied in by hand, written by omnibioai-model-registry, or whose
    register was interrupted. Raises InvalidInputError (no reason, not a version ref),
    ConflictError (already in the log), IntegrityError (it does not verify).
    """
    r = parse_ref(ref) if isinstance(ref, str) else ref
    if not reason or not reason.strip():
        raise InvalidInputError("adopt needs --reason: say where the version came from")
    if r.file or r.selector_is_digest:
        raise InvalidInputError(f"adopt takes TASK/MODEL@VERSION, not {r}")
    mkey = layout.model_key(r.task, r.model)
    _policy_allows(reg, r.task, r.model, False, "adopt")
    v = reg.version(r.task, r.model, r.selector, require_anchor=False)
    if v.anchored:
        raise ConflictError(f"{v.ref} is already recorded by audit event {v.anchor.seq}; nothing to adopt",
                            obj=v.ref)
    from .verify.check import check_version, raise_problems

    if v.legacy and not (set(v.legacy_sums or {}) - {SHA256SUMS_NAME}):
        # Adoption anchors the sha256 of sha256sums.txt: one that lists nothing would anchor nothing.
        # (Files an omnibioai sha256sums.txt does not list stay unverified, as `verify` reports.)
        raise IntegrityError(f"{v.ref}: cannot adopt: its {SHA256SUMS_NAME} lists no file, so none of its bytes "
                             f"could ever be verified", obj=v.ref)
    raise_problems(v.ref, check_version(reg, r.task, r.model, r.selector, "strict", allow_unanchored=True))
    meta = v.manifest.entry(META_NAME) if v.manifest else None
    manifest_sha = v.manifest_sha256 if v.manifest else None

    def build(last):
        return transitions.register_fields(last, kind="adopt", task=r.task, model=r.model, version=r.selector,
                                     digest=v.digest, meta_sha256=meta.sha256 if meta else None,
                                     manifest_sha256=manifest_sha, set_latest=False,
                                     actor=actor or default_actor(), reason=reason, ts=now_utc_iso())

    event, sha = audit.append(reg.storage, mkey, build, signer=reg.signer)
    if reg.version(r.task, r.model, r.selector, require_anchor=False).digest != v.digest:
        # Replaced between the check and the event: the anchor names the checked digest,
        # so the new bytes stay unanchored and are never served.
        raise IntegrityError(f"{v.ref} changed while being adopted; run `omrw audit`", obj=v.ref)
    reg.committed(mkey, event, sha, [])
    return event


CARD_NAME = "model_card.md"


def _read_card(path, sources) -> bytes:
    """`--card FILE`: a Markdown model card stored as the version's `model_card.md` (one of its files)."""
    from .bounds import read_bounded

    if any(src.rel == CARD_NAME for src in sources):
        raise InvalidInputError(f"--card: the artifacts already hold a {CARD_NAME}; give one or the other")
    data = read_bounded(str(path), "--card", max_bytes=1 << 20)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInputError(f"--card {path}: not UTF-8 text") from None
    return data


def _policy_allows(reg, task: str, model: str, sign: bool, action: str = "register") -> None:
    """Refuse early (exit 4, nothing copied) what the registry's policy forbids this writer."""
    if sign and reg.signer is None:
        raise InvalidInputError("--sign needs a key")
    lp = reg.loaded_policy()
    if lp is None:
        return
    from .governance import check_write

    check_write(reg, lp, task, model, action)
    if action == "register" and lp.policy.rule_for(task, model).require_signed_versions and not sign:
        raise ConflictError(f"{task}/{model}: the registry's policy requires signed versions: pass --sign KEY",
                            obj=f"{task}/{model}")



def _entry(rel: str, h: FileHashes) -> FileEntry:
    return FileEntry(path=rel, size=h.size, sha256=h.sha256, xxh3=h.xxh3, chunks=h.chunks)


def _write_small(stage, rel: str, data: bytes) -> FileEntry:
    with stage.open_write(rel) as f:
        f.write(data)
    return _entry(rel, hash_bytes(data))


def _exists(ref: str, why: str = "") -> ConflictError:
    extra = f" ({why})" if why else ""
    return ConflictError(f"version {ref} already exists{extra}; versions are immutable, register a new version",
                         obj=ref)
