"""Snakemake storage plugin for omr registries (read-only).

Queries are model references with a file part::

    storage.omr("omr://TASK/MODEL@SELECTOR#FILE")      # SELECTOR: alias, version or sha256:<hex>
    storage.omr("omr://celltype/{model}@production#model.json")   # wildcards are fine

The registry comes from `--storage-omr-registry URL`, else the usual chain
(`OMR_REGISTRY`, `OMNIBIOAI_MODEL_REGISTRY_ROOT`, the local default). A mutable selector
(an alias) is resolved once per Snakemake run and everything after is keyed by the
immutable version it named, so every job of a run sees the same bytes.

How Snakemake decides what to rerun:

* `mtime()` of an alias query is the time of the alias event that last moved it
  (`alias_updated_at`); of a version or digest query, the version's `created_at`. Promoting a
  new version therefore makes every output that depends on the alias older than its input.
* `checksum()` is `sha256:<hex>` of the file from the manifest (no re-hash). Snakemake
  compares it with the checksum recorded for an output only while a local copy of the input
  exists, so with `--keep-storage-local-copies` a promotion that leaves a file's bytes
  unchanged does not rerun the jobs that read that file; without it, every job reading the
  moved alias reruns.

Retrieval streams the one file out of the registry (local folder or object store) into
Snakemake's local storage prefix, hashing it on the way; `verify` decides what the copy is
compared with: `none` (size only), `fast` (size and xxh3-128), `strict` (also sha256, and the
manifest against the package digest recorded in the audit log). The check is of the bytes
Snakemake will actually read, so a damaged or swapped file never reaches a job.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, List, Optional

from snakemake_interface_common.exceptions import WorkflowError
from snakemake_interface_storage_plugins.io import IOCacheStorageInterface, Mtime
from snakemake_interface_storage_plugins.settings import StorageProviderSettingsBase
from snakemake_interface_storage_plugins.storage_object import StorageObjectRead
from snakemake_interface_storage_plugins.storage_provider import (  # noqa: F401
    ExampleQuery,
    Operation,
    QueryType,
    StorageProviderBase,
    StorageQueryValidationResult,
)

SCHEME = "omr://"
VERIFY_MODES = ("none", "fast", "strict")
# Same grammar as snakemake.io's wildcard regex, kept simple: {name} or {name,regex}.
_WILDCARD = re.compile(r"\{[^{}]*(\{[^{}]*\}[^{}]*)*\}")


def _check_verify(value: Optional[str]) -> str:
    mode = (value or os.environ.get("OMR_VERIFY", "").strip() or "fast").lower()
    if mode not in VERIFY_MODES:
        raise WorkflowError(f"invalid omr verify mode {mode!r}: use none, fast or strict "
                            "(--storage-omr-verify or $OMR_VERIFY)")
    return mode


@dataclass
class StorageProviderSettings(StorageProviderSettingsBase):
    registry: Optional[str] = field(
        default=None,
        metadata={
            "help": "Registry path or fsspec URL (default: $OMR_REGISTRY, "
            "$OMNIBIOAI_MODEL_REGISTRY_ROOT, then the local default folder).",
            "env_var": False,
            "required": False,
        },
    )
    lock: Optional[str] = field(
        default=None,
        metadata={
            "help": "Lock file (`omrw lock`): every query resolves to the version pinned for its "
            "TASK/MODEL@SELECTOR, so moving an alias reruns nothing; a ref missing from the lock "
            "or a pinned version whose digest changed is an error.",
            "env_var": False,
            "required": False,
        },
    )
    verify: Optional[str] = field(
        default=None,
        metadata={
            "help": "How a retrieved file is checked against the manifest: none (size), "
            "fast (size + xxh3-128), strict (sha256 and the recorded package digest). "
            "Default: $OMR_VERIFY, else fast.",
            "env_var": False,
            "required": False,
        },
    )


def _to_epoch(text: Optional[str]) -> Optional[float]:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _split_query(query: str) -> tuple[str, str, str, str]:
    """(task, model, selector, file) by plain string splitting, wildcards left as they are."""
    body = query[len(SCHEME):] if query.startswith(SCHEME) else query
    body, _, file = body.partition("#")
    body, at, selector = body.partition("@")
    task, _, model = body.partition("/")
    return task, model, (selector if at else "latest"), file


class _Entry:
    """What the plugin needs to know about one file of one resolved version."""

    __slots__ = ("result", "path", "size", "sha256", "xxh3", "mtime", "data_key", "legacy")

    def __init__(self, result, path, size, sha256, xxh3, mtime, data_key, legacy):
        self.result = result
        self.path = path
        self.size = size
        self.sha256 = sha256
        self.xxh3 = xxh3
        self.mtime = mtime
        self.data_key = data_key
        self.legacy = legacy


class StorageProvider(StorageProviderBase):
    def __post_init__(self):
        self.verify_mode = _check_verify(getattr(self.settings, "verify", None))
        self._registry = None
        self._lock_file = None
        self._lock = threading.RLock()
        # (task, model, selector) -> ResolveResult: resolved once per run (a consistent view)
        self._resolved: dict[tuple[str, str, str], Any] = {}
        # (task, model, version) -> (manifest | None, legacy sums | None, version mtime)
        self._versions: dict[tuple[str, str, str], tuple] = {}
        self._strict_checked: set[tuple[str, str, str]] = set()

    # ------------------------------------------------------------------ interface
    @classmethod
    def example_queries(cls) -> List[ExampleQuery]:
        return [
            ExampleQuery(
                query="omr://celltype_classification_sc/human_pbmc@production#model.pt",
                description="One file of the version the `production` alias points to; "
                "promoting another version reruns the jobs that read it.",
                type=QueryType.INPUT,
            ),
            ExampleQuery(
                query="omr://celltype_classification_sc/human_pbmc@2026-02-13_001#label_map.json",
                description="One file of an exact (immutable) version.",
                type=QueryType.INPUT,
            ),
            ExampleQuery(
                query="omr://celltype_classification_sc/human_pbmc@sha256:"
                + "0" * 64 + "#model.pt",
                description="One file of the version whose package digest is given.",
                type=QueryType.INPUT,
            ),
        ]

    def rate_limiter_key(self, query: str, operation: Operation) -> Any:
        return self.settings.registry if self.settings else None

    def default_max_requests_per_second(self) -> float:
        return 100.0

    def use_rate_limiter(self) -> bool:
        # Resolution is cached per run and reads at most two small objects per model.
        return False

    @classmethod
    def is_valid_query(cls, query: str) -> StorageQueryValidationResult:
        def bad(reason: str) -> StorageQueryValidationResult:
            return StorageQueryValidationResult(query=query, valid=False, reason=reason)

        if not isinstance(query, str) or not query.startswith(SCHEME):
            return bad("an omr query starts with omr://, e.g. omr://TASK/MODEL@production#FILE")
        from omr_workflows.errors import InvalidInputError
        from omr_workflows.refs import parse_ref

        # Wildcards are filled in later; check the rest of the reference with a placeholder
        # that is valid wherever a wildcard may stand (a digest needs 64 hex digits).
        concrete = _WILDCARD.sub("w", query)
        if concrete != query and "@sha256:" in concrete:
            concrete = re.sub(r"sha256:[^#]*", "sha256:" + "0" * 64, concrete)
        try:
            ref = parse_ref(concrete)
        except InvalidInputError as e:
            return bad(str(e))
        if not ref.file:
            return bad("the query must name one file of the version: omr://TASK/MODEL@SELECTOR#FILE "
                       "(a version folder cannot be a Snakemake storage object)")
        return StorageQueryValidationResult(query=query, valid=True)

    # ------------------------------------------------------------------ registry access
    @property
    def registry(self):
        if self._registry is None:
            from omr_workflows.registry import Registry

            self._registry = Registry(self.settings.registry if self.settings else None)
        return self._registry

    def entry(self, query: str) -> _Entry:
        """Resolve a query to one file of an immutable version (cached per run).

        Raises omr_workflows errors: NotFoundError when the model, selector or file does
        not exist, InvalidInputError for a bad query, IntegrityError for damage.
        """
        from omr_workflows.refs import Ref, parse_ref

        ref = parse_ref(query)
        if not ref.file:
            from omr_workflows.errors import InvalidInputError

            raise InvalidInputError(f"invalid omr query {query!r}: no #FILE part")
        with self._lock:
            key = (ref.task, ref.model, ref.selector)
            res = self._resolved.get(key)
            if res is None:
                res = self._resolve(Ref(ref.task, ref.model, ref.selector, None, True))
                self._resolved[key] = res
            manifest, sums, created = self._version(res)
        from omr_workflows.registry import version_key

        vkey = version_key(res.task, res.model, res.version)
        if manifest is not None:
            fe = manifest.entry(ref.file)
            if fe is None:
                raise _not_found(ref, res.version)
            base = f"{vkey}/{manifest.data_dir}" if manifest.data_dir else vkey
            size, sha, xxh, legacy = fe.size, fe.sha256, fe.xxh3, False
        else:
            from omr_workflows.constants import SHA256SUMS_NAME

            if ref.file != SHA256SUMS_NAME and ref.file not in sums:
                raise _not_found(ref, res.version)
            base = vkey
            size = self.registry.storage.size(f"{vkey}/{ref.file}")
            sha = sums.get(ref.file)
            xxh, legacy = None, True
        if res.selector_kind == "alias":
            mtime = _to_epoch(res.alias_updated_at)
            if mtime is None:
                mtime = self._alias_file_mtime(res)
        else:
            mtime = created
        return _Entry(res, ref.file, size, sha, xxh, mtime, f"{base}/{ref.file}", legacy)

    def _resolve(self, ref):
        lock_path = self.settings.lock if self.settings else None
        if not lock_path:
            return self.registry.resolve(ref, verify="none", materialize=False)
        from omr_workflows.errors import ConflictError, NotFoundError
        from omr_workflows.lockfile import lock_key, read_lock
        from omr_workflows.refs import Ref

        if self._lock_file is None:
            self._lock_file = read_lock(lock_path)
        entry = self._lock_file.find(ref)
        if entry is None:
            raise NotFoundError(f"{lock_key(ref)} is not pinned in lock file {lock_path!r}; add it with "
                                f"`omrw lock {lock_key(ref)} -o {lock_path}`", obj=str(ref))
        # By digest: a pinned version is found even if an alias shadows its name, and a
        # version whose manifest changed since locking cannot pass.
        res = self.registry.resolve(Ref(ref.task, ref.model, entry.digest, None, True), verify="none",
                                    materialize=False)
        if res.version != entry.version:
            raise ConflictError(f"{lock_key(ref)}: {lock_path!r} pins version {entry.version} ({entry.digest}) "
                                f"but that digest now belongs to version {res.version}", obj=str(ref))
        return res

    def _version(self, res) -> tuple:
        key = (res.task, res.model, res.version)
        cached = self._versions.get(key)
        if cached is None:
            manifest, sums = self.registry.manifest(res.task, res.model, res.version)
            if manifest is not None:
                created = _to_epoch(manifest.created_at)
            else:
                created = None
            if created is None:
                from omr_workflows.constants import SHA256SUMS_NAME
                from omr_workflows.registry import version_key

                created = self.registry.storage.mtime(
                    f"{version_key(res.task, res.model, res.version)}/{SHA256SUMS_NAME}")
            cached = self._versions[key] = (manifest, sums, created)
        return cached

    def _alias_file_mtime(self, res) -> float:
        from omr_workflows import audit
        from omr_workflows.registry import model_key

        return self.registry.storage.mtime(audit.alias_key(model_key(res.task, res.model), res.selector))

    def check_strict(self, res) -> None:
        """The manifest must match the package digest the register event recorded."""
        key = (res.task, res.model, res.version)
        with self._lock:
            if key in self._strict_checked:
                return
            manifest, _sums, _ = self._version(res)
            if manifest is not None:
                recorded, _meta = self.registry.recorded(res.task, res.model, res.version)
                if recorded is not None and recorded != manifest.digest:
                    from omr_workflows.errors import IntegrityError

                    raise IntegrityError(
                        f"{res.uri}: manifest digest {manifest.digest} differs from the recorded "
                        f"{recorded} (manifest edited); run `omrw verify {res.uri} --mode strict`")
            self._strict_checked.add(key)


def _not_found(ref, version: str):
    from omr_workflows.errors import NotFoundError

    return NotFoundError(f"{ref}: no file {ref.file!r} in version {version}; "
                         f"run `omrw show {ref.model_key}@{version}`", obj=str(ref))


class StorageObject(StorageObjectRead):
    def __post_init__(self):
        self._entry: Optional[_Entry] = None

    # ------------------------------------------------------------------ helpers
    def _get(self) -> _Entry:
        if self._entry is None:
            self._entry = self.provider.entry(self.query)
        return self._entry

    def _exists(self) -> bool:
        from omr_workflows.errors import NotFoundError

        try:
            self._get()
        except NotFoundError:
            return False
        return True

    # ------------------------------------------------------------------ interface
    def local_suffix(self) -> str:
        task, model, selector, file = _split_query(self.query)
        return f"{task}/{model}@{selector}/{file}"

    async def inventory(self, cache: IOCacheStorageInterface):
        key = self.cache_key()
        if key in cache.exists_in_storage:
            return
        exists = self._exists()
        cache.exists_in_storage[key] = exists
        if exists:
            entry = self._get()
            cache.mtime[key] = Mtime(storage=entry.mtime)
            cache.size[key] = entry.size

    def get_inventory_parent(self) -> Optional[str]:
        return None

    def cleanup(self):
        pass

    def exists(self) -> bool:
        return self._exists()

    def mtime(self) -> float:
        return self._get().mtime

    def size(self) -> int:
        return self._get().size

    def checksum(self) -> Optional[str]:
        sha = self._get().sha256
        return f"sha256:{sha}" if sha else None

    def retrieve_object(self):
        from omr_workflows.hashing import copy_and_hash

        entry = self._get()
        mode = self.provider.verify_mode
        if mode == "strict":
            self.provider.check_strict(entry.result)
        target = self.local_path()
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.omr-{os.getpid()}.part")
        storage = self.provider.registry.storage
        try:
            with storage.open_read(entry.data_key) as src, open(tmp, "wb") as out:
                got = copy_and_hash(src, out.write)
            problem = _compare(entry, got, mode)
            if problem:
                from omr_workflows.errors import IntegrityError

                raise IntegrityError(f"{entry.result.uri}#{entry.path}: {problem}; "
                                     f"run `omrw verify {entry.result.uri}` to check the whole version",
                                     obj=entry.path)
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                tmp.unlink()
        # Local copy and storage agree on the time, so Snakemake retrieves again exactly
        # when the alias moves (storage mtime grows), not on every run.
        if entry.mtime is not None:
            os.utime(target, (entry.mtime, entry.mtime))


def _compare(entry: _Entry, got, mode: str) -> Optional[str]:
    if got.size != entry.size:
        return f"size {got.size} differs from the manifest's {entry.size} (truncated or replaced)"
    if mode == "none":
        return None
    if entry.legacy or mode == "strict":
        if entry.sha256 and got.sha256 != entry.sha256:
            return "sha256 differs from the manifest (corrupted or tampered)"
    if not entry.legacy and got.xxh3 != entry.xxh3:
        return "xxh3-128 differs from the manifest (corrupted)"
    return None


__all__ = ["StorageProvider", "StorageObject", "StorageProviderSettings"]
