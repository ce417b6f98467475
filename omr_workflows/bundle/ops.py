"""`omrw export`, `omrw import`, `omrw mirror` (docs/DESIGN.md, "Bundles").

Export gathers and checks what the source vouches for (source.gather), then streams it
into one tar written under a temporary name and renamed. Import opens the tar without
trusting it (tarfmt.BundleReader), lays its small members out as a registry folder, runs the
same gather on that folder (chain, anchors, manifests and, with a trust root, signatures and
approvals), checks that it says exactly what the index says, and hands the versions to
intake. Mirror is import without the tar: gather on the source registry, intake into the target.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from .. import layout
from ..constants import default_actor
from ..errors import IntegrityError, InvalidInputError, NotFoundError
from ..events import Head, now_utc_iso
from ..hashing import sha256_hex
from ..refs import parse_ref
from . import index as ix
from .intake import apply_aliases, holds, intake, present_row
from .source import ModelPayload, gather


# ---------------------------------------------------------------------- selecting versions
def select(reg, refs: list[str], lock_path: str | None) -> tuple[dict[tuple[str, str], list[str]], bytes | None]:
    """{(task, model): [versions]} from refs (each resolved to one version) and/or a lock file."""
    chosen: dict[tuple[str, str], list[str]] = {}
    lock_bytes = None

    def add(task: str, model: str, version: str) -> None:
        names = chosen.setdefault((task, model), [])
        if version not in names:
            names.append(version)

    for ref in refs:
        r = parse_ref(ref)
        if r.file:
            raise InvalidInputError(f"{ref}: a bundle holds whole versions, not single files")
        res = reg.resolve(r, materialize=False)
        add(res.task, res.model, res.version)
    if lock_path:
        from ..lockfile import read_lock, resolve_pinned

        lock = read_lock(lock_path)
        for entry in lock.entries:
            res = resolve_pinned(reg, lock, entry.ref, lock_path)
            add(res.task, res.model, res.version)
        lock_bytes = Path(lock_path).read_bytes()
    if not chosen:
        raise InvalidInputError("nothing to copy: give TASK/MODEL@SELECTOR references or --lock FILE")
    return chosen, lock_bytes


def where(reg) -> str:
    """The registry as records name it: an absolute path for a local one (a relative path means nothing later)."""
    return os.path.abspath(reg.url) if reg.storage.is_local and "://" not in reg.url else reg.url


# ---------------------------------------------------------------------- export
def _members(payloads: list[ModelPayload], policy: bytes | None, lock: bytes | None) -> list[tuple[ix.Member, object]]:
    """(member, bytes or (payload, version, entry)) in tar order: small members first, then the files."""
    out: list[tuple[ix.Member, object]] = []

    def small(name: str, data: bytes) -> None:
        out.append((ix.Member(name=name, size=len(data), sha256=sha256_hex(data)), data))

    if policy is not None:
        small(ix.POLICY_NAME, policy)
    if lock is not None:
        small(ix.LOCK_NAME, lock)
    for p in payloads:
        for seq, data in enumerate(p.events, start=1):
            small(ix.event_member(p.task, p.model, seq), data)
        for chain, events in sorted(p.origins.items()):
            for seq, data in enumerate(events, start=1):
                small(ix.origin_member(p.task, p.model, chain, seq), data)
        for vp in p.versions:
            small(ix.manifest_member(p.task, p.model, vp.version), vp.manifest_bytes)
            for key_id, data in sorted(vp.signatures.items()):
                small(ix.signature_member(p.task, p.model, vp.version, key_id), data)
    for p in payloads:
        for vp in p.versions:
            for e in vp.manifest.all_files():
                out.append((ix.Member(name=ix.file_member(p.task, p.model, vp.version, e.path), size=e.size,
                                      sha256=e.sha256), (p, vp, e)))
    return out


def _index(reg, payloads: list[ModelPayload], members, policy: bool, lock: bool, actor: str) -> ix.BundleIndex:
    models = [ix.BundleModel(
        task=p.task, model=p.model, chain=p.chain, head=p.head, aliases=p.aliases,
        origins=[ix.OriginChain(chain=c, head={"seq": len(ev), "sha256": sha256_hex(ev[-1])})
                 for c, ev in sorted(p.origins.items())],
        versions=[ix.BundleVersion(version=vp.version, digest=vp.digest, manifest_sha256=sha256_hex(vp.manifest_bytes),
                                   files=vp.files, bytes=vp.bytes, signatures=sorted(vp.signatures))
                  for vp in p.versions]) for p in payloads]
    return ix.BundleIndex(created_at=now_utc_iso(), created_by=actor, source=where(reg), models=models,
                          policy=policy, lock=lock, members=[m for m, _ in members])


def export(reg, refs: list[str], output: str, lock_path: str | None = None, dry_run: bool = False,
           actor: str | None = None, progress=None) -> dict:
    chosen, lock_bytes = select(reg, refs, lock_path)
    payloads = [gather(reg, t, m, versions) for (t, m), versions in chosen.items()]
    policy = None
    if reg.storage.exists(layout.policy_key()):
        policy = reg.storage.read_small(layout.policy_key(), 4 << 20)
    members = _members(payloads, policy, lock_bytes)
    index = _index(reg, payloads, members, policy is not None, lock_bytes is not None, actor or default_actor())
    index_bytes = index.to_bytes()
    summary = {
        "ok": True, "bundle": str(output), "bundle_digest": "sha256:" + sha256_hex(index_bytes), "dry_run": dry_run,
        "versions": [{"ref": f"{p.ref}@{vp.version}", "digest": vp.digest, "files": vp.files, "bytes": vp.bytes}
                     for p in payloads for vp in p.versions],
        "files": sum(vp.files for p in payloads for vp in p.versions),
        "bytes": sum(vp.bytes for p in payloads for vp in p.versions),
        "size": _tar_size(index_bytes, members),
    }
    if dry_run:
        return summary | {"bundle_digest": None}  # a bundle not written has no digest (it names its own time)
    if progress is not None:
        progress.start(summary["bytes"])
    _write_bundle(reg, Path(output), index_bytes, members, progress)
    return summary


def _tar_size(index_bytes: bytes, members) -> int:
    """What the bundle will take on disk (headers are one block, or three with a PAX name)."""
    def one(name: str, size: int) -> int:
        head = 512 if len(name.encode()) <= 100 else 3 * 512
        return head + -(-size // 512) * 512
    total = one(ix.INDEX_NAME, len(index_bytes)) + sum(one(m.name, m.size) for m, _ in members) + 1024
    return -(-total // 10240) * 10240


def _write_bundle(reg, output: Path, index_bytes: bytes, members, progress) -> None:
    from .tarfmt import TarWriter

    output = output.absolute()
    if output.is_dir():
        raise InvalidInputError(f"-o {output}: is a folder; give the bundle's file name")
    tmp = output.with_name(f".{output.name}.{layout.new_token()}.part")
    try:
        with open(tmp, "xb") as out:
            tw = TarWriter(out, int(time.time()))
            tw.add_bytes(ix.INDEX_NAME, index_bytes)
            for member, src in members:
                if isinstance(src, bytes):
                    tw.add_bytes(member.name, src)
                    continue
                p, vp, e = src
                with reg.storage.open_read(f"{vp.data_key}/{e.path}") as fin:
                    tw.add_stream(member, fin, f"{p.ref}@{vp.version}/{e.path}", progress)
            tw.close()
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, output)
    except FileNotFoundError:
        raise InvalidInputError(f"-o {output}: its folder does not exist") from None
    finally:
        if tmp.exists():
            tmp.unlink()


# ---------------------------------------------------------------------- import
def _view(reader, trust) -> tuple[object, Path]:
    """A registry folder holding the bundle's small members at their layout keys (each checked
    against the index as it is read, written straight to disk: memory stays flat)."""
    from ..registry import Registry

    index = reader.index
    root = Path(tempfile.mkdtemp(prefix="omr-bundle-view-"))

    def put(key: str, data: bytes) -> None:
        path = root / key  # keys come from layout.py: always inside root
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    try:
        if index.policy:
            put(layout.policy_key(), reader.small(ix.POLICY_NAME))
        for m in index.models:
            mkey = layout.model_key(m.task, m.model)
            for seq in range(1, m.head.seq + 1):
                put(layout.event_key(mkey, seq), reader.small(ix.event_member(m.task, m.model, seq)))
            put(layout.head_key(mkey), Head(seq=m.head.seq, sha256=m.head.sha256).model_dump_json().encode())
            for o in m.origins:
                for seq in range(1, o.head.seq + 1):
                    put(layout.origin_event_key(mkey, o.chain, seq),
                        reader.small(ix.origin_member(m.task, m.model, o.chain, seq)))
            for v in m.versions:
                vkey = layout.version_key(m.task, m.model, v.version)
                put(layout.manifest_key(vkey), reader.small(ix.manifest_member(m.task, m.model, v.version)))
                for key_id in v.signatures:
                    put(layout.signature_key(mkey, v.version, key_id),
                        reader.small(ix.signature_member(m.task, m.model, v.version, key_id)))
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    return Registry(str(root), trust=trust), root


def _expected_members(index: ix.BundleIndex, payloads: list[ModelPayload]) -> set[str]:
    names = {ix.POLICY_NAME} if index.policy else set()
    if index.lock:
        names.add(ix.LOCK_NAME)
    for m, p in zip(index.models, payloads):
        names |= {ix.event_member(m.task, m.model, s) for s in range(1, m.head.seq + 1)}
        for o in m.origins:
            names |= {ix.origin_member(m.task, m.model, o.chain, s) for s in range(1, o.head.seq + 1)}
        for bv, vp in zip(m.versions, p.versions):
            names.add(ix.manifest_member(m.task, m.model, bv.version))
            names |= {ix.signature_member(m.task, m.model, bv.version, k) for k in bv.signatures}
            names |= {ix.file_member(m.task, m.model, bv.version, e.path) for e in vp.manifest.all_files()}
    return names


def _agree(index: ix.BundleIndex, payloads: list[ModelPayload], where: str) -> None:
    """What the bundle's own records say must be what its index says."""
    for m, p in zip(index.models, payloads):
        if p.head != m.head or p.chain != m.chain:
            raise IntegrityError(f"{where}: the index's head of {p.ref} is not its chain's", obj=p.ref)
        if p.aliases != m.aliases:
            raise IntegrityError(f"{where}: the index's aliases of {p.ref} are not what its chain says", obj=p.ref)
        if sorted(p.origins) != sorted(o.chain for o in m.origins):
            raise IntegrityError(f"{where}: the index's origin chains of {p.ref} are not what its chain names",
                                 obj=p.ref)
        for bv, vp in zip(m.versions, p.versions):
            ref = f"{p.ref}@{vp.version}"
            if (bv.digest, bv.manifest_sha256, bv.files, bv.bytes) != (vp.digest, sha256_hex(vp.manifest_bytes),
                                                                       vp.files, vp.bytes):
                raise IntegrityError(f"{where}: the index's record of {ref} is not what its manifest and chain say",
                                     obj=ref)


def import_bundle(target, path: str, *, aliases: bool = False, actor: str | None = None, reason: str | None = None,
                  progress=None, jobs: int | None = None) -> dict:
    from .tarfmt import BundleReader

    jobs = jobs or max(1, min(4, os.cpu_count() or 1))
    with BundleReader(path) as reader:
        where = f"bundle {path}"
        view, root = _view(reader, target.trust)
        try:
            payloads = [gather(view, m.task, m.model, [v.version for v in m.versions]) for m in reader.index.models]
        except NotFoundError as e:
            raise IntegrityError(f"{where}: {e}", obj=path) from None
        finally:
            shutil.rmtree(root, ignore_errors=True)
        _agree(reader.index, payloads, where)
        for p in payloads:
            for vp in p.versions:
                for e in vp.manifest.all_files():
                    m = reader.member(ix.file_member(p.task, p.model, vp.version, e.path))
                    if (m.size, m.sha256) != (e.size, e.sha256):
                        raise IntegrityError(f"{where}: member {m.name}: the index and the manifest disagree on its "
                                             f"size or sha256", obj=m.name)
        expected = _expected_members(reader.index, payloads)
        listed = set(reader.members)
        for name in sorted(listed - expected):
            raise IntegrityError(f"{where}: member {name!r} is not part of any version it holds", obj=name)
        for name in sorted(expected - listed):
            raise IntegrityError(f"{where}: member {name} is missing", obj=name)

        def opener(p, vp, entry):
            return reader.open(ix.file_member(p.task, p.model, vp.version, entry.path))

        carried = carry_policy(target, reader.small(ix.POLICY_NAME) if reader.index.policy else None,
                               target.trust is not None)
        if progress is not None:
            progress.start(sum(vp.bytes for p in payloads for vp in p.versions))
        try:
            rows = intake(target, payloads, opener, source=reader.index.source, bundle=reader.digest, actor=actor,
                          reason=reason, jobs=jobs, progress=progress)
        except BaseException:
            if carried and not _any_event(target, payloads):
                target.storage.remove_tree(layout.policy_key())  # refused before anything: leave the target as it was
            raise
        moved = apply_aliases(target, payloads, source=reader.index.source, actor=actor) if aliases else []
        return {"ok": True, "bundle": str(path), "bundle_digest": reader.digest, "source": reader.index.source,
                "versions": rows, "aliases": moved, **_copied(rows)}


def carry_policy(target, policy: bytes | None, verified: bool) -> bool:
    """Give a target without a policy the source's, when the consumer's trust root verified it.

    Safe to copy: it is signed by the trust root, and every consumer checks that again. A
    target with a policy of its own keeps it (the local policy governs local writes)."""
    if policy is None or not verified or target.trust is None or target.storage.exists(layout.policy_key()):
        return False
    created = target.storage.write_if_absent(layout.policy_key(), policy)
    target._policy = None
    return created


def _any_event(target, payloads: list[ModelPayload]) -> bool:
    return any(target.state(p.task, p.model) is not None for p in payloads)


def _copied(rows: list[dict]) -> dict:
    done = [r for r in rows if r["status"] in ("imported", "copied")]
    return {"files_copied": sum(r["files"] for r in done), "bytes_copied": sum(r["bytes"] for r in done)}


# ---------------------------------------------------------------------- mirror
def mirror(source, target, *, lock_path: str | None = None, models: list[str] = (), everything: bool = False,
           aliases: bool = False, actor: str | None = None, jobs: int | None = None, progress=None) -> dict:
    if sum(bool(x) for x in (lock_path, models, everything)) != 1:
        raise InvalidInputError("mirror needs exactly one of --lock FILE, --model TASK/MODEL..., --all")
    if where(source).rstrip("/") == where(target).rstrip("/"):
        raise InvalidInputError(f"mirror: source and target are the same registry ({source.url})")
    if lock_path:
        chosen, _ = select(source, [], lock_path)
        selection = [(t, m, v) for (t, m), v in chosen.items()]
    elif models:
        selection = []
        for item in models:
            task, sep, model = item.partition("/")
            if not sep or "@" in model:
                raise InvalidInputError(f"--model {item!r}: expected TASK/MODEL")
            selection.append((task, model, None))
    else:
        selection = [(t, m, None) for t in source.tasks() for m in source.models(t)]
    if source.trust is not None and source.storage.exists(layout.policy_key()):
        source.loaded_policy()  # verified against the trust root, or TrustError
        carry_policy(target, source.storage.read_small(layout.policy_key(), 4 << 20), True)  # kept: mirrors converge
    if jobs is None:
        # Remote: latency-bound, overlap requests. Local: one file per core (hashing is the bound).
        both_local = source.storage.is_local and target.storage.is_local
        jobs = max(1, min(4, os.cpu_count() or 1)) if both_local else 4
    rows, moved = [], []

    def opener(p, vp, entry):
        return source.storage.open_read(f"{vp.data_key}/{entry.path}")

    for task, model, versions in selection:
        try:
            payload = gather(source, task, model, versions)  # metadata only: the log, manifests, signatures
        except NotFoundError:
            if versions is not None or models:
                raise  # asked for by name: a typo must not mirror nothing silently
            continue  # --all: a model with nothing to copy
        held = {vp.version: holds(target, payload, vp) for vp in payload.versions}
        if all(held.values()):  # nothing to copy: no write check, no byte read
            rows += [present_row(target, payload, vp, held[vp.version]) for vp in payload.versions]
        else:
            if progress is not None:
                progress.start(sum(vp.bytes for vp in payload.versions if held[vp.version] is None))
            got = intake(target, [payload], opener, source=where(source), bundle=None, actor=actor,
                         reason=f"mirrored from {where(source)}", jobs=jobs, progress=progress)
            rows += [r | {"status": "copied"} if r["status"] == "imported" else r for r in got]
        if aliases:
            moved += apply_aliases(target, [payload], source=where(source), actor=actor)
    return {"ok": True, "source": source.url, "target": target.url, "versions": rows, "aliases": moved,
            **_copied(rows)}
