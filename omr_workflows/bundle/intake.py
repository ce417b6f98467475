"""Publishing versions that come from elsewhere (a bundle or another registry), write-once.

Two phases, so a bad byte anywhere leaves the target unchanged: first every new version is
copied into its own leased staging area, each file hashed while copied and compared with its
manifest entry (size, sha256, xxh3, chunks); only when all are staged does the second phase
publish each one (one rename or commit object, as register does) and append its `import`
event, the commit point. It writes the source chain (and the origin chains the source carried)
under `audit/origins/<chain>/` before publishing, and the version's signatures after: both are
inert until the event names them. A SIGKILL anywhere leaves either nothing visible, or a published but
unanchored version that is never served and that a rerun completes (`register._interrupted`).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO, Callable

from .. import audit, layout, transitions
from .._faults import crash_point
from ..constants import MANIFEST_NAME, META_NAME, default_actor
from ..errors import ConflictError, IntegrityError, NotFoundError
from ..events import Origin, now_utc_iso
from ..hashing import copy_and_hash, sha256_hex
from ..manifest import FileEntry
from ..refs import Ref
from .source import ModelPayload, VersionPayload

Opener = Callable[[ModelPayload, VersionPayload, FileEntry], BinaryIO]


@dataclass
class _Job:
    payload: ModelPayload
    vp: VersionPayload
    held: object = None   # the target's Version when it already holds these bytes
    stage: object = None
    status: str = "new"


def intake(target, payloads: list[ModelPayload], opener: Opener, *, source: str, bundle: str | None,
           actor: str | None = None, reason: str | None = None, jobs: int = 1, progress=None) -> list[dict]:
    """Publish every version of `payloads` into `target`; rows of {ref, digest, status, event_seq, files, bytes}."""
    from ..register import _policy_allows

    actor = actor or default_actor()
    todo: list[_Job] = []
    for p in payloads:
        _policy_allows(target, p.task, p.model, False, "import")
        for vp in p.versions:
            held = holds(target, p, vp)
            todo.append(_Job(p, vp, held=held, status="present" if held else "new"))
    new = [j for j in todo if j.status == "new"]
    try:
        for job in new:  # phase 1: stage everything, checked
            job.stage = target.storage.stage(layout.model_key(job.payload.task, job.payload.model), job.vp.version)
            _stage_files(job, opener, jobs, progress)
            crash_point("import-staged")
    except BaseException:
        for job in new:
            if job.stage is not None:
                job.stage.abort()
        raise
    rows = []
    for i, job in enumerate(todo):  # phase 2: publish and record, one version at a time
        try:
            seq = _commit(target, job, source=source, bundle=bundle, actor=actor, reason=reason) if job.stage else None
        except BaseException:
            for later in todo[i + 1:]:
                if later.stage is not None:
                    later.stage.abort()
            raise
        rows.append(present_row(target, job.payload, job.vp, job.held) if job.status == "present"
                    else _row(job.payload, job.vp, job.status, seq))
    return rows


def _row(p: ModelPayload, vp: VersionPayload, status: str, seq: int | None) -> dict:
    return {"ref": f"{p.ref}@{vp.version}", "digest": vp.digest, "status": status, "event_seq": seq,
            "files": vp.files, "bytes": vp.bytes, **({"trust": vp.trust} if vp.trust else {})}


def present_row(target, p: ModelPayload, vp: VersionPayload, held) -> dict:
    """A version the target already holds: its missing signatures and derived files, then its row."""
    _write_signatures(target, p, vp)
    heal_derived(target, held)
    return _row(p, vp, "present", None)


def holds(target, p: ModelPayload, vp: VersionPayload):
    """The target's Version when it holds `vp` (same digest, anchored), else None; ConflictError
    when the name holds other bytes."""
    ref = f"{p.ref}@{vp.version}"
    try:
        v = target.version(p.task, p.model, vp.version)
    except NotFoundError:
        return None
    except IntegrityError:
        return None  # unanchored (an interrupted intake or register): publishing decides
    if v.digest != vp.digest:
        raise ConflictError(f"{ref} already exists in {target.url} with digest {v.digest}, not {vp.digest}; versions "
                            f"are immutable: nothing imported", obj=ref)
    return v


def _stage_files(job: _Job, opener: Opener, jobs: int, progress) -> None:
    stage, p, vp = job.stage, job.payload, job.vp

    def one(entry: FileEntry) -> None:
        with opener(p, vp, entry) as src, stage.open_write(entry.path) as out:
            write = out.write if progress is None else progress.wrap(out.write)
            h = copy_and_hash(src, write)
            member = getattr(src, "member_name", None)
        if (h.size, h.sha256, h.xxh3, list(h.chunks)) != (entry.size, entry.sha256, entry.xxh3, list(entry.chunks)):
            what = f"{p.ref}@{vp.version}/{entry.path}" + (f" (bundle member {member})" if member else "")
            raise IntegrityError(f"{what}: its bytes do not match the manifest (sha256 {h.sha256[:12]}…, expected "
                                 f"{entry.sha256[:12]}…): nothing imported", obj=what)

    files = vp.manifest.all_files()
    if jobs <= 1 or len(files) < 2:
        for entry in files:
            one(entry)
        return
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="omr-intake") as pool:
        for f in [pool.submit(one, e) for e in files]:
            f.result()


def _commit(target, job: _Job, *, source: str, bundle: str | None, actor: str, reason: str | None) -> int | None:
    from ..register import _interrupted, anchor_published

    p, vp, stage = job.payload, job.vp, job.stage
    task, model, version = p.task, p.model, vp.version
    mkey, vkey = layout.model_key(task, model), layout.version_key(task, model, version)
    manifest = vp.manifest.model_copy(update={"data_dir": stage.data_dir})
    manifest_bytes = manifest.to_bytes()
    completed = False
    try:
        write_origins(target.storage, mkey, p)  # inert until the event names them; a fork stops us here
        try:
            stage.publish(vkey, MANIFEST_NAME, manifest_bytes)
        except ConflictError:
            found = _interrupted(target, task, model, version, vp.digest, stage.token)
            stage.abort()
            if found is None:
                job.stage, job.held = None, holds(target, p, vp)  # raced by an intake of the same bytes?
                if job.held is not None:
                    job.status = "present"
                    return None
                raise ConflictError(f"{p.ref}@{version} already exists in {target.url} (written meanwhile); nothing "
                                    f"imported", obj=f"{p.ref}@{version}") from None
            manifest, manifest_bytes = found
            completed = True
        crash_point("import-published")
        _write_signatures(target, p, vp)
    except BaseException:
        if not completed:
            stage.abort()
        raise
    meta = manifest.entry(META_NAME)
    origin = Origin(registry=source, bundle=bundle, chain=p.chain, anchor=vp.anchor, head=p.head)

    def build(last):
        return transitions.register_fields(
            last, kind="import", task=task, model=model, version=version, digest=vp.digest,
            meta_sha256=meta.sha256 if meta else None, manifest_sha256=sha256_hex(manifest_bytes), set_latest=False,
            actor=actor, reason=reason or f"imported from {source}", ts=now_utc_iso(), origin=origin)

    event, sha = anchor_published(target, mkey, vkey, version, manifest, stage, build, completed)
    job.status = "imported"
    target.committed(mkey, event, sha, [])
    return event.seq


def heal_derived(target, v) -> None:
    """A rerun after a kill between an import event and its anchor finishes the derived files of
    Version `v` (two stats when nothing is missing), so `audit` is green without `--repair`."""
    mkey = layout.model_key(v.task, v.model)
    if v.anchor is None or (target.storage.exists(layout.anchor_key(mkey, v.version))
                            and target.storage.exists(layout.digest_index_key(mkey, v.digest))):
        return
    event, _data = audit.read_event(target.storage, mkey, v.anchor.seq)
    audit.after_event(target.storage, mkey, event, v.anchor.event_sha256, [])


def write_origins(storage, mkey: str, p: ModelPayload) -> None:
    """The source chain and the chains it carried, write-once; other bytes at a key are a fork."""
    for chain, events in [(p.chain, p.events), *sorted(p.origins.items())]:
        for seq, data in enumerate(events, start=1):
            key = layout.origin_event_key(mkey, chain, seq)
            if not storage.write_if_absent(key, data) and storage.read_small(key, len(data) + 1) != data:
                raise IntegrityError(f"{key}: holds another event {seq} of the same source chain (the source "
                                     f"log was rewritten since an earlier import); nothing imported", obj=key)


def _write_signatures(target, p: ModelPayload, vp: VersionPayload) -> None:
    mkey = layout.model_key(p.task, p.model)
    for key_id, data in sorted(vp.signatures.items()):
        target.storage.write_if_absent(layout.signature_key(mkey, vp.version, key_id), data)


def apply_aliases(target, payloads: list[ModelPayload], *, source: str, actor: str | None) -> list[dict]:
    """`--aliases`: move the target's aliases as the source's are, each an ordinary audited promote."""
    rows = []
    for p in payloads:
        last = target.state(p.task, p.model)
        for alias, version in sorted(p.aliases.items()):
            current = last.aliases.get(alias) if last else None
            if current is not None and current.version == version:
                rows.append({"ref": p.ref, "alias": alias, "version": version, "status": "same"})
                continue
            out = target.promote(Ref(p.task, p.model, version), alias, reason=f"alias from {source}", actor=actor)
            moved = getattr(out, "moved", True)
            rows.append({"ref": p.ref, "alias": alias, "version": version, "status": "moved" if moved else "requested"})
    return rows
