"""Snakemake storage plugin for omr registries (read-only).

Queries are model references with a file part::

    storage.omr("omr://TASK/MODEL@SELECTOR#FILE")      # SELECTOR: alias, version or sha256:<hex>
    storage.omr("omr://celltype/{model}@production#model.json")   # wildcards are fine

The registry comes from `--storage-omr-registry URL`, else the usual chain
(`OMR_REGISTRY`, `OMNIBIOAI_MODEL_REGISTRY_ROOT`, the local default). The trust root comes from
`--storage-omr-trust FILE`, else omrw's lookup (`OMR_TRUST`, `./omr-trust.json`,
`~/.config/omr/trust.json`; `none` turns it off): with one, a query whose protected alias is not
at an approved promotion fails while Snakemake builds the DAG, so no job reads the model. A mutable selector
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

Retrieval copies the one file into Snakemake's local storage prefix, checking it on the way
with the one per-file check (`omr_workflows.verify.filecheck`), so `verify` means what it
means everywhere: `none` (size only), `fast` (size and xxh3-128), `strict` (sha256 too, and
the manifest against the package digest recorded in the audit log). From a local registry
the file is read in place; from an object store the version is first materialised into the
shared, digest-keyed cache (`omr_workflows.cache`, checked with the same mode), so the jobs of
a run download it once. The check is of the bytes Snakemake will actually read, so a damaged
or swapped file never reaches a job. Locks are resolved by `omr_workflows.lockfile`.
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
    trust: Optional[str] = field(
        default=None,
        metadata={
            "help": "Trust root file (`omrw trust`): only a registry policy it signed is obeyed, and a "
            "query whose protected alias is not at an approved promotion (or whose model's audit "
            "chain was rewritten) is an error before any job runs. Default: $OMR_TRUST, "
            "./omr-trust.json, ~/.config/omr/trust.json; `none` turns the checks off.",
            "env_var": False,
            "required": False,
        },
    )
    run_dir: Optional[str] = field(
        default=None,
        metadata={
            "help": "Folder for run provenance records (`omrw provenance collect`): one per file "
            "retrieved, so a model read only through storage.omr(...) is in the run report. "
            "Default: $OMR_RUN_DIR; neither set: no records.",
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

    __slots__ = ("result", "path", "size", "sha256", "mtime", "data_key", "legacy", "expected", "chunk_size")

    def __init__(self, result, path, expected, chunk_size, mtime, data_key, legacy):
        self.result = result
        self.path = path
        self.expected = expected          # filecheck.Expected: what the manifest records
        self.chunk_size = chunk_size
        self.size = expected.size
        self.sha256 = expected.sha256
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
        # (task, model, version) -> local copy of a remote version (omr_workflows.cache)
        self._copies: dict[tuple[str, str, str], Any] = {}
        # (task, model, version) -> runrecord.Origin | None, for run records
        self._origins: dict[tuple[str, str, str], Any] = {}

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
            from omr_workflows.policy import find_trust
            from omr_workflows.registry import Registry

            trust = find_trust(getattr(self.settings, "trust", None) if self.settings else None)
            self._registry = Registry(self.settings.registry if self.settings else None, trust=trust)
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
        from omr_workflows import layout
        from omr_workflows.verify.filecheck import Expected

        vkey = layout.version_key(res.task, res.model, res.version)
        if manifest is not None:
            fe = manifest.entry(ref.file)
            if fe is None:
                raise _not_found(ref, res.version)
            base = layout.data_key(vkey, manifest.data_dir)
            expected, chunk_size, legacy = Expected.of(fe), manifest.content.chunk_size, False
        else:
            from omr_workflows.constants import CHUNK_SIZE, SHA256SUMS_NAME

            if ref.file != SHA256SUMS_NAME and ref.file not in sums:
                raise _not_found(ref, res.version)
            base = vkey
            size = self.registry.storage.size(f"{vkey}/{ref.file}")
            expected, chunk_size, legacy = Expected.legacy(ref.file, sums.get(ref.file), size), CHUNK_SIZE, True
        if res.selector_kind == "alias":
            mtime = _to_epoch(res.alias_updated_at)
            if mtime is None:
                mtime = self._alias_file_mtime(res)
        else:
            mtime = created
        return _Entry(res, ref.file, expected, chunk_size, mtime, f"{base}/{ref.file}", legacy)

    def _resolve(self, ref):
        lock_path = self.settings.lock if self.settings else None
        if not lock_path:
            return self.registry.resolve(ref, verify="none", materialize=False)
        from omr_workflows.lockfile import read_lock, resolve_pinned

        if self._lock_file is None:
            self._lock_file = read_lock(lock_path)
        return resolve_pinned(self.registry, self._lock_file, ref, lock_path)

    def _version(self, res) -> tuple:
        key = (res.task, res.model, res.version)
        cached = self._versions.get(key)
        if cached is None:
            view = _version_view(self.registry, res.task, res.model, res.version)
            manifest, sums = view.manifest, view.legacy_sums
            if manifest is not None:
                created = _to_epoch(manifest.created_at)
            else:
                created = None
            if created is None:
                from omr_workflows import layout

                created = self.registry.storage.mtime(layout.sums_key(view.key))
            cached = self._versions[key] = (manifest, sums, created, view)
        return cached[:3]

    def local_copy(self, res):
        """The checked local copy of a remote version (`omr_workflows.cache`), once per run."""
        key = (res.task, res.model, res.version)
        with self._lock:
            copy = self._copies.get(key)
            if copy is None:
                from omr_workflows.cache import materialize

                self._version(res)
                view = self._versions[key][3]
                copy = self._copies[key] = materialize(self.registry.storage, view, self.verify_mode).path
            return copy

    def record(self, entry, mode: str) -> None:
        """A run provenance record for one retrieved file (runrecord.py), when a run folder is set.

        Written after the file was checked and put in place: a record says what a job got.
        """
        run_dir = (getattr(self.settings, "run_dir", None) if self.settings else None) \
            or os.environ.get("OMR_RUN_DIR", "").strip()
        if not run_dir:
            return
        from omr_workflows.runrecord import append_record, files_of, origin_of

        res = entry.result
        key = (res.task, res.model, res.version)
        with self._lock:
            self._version(res)
            view = self._versions[key][3]
            if key not in self._origins:  # model_meta.json read once per version and run
                try:
                    self._origins[key] = origin_of(meta=self.registry.show(view.ref).get("meta"))
                except Exception:
                    self._origins[key] = None  # the record is about the bytes; only the origin is lost
            origin = self._origins[key]
        result = {**res.model_dump(), "file": entry.path, "path": None}
        append_record(run_dir, "resolve", result, mode, files=files_of(view), engine="snakemake", origin=origin,
                      hints={"omr_storage_query": f"{res.ref}#{entry.path}"})

    def _alias_file_mtime(self, res) -> float:
        from omr_workflows import layout

        return self.registry.storage.mtime(layout.alias_key(layout.model_key(res.task, res.model), res.selector))

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


def _version_view(reg, task: str, model: str, version: str):
    """The registry's `Version` view (built from its manifest on registries without `Registry.version`)."""
    if hasattr(reg, "version"):
        return reg.version(task, model, version)
    from omr_workflows import layout
    from omr_workflows.versions import Version

    manifest, sums = reg.manifest(task, model, version)
    vkey = layout.version_key(task, model, version)
    if manifest is None:
        from omr_workflows.hashing import sha256_hex

        digest = "sha256:" + sha256_hex(reg.storage.read_bytes(layout.sums_key(vkey)))
        return Version(task=task, model=model, version=version, key=vkey, data_key=vkey, digest=digest,
                       legacy_sums=sums)
    return Version(task=task, model=model, version=version, key=vkey, data_key=layout.data_key(vkey, manifest.data_dir),
                   digest=manifest.digest, manifest=manifest)


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
            from omr_workflows.errors import TrustError

            try:
                self._entry = self.provider.entry(self.query)
            except TrustError as e:
                # The trust root refuses the reference (an unapproved protected alias, a rewritten
                # chain): one line naming it, while the DAG is built, so no job reads the model.
                raise WorkflowError(f"omr trust check failed for {self.query}: {e}") from None
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
        from omr_workflows.verify.filecheck import check_or_raise

        entry = self._get()
        mode = self.provider.verify_mode
        if mode == "strict":
            self.provider.check_strict(entry.result)
        target = self.local_path()
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.omr-{os.getpid()}.part")
        storage = self.provider.registry.storage
        if storage.is_local or entry.legacy:
            def source():
                return storage.open_read(entry.data_key)
        else:
            copy = self.provider.local_copy(entry.result)

            def source():
                return open(copy / entry.path, "rb")
        try:
            with source() as src, open(tmp, "wb") as out:
                check_or_raise(src, entry.expected, mode, entry.chunk_size, sink=out.write, what=entry.result.uri,
                               hint=f"run `omrw verify {entry.result.uri}` to check the whole version")
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                tmp.unlink()
        # Local copy and storage agree on the time, so Snakemake retrieves again exactly
        # when the alias moves (storage mtime grows), not on every run.
        if entry.mtime is not None:
            os.utime(target, (entry.mtime, entry.mtime))
        self.provider.record(entry, mode)


__all__ = ["StorageProvider", "StorageObject", "StorageProviderSettings"]
