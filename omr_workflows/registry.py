"""Registry operations: register, resolve, promote, list, show, history, audit, gc.

Built from storage (where bytes live), manifest (what a version is) and audit (who moved
what). Library code returns values and raises `errors`; it never prints.
"""

from __future__ import annotations

import json
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Literal

from pydantic import BaseModel, Field

from . import audit
from .constants import (
    DIGEST_INDEX_DIR,
    MANIFEST_NAME,
    META_NAME,
    REMOTE_DATA_DIR,
    SHA256SUMS_NAME,
    STAGING_DIR,
    cache_dir,
    default_actor,
    default_demote_to,
    default_registry,
)
from ._faults import crash_point
from .errors import ConflictError, IntegrityError, InvalidInputError, NotFoundError, OmrError
from .hashing import FileHashes, copy_and_hash, hash_bytes, sha256_hex
from .manifest import Content, FileEntry, Manifest, parse_manifest, parse_sha256sums, sha256sums_text
from .artifacts import Source, build_meta, check_shipped_sums, scan_artifacts
from .meta import ModelMeta
from .names import check_name, check_relpath
from .refs import Ref, parse_ref
from .storage import Storage, open_storage
from .storage.base import token_age
from .verify.check import check_version, raise_problems

VerifyMode = Literal["none", "fast", "strict"]


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
    alias_updated_at: str | None = None
    alias_event_seq: int | None = None


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


def model_key(task: str, model: str) -> str:
    return f"tasks/{task}/models/{model}"


def version_key(task: str, model: str, version: str) -> str:
    return f"{model_key(task, model)}/versions/{version}"


def _legacy_sums(storage: Storage, vkey: str, task: str, model: str, version: str) -> dict[str, str] | None:
    """{path: sha256} of a version written by omnibioai-model-registry (its sha256sums.txt).

    Such versions record only sha256 of a fixed list of files; sizes and xxh3 are not
    recorded, so fast verification of them falls back to sha256. None without the file.
    """
    try:
        text = storage.read_bytes(f"{vkey}/{SHA256SUMS_NAME}").decode("utf-8", "replace")
    except NotFoundError:
        return None
    return parse_sha256sums(text, f"{task}/{model}@{version}/{SHA256SUMS_NAME}")


class Registry:
    """One registry (a local folder or an fsspec URL)."""

    def __init__(self, url: str | os.PathLike | None = None):
        self.url = str(url) if url else default_registry()
        self.storage: Storage = open_storage(self.url)

    # ------------------------------------------------------------------ register
    def register(
        self,
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
    ) -> RegisterResult:
        """Copy `artifacts` into a new immutable version, hashing every byte once.

        Raises InvalidInputError (bad names, unsafe artifacts), ConflictError (the version
        exists, whoever won the race), IntegrityError (a sha256sums.txt shipped with the
        artifacts does not match them), StorageError.
        """
        check_name(task, "task")
        check_name(model, "model")
        check_name(version, "version")
        aliases = [check_name(a, "alias") for a in aliases]
        actor = actor or default_actor()
        mkey = model_key(task, model)
        vkey = version_key(task, model, version)
        sources, shipped_meta, shipped_sums = scan_artifacts(Path(artifacts))
        meta = build_meta(task, model, version, shipped_meta, metadata, params, actor, provenance)
        if self._version_exists(task, model, version):
            raise ConflictError(
                f"version {task}/{model}@{version} already exists; versions are immutable, register a new version",
                obj=f"{task}/{model}@{version}",
            )
        stage = self.storage.stage(mkey, version)
        try:
            entries: list[FileEntry] = []
            for src in sources:
                with open(src.path, "rb", buffering=0) as fin, stage.open_write(src.rel) as fout:
                    h = copy_and_hash(fin, fout.write)
                if h.size != src.size:
                    raise IntegrityError(f"artifact {src.rel} changed size while being registered")
                entries.append(_entry(src.rel, h))
                crash_point("copy")
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
                raise ConflictError(
                    f"version {task}/{model}@{version} already exists (another register won the race); "
                    f"versions are immutable, register a new version", obj=f"{task}/{model}@{version}") from None
        except BaseException:
            stage.abort()
            raise
        digest = manifest.digest
        index = json.dumps({"version": version, "digest": digest}).encode()
        self.storage.write_if_absent(f"{mkey}/{DIGEST_INDEX_DIR}/{digest.split(':', 1)[1]}.json", index)
        latest = ["latest"] if set_latest else []
        self._append_and_sync(
            mkey, latest,
            lambda last: _register_event(last, task, model, version, digest, meta_entry.sha256,
                                         sha256_hex(manifest_bytes), latest, actor, reason),
        )
        # Other aliases are ordinary promotions, so the stage policy and audit apply to them.
        for alias in aliases:
            if alias not in latest:
                self.promote(Ref(task, model, version), alias, reason=reason or "register --alias", actor=actor)
        set_aliases = latest + [a for a in aliases if a not in latest]
        local = self.storage.local_path(vkey)
        return RegisterResult(
            task=task, model_name=model, version=version, digest=digest,
            uri=f"omr://{task}/{model}@{version}",
            package_path=str(local) if local else f"{self.url}/{vkey}",
            registry=self.url, files=len(content.files) + 2,
            bytes=sum(e.size for e in manifest.all_files()), aliases=set_aliases,
            hashes={e.path: e.sha256 for e in manifest.all_files()},
        )

    def _version_exists(self, task: str, model: str, version: str) -> bool:
        vkey = version_key(task, model, version)
        if self.storage.is_local:
            return self.storage.isdir(vkey) and bool(self.storage.listdir(vkey))
        return self.storage.exists(f"{vkey}/{MANIFEST_NAME}")

    def _append_and_sync(self, mkey: str, aliases: list[str], build) -> audit.Event:
        event = audit.append(self.storage, mkey, build)
        for alias in aliases:
            audit.sync_alias(self.storage, mkey, alias)
        return event

    # ------------------------------------------------------------------ read side
    def manifest(self, task: str, model: str, version: str) -> tuple[Manifest | None, dict | None]:
        """(manifest, None) for our versions, (None, sha256sums) for omnibioai ones."""
        vkey = version_key(task, model, version)
        where = f"{task}/{model}@{version}/{MANIFEST_NAME}"
        try:
            data = self.storage.read_bytes(f"{vkey}/{MANIFEST_NAME}")
        except NotFoundError:
            if self.storage.is_local and self.storage.isdir(vkey):
                sums = _legacy_sums(self.storage, vkey, task, model, version)
                if sums is not None:
                    return None, sums
                raise IntegrityError(f"{task}/{model}@{version}: has neither {MANIFEST_NAME} nor {SHA256SUMS_NAME}",
                                     obj=f"{task}/{model}@{version}")
            raise NotFoundError(
                f"version {task}/{model}@{version} not found in {self.url}; run `omrw list {task}/{model}`",
                obj=f"{task}/{model}@{version}",
            ) from None
        manifest = parse_manifest(data, where)
        if (manifest.task, manifest.model, manifest.version) != (task, model, version):
            raise IntegrityError(f"{where}: names {manifest.task}/{manifest.model}@{manifest.version}, "
                                 f"not this version (copied or edited)", obj=where)
        return manifest, None

    def _alias(self, task: str, model: str, alias: str) -> audit.AliasPointer | None:
        try:
            data = self.storage.read_bytes(audit.alias_key(model_key(task, model), alias))
        except NotFoundError:
            return None
        try:
            return audit.AliasPointer.model_validate_json(data)
        except Exception:
            raise IntegrityError(f"alias {task}/{model}@{alias} is damaged; run `omrw audit {task}/{model}`",
                                 obj=f"{task}/{model}@{alias}") from None

    def resolve(self, ref: str | Ref, verify: VerifyMode = "none", materialize: bool = True) -> ResolveResult:
        """Resolve a reference to an immutable version; optionally verify its bytes.

        Reads at most two small objects (alias pointer, manifest) before verification.
        Raises InvalidInputError, NotFoundError, IntegrityError (verification failed).
        """
        r = parse_ref(ref) if isinstance(ref, str) else ref
        if verify not in ("none", "fast", "strict"):
            raise InvalidInputError(f"invalid verify mode {verify!r}: use none, fast or strict")
        pointer = None
        if r.selector_is_digest:
            kind = "digest"
            key = f"{model_key(r.task, r.model)}/{DIGEST_INDEX_DIR}/{r.selector.split(':', 1)[1]}.json"
            try:
                version = json.loads(self.storage.read_bytes(key))["version"]
            except NotFoundError:
                raise NotFoundError(f"no version of {r.model_key} has digest {r.selector}", obj=str(r)) from None
            check_name(version, "version")
        else:
            pointer = self._alias(r.task, r.model, r.selector)
            if pointer is not None:
                kind, version = "alias", check_name(pointer.version, "version")
            else:
                kind, version = "version", r.selector
        try:
            manifest, sums = self.manifest(r.task, r.model, version)
        except NotFoundError:
            if kind == "version":
                raise NotFoundError(
                    f"{r.model_key}@{r.selector}: no such alias or version in {self.url}; "
                    f"run `omrw list {r.model_key}`", obj=str(r)) from None
            raise
        vkey = version_key(r.task, r.model, version)
        if manifest is not None:
            digest = manifest.digest
            files = {e.path for e in manifest.all_files()}
        else:
            digest = "sha256:" + sha256_hex(self.storage.read_bytes(f"{vkey}/{SHA256SUMS_NAME}"))
            files = set(sums) | {SHA256SUMS_NAME}
        if kind == "digest" and digest != r.selector:
            raise IntegrityError(f"{r}: version {version} has digest {digest}, not the one asked for", obj=str(r))
        if r.file and r.file not in files:
            raise NotFoundError(f"{r}: no file {r.file!r} in version {version}; run `omrw show {r.model_key}@{version}`",
                                obj=str(r))
        if verify != "none":
            self.verify_version(r.task, r.model, version, verify)
        path = self.storage.local_path(vkey)
        if path is None:
            path = self._materialize(r.task, r.model, version, manifest) if materialize else None
        return ResolveResult(
            ref=str(r), task=r.task, model=r.model, version=version, selector=r.selector,
            selector_kind=kind, digest=digest, uri=f"omr://{r.task}/{r.model}@{version}",
            path=str(path) if path else f"{self.url}/{vkey}", file=r.file,
            file_path=str(Path(path) / r.file) if (path and r.file) else None,
            registry=self.url, verified=verify, legacy=manifest is None,
            alias_updated_at=pointer.updated_at if pointer else None,
            alias_event_seq=pointer.event_seq if pointer else None,
        )

    def recorded(self, task: str, model: str, version: str) -> tuple[str | None, str | None]:
        """(package digest, model_meta sha256) recorded by the register event, if any."""
        for ev, _h in reversed(audit.load_events(self.storage, model_key(task, model))):
            if ev.kind == "register" and ev.version == version:
                return ev.digest, ev.meta_sha256
        return None, None

    def verify_version(self, task: str, model: str, version: str, mode: str) -> None:
        """Raise IntegrityError listing every bad file of one version (the `omrw verify` engine)."""
        raise_problems(f"{task}/{model}@{version}", check_version(self, task, model, version, mode))

    def _materialize(self, task: str, model: str, version: str, manifest: Manifest) -> Path:
        """Copy a remote version into the local cache once, checking sha256 on the way."""
        import hashlib

        reg = hashlib.sha256(self.url.encode()).hexdigest()[:16]
        target = cache_dir() / reg / task / model / f"{version}-{manifest.digest.split(':', 1)[1][:16]}"
        if target.is_dir():
            return target
        tmp = target.with_name(f".{target.name}.{os.getpid()}.{time.time_ns()}")
        tmp.mkdir(parents=True)
        vkey = version_key(task, model, version)
        base = f"{vkey}/{manifest.data_dir}" if manifest.data_dir else vkey
        try:
            for entry in manifest.all_files():
                out = tmp / entry.path
                out.parent.mkdir(parents=True, exist_ok=True)
                with self.storage.open_read(f"{base}/{entry.path}") as fin, open(out, "wb") as fout:
                    h = copy_and_hash(fin, fout.write, manifest.content.chunk_size)
                if h.sha256 != entry.sha256 or h.size != entry.size:
                    raise IntegrityError(f"{task}/{model}@{version}: {entry.path}: downloaded bytes do not match "
                                         f"the manifest", obj=entry.path)
            (tmp / MANIFEST_NAME).write_bytes(manifest.to_bytes())
            try:
                os.rename(tmp, target)
            except OSError:
                if not target.is_dir():
                    raise
        finally:
            if tmp.exists():
                import shutil

                shutil.rmtree(tmp, ignore_errors=True)
        return target

    # ------------------------------------------------------------------ promote
    def promote(self, ref: str | Ref, to: str, reason: str | None = None, actor: str | None = None,
                rollback: bool = False, demote_to: str | None = None) -> audit.Event:
        """Point alias `to` at the version `ref` resolves to, as an audited event.

        Stage policy: `--to production` moves the previous production version to
        `demote_to` (default `archived`, or `staging`, or `none`); an archived version goes
        back to production only with `rollback=True`, which the event records.
        Raises InvalidInputError, NotFoundError, ConflictError (policy refused).
        """
        r = parse_ref(ref) if isinstance(ref, str) else ref
        check_name(to, "alias")
        demote_to = demote_to or default_demote_to()
        if demote_to not in ("archived", "staging", "none"):
            raise InvalidInputError(f"invalid demote target {demote_to!r}: use archived, staging or none")
        resolved = self.resolve(r, materialize=False)
        version, digest = resolved.version, resolved.digest
        actor = actor or default_actor()
        mkey = model_key(r.task, r.model)

        def build(last: audit.Event | None) -> dict:
            aliases = dict(last.aliases) if last else {}
            stages = dict(last.stages) if last else {}
            digests = dict(last.digests) if last else {}
            current = stages.get(version, "development")
            moves: dict[str, str] = {}
            if to in audit.STAGE_ONLY:
                if to == "archived" and aliases.get("production") and aliases["production"].version == version:
                    raise ConflictError(f"{r.model_key}@{version} is in production; promote another version first",
                                        obj=str(r))
                moves[version] = to
                alias = None
                from_version = None
            else:
                alias = to
                prev = aliases.get(to)
                from_version = prev.version if prev else None
                target_stage = audit.STAGE_ALIASES.get(to)
                if target_stage == "production" and current == "archived" and not rollback:
                    raise ConflictError(
                        f"{r.model_key}@{version} is archived; bringing it back to production is a rollback: "
                        f"add --rollback", obj=str(r))
                if target_stage:
                    moves[version] = target_stage
                if target_stage == "production" and from_version and from_version != version and demote_to != "none":
                    moves[from_version] = demote_to
                aliases[to] = audit.AliasState(version=version, seq=(last.seq + 1) if last else 1)
                digests[version] = digest
            for v, s in moves.items():
                if s == "development":
                    stages.pop(v, None)
                else:
                    stages[v] = s
            live = {a.version for a in aliases.values()}
            digests = {v: d for v, d in digests.items() if v in live}
            return dict(kind="promote" if alias else "stage", task=r.task, model_name=r.model, version=version,
                        alias=alias, from_version=from_version, digest=digest, rollback=rollback,
                        stage_moves=moves, actor=actor, reason=reason, ts_utc=audit.now_utc_iso(),
                        aliases=aliases, stages=stages, digests=digests)

        return self._append_and_sync(mkey, [to] if to not in audit.STAGE_ONLY else [], build)

    # ------------------------------------------------------------------ listing
    def tasks(self) -> list[str]:
        return [n for n in self.storage.listdir("tasks") if not n.startswith(".")]

    def models(self, task: str) -> list[str]:
        return [n for n in self.storage.listdir(f"tasks/{check_name(task, 'task')}/models") if not n.startswith(".")]

    def versions(self, task: str, model: str) -> list[str]:
        vroot = f"{model_key(check_name(task, 'task'), check_name(model, 'model'))}/versions"
        names = [n for n in self.storage.listdir(vroot) if not n.startswith(".")]
        if self.storage.is_local:
            return names
        return [n for n in names if self.storage.exists(f"{vroot}/{n}/{MANIFEST_NAME}")]

    def state(self, task: str, model: str) -> audit.Event | None:
        last, _ = audit.tail(self.storage, model_key(task, model))
        return last

    def list(self, task: str | None = None, model: str | None = None) -> list[dict]:
        rows = []
        for t in [task] if task else self.tasks():
            for m in [model] if model else self.models(t):
                last = self.state(t, m)
                by_version: dict[str, list[str]] = {}
                for alias, st in (last.aliases.items() if last else []):
                    by_version.setdefault(st.version, []).append(alias)
                for v in self.versions(t, m):
                    rows.append({
                        "task": t, "model": m, "version": v,
                        "stage": (last.stages.get(v, "development") if last else "development"),
                        "aliases": sorted(by_version.get(v, [])),
                    })
        return rows

    def show(self, ref: str | Ref) -> dict:
        res = self.resolve(ref, materialize=False)
        manifest, sums = self.manifest(res.task, res.model, res.version)
        vkey = version_key(res.task, res.model, res.version)
        if manifest is not None:
            base = f"{vkey}/{manifest.data_dir}" if manifest.data_dir else vkey
            files = [e.model_dump() for e in manifest.all_files()]
        else:
            base, files = vkey, [{"path": p, "sha256": h} for p, h in sorted(sums.items())]
        try:
            meta = json.loads(self.storage.read_bytes(f"{base}/{META_NAME}"))
        except (NotFoundError, ValueError):
            meta = None
        last = self.state(res.task, res.model)
        return {
            "resolve": res.model_dump(),
            "stage": last.stages.get(res.version, "development") if last else "development",
            "aliases": sorted(a for a, s in (last.aliases.items() if last else []) if s.version == res.version),
            "files": files,
            "meta": meta,
        }

    def history(self, task: str, model: str) -> list[dict]:
        mkey = model_key(check_name(task, "task"), check_name(model, "model"))
        events = [ev.model_dump(exclude={"aliases", "stages", "digests"}) | {"sha256": h}
                  for ev, h in audit.load_events(self.storage, mkey)]
        if not events:
            # A registry written by omnibioai-model-registry has only the compat log.
            try:
                text = self.storage.read_bytes(f"{mkey}/audit/promotions.jsonl").decode()
            except NotFoundError:
                text = ""
            events = [json.loads(line) | {"kind": "legacy"} for line in text.splitlines() if line.strip()]
        if not events and not self.storage.isdir(mkey):
            raise NotFoundError(f"model {task}/{model} not found in {self.url}; run `omrw list`", obj=f"{task}/{model}")
        return events

    def audit(self, task: str | None = None, model: str | None = None) -> dict:
        """Check the event chain of one model or of every model; never raises on a break."""
        checked, problems = [], []
        for t in [task] if task else self.tasks():
            models = [model] if model else self.models(t)
            for m in models:
                mkey = model_key(t, m)
                if model and not self.storage.isdir(mkey):
                    raise NotFoundError(f"model {t}/{m} not found in {self.url}", obj=f"{t}/{m}")
                checked.append(f"{t}/{m}")
                problems.extend(audit.check_chain(self.storage, mkey))
        return {"ok": not problems, "models": checked, "problems": problems}

    # ------------------------------------------------------------------ gc
    def gc(self, older_than: float = 3600.0, dry_run: bool = False) -> list[str]:
        """Remove staging debris older than `older_than` seconds; never a published version."""
        removed = []
        now = time.time()
        for t in self.tasks():
            for m in self.models(t):
                mkey = model_key(t, m)
                candidates = [f"{mkey}/{STAGING_DIR}/{n}" for n in self.storage.listdir(f"{mkey}/{STAGING_DIR}")]
                for sub in ("", "aliases", "audit", f"audit/{audit.EVENTS_DIR}", DIGEST_INDEX_DIR):
                    base = f"{mkey}/{sub}" if sub else mkey
                    candidates += [f"{base}/{n}" for n in self.storage.listdir(base)
                                   if n.startswith(".") and n.endswith(".tmp")]
                for v in self.storage.listdir(f"{mkey}/versions"):
                    vkey = f"{mkey}/versions/{v}"
                    areas = self.storage.listdir(f"{vkey}/{REMOTE_DATA_DIR}")
                    if not areas:
                        continue
                    try:
                        manifest, _ = self.manifest(t, m, v)
                        keep = manifest.data_dir if manifest else None
                    except (NotFoundError, OmrError):
                        keep = None
                    candidates += [f"{vkey}/{REMOTE_DATA_DIR}/{a}" for a in areas
                                   if f"{REMOTE_DATA_DIR}/{a}" != keep]
                for key in candidates:
                    name = key.rsplit("/", 1)[-1]
                    age = token_age(name.removesuffix(".tmp"), now)
                    if age is None or age < older_than:
                        continue
                    if not dry_run:
                        self.storage.remove_tree(key)
                    removed.append(key)
        return removed


# ---------------------------------------------------------------------- helpers
def _entry(rel: str, h: FileHashes) -> FileEntry:
    return FileEntry(path=rel, size=h.size, sha256=h.sha256, xxh3=h.xxh3, chunks=h.chunks)


def _write_small(stage, rel: str, data: bytes) -> FileEntry:
    with stage.open_write(rel) as f:
        f.write(data)
    return _entry(rel, hash_bytes(data))


def _register_event(last, task, model, version, digest, meta_sha, manifest_sha, aliases, actor, reason) -> dict:
    seq = (last.seq + 1) if last else 1
    state = dict(last.aliases) if last else {}
    digests = dict(last.digests) if last else {}
    from_version = state["latest"].version if "latest" in state else None
    for a in aliases:
        state[a] = audit.AliasState(version=version, seq=seq)
    digests[version] = digest
    live = {s.version for s in state.values()}
    return dict(kind="register", task=task, model_name=model, version=version,
                alias=aliases[0] if aliases else None, from_version=from_version if aliases else None,
                digest=digest, meta_sha256=meta_sha, manifest_sha256=manifest_sha, actor=actor, reason=reason or "register",
                ts_utc=audit.now_utc_iso(), aliases=state, stages=dict(last.stages) if last else {},
                digests={v: d for v, d in digests.items() if v in live})
